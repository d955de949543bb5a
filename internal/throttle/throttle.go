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
// An attempt is claimed before its password is checked, and its outcome
// recorded after, in one transaction held open from the claim to the
// outcome (Guard). The claim is a transaction-level advisory lock on one of
// a key's slots, taken in the transaction's first statement: every other
// connection, of any replica, sees it at once without a commit, and it
// ends with the transaction, or with the connection if the process dies,
// so nothing is left to expire. The slots in flight are counted apart from
// failures: the delay comes only from recorded failures, so correct logins
// running at once never make each other wait. The slots bound how many
// checks run at a time, so parallel guesses cannot outrun the count: of one
// account from one address at most MaxFailuresAccount - failures, of one
// account from anywhere at most MaxFailuresAccountAnyIP - failures, one at a
// time past a threshold. A wrong password's failure is committed before its
// slot is released, and an attempt reads the counts after it holds its
// slot, so the count it reads includes every failure of the slots it
// holds or found free. The attempts in flight from one address are not
// refused as failures: they are bounded apart, by MaxInFlightIP (200),
// whatever failed, and one at a time once the address is past
// MaxFailuresIP. So a burst from one address may check up to MaxInFlightIP
// - 1 guesses at different accounts beyond the address's threshold, once:
// after that the address is in its backoff, one attempt at a time, until a
// day without failures forgets them.
//
// A right password's writes (the session) go in the same transaction, and
// its failures, if it had any, are forgotten there: its commit is the
// login's one durable commit. A client that hangs up mid-check does not
// stop the transaction: a wrong guess is recorded all the same.
//
// The release before claimed with a committed pending row instead. While
// both run (a rolling upgrade), this one counts the pending rows it reads
// as attempts in flight, and holds shared the advisory locks under which
// the release before claims, so that release's claims wait for this one's
// checks to be recorded: the bound holds across the mixed fleet.
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

// PendingTTL is how long a pending row's claim (made by the release before,
// which committed its claims) counts as in flight if it is never settled (a
// crashed process): longer than any request, so a live one always settles
// first, and short enough that a crash cannot leave a key blocked for long.
// It runs from the newest claim of the key. This release's claims are
// advisory locks, which end with their connection.
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
	// open bounds the attempts' transactions, each of which holds a
	// connection while its password is hashed, to half the pool: waiting
	// attempts hold none, and the other half serves everything else.
	open chan struct{}
}

// New wires a Throttle; zero fields of cfg take their defaults. onLimited,
// if not nil, hears of every attempt refused with a *LimitedError (metrics).
func New(db *postgres.DB, c clock.Clock, cfg Config, log *slog.Logger, onLimited func()) *Throttle {
	if onLimited == nil {
		onLimited = func() {}
	}
	open := max(1, int(db.Pool().Config().MaxConns)/2)
	return &Throttle{db: db, clock: c, cfg: cfg.withDefaults(), log: log, onLimited: onLimited, open: make(chan struct{}, open)}
}

// Attempt is one password check under the throttle.
type Attempt struct {
	// Key is the account's key; callers give each kind of check its own
	// prefix ("login:", "me-password:"), so no client-chosen name can fill
	// another check's count. IP is the client's address, empty if unknown.
	Key, IP string
	// Admit, if set, waits for the right to hash a password
	// (password.Hasher.Admit) and returns its release. It is taken once the
	// counts allow the attempt and before its transaction opens, so an
	// attempt waiting for it holds no connection.
	Admit func(context.Context) (release func(), err error)
	// Check verifies the password. tx is the attempt's transaction: what a
	// right password leads to (the session) may be written in it, and then
	// commits with the attempt's outcome, in one durable commit, or not at
	// all. tx is nil when the throttle is off (a nil *Throttle). Check may
	// run twice (postgres.InLoginTx); what it wrote in tx the first time is
	// gone by then.
	Check func(tx *postgres.Tx) error
	// Wrong reports whether Check's error means a wrong password.
	Wrong func(error) bool
}

// errRefused rolls back a claim the counts read with it refuse.
var errRefused = errors.New("throttle: refused")

