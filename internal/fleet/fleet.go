// Package fleet watches the verifiers: which service identity last polled
// the revocation feed, when, and with what cursor, and how long each
// revocation took to reach every verifier.
//
// A poll costs no write: the feed handler tells Polled, which records it in
// memory. Every FlushInterval, Sync writes the polls this replica saw since
// the last flush (one row per identity, feed_clients) and reads every
// replica's rows back, so each replica's view, metrics and GET /verifiers
// cover the whole fleet, at most a flush interval late for polls another
// replica served.
//
// # Propagation
//
// A revocation has reached a verifier once the verifier has received a
// cursor past it: every answer is complete up to the cursor it carries
// (internal/feed), so from then on the verifier denies the revoked tokens
// whatever it polls next. A revocation has propagated once every verifier
// active in the last Active has; the time from its commit to then is
// observed in authd_revocation_propagation_seconds. Its floor is
// feed.Holdback: the cursor trails the clock by that much.
//
// Each replica measures the revocations it committed itself
// (session.Service.Announce calls Revoked), so every revocation is
// measured once. Revocations are kept by their second, which is all a
// cursor (Unix seconds) can tell apart, so a burst of any size is one
// entry. A verifier that passes a revocation on this replica is timed at
// that poll; one that passes it on another replica is timed at its poll as
// that replica flushed it, which is exact too, except that a later poll
// flushed in the same interval hides an earlier one (so up to one poll
// interval late).
package fleet

import (
	"context"
	"log/slog"
	"slices"
	"sort"
	"sync"
	"time"

	"github.com/seedc5a8123e/authd/internal/clock"
	"github.com/seedc5a8123e/authd/internal/postgres"
)

// Verifier states.
const (
	StateCurrent = "current"
	// StateLagging: polling, but the cursor it last received is more than
	// LaggingAfter behind the clock.
	StateLagging = "lagging"
	// StateSilent: no poll for SilentAfter.
	StateSilent = "silent"
)

// Defaults of Config.
const (
	DefaultFlushInterval = 5 * time.Second
	// DefaultSilentAfter is three of the verifier's default poll intervals
	// (30 s), which is also its default MaxStaleness: a verifier silent for
	// longer fails closed.
	DefaultSilentAfter  = 90 * time.Second
	DefaultLaggingAfter = 60 * time.Second
	// DefaultActive is the "active in the last 5 minutes".
	DefaultActive = 5 * time.Minute
	// DefaultRecent is how many revocations Recent keeps.
	DefaultRecent = 20
	// maxPending bounds the seconds waiting to propagate; beyond it the
	// oldest is given up (counted as not measured).
	maxPending = 3600
)

// Config tunes a Tracker; zero fields take the defaults.
type Config struct {
	FlushInterval time.Duration
	SilentAfter   time.Duration
	LaggingAfter  time.Duration
	Active        time.Duration
	Recent        int
	Log           *slog.Logger
}

// Observer is told the fleet's state, for metrics (*metrics.Metrics).
type Observer interface {
	// FeedClient: the identity client last polled at lastPoll and is lag
	// behind the clock (now minus the cursor it last received).
	FeedClient(client string, lastPoll time.Time, lag time.Duration)
	// Propagated: n revoking transactions took d to reach every active
	// verifier.
	Propagated(d time.Duration, n int)
}

type nopObserver struct{}

func (nopObserver) FeedClient(string, time.Time, time.Duration) {}
func (nopObserver) Propagated(time.Duration, int)               {}

// Verifier is one service identity's feed polling, as GET /verifiers shows it.
type Verifier struct {
	UserID    string
	ClientID  string // the identity's name
	LastPoll  time.Time
	Cursor    int64 // Unix seconds
	Lag       time.Duration
	UserAgent string
	State     string
}

// Propagation is one second's revocations and how far they have got.
type Propagation struct {
	RevokedAt time.Time // the first of the second's commits
	Count     int       // revoking transactions committed in the second
	// Propagated is when the last active verifier got past it; zero while
	// Waiting names any.
	Propagated time.Time
	// Waiting are the active verifiers (names) not past it yet.
	Waiting []string
}

// Seconds is the propagation time, or -1 while it is waiting.
func (p Propagation) Seconds() float64 {
	if p.Propagated.IsZero() {
		return -1
	}
	return p.Propagated.Sub(p.RevokedAt).Seconds()
}

type poll struct {
	at     time.Time
	cursor int64
	ua     string
}

