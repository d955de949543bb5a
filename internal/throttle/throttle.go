// Package throttle slows down password guessing on POST /token. Failed
// logins are counted in PostgreSQL per account (lower(username), whether or
// not such a user exists, so the answer never tells) and per client IP; past
// a threshold every attempt must wait a delay that doubles with each further
// failure, up to a cap, so an attacker cannot lock a real user out for long.
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
	db    *postgres.DB
	clock clock.Clock
	cfg   Config
	log   *slog.Logger
}

// New wires a Throttle; zero fields of cfg take their defaults.
func New(db *postgres.DB, c clock.Clock, cfg Config, log *slog.Logger) *Throttle {
	return &Throttle{db: db, clock: c, cfg: cfg.withDefaults(), log: log}
}

// Begin claims one attempt for account and ip. While a delay runs for
// either it returns a *LimitedError and charges nothing; otherwise the
// attempt is counted as a failure at once, before the password is checked,
// so parallel guesses cannot all slip past the check. Call Succeed if the
// password was right. It looks only at counts, never at the user, so known
// and unknown usernames are treated alike.
func (t *Throttle) Begin(ctx context.Context, account, ip string) error {
	if t == nil {
		return nil
	}
	now := t.clock.Now()
	wait, err := t.db.ClaimLoginAttempt(ctx, account, ip, now, now.Add(-Forget), func(rows []postgres.LoginFailures) time.Duration {
		return t.wait(rows, now)
	})
	if err != nil {
		return err
	}
	if wait > 0 {
		t.log.Info("login throttled", "ip", ip, "wait", wait.String())
		return &LimitedError{RetryAfter: wait}
	}
	return nil
}

// wait is the longest delay still running among rows at now.
func (t *Throttle) wait(rows []postgres.LoginFailures, now time.Time) time.Duration {
	var wait time.Duration
	for _, r := range rows {
		if r.LastFailedAt.Before(now.Add(-Forget)) {
			continue
		}
		threshold := t.cfg.MaxFailuresAccount
		if r.Scope == postgres.ScopeIP {
			threshold = t.cfg.MaxFailuresIP
		}
		until := r.LastFailedAt.Add(Delay(r.Failures, threshold, t.cfg.Base, t.cfg.Max))
		wait = max(wait, until.Sub(now))
	}
	return wait
}

// Succeed settles an attempt Begin allowed whose password was right: the
// account's failures are forgotten and the ip gets back the one failure
// Begin charged; the ip's other failures stay, so one good password does not
// reset a spray across many accounts.
func (t *Throttle) Succeed(ctx context.Context, account, ip string) error {
	if t == nil {
		return nil
	}
	return t.db.SettleLoginSuccess(ctx, account, ip)
}

// Prune deletes counts that have been quiet for longer than Forget; they no
// longer count anyway.
func (t *Throttle) Prune(ctx context.Context) (int64, error) {
	return t.db.DeleteLoginFailuresBefore(ctx, t.clock.Now().Add(-Forget))
}