// Guard runs a.Check under the throttle: refused with a *LimitedError,
// before Check runs, while a delay lasts for the account, for the account
// at the address or for the address, or while as many checks are in flight
// as the thresholds still allow; otherwise claimed, then checked, then, in
// the same transaction, recorded as a failure when a.Wrong reports Check's
// error to be a wrong password, or as a success (the account's failures
// forgotten, if it had any) when Check returns nil. Any other error of
// Check rolls the attempt back and is returned. The transaction does not
// follow ctx's cancellation: a client that hangs up must not leave its
// guess unrecorded (Check sees ctx and may give up on writing a success).
func (t *Throttle) Guard(ctx context.Context, a Attempt) error {
	if t == nil {
		return a.Check(nil)
	}
	now := t.clock.Now()
	perAddress := t.perAddress(now)
	// A plain read without locks first, so that an attempt refused anyway
	// costs one query, waits for nobody and takes no hashing slot.
	rows, err := t.db.LoginFailures(ctx, a.Key, a.IP)
	if err != nil {
		return err
	}
	plan, limited := t.plan(rows, now, perAddress, a.IP)
	if limited != nil {
		return t.refused(a.IP, limited)
	}
	if a.Admit != nil {
		release, err := a.Admit(ctx)
		if err != nil {
			return err
		}
		defer release()
	}
	select {
	case t.open <- struct{}{}:
		defer func() { <-t.open }()
	case <-ctx.Done():
		return ctx.Err()
	}
	var checkErr error
	wrong := false
	for try := 1; ; try++ {
		var replan *postgres.SlotPlan
		err = t.db.InLoginTx(context.WithoutCancel(ctx), func(tx *postgres.Tx) error {
			checkErr, wrong, limited, replan = nil, false, nil, nil
			got, rows, err := tx.ClaimLoginSlots(a.Key, a.IP, plan)
			if err != nil {
				return err
			}
			if limited, replan = t.recheck(plan, got, rows, now, perAddress, a.IP); limited != nil || replan != nil {
				return errRefused // the slots go with the rollback
			}
			checkErr = a.Check(tx)
			if checkErr != nil && a.Wrong(checkErr) {
				wrong = true
				at := t.clock.Now()
				err := tx.RecordLoginFailure(a.Key, a.IP, at, at.Add(-Forget), perAddress)
				if perAddress && t.retryWithoutPerAddress(err, at) {
					err = tx.RecordLoginFailure(a.Key, a.IP, at, at.Add(-Forget), false)
				}
				return err
			}
			if checkErr != nil {
				return checkErr
			}
			if hasFailures(rows, now) {
				return tx.ForgetLoginFailures(a.Key, a.IP, now.Add(-PendingTTL))
			}
			return nil
		})
		if replan == nil {
			break
		}
		if try == claimTries {
			limited = &LimitedError{RetryAfter: InFlightRetry, Reason: ReasonFailures}
			break
		}
		plan = *replan
	}
	switch {
	case limited != nil:
		return t.refused(a.IP, limited)
	case wrong && err != nil:
		// An unrecorded wrong guess must not be answered as one: the
		// caller gets a server error.
		return fmt.Errorf("throttle: recording a wrong password: %w", err)
	case wrong:
		return checkErr
	}
	return err
}

