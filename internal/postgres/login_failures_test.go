package postgres_test

import (
	"testing"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/seedc5a8123e/authd/internal/postgres"
)

// failureRow reads one key's row; ok is false when there is none.
func failureRow(t *testing.T, db *postgres.DB, scope, key string) (r postgres.LoginFailures, ok bool) {
	t.Helper()
	rows, _ := db.Pool().Query(ctx, `SELECT scope, key, failures, last_failed_at, pending, pending_at
		FROM login_failures WHERE scope = $1 AND key = $2`, scope, key)
	all, err := pgx.CollectRows(rows, pgx.RowToStructByName[postgres.LoginFailures])
	if err != nil {
		t.Fatal(err)
	}
	if len(all) == 0 {
		return postgres.LoginFailures{}, false
	}
	return all[0], true
}

// putRow writes one key's row as given.
func putRow(t *testing.T, db *postgres.DB, r postgres.LoginFailures) {
	t.Helper()
	if _, err := db.Pool().Exec(ctx, `INSERT INTO login_failures (scope, key, failures, last_failed_at, pending, pending_at)
		VALUES ($1, $2, $3, $4, $5, $6)`, r.Scope, r.Key, r.Failures, r.LastFailedAt, r.Pending, r.PendingAt); err != nil {
		t.Fatal(err)
	}
}

// claim runs LockLoginKeys and ClaimLogin in one transaction, as a claim
// the throttle allows does.
func claim(t *testing.T, db *postgres.DB, account, ip string, at, staleBefore time.Time) {
	t.Helper()
	if err := db.InTx(ctx, func(tx *postgres.Tx) error {
		if _, err := tx.LockLoginKeys(account, ip); err != nil {
			return err
		}
		return tx.ClaimLogin(account, ip, at, staleBefore)
	}); err != nil {
		t.Fatal(err)
	}
}

func TestClaimLogin(t *testing.T) {
	t.Parallel()
	stale := t0.Add(-time.Minute)

	t.Run("ClaimsCountAsPendingOnBothKeys", func(t *testing.T) {
		t.Parallel()
		db, _ := setup(t)
		claim(t, db, "Alice", "192.0.2.1", t0, stale)
		claim(t, db, "alice", "192.0.2.1", t0.Add(time.Second), stale)
		for _, k := range [][2]string{{postgres.ScopeAccount, "alice"}, {postgres.ScopeIP, "192.0.2.1"}} {
			r, ok := failureRow(t, db, k[0], k[1])
			if !ok || r.Pending != 2 || r.Failures != 0 || r.PendingAt == nil || !r.PendingAt.Equal(t0.Add(time.Second)) || !r.LastFailedAt.Equal(t0) {
				t.Fatalf("%s row = %+v, %v; want two pending, none failed", k[0], r, ok)
			}
		}
	})

	t.Run("AnEmptyIPClaimsOnlyTheAccount", func(t *testing.T) {
		t.Parallel()
		db, _ := setup(t)
		claim(t, db, "alice", "", t0, stale)
		rows, err := db.LoginFailures(ctx, "alice", "")
		if err != nil || len(rows) != 1 || rows[0].Scope != postgres.ScopeAccount || rows[0].Pending != 1 {
			t.Fatalf("rows = %+v, %v; want the account row only", rows, err)
		}
	})

	t.Run("StalePendingStartsAgainFromZero", func(t *testing.T) {
		t.Parallel()
		db, _ := setup(t)
		old := stale.Add(-time.Second)
		putRow(t, db, postgres.LoginFailures{Scope: postgres.ScopeAccount, Key: "alice", Failures: 2, LastFailedAt: old, Pending: 3, PendingAt: &old})
		claim(t, db, "alice", "", t0, stale)
		if r, _ := failureRow(t, db, postgres.ScopeAccount, "alice"); r.Pending != 1 || r.Failures != 2 || !r.PendingAt.Equal(t0) {
			t.Fatalf("row = %+v; want one pending, the failures kept", r)
		}
	})

	t.Run("FreshPendingAddsUp", func(t *testing.T) {
		t.Parallel()
		db, _ := setup(t)
		fresh := stale.Add(time.Second)
		putRow(t, db, postgres.LoginFailures{Scope: postgres.ScopeAccount, Key: "alice", LastFailedAt: fresh, Pending: 3, PendingAt: &fresh})
		claim(t, db, "alice", "", t0, stale)
		if r, _ := failureRow(t, db, postgres.ScopeAccount, "alice"); r.Pending != 4 {
			t.Fatalf("row = %+v; want four pending", r)
		}
	})

	t.Run("TheLockedReadSeesEveryEarlierClaim", func(t *testing.T) {
		t.Parallel()
		db, _ := setup(t)
		// The first claim holds the account's lock until released. Keyed
		// on the account alone, with different addresses, so only the
		// account lock can make the second wait.
		release := holdTx(t, db, func(tx *postgres.Tx) error {
			if _, err := tx.LockLoginKeys("Alice", "192.0.2.1"); err != nil {
				return err
			}
			return tx.ClaimLogin("Alice", "192.0.2.1", t0, stale)
		})
		finished := make(chan struct{})
		var seen []postgres.LoginFailures
		var secondErr error
		go func() {
			defer close(finished)
			secondErr = db.InTx(ctx, func(tx *postgres.Tx) error {
				var err error
				seen, err = tx.LockLoginKeys("alice", "192.0.2.2")
				return err
			})
		}()
		awaitBlocked(t, db, finished)
		if err := release(); err != nil {
			t.Fatal(err)
		}
		<-finished
		if secondErr != nil || len(seen) != 1 || seen[0].Pending != 1 {
			t.Fatalf("second read = %+v, %v; want the first claim's pending", seen, secondErr)
		}
	})
}

