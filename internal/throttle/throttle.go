// Package throttle slows down password guessing on POST /token. Failed
// logins are counted in PostgreSQL per account (lower(username), whether or
// not such a user exists, so the answer never tells) and per client IP; past
// a threshold every attempt must wait a delay that doubles with each further
// failure, up to a cap, so an attacker cannot lock a real user out for long.
//
// An attempt is claimed (Claim) before its password is checked and settled
// afterwards (SettleFailure or SettleSuccess). Claimed attempts are counted apart from
// failures, as pending: the delay comes only from recorded failures, so
// correct logins running at once never make each other wait, while pending
// bounds how many checks of one key run at a time, so parallel guesses
// cannot outrun the count.
package throttle

import (
	"context"
	"fmt"
	"log/slog"
	"math"
	"time"

	"github.com/seedc5a8123e/authd/internal/clock"
	"github.com/seedc5a8123e/authd/internal/postgres"
)

// Forget is how long a key must stay quiet before its failures are forgotten.
const Forget = 24 * time.Hour

// PendingTTL is how long a claimed attempt counts as in flight if it is
// never settled (a crashed process): longer than any request, so a live one
// always settles first, and short enough that a crash cannot leave a key
// blocked for long. It runs from the newest claim of the key.
const PendingTTL = time.Minute

// InFlightRetry is the Retry-After of an attempt refused because as many
// attempts as the threshold allows are being checked right now.
const InFlightRetry = time.Second

// Config sets the thresholds and the delays.
type Config struct {
	// MaxFailuresAccount is how many failures an account may have before
	// the backoff starts. Default 5.
	MaxFailuresAccount int
	// MaxFailuresIP is the same for one client address. Default 20.
	MaxFailuresIP int
	// Base is the first delay; each further failure doubles it. Default 1s.
	Base time.Duration
	// Max caps the delay. Default 15m.
	Max time.Duration
}

// DefaultConfig is the configuration documented on Config.
func DefaultConfig() Config {
	return Config{MaxFailuresAccount: 5, MaxFailuresIP: 20, Base: time.Second, Max: 15 * time.Minute}
}

// withDefaults fills zero fields from DefaultConfig.
func (c Config) withDefaults() Config {
	d := DefaultConfig()
	if c.MaxFailuresAccount <= 0 {
		c.MaxFailuresAccount = d.MaxFailuresAccount
	}
	if c.MaxFailuresIP <= 0 {
		c.MaxFailuresIP = d.MaxFailuresIP
	}
	if c.Base <= 0 {
		c.Base = d.Base
	}
	if c.Max <= 0 {
		c.Max = d.Max
	}
	return c
}

// LimitedError refuses an attempt made while a delay lasts.
type LimitedError struct {
	RetryAfter time.Duration
}

func (e *LimitedError) Error() string {
	return fmt.Sprintf("too many failed attempts; retry in %s", e.RetryAfter)
}

// RetryAfterSeconds is RetryAfter rounded up to whole seconds, at least 1,
// for the Retry-After header.
func (e *LimitedError) RetryAfterSeconds() int64 {
	return max(1, int64(math.Ceil(e.RetryAfter.Seconds())))
}

// Delay is how long the next attempt must wait after failures failures,
// given the threshold: nothing below it, then base, doubling, up to max.
func Delay(failures, threshold int, base, maxDelay time.Duration) time.Duration {
	if failures < threshold {
		return 0
	}
	n := failures - threshold
	if n >= 62 || base > maxDelay>>n {
		return maxDelay
	}
	return base << n
}

// Throttle applies Config to logins. A nil *Throttle allows everything.
type Throttle struct {
	db        *postgres.DB
	clock     clock.Clock
	cfg       Config
	log       *slog.Logger
	onLimited func()
}

// New wires a Throttle; zero fields of cfg take their defaults. onLimited,
// if not nil, hears of every attempt refused with a *LimitedError (metrics).
func New(db *postgres.DB, c clock.Clock, cfg Config, log *slog.Logger, onLimited func()) *Throttle {
	if onLimited == nil {
		onLimited = func() {}
	}
	return &Throttle{db: db, clock: c, cfg: cfg.withDefaults(), log: log, onLimited: onLimited}
}

