package statuslist

import (
	"context"
	"crypto/sha256"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"sort"
	"sync"
	"sync/atomic"
	"time"

	"github.com/seedc5a8123e/authd/internal/clock"
	"github.com/seedc5a8123e/authd/internal/keys"
	"github.com/seedc5a8123e/authd/internal/postgres"
	"github.com/seedc5a8123e/authd/verifier"
)

// Config says how the lists are published.
type Config struct {
	// Issuer is authd's iss; the lists live under it (URI).
	Issuer string
	// TTL is the ttl claim and the Cache-Control max-age: how long a
	// verifier may cache a list. Default DefaultTTL.
	TTL time.Duration
	// Holdback is how far behind the clock the next sync's since is set:
	// feed.Holdback, for the reason the package comment gives.
	Holdback time.Duration
}

// Served is one list, encoded and signed, as a request gets it.
type Served struct {
	ID       int64
	JWT      []byte // application/statuslist+jwt
	JSON     []byte // application/statuslist+json: the same claims, unsigned
	JWTETag  string // strong ETags of the two bodies
	JSONETag string
	// IssuedAt and ExpiresAt are the token's iat and exp.
	IssuedAt, ExpiresAt time.Time
}

// list is one live list: its bits, owned by sync, and what it serves.
type list struct {
	id          int64
	size        int
	retireAfter time.Time
	bits        Bits
	served      *Served
}

// Service keeps every live list in memory, encoded and signed, and brings it
// up to date every PollInterval (package comment). Lookup takes no lock.
type Service struct {
	db    *postgres.DB
	keys  keys.Source
	clock clock.Clock
	log   *slog.Logger
	cfg   Config
	base  string

	syncMu sync.Mutex // one sync at a time; guards lists' bits and since
	lists  map[int64]*list
	since  time.Time
	// view is what requests read: id → Served, replaced whole by each sync.
	view atomic.Pointer[map[int64]*Served]
	uris atomic.Pointer[[]string]

	started atomic.Bool
	stop    chan struct{}
	done    chan struct{}
	once    sync.Once
}

// New returns a Service; Start begins its syncs.
func New(db *postgres.DB, ks keys.Source, c clock.Clock, log *slog.Logger, cfg Config) *Service {
	if cfg.TTL <= 0 {
		cfg.TTL = DefaultTTL
	}
	s := &Service{db: db, keys: ks, clock: c, log: log, cfg: cfg, base: Base(cfg.Issuer),
		lists: map[int64]*list{}, stop: make(chan struct{}), done: make(chan struct{})}
	empty := map[int64]*Served{}
	s.view.Store(&empty)
	s.uris.Store(&[]string{})
	return s
}

// PollInterval is the time between two syncs: a sixth of the ttl, at least a
// second.
func (s *Service) PollInterval() time.Duration { return max(s.cfg.TTL/6, time.Second) }

// Validity is how long a signed list is valid (its exp - iat): ten ttls, so a
// verifier rides out a few failed fetches; it is re-signed after half.
func (s *Service) Validity() time.Duration { return ValidityFor(s.cfg.TTL) }

// ValidityFor is the Validity of lists announcing ttl.
func ValidityFor(ttl time.Duration) time.Duration { return 10 * ttl }

// TTL is the announced ttl.
func (s *Service) TTL() time.Duration { return s.cfg.TTL }

// AggregationURI is the aggregation endpoint's URL (section 9).
func (s *Service) AggregationURI() string { return s.base + Path }

// Start syncs once and then every PollInterval until Close. The first sync's
// error is only logged: the lists stay empty (404) until one succeeds.
func (s *Service) Start() {
	if !s.started.CompareAndSwap(false, true) {
		return
	}
	go func() {
		defer close(s.done)
		t := time.NewTicker(s.PollInterval())
		defer t.Stop()
		for {
			ctx, cancel := context.WithTimeout(context.Background(), s.PollInterval()+10*time.Second)
			if err := s.Sync(ctx); err != nil && !errors.Is(err, postgres.ErrNoStatusLists) {
				s.log.Warn("status list sync failed; serving the previous lists", "err", err)
			}
			cancel()
			select {
			case <-s.stop:
				return
			case <-t.C:
			}
		}
	}()
}

// Close stops the syncs and waits for the one in progress. Safe to call
// twice, and without Start.
func (s *Service) Close() {
	s.once.Do(func() { close(s.stop) })
	if s.started.Load() {
		<-s.done
	}
}

// Lookup returns list id as last synced.
func (s *Service) Lookup(id int64) (*Served, bool) {
	sv, ok := (*s.view.Load())[id]
	return sv, ok
}

// URIs lists the URIs of the lists served, by id: the aggregation.
func (s *Service) URIs() []string { return *s.uris.Load() }

