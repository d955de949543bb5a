package feed

import (
	"bytes"
	"cmp"
	"compress/gzip"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"log/slog"
	"math"
	"slices"
	"sync"
	"sync/atomic"
	"time"

	"github.com/seedc5a8123e/authd/internal/clock"
	"github.com/seedc5a8123e/authd/internal/postgres"
)

// Defaults for the zero fields of Config.
const (
	// DefaultInterval is how often the follower reads the database: the
	// delay, besides the verifiers' own poll interval, before a revocation
	// made on another replica is served by this one.
	DefaultInterval = time.Second
	// DefaultStaleAfter is how old the follower's last read may be before
	// a poll waits for a fresh one, and fails if it cannot be had.
	DefaultStaleAfter = 10 * time.Second
	// schemaEvery is how often the follower re-reads the schema version, so
	// a replica started before migration 000008 switches to cutoffs.
	schemaEvery = 10 * time.Second
)

// Formats of the feed's answer.
const (
	// FormatV1 is the JSON array of every revoked session, unchanged since
	// the first release.
	FormatV1 = 1
	// FormatV2 is the object with sessions, users and issuer.
	FormatV2 = 2
)

// ErrStale means the follower could not read the database for longer than
// StaleAfter: the poll is refused (503) rather than answered with a cursor
// that would tell a verifier it is current.
var ErrStale = errors.New("feed: the revocation follower is behind the database")

// Config tunes a Service. Every field is optional.
type Config struct {
	Interval   time.Duration
	StaleAfter time.Duration
	Log        *slog.Logger
	// OnRead, if set, is told the outcome of each read of the database.
	OnRead func(err error)
	// Source, when set, may send the follower's reads to a hot standby,
	// whose measured replay lag then holds the cursor back further; nil
	// reads the primary.
	Source *postgres.ReadSource
}

// Service follows the database into memory and answers feed polls from it
// (see the package comment). The follower starts with the first poll, so a
// process that never serves one (the CLI) never reads.
type Service struct {
	db    *postgres.DB
	clock clock.Clock
	cfg   Config

	cur    atomic.Pointer[state]
	readMu sync.Mutex // one read of the database at a time
	kicks  atomic.Uint64
	reads  atomic.Int64

	startOnce sync.Once
	stop      chan struct{}
	done      chan struct{}
}

// NewService wires a Service.
func NewService(db *postgres.DB, c clock.Clock, cfg Config) *Service {
	if cfg.Interval <= 0 {
		cfg.Interval = DefaultInterval
	}
	if cfg.StaleAfter <= 0 {
		cfg.StaleAfter = DefaultStaleAfter
	}
	if cfg.Log == nil {
		cfg.Log = slog.New(slog.DiscardHandler)
	}
	return &Service{db: db, clock: c, cfg: cfg, stop: make(chan struct{}), done: make(chan struct{})}
}

// state is one read's view: immutable once stored, except its lazily built
// full-snapshot caches.
type state struct {
	readAt   time.Time // P: the clock read before the read's queries
	cursor   int64     // Cursor(readAt): memory is complete before it
	kicks    uint64    // Service.kicks when the read began
	schemaAt time.Time

	sessions []postgres.FeedSession // by (RevokedAt, SID); none expired at readAt
	cutoffs  []postgres.Cutoff      // by (RevokedAt, ID); none expired at readAt
	known    map[string]struct{}    // the sids of sessions
	minExp   int64                  // the earliest exp of any entry; MaxInt64 when none

	v1 *fullCache // shared by successive states while the entries are the same
	v2 *fullCache // per state: the body carries the cursor
}

type fullCache struct {
	once sync.Once
	ans  Answer
	gz   gzipOnce
}

// gzipOnce is a body's gzip encoding, made on first use: a full snapshot is
// compressed once per change, not once per verifier that asks.
type gzipOnce struct {
	once sync.Once
	body []byte
}

func (g *gzipOnce) get(body []byte) []byte {
	g.once.Do(func() {
		var b bytes.Buffer
		// BestSpeed: the snapshot is mostly random UUIDs, so higher levels
		// cost several times the CPU for a few percent of bytes.
		w, _ := gzip.NewWriterLevel(&b, gzip.BestSpeed)
		_, _ = w.Write(body)
		_ = w.Close()
		g.body = b.Bytes()
	})
	return g.body
}

