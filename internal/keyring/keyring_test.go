package keyring_test

import (
	"context"
	"crypto/ed25519"
	"crypto/x509"
	"errors"
	"io"
	"log/slog"
	"os"
	"sync"
	"testing"
	"time"

	"github.com/robfig/cron/v3"

	"github.com/seedc5a8123e/authd/internal/audit"
	"github.com/seedc5a8123e/authd/internal/clock"
	"github.com/seedc5a8123e/authd/internal/keyring"
	"github.com/seedc5a8123e/authd/internal/keys"
	"github.com/seedc5a8123e/authd/internal/pgtest"
	"github.com/seedc5a8123e/authd/internal/postgres"
)

func TestMain(m *testing.M) { os.Exit(pgtest.Main(m)) }

const (
	skew   = 5 * time.Second
	retire = 11 * time.Minute
)

var t0 = time.Date(2026, 3, 1, 12, 0, 0, 0, time.UTC)

func config(t *testing.T, kek *keys.KEK) keyring.Config {
	t.Helper()
	sched, err := cron.ParseStandard(keyring.DefaultSchedule)
	if err != nil {
		t.Fatal(err)
	}
	return keyring.Config{
		KEK: kek, Schedule: sched, RetireAfter: retire, Skew: skew, Create: true,
		Log: slog.New(slog.NewTextHandler(io.Discard, nil)),
	}
}

func newKEK(t *testing.T) *keys.KEK {
	t.Helper()
	v, err := keys.NewKEK()
	if err != nil {
		t.Fatal(err)
	}
	k, err := keys.ParseKEK(v)
	if err != nil {
		t.Fatal(err)
	}
	return k
}

func newDB(t *testing.T) *postgres.DB {
	t.Helper()
	db := pgtest.NewDB(t)
	if err := db.RefreshSchema(context.Background()); err != nil {
		t.Fatal(err)
	}
	return db
}

// replicas starts n rings on one database at once, as replicas starting
// together do.
func replicas(t *testing.T, db *postgres.DB, c clock.Clock, cfg keyring.Config, n int) []*keyring.Ring {
	t.Helper()
	rings := make([]*keyring.Ring, n)
	errs := make([]error, n)
	var wg sync.WaitGroup
	for i := range n {
		wg.Add(1)
		go func() {
			defer wg.Done()
			rings[i], errs[i] = keyring.New(context.Background(), db, c, cfg)
		}()
	}
	wg.Wait()
	for _, err := range errs {
		if err != nil {
			t.Fatal(err)
		}
	}
	return rings
}