// refused logs and counts a refusal, and returns it.
func (t *Throttle) refused(ip string, limited *LimitedError) error {
	t.log.Info("login throttled", "ip", ip, "wait", limited.RetryAfter.String(), "reason", limited.Reason.String())
	t.onLimited()
	return limited
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

// keyState is one key's counts at now: its failures (0 once a day old) and
// the attempts the release before has in flight on it (0 once stale).
type keyState struct {
	failures, pending int
	lastFailedAt      time.Time
}

// states reads rows at now, by scope.
func states(rows []postgres.LoginFailures, now time.Time) map[string]keyState {
	out := make(map[string]keyState, len(rows))
	for _, r := range rows {
		k := keyState{failures: r.Failures, pending: r.Pending, lastFailedAt: r.LastFailedAt}
		if r.LastFailedAt.Before(now.Add(-Forget)) {
			k.failures = 0
		}
		if r.PendingAt == nil || r.PendingAt.Before(now.Add(-PendingTTL)) {
			k.pending = 0 // left by an attempt that never settled
		}
		out[r.Scope] = k
	}
	return out
}

// hasFailures reports whether the account or the account at the address
// has failures a success must forget.
func hasFailures(rows []postgres.LoginFailures, now time.Time) bool {
	st := states(rows, now)
	return st[postgres.ScopeAccount].failures > 0 || st[postgres.ScopeAccountIP].failures > 0
}

// plan is the claim an attempt at now makes given rows, or the refusal it
// gets instead: the longest delay still running, from recorded failures
// only, or InFlightRetry when a key has as many attempts in flight as it
// still allows. Between equal waits, ReasonFailures wins. Without
// perAddress, the account has the threshold of one account from one
// address, as before migration 000006.
//
// The slots of a key with threshold T: an account's (or a pair's) are
// [0, T), of which an attempt may take one of the first T - failures -
// pending (one, past the threshold), and must find the rest unclaimed
// (shared). An address's are [0, MaxInFlightIP): below its threshold any
// of the first MaxInFlightIP - pending, past it the first alone, with all
// the others unclaimed.
func (t *Throttle) plan(rows []postgres.LoginFailures, now time.Time, perAddress bool, ip string) (postgres.SlotPlan, *LimitedError) {
	var out *LimitedError
	refuse := func(wait time.Duration, reason Reason) {
		if wait <= 0 {
			return
		}
		if out == nil || wait > out.RetryAfter || (wait == out.RetryAfter && reason == ReasonFailures) {
			out = &LimitedError{RetryAfter: wait, Reason: reason}
		}
	}
	st := states(rows, now)
	slots := func(scope string, threshold int) postgres.SlotRange {
		k := st[scope]
		if d := Delay(k.failures, threshold, t.cfg.Base, t.cfg.Max); d > 0 {
			refuse(k.lastFailedAt.Add(d).Sub(now), ReasonFailures)
		}
		if scope == postgres.ScopeIP {
			if k.failures < threshold {
				if n := t.cfg.MaxInFlightIP - k.pending; n > 0 {
					return postgres.SlotRange{Take: n, Of: n}
				}
				refuse(InFlightRetry, ReasonInFlight)
				return postgres.SlotRange{}
			}
			if k.pending == 0 {
				return postgres.SlotRange{Take: 1, Of: t.cfg.MaxInFlightIP}
			}
			refuse(InFlightRetry, ReasonFailures)
			return postgres.SlotRange{}
		}
		// An account's checks in flight could all be wrong.
		n := max(threshold-k.failures, 1) - k.pending
		if n <= 0 {
			refuse(InFlightRetry, ReasonFailures)
			return postgres.SlotRange{}
		}
		return postgres.SlotRange{Take: n, Of: threshold}
	}
	var p postgres.SlotPlan
	capped := func(r postgres.SlotRange) postgres.SlotRange {
		return postgres.SlotRange{Take: min(r.Take, maxSlots), Of: min(r.Of, maxSlots)}
	}
	if perAddress {
		p.Account = slots(postgres.ScopeAccount, t.cfg.MaxFailuresAccountAnyIP)
		p.AccountIP = slots(postgres.ScopeAccountIP, t.cfg.MaxFailuresAccount)
	} else {
		p.Account = slots(postgres.ScopeAccount, t.cfg.MaxFailuresAccount)
	}
	if ip != "" {
		p.IP = slots(postgres.ScopeIP, t.cfg.MaxFailuresIP)
	}
	p.Account, p.AccountIP, p.IP = capped(p.Account), capped(p.AccountIP), capped(p.IP)
	return p, out
}

// maxSlots caps a key's slots: a claim lists them, so a threshold set
// very high (a test's 1 << 30) must not make it list a billion. Capping
// only ever refuses: a key then allows at most maxSlots checks at once,
// far more than the pools of a fleet can run.
const maxSlots = 1024

// claimTries is how many times an attempt claims again when failures
// recorded since its plain read shrank its key's slots (a burst of wrong
// guesses, checked while it waited for a hashing slot).
const claimTries = 3

// recheck decides on a claim made with plan: it stands if every key's slot
// was got and the counts read once it was held (rows) allow it still: no
// delay runs, and each key's plan now allows at least the slots claimed and
// asks no unclaimed slot to be free that the claim did not find free. A
// slot taken is refused with InFlightRetry; a claim the counts outdated
// gets the plan to claim with again instead.
func (t *Throttle) recheck(plan postgres.SlotPlan, got postgres.SlotClaim, rows []postgres.LoginFailures, now time.Time, perAddress bool, ip string) (*LimitedError, *postgres.SlotPlan) {
	again, limited := t.plan(rows, now, perAddress, ip)
	if limited != nil {
		return limited, nil
	}
	if !got.All() {
		reason := ReasonFailures
		if got.Account && got.AccountIP && plan.IP.Take == plan.IP.Of {
			reason = ReasonInFlight // the address's bound, below its threshold
		}
		return &LimitedError{RetryAfter: InFlightRetry, Reason: reason}, nil
	}
	within := func(was, is postgres.SlotRange) bool {
		return is.Take >= was.Take && (is.Of <= was.Of || is.Of <= is.Take)
	}
	if within(plan.Account, again.Account) && within(plan.AccountIP, again.AccountIP) && within(plan.IP, again.IP) {
		return nil, nil
	}
	return nil, &again
}

// Prune deletes counts that have been quiet for longer than Forget and have
// no attempt in flight; they no longer count anyway.
func (t *Throttle) Prune(ctx context.Context) (int64, error) {
	now := t.clock.Now()
	return t.db.DeleteLoginFailuresBefore(ctx, now.Add(-Forget), now.Add(-PendingTTL))
}