// Guard runs check, which verifies a password, under the throttle: refused
// with a *LimitedError, before check runs, while a delay lasts for key or ip
// or while as many checks of either are in flight as the threshold still
// allows; otherwise claimed before check and settled after it, as a failure
// when wrong reports check's error to be a wrong password, else as a success.
// Settling does not follow ctx's cancellation: a client that hangs up must
// not leave its guess unrecorded. Callers give each kind of check its own
// key prefix ("login:", "me-password:"), so no client-chosen name can fill
// another check's count.
func (t *Throttle) Guard(ctx context.Context, key, ip string, check func() error, wrong func(error) bool) error {
	if err := t.Claim(ctx, key, ip); err != nil {
		return err
	}
	err := check()
	settle := context.WithoutCancel(ctx)
	if err != nil && wrong(err) {
		if ferr := t.SettleFailure(settle, key, ip); ferr != nil {
			// An unrecorded wrong guess must not be answered as one: the
			// caller gets a server error (the claim stays in flight until it
			// expires).
			return fmt.Errorf("throttle: recording a wrong password: %w", ferr)
		}
		return err
	}
	if serr := t.SettleSuccess(settle, key, ip); serr != nil && t != nil {
		// The check stands; the claim only lingers until it expires.
		t.log.WarnContext(ctx, "throttle: settling an attempt failed", "err", serr)
	}
	return err
}

// Claim claims one attempt for account and ip, before the password is
// checked. It returns a *LimitedError, and claims nothing, while a delay
// runs for either key, or while so many attempts of either key are in
// flight that, were they all wrong, the threshold would be reached: at most
// threshold - failures checks of a key run at once before any of them is
// recorded, and one at a time once it is over the threshold. An attempt
// Claim allows must be settled with SettleFailure or SettleSuccess. It looks
// only at counts, never at the user, so known and unknown usernames are
// treated alike.
func (t *Throttle) Claim(ctx context.Context, account, ip string) error {
	if t == nil {
		return nil
	}
	now := t.clock.Now()
	// A plain read without locks first, so that an attempt refused anyway
	// costs one query and waits for nobody.
	rows, err := t.db.LoginFailures(ctx, account, ip)
	if err != nil {
		return err
	}
	wait := t.wait(rows, now)
	if wait == 0 {
		err = t.db.InTx(ctx, func(tx *postgres.Tx) error {
			// Locked (account first, so two claims cannot deadlock) and read
			// again: claims of a key are serialised, so this read sees every
			// claim made before this one, and the count cannot be outrun.
			rows, err := tx.LockLoginKeys(account, ip)
			if err != nil {
				return err
			}
			if wait = t.wait(rows, now); wait > 0 {
				return nil // nothing written; the locks go with the transaction
			}
			return tx.ClaimLogin(account, ip, now, now.Add(-PendingTTL))
		})
		if err != nil {
			return err
		}
	}
	if wait > 0 {
		t.log.Info("login throttled", "ip", ip, "wait", wait.String())
		t.onLimited()
		return &LimitedError{RetryAfter: wait}
	}
	return nil
}

// wait is how long an attempt must still wait at now given rows: the
// longest delay still running, from recorded failures only, or InFlightRetry
// when a key has as many attempts in flight as its threshold still allows.
func (t *Throttle) wait(rows []postgres.LoginFailures, now time.Time) time.Duration {
	var wait time.Duration
	for _, r := range rows {
		threshold := t.cfg.MaxFailuresAccount
		if r.Scope == postgres.ScopeIP {
			threshold = t.cfg.MaxFailuresIP
		}
		failures := r.Failures
		if r.LastFailedAt.Before(now.Add(-Forget)) {
			failures = 0
		}
		if d := Delay(failures, threshold, t.cfg.Base, t.cfg.Max); d > 0 {
			wait = max(wait, r.LastFailedAt.Add(d).Sub(now))
		}
		pending := r.Pending
		if r.PendingAt == nil || r.PendingAt.Before(now.Add(-PendingTTL)) {
			pending = 0 // left by an attempt that never settled
		}
		if pending > 0 && failures+pending >= threshold {
			wait = max(wait, InFlightRetry)
		}
	}
	return wait
}

// SettleFailure settles an attempt Claim allowed whose password was wrong:
// one failure more on both keys, and one attempt fewer in flight. If it
// returns an error the failure is not recorded; the attempt then still
// counts as in flight until PendingTTL, so it keeps its place under the
// threshold.
func (t *Throttle) SettleFailure(ctx context.Context, account, ip string) error {
	if t == nil {
		return nil
	}
	now := t.clock.Now()
	return t.db.SettleLoginFailure(ctx, account, ip, now, now.Add(-Forget))
}

// SettleSuccess settles an attempt Claim allowed whose password was right,
// or that ended for another reason than a wrong password: the account's
// failures are forgotten; the ip only gets one attempt fewer in flight, its
// failures and the time of its last failure stay, so one good password
// neither resets nor prolongs a spray across many accounts.
func (t *Throttle) SettleSuccess(ctx context.Context, account, ip string) error {
	if t == nil {
		return nil
	}
	return t.db.SettleLoginSuccess(ctx, account, ip)
}

// Prune deletes counts that have been quiet for longer than Forget and have
// no attempt in flight; they no longer count anyway.
func (t *Throttle) Prune(ctx context.Context) (int64, error) {
	now := t.clock.Now()
	return t.db.DeleteLoginFailuresBefore(ctx, now.Add(-Forget), now.Add(-PendingTTL))
}
