// Package keyring keeps authd's signing keys in PostgreSQL (table
// signing_keys), sealed under the key-encryption key, and rotates them on a
// schedule without a restart or a rejected token:
//
//  1. A rotation adds a key that is published in the JWKS at once but signs
//     only Lead later (at least the JWKS max-age, plus how long a replica
//     may take to read the table, plus clock skew), so every verifier's
//     cached key set holds the key before any token names it.
//  2. At SignAt every replica switches to it: each computes the signing key
//     from the rows and its own clock (keys.At), so no message is needed at
//     the switch, and a replica that has not re-read the table since the
//     rotation still switches on time.
//  3. The keys it replaces stay published until RetireAfter past the switch
//     (the longest lifetime of anything they signed, plus leeway and
//     skew), then their rows, private keys included, are deleted.
//
// Every replica re-reads the table every Interval, and runs the schedule:
// a rotation is due when the cron schedule's next run after the newest
// key's creation has passed, decided under a fleet-wide advisory lock, so
// however many replicas find it due at once, one key is added.
package keyring

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"sync"
	"sync/atomic"
	"time"

	"github.com/robfig/cron/v3"

	"github.com/seedc5a8123e/authd/internal/audit"
	"github.com/seedc5a8123e/authd/internal/clock"
	"github.com/seedc5a8123e/authd/internal/keys"
	"github.com/seedc5a8123e/authd/internal/postgres"
)

// DefaultSchedule is AUTHD_KEY_ROTATION's default: a new key every 30 days.
const DefaultSchedule = "@every 720h"

// DefaultInterval is how often a replica re-reads signing_keys.
const DefaultInterval = 10 * time.Second

// Config tunes a Ring. KEK and Schedule are required.
type Config struct {
	KEK      *keys.KEK
	Schedule cron.Schedule
	// Alg is the algorithm of new keys; default keys.EdDSA.
	Alg string
	// Lead is how long a new key is published before it signs; Lead
	// returns its floor, which is also the default.
	Lead time.Duration
	// RetireAfter is how long a replaced key stays published after its
	// successor begins to sign: the longest lifetime of a token it signed
	// plus the verifiers' leeway and the replicas' clock skew.
	RetireAfter time.Duration
	// Interval is how often the table is re-read; default DefaultInterval.
	Interval time.Duration
	Log      *slog.Logger
}

// Lead is the shortest publication lead that keeps every verifier ahead of
// the switch with a replica re-reading the table every interval: a JWKS
// cached just before the key appeared expires within keys.JWKSMaxAge; the
// replica that rotated may be the only one to know of the key for up to an
// interval; clocks may disagree by skew.
func Lead(interval, skew time.Duration) time.Duration {
	return keys.JWKSMaxAge + interval + skew
}

// Ring is the database key source: keys.Source for the signer, the JWKS and
// the status lists.
type Ring struct {
	db    *postgres.DB
	clock clock.Clock
	cfg   Config
	skew  time.Duration

	cur atomic.Pointer[state]

	mu     sync.Mutex // guards rows, opened and the recomputation of cur
	rows   []postgres.SigningKey
	opened map[string]*keys.Key // by kid: each sealed key is opened once

	stop chan struct{}
	done chan struct{}
	once sync.Once
}

// state is the Set of the moment and the instant it stops being right.
type state struct {
	set   *keys.Set
	until time.Time // zero: until the rows change
}

// ErrNotDue: the schedule does not call for a new key yet.
var ErrNotDue = errors.New("keyring: no rotation is due")

