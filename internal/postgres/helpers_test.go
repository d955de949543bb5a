package postgres_test

import (
	"context"
	"os"
	"sync"
	"testing"
	"time"

	"github.com/google/uuid"

	"github.com/seedc5a8123e/authd/internal/authdtest"
	"github.com/seedc5a8123e/authd/internal/clock"
	"github.com/seedc5a8123e/authd/internal/pgtest"
	"github.com/seedc5a8123e/authd/internal/postgres"
	"github.com/seedc5a8123e/authd/internal/token"
)

func TestMain(m *testing.M) { os.Exit(pgtest.Main(m)) }

// t0 is where every test's clock starts.
var t0 = time.Date(2030, 1, 1, 12, 0, 0, 0, time.UTC)

// testBundle is what a test needs beside the store: the clock its times come
// from (no statement reads the server's clock).
type testBundle struct {
	clk *clock.Manual
}

// setup gives a test its own migrated database and a manual clock at t0.
func setup(t *testing.T) (*postgres.DB, *testBundle) {
	t.Helper()
	return pgtest.NewDB(t), &testBundle{clk: clock.NewManual(t0)}
}

var ctx = context.Background()

// createUser inserts an enabled user with a placeholder hash.
func createUser(t *testing.T, db *postgres.DB, b *testBundle, name, role string) postgres.User {
	t.Helper()
	now := b.clk.Now()
	u := postgres.User{ID: uuid.NewString(), Username: name, PasswordHash: "hash-of-" + name, Role: role, CreatedAt: now, UpdatedAt: now}
	if err := db.CreateUser(ctx, u); err != nil {
		t.Fatalf("create user %s: %v", name, err)
	}
	u, err := db.UserByID(ctx, u.ID)
	if err != nil {
		t.Fatal(err)
	}
	return u
}

// newSession is a session of u created at created and ending at expires,
// with refresh token hash HashRefresh(refresh) (none if refresh is empty),
// as a grant that saw u would write it.
func newSession(u postgres.User, created, expires time.Time, refresh string) postgres.NewSession {
	s := postgres.NewSession{
		ID: uuid.NewString(), UserID: u.ID, CreatedAt: created, ExpiresAt: expires,
		JTI: uuid.NewString(), AccessExp: created.Add(10 * time.Minute),
		UserAgent: "test", IP: "192.0.2.1",
		UserCredentialsVersion: u.CredentialsVersion, UserRole: u.Role,
	}
	if s.AccessExp.After(expires) {
		s.AccessExp = expires
	}
	if refresh != "" {
		s.RefreshTokenHash = token.HashRefresh(refresh)
	}
	return s
}

// createSession writes s and returns its id.
func createSession(t *testing.T, db *postgres.DB, s postgres.NewSession) string {
	t.Helper()
	if _, err := db.CreateSession(ctx, s); err != nil {
		t.Fatalf("create session: %v", err)
	}
	return s.ID
}

// liveSession is a session of u created now, ending in a day.
func liveSession(t *testing.T, db *postgres.DB, b *testBundle, u postgres.User, refresh string) string {
	t.Helper()
	now := b.clk.Now()
	return createSession(t, db, newSession(u, now, now.Add(24*time.Hour), refresh))
}

func sessionRow(t *testing.T, db *postgres.DB, sid string) postgres.Session {
	t.Helper()
	s, err := db.SessionByID(ctx, sid)
	if err != nil {
		t.Fatalf("session %s: %v", sid, err)
	}
	return s
}

func sids(entries []postgres.RevokedSession) map[string]bool {
	out := map[string]bool{}
	for _, e := range entries {
		out[e.SID] = true
	}
	return out
}

// holdTx runs fn in a transaction on another goroutine and keeps the
// transaction open, with whatever locks fn took, until the returned release
// is called; release lets it commit and returns the transaction's error.
func holdTx(t *testing.T, db *postgres.DB, fn func(tx *postgres.Tx) error) (release func() error) {
	t.Helper()
	held, next, done := make(chan error, 1), make(chan struct{}), make(chan error, 1)
	tctx, cancel := context.WithTimeout(ctx, 30*time.Second)
	go func() {
		done <- db.InTx(tctx, func(tx *postgres.Tx) error {
			err := fn(tx)
			held <- err
			if err != nil {
				return err
			}
			<-next
			return nil
		})
	}()
	if err := <-held; err != nil {
		cancel()
		t.Fatalf("held transaction: %v", err)
	}
	var once sync.Once
	release = func() error {
		once.Do(func() { close(next) })
		err := <-done
		done <- err // a second release gets the same answer
		cancel()
		return err
	}
	t.Cleanup(func() { _ = release() })
	return release
}

// awaitBlocked waits until a statement in db's database waits for a lock,
// and fails the test if finished reports the waiter done first: it should
// not have got past the lock.
func awaitBlocked(t *testing.T, db *postgres.DB, finished <-chan struct{}) {
	t.Helper()
	authdtest.Eventually(t, 10*time.Second, func() bool {
		select {
		case <-finished:
			t.Fatal("the second transaction did not wait for the first one's lock")
		default:
		}
		var n int
		err := db.Pool().QueryRow(ctx, `SELECT count(*) FROM pg_stat_activity
			WHERE datname = current_database() AND wait_event_type = 'Lock'`).Scan(&n)
		if err != nil {
			t.Fatal(err)
		}
		return n > 0
	}, "a statement waiting for a lock")
}
