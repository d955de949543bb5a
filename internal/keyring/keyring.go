// Package keyring keeps authd's signing keys in PostgreSQL (table
// signing_keys), sealed under the key-encryption key, and rotates them on a
// schedule without a restart or a rejected token:
//
//  1. A rotation adds a key that is published in the JWKS at once but signs
//     only Lead later (the JWKS max-age, plus how long a replica may take to
//     read the table, plus clock skew both ways), so every verifier's cached
//     key set holds the key before any token names it.
//  2. At SignAt every replica switches to it: each computes the signing key
//     from the rows and its own clock (keys.At), so no message is needed at
//     the switch, and a replica that has not re-read the table since the
//     rotation still switches on time.
//  3. The keys it replaces stay published for RetireAfter past the switch
//     (the longest lifetime of anything they signed, plus the verifiers'
//     leeway and clock skew both ways), counted by each replica from its own
//     configuration, then their rows, private keys included, are deleted.
//
// Replicas (authd serve) re-read the table every Interval and run the
// schedule: a rotation is due when the cron schedule's next run after the
// newest key's creation has passed, decided under a fleet-wide advisory
// lock, so however many replicas find it due at once, one key is added.
// Every decision is checked against the database's clock, so a host whose
// clock is off cannot schedule a key that signs before verifiers know it.
package keyring

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"slices"
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
	// Skew is the clock disagreement tolerated between replicas, and
	// between this host and the database (token.MaxClockSkew).
	Skew time.Duration
	// RetireAfter is how long a replaced key stays published after its
	// successor begins to sign: the longest lifetime of a token it signed
	// plus the verifiers' leeway and twice Skew (a lagging replica signs
	// with it until Skew after the switch; a leading one withdraws it Skew
	// early).
	RetireAfter time.Duration
	// Interval is how often the table is re-read; default DefaultInterval.
	Interval time.Duration
	// CheckDBClock refuses a key change when this host's clock and the
	// database's differ by more than Skew. Off for a test's manual clock.
	CheckDBClock bool
	// Create lets New make the first key of an empty table (authd serve).
	// Without it an empty table is ErrNoKeys: an admin command must not
	// decide which key a deployment signs with (authd keys import would
	// then be refused).
	Create bool
	Log    *slog.Logger
	// OnRead, if set, hears of every successful read of the table (a
	// metric: a replica that stops reading would miss a rotation).
	OnRead func(time.Time)
}

// Lead is how long a new key is published before it signs, for a replica
// re-reading the table every interval: a JWKS cached just before the key
// appeared expires within keys.JWKSMaxAge; the replica that rotated may be
// the only one to know of the key for up to an interval; and a replica
// whose clock is ahead switches up to skew early, against a verifier whose
// clock is behind by as much.
func Lead(interval, skew time.Duration) time.Duration {
	return keys.JWKSMaxAge + interval + 2*skew
}

// Ring is the database key source: keys.Source for the signer, the JWKS and
// the status lists.
type Ring struct {
	db    *postgres.DB
	clock clock.Clock
	cfg   Config

	cur atomic.Pointer[state]

	mu     sync.Mutex // guards rows, opened and the recomputation of cur
	rows   []postgres.SigningKey
	opened map[string]*keys.Key // by kid: each sealed key is opened once

	startOnce, closeOnce sync.Once
	stop, done           chan struct{}
}

// state is the Set of the moment and the instant it stops being right.
type state struct {
	set   *keys.Set
	until time.Time // zero: until the rows change
}

var (
	// ErrNoKeys: the table is empty and this Ring may not create a key.
	ErrNoKeys = errors.New("keyring: the database holds no signing key yet: start authd serve with " +
		"AUTHD_KEY_ENCRYPTION_KEY set (it makes the first), or move key files in with authd keys import")
	// ErrNotEmpty: keys were to be imported into a table that has some.
	ErrNotEmpty = errors.New("keyring: the database already holds signing keys; import only moves file keys into an empty table")
)

// ClockError: this host's clock disagrees with the database's by more than
// the tolerated skew, so a key it scheduled could sign before verifiers
// know it, or be withdrawn while its tokens live.
type ClockError struct{ Offset, Skew time.Duration }

func (e *ClockError) Error() string {
	return fmt.Sprintf("keyring: this host's clock is %s off the database's (tolerated: %s); fix its time sync before changing signing keys",
		e.Offset.Round(time.Millisecond), e.Skew)
}

func (cfg Config) withDefaults() (Config, error) {
	if cfg.KEK == nil || cfg.Schedule == nil {
		return cfg, errors.New("keyring: Config.KEK and Config.Schedule are required")
	}
	if cfg.Alg == "" {
		cfg.Alg = keys.EdDSA
	}
	if cfg.Interval <= 0 {
		cfg.Interval = DefaultInterval
	}
	if cfg.Log == nil {
		cfg.Log = slog.Default()
	}
	return cfg, nil
}