type pending struct {
	sec    int64 // the revocations' second: past it when cursor > sec
	at     time.Time
	count  int
	passed map[string]time.Time // user id -> the poll that got past it
	done   time.Time
}

// Tracker is one replica's view of the fleet.
type Tracker struct {
	db    *postgres.DB
	clock clock.Clock
	cfg   Config
	obs   Observer

	mu      sync.Mutex
	dirty   map[string]poll // this replica's polls since the last flush
	view    map[string]poll // every replica's, as of the last Sync, and this one's since
	names   map[string]string
	pending []*pending // by sec
	recent  []*pending // newest last, at most cfg.Recent

	stop, done chan struct{}
	startOnce  sync.Once
	started    bool
}

// New returns a Tracker; obs may be nil.
func New(db *postgres.DB, c clock.Clock, obs Observer, cfg Config) *Tracker {
	if cfg.FlushInterval <= 0 {
		cfg.FlushInterval = DefaultFlushInterval
	}
	if cfg.SilentAfter <= 0 {
		cfg.SilentAfter = DefaultSilentAfter
	}
	if cfg.LaggingAfter <= 0 {
		cfg.LaggingAfter = DefaultLaggingAfter
	}
	if cfg.Active <= 0 {
		cfg.Active = DefaultActive
	}
	if cfg.Recent <= 0 {
		cfg.Recent = DefaultRecent
	}
	if cfg.Log == nil {
		cfg.Log = slog.New(slog.DiscardHandler)
	}
	if obs == nil {
		obs = nopObserver{}
	}
	return &Tracker{
		db: db, clock: c, cfg: cfg, obs: obs,
		dirty: map[string]poll{}, view: map[string]poll{}, names: map[string]string{},
		stop: make(chan struct{}), done: make(chan struct{}),
	}
}

// Polled records that the identity userID polled the feed now and
// received cursor; ua is its User-Agent. Memory only; Sync flushes it.
func (t *Tracker) Polled(userID, ua string, cursor int64) {
	now := t.clock.Now()
	p := poll{at: now, cursor: cursor, ua: ua}
	t.mu.Lock()
	defer t.mu.Unlock()
	t.dirty[userID] = p
	if v, ok := t.view[userID]; !ok || !v.at.After(now) {
		p.cursor = max(p.cursor, v.cursor)
		t.view[userID] = p
	}
	for _, r := range t.pending {
		if r.sec >= cursor {
			break // pending is by sec: none further is past either
		}
		if _, ok := r.passed[userID]; !ok {
			r.passed[userID] = now
		}
	}
}

// Revoked records that this replica committed a revoking transaction now
// (of one session, many, or a cutoff: they reach verifiers together).
func (t *Tracker) Revoked() {
	n := 1
	now := t.clock.Now()
	sec := now.Unix()
	t.mu.Lock()
	defer t.mu.Unlock()
	if k := len(t.pending); k > 0 && t.pending[k-1].sec == sec {
		t.pending[k-1].count += n
		return
	}
	r := &pending{sec: sec, at: now, count: n, passed: map[string]time.Time{}}
	t.pending = append(t.pending, r)
	if len(t.pending) > maxPending {
		t.cfg.Log.Warn("fleet: too many revocations waiting to propagate; the oldest is no longer measured")
		t.pending = t.pending[1:]
	}
	t.remember(r)
}

func (t *Tracker) remember(r *pending) {
	t.recent = append(t.recent, r)
	if len(t.recent) > t.cfg.Recent {
		t.recent = slices.Delete(t.recent, 0, len(t.recent)-t.cfg.Recent)
	}
}

// Sync flushes this replica's polls, reads every replica's, updates the
// metrics and settles the revocations every active verifier has got past.
func (t *Tracker) Sync(ctx context.Context) error {
	t.mu.Lock()
	flush := make([]postgres.FeedPoll, 0, len(t.dirty))
	for id, p := range t.dirty {
		flush = append(flush, postgres.FeedPoll{UserID: id, At: p.at, Cursor: p.cursor, UserAgent: p.ua})
	}
	t.dirty = map[string]poll{}
	t.mu.Unlock()

	err := t.db.RecordFeedPolls(ctx, flush)
	var rows []postgres.FeedClient
	if err == nil {
		rows, err = t.db.FeedClients(ctx)
	}
	t.mu.Lock()
	defer t.mu.Unlock()
	if err != nil {
		for _, p := range flush { // flushed again next time
			if _, ok := t.dirty[p.UserID]; !ok {
				t.dirty[p.UserID] = poll{at: p.At, cursor: p.Cursor, ua: p.UserAgent}
			}
		}
	}
	for _, r := range rows {
		t.names[r.UserID] = r.Username
		v, ok := t.view[r.UserID]
		if !ok || r.At.After(v.at) {
			t.view[r.UserID] = poll{at: r.At, cursor: max(r.Cursor, v.cursor), ua: r.UserAgent}
		}
		// Another replica's poll got it past: timed at that poll.
		for _, p := range t.pending {
			if p.sec >= r.Cursor {
				break
			}
			if _, ok := p.passed[r.UserID]; !ok {
				p.passed[r.UserID] = maxTime(r.At, p.at)
			}
		}
	}
	now := t.clock.Now()
	for id, v := range t.view {
		t.obs.FeedClient(t.name(id), v.at, now.Sub(time.Unix(v.cursor, 0)))
	}
	t.settle(now)
	return err
}