func TestSettleLoginFailure(t *testing.T) {
	t.Parallel()
	forget := t0.Add(-24 * time.Hour)

	t.Run("AddsAFailureAndSettlesTheClaim", func(t *testing.T) {
		t.Parallel()
		db, _ := setup(t)
		claim(t, db, "alice", "192.0.2.1", t0, t0.Add(-time.Minute))
		at := t0.Add(time.Second)
		if err := db.SettleLoginFailure(ctx, "Alice", "192.0.2.1", at, forget); err != nil {
			t.Fatal(err)
		}
		if err := db.SettleLoginFailure(ctx, "alice", "192.0.2.1", at.Add(time.Second), forget); err != nil {
			t.Fatal(err)
		}
		for _, k := range [][2]string{{postgres.ScopeAccount, "alice"}, {postgres.ScopeIP, "192.0.2.1"}} {
			if r, _ := failureRow(t, db, k[0], k[1]); r.Failures != 2 || r.Pending != 0 || !r.LastFailedAt.Equal(at.Add(time.Second)) {
				t.Fatalf("%s row = %+v; want two failures, none pending", k[0], r)
			}
		}
	})

	t.Run("FailuresOlderThanForgetBeforeStartAgain", func(t *testing.T) {
		t.Parallel()
		db, _ := setup(t)
		old := forget.Add(-time.Second)
		putRow(t, db, postgres.LoginFailures{Scope: postgres.ScopeAccount, Key: "alice", Failures: 9, LastFailedAt: old})
		if err := db.SettleLoginFailure(ctx, "alice", "", t0, forget); err != nil {
			t.Fatal(err)
		}
		if r, _ := failureRow(t, db, postgres.ScopeAccount, "alice"); r.Failures != 1 || !r.LastFailedAt.Equal(t0) || r.Pending != 0 {
			t.Fatalf("row = %+v; want one failure", r)
		}
	})

	t.Run("RecentFailuresAddUp", func(t *testing.T) {
		t.Parallel()
		db, _ := setup(t)
		recent := forget.Add(time.Second)
		putRow(t, db, postgres.LoginFailures{Scope: postgres.ScopeAccount, Key: "alice", Failures: 9, LastFailedAt: recent})
		if err := db.SettleLoginFailure(ctx, "alice", "", t0, forget); err != nil {
			t.Fatal(err)
		}
		if r, _ := failureRow(t, db, postgres.ScopeAccount, "alice"); r.Failures != 10 {
			t.Fatalf("row = %+v; want ten failures", r)
		}
	})
}