// New loads the keys, creating the first one (signing at once: nothing has
// been signed by this database's keys yet) when the table is empty. skew
// is the replicas' tolerated clock disagreement (token.MaxClockSkew).
func New(ctx context.Context, db *postgres.DB, c clock.Clock, skew time.Duration, cfg Config) (*Ring, error) {
	if cfg.KEK == nil || cfg.Schedule == nil {
		return nil, errors.New("keyring: Config.KEK and Config.Schedule are required")
	}
	if cfg.Alg == "" {
		cfg.Alg = keys.EdDSA
	}
	if cfg.Interval <= 0 {
		cfg.Interval = DefaultInterval
	}
	if floor := Lead(cfg.Interval, skew); cfg.Lead < floor {
		cfg.Lead = floor
	}
	if cfg.Log == nil {
		cfg.Log = slog.Default()
	}
	r := &Ring{db: db, clock: c, cfg: cfg, skew: skew, opened: map[string]*keys.Key{}}
	rows, err := db.SigningKeys(ctx)
	if err != nil {
		return nil, err
	}
	if len(rows) == 0 {
		if rows, err = r.change(ctx, r.first); err != nil {
			return nil, err
		}
	}
	if err := r.use(rows); err != nil {
		return nil, err
	}
	return r, nil
}

// Current returns the key set of this instant, recomputed from the rows
// already read when a scheduled switch or retirement has come.
func (r *Ring) Current() *keys.Set {
	st := r.cur.Load()
	if st.until.IsZero() || r.clock.Now().Before(st.until) {
		return st.set
	}
	r.mu.Lock()
	defer r.mu.Unlock()
	if st := r.cur.Load(); st.until.IsZero() || r.clock.Now().Before(st.until) {
		return st.set // another caller recomputed it meanwhile
	}
	if err := r.recompute(); err != nil {
		// Only a table emptied by hand gets here; keep signing with what
		// signed until now rather than with nothing.
		r.cfg.Log.Error("keyring: no signing key at this time; still using the previous one", "err", err)
	}
	return r.cur.Load().set
}

// Refresh re-reads the table.
func (r *Ring) Refresh(ctx context.Context) error {
	rows, err := r.db.SigningKeys(ctx)
	if err != nil {
		return err
	}
	return r.use(rows)
}

// Maintain does what the schedule calls for now: a rotation when one is
// due, the deletion of keys past their retirement, then a re-read.
// Replicas call it every Interval; tests call it after moving the clock.
func (r *Ring) Maintain(ctx context.Context) error {
	rows, err := r.db.SigningKeys(ctx)
	if err != nil {
		return err
	}
	now := r.clock.Now()
	if r.due(rows, now) || r.expired(rows, now) {
		if rows, err = r.change(ctx, r.scheduled); err != nil {
			return err
		}
		r.cfg.Log.Info("keyring: scheduled key change done", "keys", len(rows))
	}
	return r.use(rows)
}

// Rotate adds a new key now, whatever the schedule, and returns its kid
// and the time it begins to sign. The actor of the audit row comes from
// ctx (audit.WithActor).
func (r *Ring) Rotate(ctx context.Context) (kid string, signAt time.Time, err error) {
	var added postgres.SigningKey
	rows, err := r.change(ctx, func(rows []postgres.SigningKey, now time.Time) (postgres.KeyChange, error) {
		c, err := r.rotation(rows, now, "on demand")
		if len(c.Add) == 1 {
			added = c.Add[0]
		}
		return c, err
	})
	if err != nil {
		return "", time.Time{}, err
	}
	return added.KID, added.SignAt, r.use(rows)
}

// Start re-reads the table and runs the schedule every Interval until
// Close. Failures are logged and retried at the next tick: the keys already
// read keep signing.
func (r *Ring) Start() {
	r.stop, r.done = make(chan struct{}), make(chan struct{})
	go func() {
		defer close(r.done)
		t := time.NewTicker(r.cfg.Interval)
		defer t.Stop()
		for {
			select {
			case <-r.stop:
				return
			case <-t.C:
				ctx, cancel := context.WithTimeout(context.Background(), r.cfg.Interval)
				if err := r.Maintain(ctx); err != nil {
					r.cfg.Log.Warn("keyring: maintaining the signing keys failed; retrying", "err", err)
				}
				cancel()
			}
		}
	}()
}

// Close stops what Start started. It is safe to call twice, or without Start.
func (r *Ring) Close() {
	r.once.Do(func() {
		if r.stop != nil {
			close(r.stop)
			<-r.done
		}
	})
}

// Keys is the schedule of every stored key, for `authd keys list`.
func (r *Ring) Keys() []keys.Timed {
	r.mu.Lock()
	defer r.mu.Unlock()
	return r.timed()
}