func rows(t *testing.T, db *postgres.DB) []postgres.SigningKey {
	t.Helper()
	rs, err := db.SigningKeys(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	return rs
}

func kids(s *keys.Set) []string {
	var out []string
	for _, k := range s.All() {
		out = append(out, k.ID)
	}
	return out
}

func auditCount(t *testing.T, db *postgres.DB, typ string) int {
	t.Helper()
	var n int
	if err := db.Pool().QueryRow(context.Background(), `SELECT count(*) FROM audit_events WHERE type = $1`, typ).Scan(&n); err != nil {
		t.Fatal(err)
	}
	return n
}

// TestFirstKeyOnceAcrossReplicas: replicas starting together on an empty
// table make one key between them, which signs at once.
func TestFirstKeyOnceAcrossReplicas(t *testing.T) {
	db := newDB(t)
	c := clock.NewManual(t0)
	rings := replicas(t, db, c, config(t, newKEK(t)), 4)
	if n := len(rows(t, db)); n != 1 {
		t.Fatalf("%d keys after 4 replicas started, want 1", n)
	}
	want := rings[0].Current().Signing().ID
	for i, r := range rings {
		if got := r.Current().Signing().ID; got != want {
			t.Errorf("replica %d signs with %s, replica 0 with %s", i, got, want)
		}
	}
	if n := auditCount(t, db, audit.KeyRotated); n != 1 {
		t.Errorf("%d signing_key_rotated rows, want 1", n)
	}
}

// TestScheduledRotation walks one rotation with a manual clock: nothing is
// due before the schedule; when due, however many replicas maintain at
// once, one key is added, published at once and signing Lead later on
// every replica, including one that has not re-read the table; the old key
// stays published for RetireAfter, then its row is deleted.
func TestScheduledRotation(t *testing.T) {
	ctx := context.Background()
	db := newDB(t)
	c := clock.NewManual(t0)
	cfg := config(t, newKEK(t))
	rings := replicas(t, db, c, cfg, 3)
	a, b, stale := rings[0], rings[1], rings[2]
	old := a.Current().Signing().ID

	c.Advance(720*time.Hour - time.Second)
	if err := a.Maintain(ctx); err != nil {
		t.Fatal(err)
	}
	if n := len(rows(t, db)); n != 1 {
		t.Fatalf("%d keys a second before the rotation is due, want 1", n)
	}

	c.Advance(time.Second)
	var wg sync.WaitGroup
	for _, r := range []*keyring.Ring{a, b} {
		wg.Add(1)
		go func() {
			defer wg.Done()
			if err := r.Maintain(ctx); err != nil {
				t.Error(err)
			}
		}()
	}
	wg.Wait()
	rs := rows(t, db)
	if len(rs) != 2 {
		t.Fatalf("%d keys after two replicas found the rotation due, want 2", len(rs))
	}
	next := rs[1]
	if next.KID == old {
		t.Fatal("the new row is the old key")
	}
	lead := keyring.Lead(keyring.DefaultInterval, skew)
	if got := next.SignAt.Sub(next.PublishAt); got != lead {
		t.Errorf("published %s before signing, want %s", got, lead)
	}
	if lead < keys.JWKSMaxAge {
		t.Errorf("lead %s is shorter than the JWKS max-age %s", lead, keys.JWKSMaxAge)
	}
	if !rs[0].SupersededAt.Equal(next.SignAt) {
		t.Errorf("old key superseded at %s, want %s (the new key's switch)", rs[0].SupersededAt, next.SignAt)
	}
	for _, r := range []*keyring.Ring{a, b} {
		s := r.Current()
		if s.Signing().ID != old {
			t.Errorf("the new key signs before its lead: %s", s.Signing().ID)
		}
		if _, ok := s.Lookup(next.KID); !ok {
			t.Error("the new key is not published at once")
		}
	}
	if _, ok := stale.Current().Lookup(next.KID); ok {
		t.Error("a replica that has not re-read the table knows the new key")
	}
	if err := stale.Refresh(ctx); err != nil {
		t.Fatal(err)
	}

	c.Advance(lead - time.Nanosecond)
	if got := a.Current().Signing().ID; got != old {
		t.Fatalf("the new key signs %s early", time.Nanosecond)
	}
	c.Advance(time.Nanosecond)
	for i, r := range rings {
		// No Refresh since: each replica switches from the rows it holds.
		s := r.Current()
		if got := s.Signing().ID; got != next.KID {
			t.Errorf("replica %d signs with %s at the switch, want %s", i, got, next.KID)
		}
		if _, ok := s.Lookup(old); !ok {
			t.Errorf("replica %d dropped the old key at the switch", i)
		}
	}

	c.Advance(retire - time.Nanosecond)
	if _, ok := a.Current().Lookup(old); !ok {
		t.Fatal("the old key left the JWKS before RetireAfter")
	}
	c.Advance(time.Nanosecond)
	if _, ok := a.Current().Lookup(old); ok {
		t.Fatal("the old key is still published after RetireAfter")
	}
	if err := b.Maintain(ctx); err != nil {
		t.Fatal(err)
	}
	if rs := rows(t, db); len(rs) != 1 || rs[0].KID != next.KID {
		t.Fatalf("after retirement the table holds %d keys, want only %s", len(rs), next.KID)
	}
	if err := a.Refresh(ctx); err != nil {
		t.Fatal(err)
	}
	if got := kids(a.Current()); len(got) != 1 || got[0] != next.KID {
		t.Fatalf("published %v, want only %s", got, next.KID)
	}
	// One row for the first key, one for the rotation.
	if n := auditCount(t, db, audit.KeyRotated); n != 2 {
		t.Errorf("%d signing_key_rotated rows, want 2", n)
	}
}

// TestRotateOnDemand: `authd keys rotate` adds a key whatever the schedule,
// records the actor, and restarts the schedule from it.
func TestRotateOnDemand(t *testing.T) {
	ctx := context.Background()
	db := newDB(t)
	c := clock.NewManual(t0)
	r := replicas(t, db, c, config(t, newKEK(t)), 1)[0]
	c.Advance(time.Hour)
	kid, signAt, err := r.Rotate(audit.WithActor(ctx, audit.ActorCLI))
	if err != nil {
		t.Fatal(err)
	}
	if want := c.Now().Add(keyring.Lead(keyring.DefaultInterval, skew)); !signAt.Equal(want) {
		t.Errorf("signs at %s, want %s", signAt, want)
	}
	if _, ok := r.Current().Lookup(kid); !ok {
		t.Fatal("the rotated key is not published")
	}
	var actor string
	if err := db.Pool().QueryRow(ctx, `SELECT actor FROM audit_events WHERE type = $1 AND detail->>'kid' = $2`,
		audit.KeyRotated, kid).Scan(&actor); err != nil {
		t.Fatal(err)
	}
	if actor != audit.ActorCLI {
		t.Errorf("actor %q, want %q", actor, audit.ActorCLI)
	}
	// The schedule counts from the newest key: 720h after the manual
	// rotation, not after the first key.
	c.Advance(720*time.Hour - time.Hour)
	if err := r.Maintain(ctx); err != nil {
		t.Fatal(err)
	}
	if n := len(rows(t, db)); n != 1 {
		t.Errorf("%d keys 720h after the first key, 719h after the manual rotation; want 1 (the first retired)", n)
	}
}

// TestWrongKEK: a replica with another key-encryption key refuses to start
// and says why, naming the key but nothing secret.
func TestWrongKEK(t *testing.T) {
	db := newDB(t)
	c := clock.NewManual(t0)
	replicas(t, db, c, config(t, newKEK(t)), 1)
	_, err := keyring.New(context.Background(), db, c, config(t, newKEK(t)))
	if !errors.Is(err, keys.ErrWrongKEK) {
		t.Fatalf("err = %v, want ErrWrongKEK", err)
	}
}

// TestSealedAtRest: the table holds no private key in the clear, neither
// its PKCS#8 form nor its raw bytes.
func TestSealedAtRest(t *testing.T) {
	db := newDB(t)
	c := clock.NewManual(t0)
	r := replicas(t, db, c, config(t, newKEK(t)), 1)[0]
	priv := r.Current().Signing().Private().(ed25519.PrivateKey)
	der, err := x509.MarshalPKCS8PrivateKey(priv)
	if err != nil {
		t.Fatal(err)
	}
	for what, secret := range map[string][]byte{"PKCS#8": der, "seed": priv.Seed()} {
		var n int
		if err := db.Pool().QueryRow(context.Background(),
			`SELECT count(*) FROM signing_keys WHERE position($1::bytea in sealed) > 0`, secret[len(secret)-16:]).Scan(&n); err != nil {
			t.Fatal(err)
		}
		if n != 0 {
			t.Fatalf("a stored row contains the key's %s bytes", what)
		}
	}
}

// TestNoFirstKeyWithoutCreate: an admin command's ring (no Create) leaves
// an empty table empty, so authd keys import still can fill it.
func TestNoFirstKeyWithoutCreate(t *testing.T) {
	db := newDB(t)
	cfg := config(t, newKEK(t))
	cfg.Create = false
	if _, err := keyring.New(context.Background(), db, clock.NewManual(t0), cfg); !errors.Is(err, keyring.ErrNoKeys) {
		t.Fatalf("err = %v, want ErrNoKeys", err)
	}
	if n := len(rows(t, db)); n != 0 {
		t.Fatalf("%d keys made without Create", n)
	}
}

// TestClockOffTheDatabaseIsRefused: with CheckDBClock, a host whose clock
// is further than Skew from the database's changes no key: its schedule
// would be off by as much for every replica.
func TestClockOffTheDatabaseIsRefused(t *testing.T) {
	db := newDB(t)
	cfg := config(t, newKEK(t))
	cfg.CheckDBClock = true
	_, err := keyring.New(context.Background(), db, clock.NewManual(time.Now().Add(-6*time.Minute)), cfg)
	var ce *keyring.ClockError
	if !errors.As(err, &ce) {
		t.Fatalf("a clock 6 minutes behind: err = %v, want a ClockError", err)
	}
	if n := len(rows(t, db)); n != 0 {
		t.Fatalf("%d keys made by a host with a wrong clock", n)
	}
	if _, err := keyring.New(context.Background(), db, clock.NewManual(time.Now()), cfg); err != nil {
		t.Fatalf("a clock in step: %v", err)
	}
}

// TestImport: file keys move into an empty table with the first signing
// and the rest published for RetireAfter; a second import is refused.
func TestImport(t *testing.T) {
	ctx := context.Background()
	db := newDB(t)
	c := clock.NewManual(t0)
	cfg := config(t, newKEK(t))
	a, _ := keys.Generate(keys.EdDSA)
	b, _ := keys.Generate(keys.ES256)
	files, _ := keys.NewSet(a, b)
	if err := keyring.Import(ctx, db, c, cfg, files); err != nil {
		t.Fatal(err)
	}
	r, err := keyring.New(ctx, db, c, cfg)
	if err != nil {
		t.Fatal(err)
	}
	if got := kids(r.Current()); len(got) != 2 || got[0] != a.ID || got[1] != b.ID {
		t.Fatalf("after import: %v, want [%s %s]", got, a.ID, b.ID)
	}
	if err := keyring.Import(ctx, db, c, cfg, files); !errors.Is(err, keyring.ErrNotEmpty) {
		t.Fatalf("second import: err = %v, want ErrNotEmpty", err)
	}
	c.Advance(retire)
	if got := kids(r.Current()); len(got) != 1 || got[0] != a.ID {
		t.Fatalf("after RetireAfter: %v, want [%s]", got, a.ID)
	}
}

// TestNoSchema: on the schema before 000013, database keys are refused with
// what to do.
func TestNoSchema(t *testing.T) {
	db := newDB(t)
	if _, err := db.Pool().Exec(context.Background(), `DROP TABLE signing_keys`); err != nil {
		t.Fatal(err)
	}
	_, err := keyring.New(context.Background(), db, clock.NewManual(t0), config(t, newKEK(t)))
	if !errors.Is(err, postgres.ErrNoSigningKeySchema) {
		t.Fatalf("err = %v, want ErrNoSigningKeySchema", err)
	}
}

// TestOnReadHearsEveryRead: the metric hook hears the start-up read and
// each re-read, at the ring's clock.
func TestOnReadHearsEveryRead(t *testing.T) {
	db := newDB(t)
	c := clock.NewManual(t0)
	cfg := config(t, newKEK(t))
	var reads []time.Time
	cfg.OnRead = func(at time.Time) { reads = append(reads, at) }
	r, err := keyring.New(context.Background(), db, c, cfg)
	if err != nil {
		t.Fatal(err)
	}
	c.Advance(time.Minute)
	if err := r.Maintain(context.Background()); err != nil {
		t.Fatal(err)
	}
	if len(reads) != 2 || !reads[1].Equal(t0.Add(time.Minute)) {
		t.Fatalf("reads %v, want the start-up one and one at %s", reads, t0.Add(time.Minute))
	}
}
