// Package throttle slows down password guessing on POST /token. Failed
// logins are counted in PostgreSQL per account (lower(username), whether or
// not such a user exists, so the answer never tells), per account and client
// address together, and per client address; past a threshold every attempt
// must wait a delay that doubles with each further failure, up to a cap, so
// an attacker cannot lock a real user out for long.
//
// The thresholds (Config, defaults in brackets):
//
//   - one account from one address: MaxFailuresAccount (5). A guesser on
//     one address reaches this backoff, which refuses that address only, so
//     the owner still logs in from any other address.
//   - one account from every address together: MaxFailuresAccountAnyIP
//     (50), so a guess spread over many addresses still ends in a backoff,
//     which then refuses every address, the owner's too.
//   - one address, whatever the accounts: MaxFailuresIP (20), against a
//     spray of one password over many accounts.
//
// An attempt whose address is unknown (empty) counts, for its account, as
// coming from one address of its own, and has no address count.
//
// A correct password forgets the failures of its account and of its
// (account, address) pair (a success proves the owner is in, and a guesser's
// pairs on other addresses keep their count); the address keeps its own, so
// one good password neither resets nor prolongs a spray.
//
// An attempt is claimed (Claim) before its password is checked and settled
// afterwards (SettleFailure or SettleSuccess). Claimed attempts are counted
// apart from failures, as pending: the delay comes only from recorded
// failures, so correct logins running at once never make each other wait.
// Pending bounds how many checks run at a time, so parallel guesses cannot
// outrun the count: of one account from one address at most
// MaxFailuresAccount - failures, of one account from anywhere at most
// MaxFailuresAccountAnyIP - failures, one at a time past a threshold. The
// attempts in flight from one address are not refused as failures: they are
// bounded apart, by MaxInFlightIP (200), whatever failed, and one at a time
// once the address is past MaxFailuresIP. So a burst from one address may
// check up to MaxInFlightIP - 1 guesses at different accounts beyond the
// address's threshold, once: after that the address is in its backoff, one
// attempt at a time, until a day without failures forgets them.
//
// On a schema before migration 000006, which refuses (account, address)
// rows, the throttle counts per account and per address only, the account
// with the threshold MaxFailuresAccount, as the release before did.
package throttle

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"math"
	"sync/atomic"
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
// attempts as the thresholds allow are being checked right now.
const InFlightRetry = time.Second

// SchemaRecheck is how long the throttle counts without (account, address)
// rows after the schema refused one (postgres.ErrNoAccountIPScope) before it
// tries them again.
const SchemaRecheck = time.Minute

// Config sets the thresholds and the delays.
type Config struct {
	// MaxFailuresAccount is how many failures one account may have from one
	// client address before the backoff starts for that address. Default 5.
	MaxFailuresAccount int
	// MaxFailuresAccountAnyIP is how many failures one account may have
	// from all addresses together before the backoff starts for every
	// address. Default 50, and never below MaxFailuresAccount.
	MaxFailuresAccountAnyIP int
	// MaxFailuresIP is how many failures one client address may have,
	// whatever the accounts, before its backoff starts. Default 20.
	MaxFailuresIP int
	// MaxInFlightIP is how many attempts from one client address may be
	// checked at once, whatever the accounts. Default 200.
	MaxInFlightIP int
	// Base is the first delay; each further failure doubles it. Default 1s.
	Base time.Duration
	// Max caps the delay. Default 15m.
	Max time.Duration
}

// DefaultConfig is the configuration documented on Config.
func DefaultConfig() Config {
	return Config{
		MaxFailuresAccount: 5, MaxFailuresAccountAnyIP: 50, MaxFailuresIP: 20, MaxInFlightIP: 200,
		Base: time.Second, Max: 15 * time.Minute,
	}
}

// withDefaults fills zero fields from DefaultConfig, and raises
// MaxFailuresAccountAnyIP to MaxFailuresAccount if it is lower.
func (c Config) withDefaults() Config {
	d := DefaultConfig()
	if c.MaxFailuresAccount <= 0 {
		c.MaxFailuresAccount = d.MaxFailuresAccount
	}
	if c.MaxFailuresAccountAnyIP <= 0 {
		c.MaxFailuresAccountAnyIP = d.MaxFailuresAccountAnyIP
	}
	c.MaxFailuresAccountAnyIP = max(c.MaxFailuresAccountAnyIP, c.MaxFailuresAccount)
	if c.MaxFailuresIP <= 0 {
		c.MaxFailuresIP = d.MaxFailuresIP
	}
	if c.MaxInFlightIP <= 0 {
		c.MaxInFlightIP = d.MaxInFlightIP
	}
	if c.Base <= 0 {
		c.Base = d.Base
	}
	if c.Max <= 0 {
		c.Max = d.Max
	}
	return c
}

