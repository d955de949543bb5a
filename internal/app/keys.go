package app

import (
	"context"
	"fmt"

	"github.com/robfig/cron/v3"

	"github.com/seedc5a8123e/authd/internal/keyring"
	"github.com/seedc5a8123e/authd/internal/keys"
	"github.com/seedc5a8123e/authd/internal/statuslist"
	"github.com/seedc5a8123e/authd/internal/token"
	"github.com/seedc5a8123e/authd/verifier"
)

// loadKeys sets a.Keys from the configuration: the database keyring, the
// key files, or one ephemeral key.
func (a *App) loadKeys(ctx context.Context) error {
	cfg := a.Config
	switch {
	case cfg.KeyEncryptionKey != "":
		kc, err := a.KeyRingConfig()
		if err != nil {
			return err
		}
		ring, err := keyring.New(ctx, a.DB, a.Clock, token.MaxClockSkew, kc)
		if err != nil {
			return fmt.Errorf("database signing keys: %w", err)
		}
		a.Keys, a.KeyRing = ring, ring
		a.closers = append(a.closers, ring.Close)
	case len(cfg.SigningKeys) > 0:
		ks, err := keys.LoadFiles(cfg.SigningKeys)
		if err != nil {
			return fmt.Errorf("AUTHD_SIGNING_KEYS: %w", err)
		}
		a.Keys = ks
	default:
		k, err := keys.Generate(keys.EdDSA)
		if err != nil {
			return err
		}
		ks, err := keys.NewSet(k)
		if err != nil {
			return err
		}
		a.Keys, a.EphemeralKey = ks, true
	}
	return nil
}

// KeyRingConfig is the keyring's configuration from AUTHD_KEY_*: a replaced
// key stays published for the longest lifetime of what it signed (an access
// token, or a status list when those are on), plus the verifiers' default
// leeway and the replicas' clock skew.
func (a *App) KeyRingConfig() (keyring.Config, error) {
	cfg := a.Config
	kek, err := keys.ParseKEK(cfg.KeyEncryptionKey)
	if err != nil {
		return keyring.Config{}, fmt.Errorf("AUTHD_KEY_ENCRYPTION_KEY: %w", err)
	}
	sched, err := cron.ParseStandard(cfg.KeyRotation)
	if err != nil {
		return keyring.Config{}, fmt.Errorf("AUTHD_KEY_ROTATION: %w", err)
	}
	lifetime := cfg.AccessTTL
	if cfg.StatusList {
		lifetime = max(lifetime, statuslist.ValidityFor(cfg.StatusListTTL))
	}
	return keyring.Config{
		KEK: kek, Schedule: sched, Alg: cfg.KeyAlgorithm, Log: a.Log,
		RetireAfter: lifetime + verifier.DefaultLeeway + token.MaxClockSkew,
	}, nil
}
