package verifier

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"math/rand/v2"
	"sync"
	"sync/atomic"
	"time"

	"github.com/golang-jwt/jwt/v5"
	"github.com/redis/go-redis/v9"
)

// Verifier checks access tokens and keeps the denylist current. It is safe
// for concurrent use. Create it with New and stop it with Close.
//
// The zero Verifier and a nil *Verifier are not usable: Verify, Stats and
// Close panic on them, and so does Middleware's handler on every request
// that carries a token. A Verifier that has not loaded authd's keys and
// revocations must never get as far as answering.
type Verifier struct {
	cfg    Config
	log    *slog.Logger
	parser *jwt.Parser
	keys   *keyCache
	deny   *denylist
	feed   *feedClient
	redis  *redis.Client
	gaps   *gaps
	// pollNow wakes the poll loop early: a push gap went unfilled.
	pollNow chan struct{}

	lastSync     atomic.Int64 // Clock time of the last good poll, Unix nanoseconds
	polls        atomic.Uint64
	pollErrors   atomic.Uint64
	pushMessages atomic.Uint64
	gapPolls     atomic.Uint64

	cancel    context.CancelFunc // ends the background goroutines; called by Close
	wg        sync.WaitGroup
	closeOnce sync.Once
	closed    atomic.Bool
}

// New validates cfg, reads authd's discovery document, loads the JWKS and
// the full revocation snapshot, and starts polling (and, with RedisURL,
// listening). It returns once the snapshot is loaded, so the Verifier never
// accepts a token revoked before it started.
//
// ctx bounds that start-up only: New fails with the last error once
// cfg.InitialTimeout has passed or ctx is done, whichever comes first. The
// polling and listening that follow keep ctx's values but not its
// cancellation or deadline; they run until Close.
func New(ctx context.Context, cfg Config) (*Verifier, error) {
	if err := cfg.setDefaults(); err != nil {
		return nil, err
	}
	v := &Verifier{
		cfg: cfg,
		log: cfg.Logger,
		keys: &keyCache{
			client: cfg.HTTPClient, minInterval: cfg.KeyRefetchInterval, log: cfg.Logger, clock: cfg.Clock,
		},
		deny:    newDenylist(),
		feed:    newFeedClient(cfg),
		gaps:    newGaps(),
		pollNow: make(chan struct{}, 1),
	}

	var ps *redis.PubSub
	if cfg.RedisURL != "" {
		opt, err := redis.ParseURL(cfg.RedisURL)
		if err != nil {
			return nil, fmt.Errorf("verifier: Config.RedisURL: %w", err)
		}
		v.redis = redis.NewClient(opt)
		// Subscribe before the snapshot, so nothing falls between the two.
		ps = v.redis.Subscribe(ctx, PushChannel)
	}

	if err := v.initialLoad(ctx); err != nil {
		if ps != nil {
			_ = ps.Close()
			_ = v.redis.Close()
		}
		return nil, err
	}

	// A deadline the caller meant for start-up would otherwise end the poll
	// loop later and silently freeze the denylist.
	runCtx, cancel := context.WithCancel(context.WithoutCancel(ctx))
	v.cancel = cancel
	if ps != nil {
		v.confirmSubscription(ctx, ps)
		v.wg.Add(2)
		go v.listen(runCtx, ps)
		go v.watchGaps(runCtx)
	}
	v.wg.Add(1)
	go v.pollLoop(runCtx)
	return v, nil
}

// initialLoad reads the discovery document, then fetches the JWKS and the
// full snapshot, retrying with backoff until all three succeeded, or
// InitialTimeout passed, or parent is done. An unusable discovery document
// (another issuer, a malformed endpoint) fails at once.
func (v *Verifier) initialLoad(parent context.Context) error {
	ctx, cancel := context.WithTimeout(parent, v.cfg.InitialTimeout)
	defer cancel()
	discovered, keysOK, feedOK := false, false, false
	var lastErr error
	// fail keeps the last real failure: the request cut short by the end of
	// ctx would only say "context deadline exceeded".
	fail := func(err error) {
		if lastErr == nil || ctx.Err() == nil {
			lastErr = err
		}
	}
	for attempt := 0; ; attempt++ {
		if !discovered {
			ep, issuer, found, err := discover(ctx, v.cfg.HTTPClient, v.cfg.IssuerURL, v.cfg.Issuer)
			switch {
			case errors.Is(err, errBadDocument):
				return fmt.Errorf("verifier: %w", err)
			case err != nil:
				fail(err)
			default:
				discovered = true
				if !found {
					issuer = v.cfg.IssuerURL
					v.log.Info("verifier: no discovery document; using authd's fixed paths", "issuer_url", v.cfg.IssuerURL)
				}
				v.use(ep, issuer)
			}
		}
		if discovered && !keysOK {
			if err := v.keys.refresh(ctx, true); err != nil {
				fail(err)
			} else {
				keysOK = true
			}
		}
		if keysOK && !feedOK {
			if err := v.poll(ctx); err != nil {
				fail(err)
			} else {
				feedOK = true
			}
		}
		if keysOK && feedOK {
			return nil
		}
		t := time.NewTimer(v.backoff(attempt + 1))
		select {
		case <-ctx.Done():
			t.Stop()
			if err := parent.Err(); err != nil {
				return fmt.Errorf("verifier: initial load from %s ended by New's context (%w): %w",
					v.cfg.IssuerURL, err, lastErr)
			}
			return fmt.Errorf("verifier: initial load from %s did not complete within %s: %w",
				v.cfg.IssuerURL, v.cfg.InitialTimeout, lastErr)
		case <-t.C:
		}
	}
}