// Kick tells the follower that this replica committed a revocation: the
// next poll reads the database before it answers, so a replica serves its
// own revocations at once.
func (s *Service) Kick() { s.kicks.Add(1) }

// Reads is how many times the follower has read the database.
func (s *Service) Reads() int64 { return s.reads.Load() }

// Close stops the follower.
func (s *Service) Close() {
	s.startOnce.Do(func() { close(s.done) }) // never started: nothing to wait for
	select {
	case <-s.stop:
	default:
		close(s.stop)
	}
	<-s.done
}

func (s *Service) start() {
	s.startOnce.Do(func() {
		go s.follow()
	})
}

func (s *Service) follow() {
	defer close(s.done)
	t := time.NewTicker(s.cfg.Interval)
	defer t.Stop()
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	go func() {
		<-s.stop
		cancel()
	}()
	failing := false
	for {
		select {
		case <-s.stop:
			return
		case <-t.C:
		}
		err := s.read(ctx)
		switch {
		case err != nil && !failing && ctx.Err() == nil:
			s.cfg.Log.Warn("feed: the follower cannot read the database; polls are answered from memory until it is stale",
				"stale_after", s.cfg.StaleAfter, "err", err)
		case err == nil && failing:
			s.cfg.Log.Info("feed: the follower reads the database again")
		}
		failing = err != nil
	}
}

func (s *Service) read(ctx context.Context) error {
	s.readMu.Lock()
	defer s.readMu.Unlock()
	return s.readLocked(ctx)
}

// readLocked reads what was revoked at or after the current cursor and
// stores the merged state. The clock is read before the queries, as the
// package comment requires.
func (s *Service) readLocked(ctx context.Context) (err error) {
	defer func() {
		if s.cfg.OnRead != nil {
			s.cfg.OnRead(err)
		}
	}()
	kicks := s.kicks.Load()
	now := s.clock.Now()
	prev := s.cur.Load()
	since, schemaAt := time.Unix(0, 0), now
	if prev != nil {
		since, schemaAt = time.Unix(prev.cursor, 0), prev.schemaAt
	}
	if prev == nil || now.Sub(schemaAt) >= schemaEvery {
		if err := s.db.RefreshSchema(ctx); err != nil {
			return err
		}
		if r := s.db.Replica(); r != nil {
			_ = r.RefreshSchema(ctx) // unreachable: ReadSource reads the primary
		}
		schemaAt = now
	}
	db, lag := s.db, time.Duration(0)
	if s.cfg.Source != nil {
		db, lag = s.cfg.Source.Pick(ctx, now)
	}
	sessions, cutoffs, err := readFrom(ctx, db, since, now)
	if err != nil && db != s.db && postgres.Unavailable(err) {
		// The standby went away after Pick: the primary answers instead.
		lag = 0
		sessions, cutoffs, err = readFrom(ctx, s.db, since, now)
	}
	if err != nil {
		return err
	}
	s.reads.Add(1)
	// A standby's snapshot holds every commit from before now - lag only.
	s.cur.Store(merge(prev, sessions, cutoffs, now, Cursor(now.Add(-lag)), kicks, schemaAt))
	return nil
}

func readFrom(ctx context.Context, db *postgres.DB, since, now time.Time) ([]postgres.FeedSession, []postgres.Cutoff, error) {
	sessions, err := db.FeedSince(ctx, since, now)
	if err != nil {
		return nil, nil, err
	}
	cutoffs, err := db.CutoffsSince(ctx, since, now)
	return sessions, cutoffs, err
}