// Sync brings the lists up to date with the database: it drops retired
// lists, loads new ones whole, applies the revocations since the previous
// sync's cursor to the others, and re-signs what changed or is past half its
// validity. Tests call it directly; Start calls it every PollInterval.
func (s *Service) Sync(ctx context.Context) error {
	s.syncMu.Lock()
	defer s.syncMu.Unlock()
	now := s.clock.Now() // before any query: the no-miss argument needs it
	rows, err := s.db.LiveStatusLists(ctx, now)
	if errors.Is(err, postgres.ErrNoStatusLists) {
		// The schema before 000009 (or a rollback to it): no list can be
		// kept current, so none is served rather than a stale one.
		s.lists, s.since = map[int64]*list{}, time.Time{}
		empty := map[int64]*Served{}
		s.view.Store(&empty)
		s.uris.Store(&[]string{})
		return err
	}
	if err != nil {
		return err
	}
	next := make(map[int64]*list, len(rows))
	var known, fresh []int64
	for _, r := range rows {
		if l, ok := s.lists[r.ID]; ok {
			next[r.ID] = l
			known = append(known, r.ID)
			continue
		}
		next[r.ID] = &list{id: r.ID, size: r.Size, retireAfter: r.RetireAfter, bits: NewBits(r.Size)}
		fresh = append(fresh, r.ID)
	}
	changed := map[int64]bool{}
	for _, q := range []struct {
		since time.Time
		ids   []int64
	}{{time.Time{}, fresh}, {s.since, known}} {
		entries, err := s.db.RevokedStatusSince(ctx, q.since, q.ids)
		if err != nil {
			return err
		}
		for _, e := range entries {
			if l := next[e.List]; l != nil && l.bits.Set(e.Idx) {
				changed[e.List] = true
			}
		}
	}
	for _, id := range fresh {
		changed[id] = true
	}
	view := make(map[int64]*Served, len(next))
	uris := make([]string, 0, len(next))
	for id, l := range next {
		if changed[id] || l.served == nil || now.Add(s.Validity()/2).After(l.served.ExpiresAt) ||
			now.Before(l.served.IssuedAt) {
			sv, err := s.sign(l, now)
			if err != nil {
				return err
			}
			l.served = sv
		}
		view[id] = l.served
		uris = append(uris, URI(s.base, id))
	}
	sort.Strings(uris)
	s.lists, s.since = next, now.Add(-s.cfg.Holdback)
	s.view.Store(&view)
	s.uris.Store(&uris)
	return nil
}

// Claims returns the claims of list l's token, issued at now.
func (s *Service) claims(l *list, now time.Time) (verifier.StatusListClaims, error) {
	lst, err := l.bits.Encode()
	if err != nil {
		return verifier.StatusListClaims{}, err
	}
	iat := now.Truncate(time.Second)
	return verifier.StatusListClaims{
		Subject: URI(s.base, l.id), Issuer: s.cfg.Issuer,
		IssuedAt: iat.Unix(), ExpiresAt: iat.Add(s.Validity()).Unix(), TTL: int64(s.cfg.TTL / time.Second),
		StatusList: verifier.StatusList{Bits: 1, Lst: lst, AggregationURI: s.AggregationURI()},
	}, nil
}

// sign encodes list l and signs it with the current signing key, kid in the
// header (so the JWKS verifies it), typ statuslist+jwt (section 5.1).
func (s *Service) sign(l *list, now time.Time) (*Served, error) {
	c, err := s.claims(l, now)
	if err != nil {
		return nil, err
	}
	body, err := json.Marshal(c)
	if err != nil {
		return nil, err
	}
	k := s.keys.Current().Signing()
	header, err := json.Marshal(map[string]string{"alg": k.Alg, "kid": k.ID, "typ": verifier.StatusListTyp})
	if err != nil {
		return nil, err
	}
	enc := base64.RawURLEncoding
	signing := enc.EncodeToString(header) + "." + enc.EncodeToString(body)
	sig, err := k.Method().Sign(signing, k.Private())
	if err != nil {
		return nil, fmt.Errorf("statuslist: sign list %d: %w", l.id, err)
	}
	jwt := []byte(signing + "." + enc.EncodeToString(sig))
	js := append(body, '\n')
	return &Served{
		ID: l.id, JWT: jwt, JSON: js, JWTETag: etag(jwt), JSONETag: etag(js),
		IssuedAt: time.Unix(c.IssuedAt, 0), ExpiresAt: time.Unix(c.ExpiresAt, 0),
	}, nil
}

// etag is a strong entity tag of body: 128 bits of its SHA-256.
func etag(body []byte) string {
	sum := sha256.Sum256(body)
	return `"` + base64.RawURLEncoding.EncodeToString(sum[:16]) + `"`
}