// use points the Verifier at ep and expects issuer when Config.Issuer is
// empty. It runs before any goroutine of the Verifier reads these fields.
func (v *Verifier) use(ep endpoints, issuer string) {
	if v.cfg.Issuer == "" {
		v.cfg.Issuer = issuer
	}
	v.keys.url = ep.jwks
	v.feed.url = ep.feed
	v.feed.cc.TokenURL = ep.token
	v.parser = jwt.NewParser(
		// Pinned algorithms (RFC 8725 3.1): no "none", no HMAC.
		jwt.WithValidMethods([]string{algEdDSA, algES256}),
		jwt.WithIssuer(v.cfg.Issuer),
		jwt.WithAudience(v.cfg.Audience),
		jwt.WithExpirationRequired(),
		jwt.WithIssuedAt(),
		jwt.WithLeeway(v.cfg.Leeway),
		jwt.WithTimeFunc(v.cfg.Clock.Now),
	)
}

// backoff is the wait after the n-th consecutive failure: 100ms doubling,
// capped at PollInterval, jittered.
func (v *Verifier) backoff(n int) time.Duration {
	d := 100 * time.Millisecond
	for i := 1; i < n && d < v.cfg.PollInterval; i++ {
		d *= 2
	}
	return jitter(min(d, v.cfg.PollInterval))
}

// jitter spreads d by ±10%.
func jitter(d time.Duration) time.Duration {
	return time.Duration(float64(d) * (0.9 + 0.2*rand.Float64()))
}

func (v *Verifier) pollLoop(ctx context.Context) {
	defer v.wg.Done()
	failures := 0
	var lastSweep int64
	for {
		wait := jitter(v.cfg.PollInterval)
		if failures > 0 {
			wait = v.backoff(failures)
		}
		t := time.NewTimer(wait)
		select {
		case <-ctx.Done():
			t.Stop()
			return
		case <-t.C:
		case <-v.pollNow:
			t.Stop()
		}
		if err := v.poll(ctx); err != nil {
			if ctx.Err() != nil {
				return
			}
			failures++
			v.log.Warn("verifier: revocation feed poll failed; keeping the current denylist",
				"err", err, "consecutive_failures", failures, "last_sync", v.lastSyncTime())
		} else {
			failures = 0
		}
		// Before the key set outlives its max-age: a key authd publishes
		// ahead of signing with it is then known before any token names it,
		// however the unknown-kid refetch is rate limited.
		if v.keys.due(v.cfg.PollInterval + v.cfg.PollInterval/10) { // the longest jittered wait
			v.keys.refetchAhead(ctx, &v.wg) // failures are logged; the current keys stay
		}
		// At most one sweep per Clock second: a pass over a large list is
		// not free, and entries only expire with whole seconds.
		if now := v.cfg.Clock.Now().Unix(); now > lastSweep {
			lastSweep = now
			v.deny.sweep(v.sweepCutoff())
		}
	}
}

// sweepCutoff is the exp before which an entry can be dropped: a token with
// exp < cutoff fails the exp check even with the leeway.
func (v *Verifier) sweepCutoff() int64 {
	return v.cfg.Clock.Now().Add(-v.cfg.Leeway).Unix() - 1
}