// merge is prev with the rows just read, less what expired by now.
func merge(prev *state, sessions []postgres.FeedSession, cutoffs []postgres.Cutoff, now time.Time, cursor int64, kicks uint64, schemaAt time.Time) *state {
	next := &state{readAt: now, cursor: cursor, kicks: kicks, schemaAt: schemaAt, v2: &fullCache{}}
	nowSec := now.Unix()
	if prev != nil {
		fresh := prev.minExp > nowSec
		for i := 0; fresh && i < len(sessions); i++ {
			_, ok := prev.known[sessions[i].SID]
			fresh = ok
		}
		for i := 0; fresh && i < len(cutoffs); i++ {
			fresh = slices.ContainsFunc(prev.cutoffs, func(c postgres.Cutoff) bool { return c.ID == cutoffs[i].ID })
		}
		if fresh { // nothing new, nothing expired: share the entries and the v1 cache
			next.sessions, next.cutoffs, next.known, next.minExp, next.v1 = prev.sessions, prev.cutoffs, prev.known, prev.minExp, prev.v1
			return next
		}
		again := make(map[string]struct{}, len(sessions))
		for _, e := range sessions {
			again[e.SID] = struct{}{}
		}
		sessions = append(slices.DeleteFunc(slices.Clone(prev.sessions), func(e postgres.FeedSession) bool {
			_, read := again[e.SID]
			return read || e.Exp <= nowSec
		}), sessions...)
		cutoffs = append(slices.DeleteFunc(slices.Clone(prev.cutoffs), func(c postgres.Cutoff) bool {
			return c.Exp <= nowSec || slices.ContainsFunc(cutoffs, func(n postgres.Cutoff) bool { return n.ID == c.ID })
		}), cutoffs...)
	}
	slices.SortFunc(sessions, func(a, b postgres.FeedSession) int {
		return cmp.Or(a.RevokedAt.Compare(b.RevokedAt), cmp.Compare(a.SID, b.SID))
	})
	slices.SortFunc(cutoffs, func(a, b postgres.Cutoff) int {
		return cmp.Or(a.RevokedAt.Compare(b.RevokedAt), cmp.Compare(a.ID, b.ID))
	})
	next.sessions, next.cutoffs, next.v1 = sessions, cutoffs, &fullCache{}
	next.known = make(map[string]struct{}, len(sessions))
	next.minExp = math.MaxInt64
	for _, e := range sessions {
		next.known[e.SID] = struct{}{}
		next.minExp = min(next.minExp, e.Exp)
	}
	for _, c := range cutoffs {
		next.minExp = min(next.minExp, c.Exp)
	}
	return next
}

// current is the state a poll is answered from: the follower's, after a
// read if this replica revoked something since the last one began, if the
// last one is older than StaleAfter, or if there has been none.
func (s *Service) current(ctx context.Context) (*state, error) {
	s.start()
	st := s.cur.Load()
	if st != nil && st.kicks == s.kicks.Load() && s.clock.Now().Sub(st.readAt) <= s.cfg.StaleAfter {
		return st, nil
	}
	s.readMu.Lock()
	defer s.readMu.Unlock()
	st = s.cur.Load()
	stale := st == nil || s.clock.Now().Sub(st.readAt) > s.cfg.StaleAfter
	if !stale && st.kicks == s.kicks.Load() {
		return st, nil // another poll read meanwhile
	}
	if err := s.readLocked(ctx); err != nil {
		if stale {
			return nil, errors.Join(ErrStale, err)
		}
		// Not stale: what memory holds is complete up to its cursor, and
		// the revocation that kicked arrives with a later read.
		return st, nil
	}
	return s.cur.Load(), nil
}

// Answer is one encoded answer to a poll.
type Answer struct {
	Body []byte
	// ETag is the strong validator of a full snapshot's body; empty for a
	// delta.
	ETag string
	// Cursor is what the next poll passes as since.
	Cursor int64
	// Entries is how many entries Body holds.
	Entries int

	gz *gzipOnce // a full snapshot's, shared by every poll of it
}

// Gzip is Body compressed with gzip: for a full snapshot, made once and
// shared by every poll that gets the same snapshot.
func (a Answer) Gzip() []byte {
	if a.gz == nil {
		a.gz = &gzipOnce{}
	}
	return a.gz.get(a.Body)
}