// due reports whether the schedule has called for a key since the newest
// one was created.
func (r *Ring) due(rows []postgres.SigningKey, now time.Time) bool {
	if len(rows) == 0 {
		return true
	}
	newest := rows[0].CreatedAt
	for _, k := range rows[1:] {
		if k.CreatedAt.After(newest) {
			newest = k.CreatedAt
		}
	}
	return !r.cfg.Schedule.Next(newest).After(now)
}

// expired reports whether a key is past its retirement and so to delete.
func (r *Ring) expired(rows []postgres.SigningKey, now time.Time) bool {
	for _, k := range rows {
		if !k.RetireAt.IsZero() && !k.RetireAt.After(now) {
			return true
		}
	}
	return false
}

// change runs decide under the fleet-wide key lock at the clock's now.
func (r *Ring) change(ctx context.Context, decide func([]postgres.SigningKey, time.Time) (postgres.KeyChange, error)) ([]postgres.SigningKey, error) {
	return r.db.ChangeSigningKeys(ctx, func(rows []postgres.SigningKey) (postgres.KeyChange, error) {
		return decide(rows, r.clock.Now())
	})
}

// first is the change of an empty table: one key that signs at once.
func (r *Ring) first(rows []postgres.SigningKey, now time.Time) (postgres.KeyChange, error) {
	if len(rows) > 0 {
		return postgres.KeyChange{}, nil // another replica made it first
	}
	row, err := r.newRow(now, now)
	if err != nil {
		return postgres.KeyChange{}, err
	}
	return postgres.KeyChange{Add: []postgres.SigningKey{row}, Audit: rotatedAudit(row, now, "first key")}, nil
}

// scheduled is the change the schedule calls for, decided again under the
// lock on the rows read under it: another replica may have rotated or
// pruned since this one looked.
func (r *Ring) scheduled(rows []postgres.SigningKey, now time.Time) (postgres.KeyChange, error) {
	var c postgres.KeyChange
	if r.due(rows, now) {
		var err error
		if c, err = r.rotation(rows, now, "scheduled"); err != nil {
			return c, err
		}
	}
	if r.expired(rows, now) {
		c.DeleteBefore = now
	}
	return c, nil
}

// rotation adds a key published now and signing Lead later, and retires
// every key not yet scheduled to RetireAfter past that.
func (r *Ring) rotation(rows []postgres.SigningKey, now time.Time, why string) (postgres.KeyChange, error) {
	row, err := r.newRow(now, now.Add(r.cfg.Lead))
	if err != nil {
		return postgres.KeyChange{}, err
	}
	retire := row.SignAt.Add(r.cfg.RetireAfter)
	e := rotatedAudit(row, now, why)
	var replaced []string
	for _, k := range rows {
		if k.RetireAt.IsZero() {
			replaced = append(replaced, k.KID)
		}
	}
	e.Detail["replaces"], e.Detail["retire_at"] = replaced, retire
	return postgres.KeyChange{Add: []postgres.SigningKey{row}, RetireAt: retire, Audit: e}, nil
}

func (r *Ring) newRow(now, signAt time.Time) (postgres.SigningKey, error) {
	k, err := keys.Generate(r.cfg.Alg)
	if err != nil {
		return postgres.SigningKey{}, err
	}
	return r.seal(k, now, now, signAt)
}

func (r *Ring) seal(k *keys.Key, created, publishAt, signAt time.Time) (postgres.SigningKey, error) {
	sealed, err := r.cfg.KEK.Seal(k)
	if err != nil {
		return postgres.SigningKey{}, err
	}
	return postgres.SigningKey{
		KID: k.ID, Alg: k.Alg, Sealed: sealed, KEKID: r.cfg.KEK.ID(),
		CreatedAt: created, PublishAt: publishAt, SignAt: signAt,
	}, nil
}