// poll runs one feed request and merges its entries.
func (v *Verifier) poll(ctx context.Context) error {
	v.polls.Add(1)
	start := time.Now() // gaps are timed on the wall clock, as polls are
	cutoff := v.sweepCutoff()
	err := v.feed.poll(ctx, feedSink{
		session: func(r Revocation) {
			if r.Exp < cutoff {
				return // every token of the session has expired already
			}
			if !v.deny.add(r) {
				v.log.Warn("verifier: feed entry with a malformed sid ignored", "sid", r.SID)
			}
		},
		user: func(c UserCutoff) {
			if c.Exp >= cutoff && !v.deny.addUser(c) {
				v.log.Warn("verifier: feed user cutoff with a malformed sub ignored", "sub", c.Sub)
			}
		},
		issuer: func(c IssuerCutoff) {
			if c.Exp >= cutoff {
				v.deny.addIssuer(c)
			}
		},
	}, v.log.Info)
	if err != nil {
		v.pollErrors.Add(1)
		return err
	}
	v.gaps.polled(start)
	v.lastSync.Store(v.cfg.Clock.Now().UnixNano())
	return nil
}

// gapCheckInterval is how often watchGaps looks for an overdue gap.
const gapCheckInterval = 100 * time.Millisecond

// watchGaps wakes the poll loop once a skipped push sequence number has
// stayed unfilled for Config.GapTimeout.
func (v *Verifier) watchGaps(ctx context.Context) {
	defer v.wg.Done()
	t := time.NewTicker(gapCheckInterval)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
		if v.gaps.overdue(time.Now(), v.cfg.GapTimeout) {
			v.gapPolls.Add(1)
			select {
			case v.pollNow <- struct{}{}:
			default: // a wake-up is pending already
			}
		}
	}
}

// Close stops polling and listening and waits for every goroutine the
// Verifier started to end. Afterwards Verify returns ErrClosed, so a closed
// Verifier is never trusted by mistake. Close is idempotent; it returns the
// error of closing the Redis client, if any.
func (v *Verifier) Close() error {
	v.mustBeFromNew()
	var err error
	v.closeOnce.Do(func() {
		v.closed.Store(true)
		v.cancel()
		v.wg.Wait()
		if v.redis != nil {
			err = v.redis.Close()
		}
	})
	return err
}

// mustBeFromNew panics for a Verifier New did not return. Without the
// check a zero Verifier would fail in ways that depend on the token, and
// might one day answer instead of failing; cancel is the last field New
// sets.
func (v *Verifier) mustBeFromNew() {
	if v == nil || v.cancel == nil {
		panic("verifier: Verifier used without New (zero or nil *Verifier)")
	}
}

// lastSyncTime is the Config.Clock time of the last successful poll.
func (v *Verifier) lastSyncTime() time.Time {
	return time.Unix(0, v.lastSync.Load())
}

// Stats is a snapshot of a Verifier's state, for health checks and metrics.
type Stats struct {
	// LastSync is when the last successful feed poll ended, read from
	// Config.Clock (so it is a test clock's time when one is configured,
	// and compares with that clock, not with time.Now).
	LastSync time.Time
	// Stale reports that LastSync is more than Config.MaxStaleness before
	// Config.Clock's now: Verify then fails with ErrStale, unless
	// Config.FailOpen is set.
	Stale bool
	// DenylistSize is the number of revoked sessions held; an entry is
	// dropped once every token of its session has expired.
	DenylistSize int
	// UserCutoffs is the number of users with a cutoff held, and
	// IssuerCutoff whether an issuer-wide cutoff is.
	UserCutoffs  int
	IssuerCutoff bool

	// Counts since New.
	Polls        uint64 // feed requests made, failed ones included
	PollErrors   uint64 // feed requests that failed
	PushMessages uint64 // Redis messages received, undecodable ones included
	// GapWakeups counts the times an unfilled push sequence gap woke the
	// poll loop early.
	GapWakeups uint64

	// KeysFetchedAt is when the JWKS was last fetched, read from
	// Config.Clock; it is refetched before it is older than the max-age
	// authd announces, and on an unknown kid.
	KeysFetchedAt time.Time
	KeyFetches    uint64 // JWKS fetches attempted, failed ones included
}

// Stats returns a snapshot of the Verifier's state.
func (v *Verifier) Stats() Stats {
	v.mustBeFromNew()
	users, issuer := v.deny.cutoffs()
	fetchedAt, fetches := v.keys.stats()
	return Stats{
		KeysFetchedAt: fetchedAt, KeyFetches: fetches,
		LastSync: v.lastSyncTime(), Stale: v.stale(), DenylistSize: v.deny.len(),
		UserCutoffs: users, IssuerCutoff: issuer,
		Polls: v.polls.Load(), PollErrors: v.pollErrors.Load(), PushMessages: v.pushMessages.Load(),
		GapWakeups: v.gapPolls.Load(),
	}
}

func (v *Verifier) stale() bool {
	return v.cfg.Clock.Now().UnixNano()-v.lastSync.Load() > int64(v.cfg.MaxStaleness)
}