// settle finishes every pending second that every active verifier is past.
func (t *Tracker) settle(now time.Time) {
	active := t.active(now)
	keep := t.pending[:0]
	for _, p := range t.pending {
		last, all := p.at, true
		for _, id := range active {
			at, ok := p.passed[id]
			if !ok {
				all = false
				break
			}
			last = maxTime(last, at)
		}
		if !all {
			keep = append(keep, p)
			continue
		}
		p.done = last
		if len(active) > 0 {
			t.obs.Propagated(last.Sub(p.at), p.count)
		}
	}
	clear(t.pending[len(keep):])
	t.pending = keep
}

func (t *Tracker) active(now time.Time) []string {
	var ids []string
	for id, v := range t.view {
		if now.Sub(v.at) <= t.cfg.Active {
			ids = append(ids, id)
		}
	}
	return ids
}

func (t *Tracker) name(id string) string {
	if n := t.names[id]; n != "" {
		return n
	}
	return id
}

// Verifiers lists every identity that has polled, by name.
func (t *Tracker) Verifiers() []Verifier {
	now := t.clock.Now()
	t.mu.Lock()
	defer t.mu.Unlock()
	out := make([]Verifier, 0, len(t.view))
	for id, v := range t.view {
		lag := now.Sub(time.Unix(v.cursor, 0))
		state := StateCurrent
		switch {
		case now.Sub(v.at) > t.cfg.SilentAfter:
			state = StateSilent
		case lag > t.cfg.LaggingAfter:
			state = StateLagging
		}
		out = append(out, Verifier{UserID: id, ClientID: t.name(id), LastPoll: v.at, Cursor: v.cursor, Lag: lag,
			UserAgent: v.ua, State: state})
	}
	sort.Slice(out, func(i, j int) bool {
		if out[i].ClientID != out[j].ClientID {
			return out[i].ClientID < out[j].ClientID
		}
		return out[i].UserID < out[j].UserID
	})
	return out
}

// Recent lists this replica's newest revocations, newest first, with their
// propagation.
func (t *Tracker) Recent() []Propagation {
	now := t.clock.Now()
	t.mu.Lock()
	defer t.mu.Unlock()
	active := t.active(now)
	out := make([]Propagation, 0, len(t.recent))
	for i := len(t.recent) - 1; i >= 0; i-- {
		r := t.recent[i]
		p := Propagation{RevokedAt: r.at, Count: r.count, Propagated: r.done}
		if r.done.IsZero() {
			for _, id := range active {
				if _, ok := r.passed[id]; !ok {
					p.Waiting = append(p.Waiting, t.name(id))
				}
			}
			slices.Sort(p.Waiting)
		}
		out = append(out, p)
	}
	return out
}

// Start runs Sync every FlushInterval until Close.
func (t *Tracker) Start(ctx context.Context) {
	t.startOnce.Do(func() {
		t.started = true
		go func() {
			defer close(t.done)
			tick := time.NewTicker(t.cfg.FlushInterval)
			defer tick.Stop()
			for {
				select {
				case <-t.stop:
					return
				case <-tick.C:
					if err := t.Sync(ctx); err != nil {
						t.cfg.Log.Warn("fleet: sync failed; retrying", "err", err)
					}
				}
			}
		}()
	})
}

// Close stops Start's loop, flushing once more if it ran.
func (t *Tracker) Close() {
	t.startOnce.Do(func() { close(t.done) })
	select {
	case <-t.stop:
		return
	default:
		close(t.stop)
	}
	<-t.done
	if !t.started {
		return
	}
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
	defer cancel()
	_ = t.Sync(ctx)
}

func maxTime(a, b time.Time) time.Time {
	if a.After(b) {
		return a
	}
	return b
}