// New loads the keys. With cfg.Create it makes the first one (signing at
// once: nothing has been signed by this database's keys yet) when the table
// is empty; without, an empty table is ErrNoKeys.
func New(ctx context.Context, db *postgres.DB, c clock.Clock, cfg Config) (*Ring, error) {
	cfg, err := cfg.withDefaults()
	if err != nil {
		return nil, err
	}
	r := &Ring{db: db, clock: c, cfg: cfg, opened: map[string]*keys.Key{}}
	rows, err := db.SigningKeys(ctx)
	if err != nil {
		return nil, err
	}
	if len(rows) == 0 {
		if !cfg.Create {
			return nil, ErrNoKeys
		}
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
	if r.due(rows, now) || len(r.retired(rows, now)) > 0 {
		if rows, err = r.change(ctx, r.scheduled); err != nil {
			return err
		}
	}
	return r.use(rows)
}

// Rotate adds a new key now, whatever the schedule, and returns its kid
// and the time it begins to sign. The actor of the audit row comes from
// ctx (audit.WithActor).
func (r *Ring) Rotate(ctx context.Context) (kid string, signAt time.Time, err error) {
	var added postgres.SigningKey
	rows, err := r.change(ctx, func(tx *postgres.Tx, rows []postgres.SigningKey, now time.Time) error {
		var err error
		added, err = r.rotate(tx, rows, now, "on demand")
		return err
	})
	if err != nil {
		return "", time.Time{}, err
	}
	return added.KID, added.SignAt, r.use(rows)
}

// Start re-reads the table and runs the schedule every Interval until
// Close. Failures are logged and retried at the next tick: the keys already
// read keep signing. A second Start does nothing.
func (r *Ring) Start() {
	r.startOnce.Do(func() {
		r.stop, r.done = make(chan struct{}), make(chan struct{})
		go r.loop()
	})
}

func (r *Ring) loop() {
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
}

// Close stops what Start started. It is safe to call twice, or without Start.
func (r *Ring) Close() {
	r.closeOnce.Do(func() {
		r.startOnce.Do(func() {}) // a Start after Close starts nothing
		if r.stop != nil {
			close(r.stop)
			<-r.done
		}
	})
}

// Keys is the schedule of every stored key, as this replica counts it.
func (r *Ring) Keys() []keys.Timed {
	r.mu.Lock()
	defer r.mu.Unlock()
	return r.timed()
}

// Schedule is the schedule of rows with retireAfter, without opening any
// key (authd keys list needs no private key).
func Schedule(rows []postgres.SigningKey, retireAfter time.Duration) []keys.Timed {
	out := make([]keys.Timed, 0, len(rows))
	for _, row := range rows {
		t := keys.Timed{KID: row.KID, Alg: row.Alg, PublishAt: row.PublishAt, SignAt: row.SignAt}
		if !row.SupersededAt.IsZero() {
			t.RetireAt = row.SupersededAt.Add(retireAfter)
		}
		out = append(out, t)
	}
	return out
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

// retired is the kids of the keys past their retirement at now.
func (r *Ring) retired(rows []postgres.SigningKey, now time.Time) []string {
	var kids []string
	for _, t := range Schedule(rows, r.cfg.RetireAfter) {
		if !t.RetireAt.IsZero() && !now.Before(t.RetireAt) {
			kids = append(kids, t.KID)
		}
	}
	return kids
}

// change runs decide in one transaction holding the fleet-wide key lock,
// on the rows read under it, at this host's now once it agrees with the
// database's clock, and returns the rows after it.
func (r *Ring) change(ctx context.Context, decide func(*postgres.Tx, []postgres.SigningKey, time.Time) error) ([]postgres.SigningKey, error) {
	var after []postgres.SigningKey
	err := r.db.InTx(ctx, func(tx *postgres.Tx) error {
		rows, dbNow, err := tx.LockSigningKeys()
		if err != nil {
			return err
		}
		now := r.clock.Now()
		if off := now.Sub(dbNow); r.cfg.CheckDBClock && (off > r.cfg.Skew || off < -r.cfg.Skew) {
			return &ClockError{Offset: off, Skew: r.cfg.Skew}
		}
		if err := decide(tx, rows, now); err != nil {
			return err
		}
		after, _, err = tx.LockSigningKeys() // the lock is held already: a read
		return err
	})
	return after, err
}

// first makes the first key of an empty table, signing at once.
func (r *Ring) first(tx *postgres.Tx, rows []postgres.SigningKey, now time.Time) error {
	if len(rows) > 0 {
		return nil // another replica made it first
	}
	row, err := r.newRow(now, now)
	if err != nil {
		return err
	}
	if err := tx.AddSigningKey(row); err != nil {
		return err
	}
	return tx.Audit(rotatedAudit(row, now, "first key"))
}

// scheduled does what the schedule calls for, decided again on the rows
// read under the lock: another replica may have rotated or pruned since
// this one looked.
func (r *Ring) scheduled(tx *postgres.Tx, rows []postgres.SigningKey, now time.Time) error {
	if r.due(rows, now) {
		if _, err := r.rotate(tx, rows, now, "scheduled"); err != nil {
			return err
		}
	}
	if kids := r.retired(rows, now); len(kids) > 0 {
		if err := tx.DeleteSigningKeys(kids); err != nil {
			return err
		}
		r.cfg.Log.Info("keyring: retired signing keys deleted", "kids", kids)
	}
	return nil
}

// rotate adds a key published now and signing Lead later; every key not yet
// superseded is superseded from then.
func (r *Ring) rotate(tx *postgres.Tx, rows []postgres.SigningKey, now time.Time, why string) (postgres.SigningKey, error) {
	row, err := r.newRow(now, now.Add(Lead(r.cfg.Interval, r.cfg.Skew)))
	if err != nil {
		return row, err
	}
	var replaced []string
	for _, k := range rows {
		if k.SupersededAt.IsZero() {
			replaced = append(replaced, k.KID)
		}
	}
	if err := tx.SupersedeSigningKeys(row.SignAt); err != nil {
		return row, err
	}
	if err := tx.AddSigningKey(row); err != nil {
		return row, err
	}
	e := rotatedAudit(row, now, why)
	e.Detail["replaces"] = replaced
	if err := tx.Audit(e); err != nil {
		return row, err
	}
	r.cfg.Log.Info("keyring: signing key added", "kid", row.KID, "signs_from", row.SignAt, "replaces", replaced, "why", why)
	return row, nil
}

func (r *Ring) newRow(now, signAt time.Time) (postgres.SigningKey, error) {
	k, err := keys.Generate(r.cfg.Alg)
	if err != nil {
		return postgres.SigningKey{}, err
	}
	return seal(r.cfg.KEK, k, now, signAt)
}

func seal(kek *keys.KEK, k *keys.Key, now, signAt time.Time) (postgres.SigningKey, error) {
	sealed, err := kek.Seal(k)
	if err != nil {
		return postgres.SigningKey{}, err
	}
	publish := now
	if signAt.Before(now) {
		publish = signAt // an imported key that signed before now
	}
	return postgres.SigningKey{
		KID: k.ID, Alg: k.Alg, Sealed: sealed, KEKID: kek.ID(),
		CreatedAt: now, PublishAt: publish, SignAt: signAt,
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
		if !slices.ContainsFunc(rows, func(row postgres.SigningKey) bool { return row.KID == kid }) {
			delete(r.opened, kid) // deleted from the table: forget it
		}
	}
	r.rows = rows
	if r.cfg.OnRead != nil {
		r.cfg.OnRead(r.clock.Now())
	}
	return r.recompute()
}

// timed is the rows' schedule with their keys. r.mu is held.
func (r *Ring) timed() []keys.Timed {
	ts := Schedule(r.rows, r.cfg.RetireAfter)
	for i := range ts {
		ts[i].Key = r.opened[ts[i].KID]
	}
	return ts
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

// Import moves the file keys of set into an empty table, so that a
// deployment switching from AUTHD_SIGNING_KEYS to database keys keeps
// signing with the key its verifiers know: set's signing key signs from now
// on, its other keys stay published for RetireAfter. Run it before the
// replicas start with AUTHD_KEY_ENCRYPTION_KEY; it makes no key of its own.
func Import(ctx context.Context, db *postgres.DB, c clock.Clock, cfg Config, set *keys.Set) error {
	cfg, err := cfg.withDefaults()
	if err != nil {
		return err
	}
	r := &Ring{db: db, clock: c, cfg: cfg}
	_, err = r.change(ctx, func(tx *postgres.Tx, rows []postgres.SigningKey, now time.Time) error {
		if len(rows) > 0 {
			return ErrNotEmpty
		}
		var kids []string
		for i, k := range set.All() {
			// The signing key signs from now; the others signed before it
			// (a second earlier suffices for keys.At) and are superseded
			// now, so they leave the JWKS RetireAfter from now.
			signAt, superseded := now, time.Time{}
			if i > 0 {
				signAt, superseded = now.Add(-time.Second), now
			}
			row, err := seal(cfg.KEK, k, now, signAt)
			if err != nil {
				return err
			}
			row.SupersededAt = superseded
			if err := tx.AddSigningKey(row); err != nil {
				return err
			}
			kids = append(kids, k.ID)
		}
		return tx.Audit(postgres.AuditEvent{At: now, Type: audit.KeyRotated, Detail: map[string]any{
			"kid": set.Signing().ID, "alg": set.Signing().Alg, "sign_at": now, "why": "imported from files", "imported": kids,
		}})
	})
	return err
}