// Poll answers a poll in format (FormatV1 or FormatV2) for the revocations
// at or after since; full is true when the poll named no since (or since
// 0): the full snapshot, cached and with an ETag.
func (s *Service) Poll(ctx context.Context, format int, since time.Time, full bool) (Answer, error) {
	st, err := s.current(ctx)
	if err != nil {
		return Answer{}, err
	}
	now := s.clock.Now().Unix()
	// A cached full snapshot holds only entries alive when it was built;
	// while none of them has expired since, it is still the answer.
	cached := full && st.minExp > now
	switch {
	case format == FormatV2 && cached:
		st.v2.once.Do(func() { st.v2.ans = withETag(st.encodeV2(time.Unix(0, 0), now, true)); st.v2.ans.gz = &st.v2.gz })
		return st.v2.ans, nil
	case format == FormatV2:
		a := st.encodeV2(since, now, full)
		if full {
			a = withETag(a)
		}
		return a, nil
	case cached:
		st.v1.once.Do(func() { st.v1.ans = withETag(st.encodeV1(time.Unix(0, 0), now)); st.v1.ans.gz = &st.v1.gz })
		a := st.v1.ans
		a.Cursor = st.cursor // the cache outlives states; the cursor is this one's
		return a, nil
	default:
		a := st.encodeV1(since, now)
		if full {
			a = withETag(a)
		}
		return a, nil
	}
}

func withETag(a Answer) Answer {
	sum := sha256.Sum256(a.Body)
	a.ETag = `"` + hex.EncodeToString(sum[:16]) + `"`
	return a
}

// from is the index of the first session revoked at or after since.
func (st *state) from(since time.Time) int {
	i, _ := slices.BinarySearchFunc(st.sessions, since, func(e postgres.FeedSession, t time.Time) int {
		return cmp.Compare(e.RevokedAt.UnixNano(), t.UnixNano())
	})
	return i
}

func (st *state) encodeV1(since time.Time, now int64) Answer {
	live := make([]postgres.RevokedSession, 0, len(st.sessions))
	for _, e := range st.sessions[st.from(since):] {
		if e.Exp > now {
			live = append(live, e.RevokedSession)
		}
	}
	return Answer{Body: AppendJSON(make([]byte, 0, 16+len(live)*100), live), Cursor: st.cursor, Entries: len(live)}
}

func (st *state) encodeV2(since time.Time, now int64, full bool) Answer {
	v := V2{Cursor: st.cursor}
	for _, e := range st.sessions[st.from(since):] {
		if e.Exp > now && !e.Cutoff {
			v.Sessions = append(v.Sessions, e.RevokedSession)
		}
	}
	for _, c := range st.cutoffs {
		if c.Exp <= now {
			continue
		}
		if c.UserID == "" {
			// The newest issuer-wide cutoff is served whatever since is:
			// one entry, and a verifier that missed it must not stay so.
			v.Issuer = mergeCutoff(v.Issuer, c)
			continue
		}
		if c.RevokedAt.Before(since) {
			continue
		}
		v.Users = append(v.Users, c)
	}
	if full {
		v.Users = mergeUsers(v.Users)
	}
	n := len(v.Sessions) + len(v.Users)
	if v.Issuer != nil {
		n++
	}
	return Answer{Body: v.AppendJSON(make([]byte, 0, 128+len(v.Sessions)*90+len(v.Users)*80)), Cursor: st.cursor, Entries: n}
}

// mergeCutoff combines two cutoffs of one user, or two issuer-wide ones, into
// the one entry that denies what both do: the later nbf (which denies every
// token the earlier one does) until the later exp.
func mergeCutoff(a *postgres.Cutoff, b postgres.Cutoff) *postgres.Cutoff {
	if a == nil {
		return &b
	}
	m := *a
	m.NBF, m.Exp = max(a.NBF, b.NBF), max(a.Exp, b.Exp)
	if b.RevokedAt.After(m.RevokedAt) {
		m.RevokedAt = b.RevokedAt
	}
	return &m
}

// mergeUsers keeps one cutoff per user (mergeCutoff), in the order of each
// user's first.
func mergeUsers(cs []postgres.Cutoff) []postgres.Cutoff {
	at := make(map[string]int, len(cs))
	out := cs[:0:0]
	for _, c := range cs {
		if i, ok := at[c.UserID]; ok {
			out[i] = *mergeCutoff(&out[i], c)
			continue
		}
		at[c.UserID] = len(out)
		out = append(out, c)
	}
	return out
}
