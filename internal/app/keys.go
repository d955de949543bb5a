package app

import (
	"context"
	"errors"
	"fmt"

	"github.com/robfig/cron/v3"

	"github.com/seedc5a8123e/authd/internal/clock"
	"github.com/seedc5a8123e/authd/internal/keyring"
	"github.com/seedc5a8123e/authd/internal/keys"
	"github.com/seedc5a8123e/authd/internal/statuslist"
	"github.com/seedc5a8123e/authd/internal/token"
	"github.com/seedc5a8123e/authd/verifier"
)

// loadKeys sets a.Keys from the configuration: the database keyring, the
// key files, or one ephemeral key.
func (a *App) loadKeys(ctx context.Context, create bool) error {
	cfg := a.Config
	switch {
	case cfg.KeyEncryptionKey != "":
		kc, err := a.KeyRingConfig()
		if err != nil {
			return err
		}
		// Only serve makes the first key: an admin command run before it
		// (or before authd keys import) must not choose the deployment's key.
		kc.Create = create
		ring, err := keyring.New(ctx, a.DB, a.Clock, kc)
		if errors.Is(err, keyring.ErrNoKeys) {
			// An admin command on a table no server has filled yet signs
			// nothing; it gets a key that signs nothing either.
			return a.ephemeralKeys()
		}
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
		return a.ephemeralKeys()
	}
	return nil
}

// ephemeralKeys sets one fresh key, gone at exit.
func (a *App) ephemeralKeys() error {
	k, err := keys.Generate(keys.EdDSA)
	if err != nil {
		return err
	}
	ks, err := keys.NewSet(k)
	if err != nil {
		return err
	}
	a.Keys, a.EphemeralKey = ks, true
	return nil
}

// KeyRingConfig is the keyring's configuration from AUTHD_KEY_*: a replaced
// key stays published for the longest lifetime of what it signed (an access
// token, or a status list when those are on), plus the verifiers' default
// leeway and the replicas' clock skew both ways (keyring.Config).
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
	_, realClock := a.Clock.(clock.Real)
	return keyring.Config{
		KEK: kek, Schedule: sched, Alg: cfg.KeyAlgorithm, Log: a.Log, Skew: token.MaxClockSkew,
		RetireAfter:  lifetime + verifier.DefaultLeeway + 2*token.MaxClockSkew,
		CheckDBClock: realClock, // a test's manual clock is not this host's
		OnRead:       a.Metrics.SigningKeysRead,
	}, nil
}