// rotatedAudit is the signing_key_rotated row of a new key: its kid (a
// public key's thumbprint; never the key) and schedule.
func rotatedAudit(row postgres.SigningKey, now time.Time, why string) postgres.AuditEvent {
	return postgres.AuditEvent{At: now, Type: audit.KeyRotated, Detail: map[string]any{
		"kid": row.KID, "alg": row.Alg, "sign_at": row.SignAt, "why": why,
	}}
}

// use makes rows the ring's keys, opening those not opened before.
func (r *Ring) use(rows []postgres.SigningKey) error {
	r.mu.Lock()
	defer r.mu.Unlock()
	for _, row := range rows {
		if _, ok := r.opened[row.KID]; ok {
			continue
		}
		k, err := r.cfg.KEK.Open(row.KID, row.Alg, row.KEKID, row.Sealed)
		if err != nil {
			return err
		}
		r.opened[row.KID] = k
	}
	for kid := range r.opened {
		if !hasKID(rows, kid) {
			delete(r.opened, kid) // deleted from the table: forget it
		}
	}
	r.rows = rows
	return r.recompute()
}

func hasKID(rows []postgres.SigningKey, kid string) bool {
	for _, r := range rows {
		if r.KID == kid {
			return true
		}
	}
	return false
}

// timed is the rows as keys.Timed. r.mu is held.
func (r *Ring) timed() []keys.Timed {
	out := make([]keys.Timed, 0, len(r.rows))
	for _, row := range r.rows {
		out = append(out, keys.Timed{Key: r.opened[row.KID], PublishAt: row.PublishAt, SignAt: row.SignAt, RetireAt: row.RetireAt})
	}
	return out
}

// recompute sets cur from the rows at the clock's now. r.mu is held.
func (r *Ring) recompute() error {
	set, next, err := keys.At(r.timed(), r.clock.Now())
	if err != nil {
		if prev := r.cur.Load(); prev != nil {
			// Keep the previous set, and look again at the next change.
			r.cur.Store(&state{set: prev.set, until: next})
		}
		return fmt.Errorf("keyring: %w", err)
	}
	prev := r.cur.Load()
	r.cur.Store(&state{set: set, until: next})
	if prev == nil || prev.set.Signing().ID != set.Signing().ID {
		r.cfg.Log.Info("keyring: signing with a new key", "kid", set.Signing().ID, "published", len(set.All()))
	}
	return nil
}

// ErrNotEmpty: keys were to be imported into a table that already has some.
var ErrNotEmpty = errors.New("keyring: the database already holds signing keys; import only moves file keys into an empty table")

// Import moves the file keys of set into an empty table, so that a
// deployment switching from AUTHD_SIGNING_KEYS to database keys keeps
// signing with the key its verifiers know: set's signing key signs from now
// on, its other keys stay published for RetireAfter. Run it before the
// replicas start with AUTHD_KEY_ENCRYPTION_KEY; it makes no key of its own.
func Import(ctx context.Context, db *postgres.DB, c clock.Clock, cfg Config, set *keys.Set) error {
	r := &Ring{db: db, clock: c, cfg: cfg}
	_, err := r.change(ctx, func(rows []postgres.SigningKey, now time.Time) (postgres.KeyChange, error) {
		if len(rows) > 0 {
			return postgres.KeyChange{}, ErrNotEmpty
		}
		var ch postgres.KeyChange
		var kids []string
		for i, k := range set.All() {
			// The signing key signs from now; the retired ones signed
			// before it (a second earlier suffices for keys.At) and leave
			// when the signing key's oldest tokens could have.
			signAt, retire := now, time.Time{}
			if i > 0 {
				signAt, retire = now.Add(-time.Second), now.Add(cfg.RetireAfter)
			}
			row, err := r.seal(k, now, signAt, signAt)
			if err != nil {
				return postgres.KeyChange{}, err
			}
			row.RetireAt = retire
			ch.Add = append(ch.Add, row)
			kids = append(kids, k.ID)
		}
		ch.Audit = postgres.AuditEvent{At: now, Type: audit.KeyRotated, Detail: map[string]any{
			"kid": set.Signing().ID, "alg": set.Signing().Alg, "sign_at": now, "why": "imported from files", "imported": kids,
		}}
		return ch, nil
	})
	return err
}
