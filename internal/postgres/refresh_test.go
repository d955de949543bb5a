package postgres_test

import (
	"errors"
	"testing"

	"github.com/seedc5a8123e/authd/internal/pgtest"
	"github.com/seedc5a8123e/authd/internal/postgres"
	"github.com/seedc5a8123e/authd/internal/token"
)

func TestRefreshBySIDChecksTheHashAgainstThatSession(t *testing.T) {
	t.Parallel()
	db, b := setup(t)
	u := createUser(t, db, b, "alice", "user")
	alices := liveSession(t, db, b, u, "a0")
	bobs := liveSession(t, db, b, createUser(t, db, b, "bob", "user"), "b0")
	rotate(t, db, bobs, "b1", t0)
	rotate(t, db, bobs, "b2", t0)
	// Bob's current, previous and older tokens, presented as Alice's.
	for _, tok := range []string{"b2", "b1", "b0"} {
		if r, err := lockRefreshOf(db, alices, tok); !errors.Is(err, postgres.ErrNotFound) {
			t.Errorf("%s named as alice's session: %+v, %v; want ErrNotFound", tok, r, err)
		}
		if r, err := lockRefreshOf(db, bobs, tok); err != nil || r.SessionID != bobs {
			t.Errorf("%s named as bob's session: %+v, %v; want bob's", tok, r, err)
		}
	}
}

func TestRevokeTxSetsItsLimitsWithoutLeavingThem(t *testing.T) {
	t.Parallel()
	db, _ := setup(t)
	var inside, idle string
	err := db.InRevokeTx(ctx, func(tx *postgres.Tx) error {
		return tx.QueryRowForTest(`SELECT current_setting('statement_timeout'), current_setting('idle_in_transaction_session_timeout')`, &inside, &idle)
	})
	if err != nil || inside != "5s" || idle != "5s" {
		t.Fatalf("inside InRevokeTx: statement_timeout %q, idle_in_transaction_session_timeout %q, %v; want 5s and 5s", inside, idle, err)
	}
	// SET LOCAL dies with the transaction: no pooled connection keeps it.
	var after string
	if err := db.InTx(ctx, func(tx *postgres.Tx) error {
		return tx.QueryRowForTest(`SELECT current_setting('statement_timeout')`, &after)
	}); err != nil || after == "5s" {
		t.Fatalf("after InRevokeTx: statement_timeout %q, %v; want the server's default", after, err)
	}
}

func TestOpenSizesThePool(t *testing.T) {
	t.Parallel()
	u := pgtest.URL(t)
	for _, tc := range []struct {
		url  string
		o    postgres.Options
		want int32
	}{
		{u, postgres.Options{MaxConns: 3}, 3},
		{u + "&pool_max_conns=5", postgres.Options{}, 5}, // the zero Options leave the URL's
	} {
		db, err := postgres.Open(ctx, tc.url, tc.o)
		if err != nil {
			t.Fatal(err)
		}
		if got := db.Pool().Config().MaxConns; got != tc.want {
			t.Errorf("%+v: MaxConns %d, want %d", tc.o, got, tc.want)
		}
		db.Close()
	}
}

func TestSessionAuthByRefreshHashWithTheSessionsID(t *testing.T) {
	t.Parallel()
	db, b := setup(t)
	alices := liveSession(t, db, b, createUser(t, db, b, "alice", "user"), "a0")
	bobs := liveSession(t, db, b, createUser(t, db, b, "bob", "user"), "b0")
	for _, sid := range []string{"", alices} {
		if a, err := db.SessionAuthByRefreshHash(ctx, sid, token.HashRefresh("a0")); err != nil || a.SID != alices {
			t.Errorf("a0 naming %q: %+v, %v; want alice's session", sid, a, err)
		}
	}
	if a, err := db.SessionAuthByRefreshHash(ctx, bobs, token.HashRefresh("a0")); !errors.Is(err, postgres.ErrNotFound) {
		t.Errorf("a0 naming bob's session: %+v, %v; want ErrNotFound", a, err)
	}
}

// A revoking transaction sends BEGIN with its first statement: one whose
// first statement fails is rolled back, and no connection is left inside a
// transaction; one that sends nothing commits nothing.
func TestRevokeTxOpensWithItsFirstStatement(t *testing.T) {
	t.Parallel()
	db, _ := setup(t)
	if err := db.InRevokeTx(ctx, func(*postgres.Tx) error { return nil }); err != nil {
		t.Fatalf("an empty revoking transaction: %v", err)
	}
	for range 20 {
		var n int
		err := db.InRevokeTx(ctx, func(tx *postgres.Tx) error { return tx.QueryRowForTest(`SELECT 1/0`, &n) })
		if err == nil {
			t.Fatal("division by zero succeeded")
		}
	}
	var open int
	if err := db.Pool().QueryRow(ctx, `SELECT count(*) FROM pg_stat_activity
		WHERE datname = current_database() AND state LIKE 'idle in transaction%'`).Scan(&open); err != nil || open != 0 {
		t.Fatalf("connections left in a transaction: %d, %v", open, err)
	}
}