// Reason says why an attempt was refused.
type Reason int

const (
	// ReasonFailures: a delay earned by failures runs, or so many attempts
	// of the account are in flight that, were they all wrong, a threshold
	// would be reached (or the key is past its threshold and one is already
	// in flight). The zero value.
	ReasonFailures Reason = iota
	// ReasonInFlight: MaxInFlightIP attempts from the client address are
	// being checked right now; nothing failed. Retry after InFlightRetry.
	ReasonInFlight
)

func (r Reason) String() string {
	if r == ReasonInFlight {
		return "in_flight"
	}
	return "failures"
}

// LimitedError refuses an attempt, before its password is checked.
type LimitedError struct {
	RetryAfter time.Duration
	// Reason is why; its zero value is ReasonFailures.
	Reason Reason
}

func (e *LimitedError) Error() string {
	if e.Reason == ReasonInFlight {
		return fmt.Sprintf("too many logins in progress from this address; retry in %s", e.RetryAfter)
	}
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
	// noPerAddressAt is when the schema last refused an (account, address)
	// row, in Unix nanoseconds of clock; 0 if it never did.
	noPerAddressAt atomic.Int64
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
// with a *LimitedError, before check runs, while a delay lasts for key, for
// key at ip or for ip, or while as many checks are in flight as the
// thresholds still allow; otherwise claimed before check and settled after
// it, as a failure when wrong reports check's error to be a wrong password,
// else as a success. Settling does not follow ctx's cancellation: a client
// that hangs up must not leave its guess unrecorded. Callers give each kind
// of check its own key prefix ("login:", "me-password:"), so no
// client-chosen name can fill another check's count.
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

// perAddress reports whether to count (account, address) rows at now: yes,
// unless the schema refused one less than SchemaRecheck ago.
func (t *Throttle) perAddress(now time.Time) bool {
	at := t.noPerAddressAt.Load()
	return at == 0 || now.Sub(time.Unix(0, at)) >= SchemaRecheck
}

// retryWithoutPerAddress reports whether err is the schema refusing an
// (account, address) row, remembering it for SchemaRecheck if so.
func (t *Throttle) retryWithoutPerAddress(err error, now time.Time) bool {
	if !errors.Is(err, postgres.ErrNoAccountIPScope) {
		return false
	}
	if t.noPerAddressAt.Swap(now.UnixNano()) == 0 {
		t.log.Warn("throttle: the schema lacks migration 000006; counting failures per account and per address only until it is applied")
	}
	return true
}

// Claim claims one attempt for account and ip, before the password is
// checked. It returns a *LimitedError, and claims nothing, while a delay
// runs for account, for account at ip or for ip, or while so many attempts
// are in flight that, were they all wrong, the threshold of account or of
// account at ip would be reached (at most threshold - failures checks of
// either run at once before any of them is recorded, and one at a time once
// it is over the threshold), or while MaxInFlightIP attempts from ip are in
// flight (one, once ip is over its threshold). An attempt Claim allows must
// be settled with SettleFailure or SettleSuccess. It looks only at counts,
// never at the user, so known and unknown usernames are treated alike.
func (t *Throttle) Claim(ctx context.Context, account, ip string) error {
	if t == nil {
		return nil
	}
	now := t.clock.Now()
	perAddress := t.perAddress(now)
	limited, err := t.claim(ctx, account, ip, now, perAddress)
	if perAddress && t.retryWithoutPerAddress(err, now) {
		limited, err = t.claim(ctx, account, ip, now, false)
	}
	if err != nil {
		return err
	}
	if limited != nil {
		t.log.Info("login throttled", "ip", ip, "wait", limited.RetryAfter.String(), "reason", limited.Reason.String())
		t.onLimited()
		return limited
	}
	return nil
}

// claim is Claim with or without the (account, address) row: a refusal, or
// nil and an error, or nil and nil when the attempt is claimed.
func (t *Throttle) claim(ctx context.Context, account, ip string, now time.Time, perAddress bool) (*LimitedError, error) {
	// A plain read without locks first, so that an attempt refused anyway
	// costs one query and waits for nobody.
	rows, err := t.db.LoginFailures(ctx, account, ip)
	if err != nil {
		return nil, err
	}
	if limited := t.limit(rows, now, perAddress); limited != nil {
		return limited, nil
	}
	var limited *LimitedError
	err = t.db.InTx(ctx, func(tx *postgres.Tx) error {
		// Locked (account first, so two claims cannot deadlock) and read
		// again: claims of a key are serialised, so this read sees every
		// claim made before this one, and the count cannot be outrun.
		rows, err := tx.LockLoginKeys(account, ip)
		if err != nil {
			return err
		}
		if limited = t.limit(rows, now, perAddress); limited != nil {
			return nil // nothing written; the locks go with the transaction
		}
		return tx.ClaimLogin(account, ip, now, now.Add(-PendingTTL), perAddress)
	})
	if err != nil {
		return nil, err
	}
	return limited, nil
}

// limit is the refusal an attempt gets at now given rows, nil if none: the
// longest delay still running, from recorded failures only, or
// InFlightRetry when a key has as many attempts in flight as it still
// allows. Between equal waits, ReasonFailures wins. Without perAddress, the
// account row has the threshold of one account from one address, as before
// migration 000006.
func (t *Throttle) limit(rows []postgres.LoginFailures, now time.Time, perAddress bool) *LimitedError {
	var out *LimitedError
	refuse := func(wait time.Duration, reason Reason) {
		if wait <= 0 {
			return
		}
		if out == nil || wait > out.RetryAfter || (wait == out.RetryAfter && reason == ReasonFailures) {
			out = &LimitedError{RetryAfter: wait, Reason: reason}
		}
	}
	for _, r := range rows {
		var threshold int
		switch r.Scope {
		case postgres.ScopeAccountIP:
			threshold = t.cfg.MaxFailuresAccount
		case postgres.ScopeAccount:
			threshold = t.cfg.MaxFailuresAccountAnyIP
			if !perAddress {
				threshold = t.cfg.MaxFailuresAccount
			}
		case postgres.ScopeIP:
			threshold = t.cfg.MaxFailuresIP
		default:
			continue
		}
		failures := r.Failures
		if r.LastFailedAt.Before(now.Add(-Forget)) {
			failures = 0
		}
		if d := Delay(failures, threshold, t.cfg.Base, t.cfg.Max); d > 0 {
			refuse(r.LastFailedAt.Add(d).Sub(now), ReasonFailures)
		}
		pending := r.Pending
		if r.PendingAt == nil || r.PendingAt.Before(now.Add(-PendingTTL)) {
			pending = 0 // left by an attempt that never settled
		}
		switch {
		case pending == 0:
		case failures+pending >= threshold && (r.Scope != postgres.ScopeIP || failures >= threshold):
			// An account's checks in flight could all be wrong; an address
			// past its threshold goes one at a time.
			refuse(InFlightRetry, ReasonFailures)
		case r.Scope == postgres.ScopeIP && pending >= t.cfg.MaxInFlightIP:
			refuse(InFlightRetry, ReasonInFlight)
		}
	}
	return out
}

// SettleFailure settles an attempt Claim allowed whose password was wrong:
// one failure more on the account, on the account at ip and on ip, and one
// attempt fewer in flight. If it returns an error the failure is not
// recorded; the attempt then still counts as in flight until PendingTTL, so
// it keeps its place under the threshold.
func (t *Throttle) SettleFailure(ctx context.Context, account, ip string) error {
	if t == nil {
		return nil
	}
	now := t.clock.Now()
	perAddress := t.perAddress(now)
	err := t.db.SettleLoginFailure(ctx, account, ip, now, now.Add(-Forget), perAddress)
	if perAddress && t.retryWithoutPerAddress(err, now) {
		err = t.db.SettleLoginFailure(ctx, account, ip, now, now.Add(-Forget), false)
	}
	return err
}

// SettleSuccess settles an attempt Claim allowed whose password was right,
// or that ended for another reason than a wrong password: the failures of
// the account and of the account at ip are forgotten (those of the account
// at other addresses stay); the ip only gets one attempt fewer in flight,
// its failures and the time of its last failure stay, so one good password
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