func TestSettleLoginSuccess(t *testing.T) {
	t.Parallel()

	t.Run("ForgetsTheAccountButKeepsTheIPFailures", func(t *testing.T) {
		t.Parallel()
		db, _ := setup(t)
		before := t0.Add(-time.Minute)
		putRow(t, db, postgres.LoginFailures{Scope: postgres.ScopeAccount, Key: "alice", Failures: 3, LastFailedAt: before})
		putRow(t, db, postgres.LoginFailures{Scope: postgres.ScopeIP, Key: "192.0.2.1", Failures: 7, LastFailedAt: before})
		claim(t, db, "alice", "192.0.2.1", t0, t0.Add(-time.Minute))
		if err := db.SettleLoginSuccess(ctx, "Alice", "192.0.2.1"); err != nil {
			t.Fatal(err)
		}
		if r, ok := failureRow(t, db, postgres.ScopeAccount, "alice"); ok {
			t.Fatalf("account row kept: %+v", r)
		}
		if r, _ := failureRow(t, db, postgres.ScopeIP, "192.0.2.1"); r.Failures != 7 || r.Pending != 0 || !r.LastFailedAt.Equal(before) {
			t.Fatalf("ip row = %+v; want its failures and their time kept, none pending", r)
		}
	})

	t.Run("KeepsTheAccountRowWhileClaimsAreInFlight", func(t *testing.T) {
		t.Parallel()
		db, _ := setup(t)
		claim(t, db, "alice", "", t0, t0.Add(-time.Minute))
		claim(t, db, "alice", "", t0, t0.Add(-time.Minute))
		if err := db.SettleLoginSuccess(ctx, "alice", ""); err != nil {
			t.Fatal(err)
		}
		if r, ok := failureRow(t, db, postgres.ScopeAccount, "alice"); !ok || r.Pending != 1 || r.Failures != 0 {
			t.Fatalf("account row = %+v, %v; want one still pending", r, ok)
		}
	})
}

func TestDeleteLoginFailuresBefore(t *testing.T) {
	t.Parallel()
	db, _ := setup(t)
	before, stale := t0.Add(-24*time.Hour), t0.Add(-time.Minute)
	old, recentClaim, staleClaim := before.Add(-time.Second), stale.Add(time.Second), stale.Add(-time.Second)
	putRow(t, db, postgres.LoginFailures{Scope: postgres.ScopeAccount, Key: "quiet", Failures: 3, LastFailedAt: old})
	putRow(t, db, postgres.LoginFailures{Scope: postgres.ScopeAccount, Key: "in-flight", Failures: 3, LastFailedAt: old, Pending: 1, PendingAt: &recentClaim})
	putRow(t, db, postgres.LoginFailures{Scope: postgres.ScopeAccount, Key: "crashed", Failures: 3, LastFailedAt: old, Pending: 1, PendingAt: &staleClaim})
	putRow(t, db, postgres.LoginFailures{Scope: postgres.ScopeIP, Key: "recent", Failures: 3, LastFailedAt: before})

	n, err := db.DeleteLoginFailuresBefore(ctx, before, stale)
	if err != nil || n != 2 {
		t.Fatalf("deleted %d, %v; want the quiet row and the one whose claim went stale", n, err)
	}
	for _, k := range [][2]string{{postgres.ScopeAccount, "quiet"}, {postgres.ScopeAccount, "crashed"}} {
		if _, ok := failureRow(t, db, k[0], k[1]); ok {
			t.Errorf("%s kept", k[1])
		}
	}
	for _, k := range [][2]string{{postgres.ScopeAccount, "in-flight"}, {postgres.ScopeIP, "recent"}} {
		if _, ok := failureRow(t, db, k[0], k[1]); !ok {
			t.Errorf("%s deleted", k[1])
		}
	}
}
