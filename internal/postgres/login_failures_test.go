package postgres_test

import (
	"errors"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/seedc5a8123e/authd/internal/pgtest"
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
// the throttle allows does, with the (account, address) row.
func claim(t *testing.T, db *postgres.DB, account, ip string, at, staleBefore time.Time) {
	t.Helper()
	if err := claimErr(db, account, ip, at, staleBefore, true); err != nil {
		t.Fatal(err)
	}
}

func claimErr(db *postgres.DB, account, ip string, at, staleBefore time.Time, perAddress bool) error {
	return db.InTx(ctx, func(tx *postgres.Tx) error {
		if _, err := tx.LockLoginKeys(account, ip); err != nil {
			return err
		}
		return tx.ClaimLogin(account, ip, at, staleBefore, perAddress)
	})
}

// allRows is every row of login_failures, by scope and key.
func allRows(t *testing.T, db *postgres.DB) map[[2]string]postgres.LoginFailures {
	t.Helper()
	rows, _ := db.Pool().Query(ctx, `SELECT scope, key, failures, last_failed_at, pending, pending_at FROM login_failures`)
	all, err := pgx.CollectRows(rows, pgx.RowToStructByName[postgres.LoginFailures])
	if err != nil {
		t.Fatal(err)
	}
	out := map[[2]string]postgres.LoginFailures{}
	for _, r := range all {
		out[[2]string{r.Scope, r.Key}] = r
	}
	return out
}

// threeKeys are the rows of an attempt on alice from 192.0.2.1.
var threeKeys = [][2]string{{postgres.ScopeAccount, "alice"}, {postgres.ScopeAccountIP, "alice|192.0.2.1"}, {postgres.ScopeIP, "192.0.2.1"}}

func TestClaimLogin(t *testing.T) {
	t.Parallel()
	stale := t0.Add(-time.Minute)

	t.Run("ClaimsCountAsPendingOnTheThreeKeys", func(t *testing.T) {
		t.Parallel()
		db, _ := setup(t)
		claim(t, db, "Alice", "192.0.2.1", t0, stale)
		claim(t, db, "alice", "192.0.2.1", t0.Add(time.Second), stale)
		if n := len(allRows(t, db)); n != 3 {
			t.Fatalf("%d rows, want the account's, the account at the address's and the address's", n)
		}
		for _, k := range threeKeys {
			r, ok := failureRow(t, db, k[0], k[1])
			if !ok || r.Pending != 2 || r.Failures != 0 || r.PendingAt == nil || !r.PendingAt.Equal(t0.Add(time.Second)) || !r.LastFailedAt.Equal(t0) {
				t.Fatalf("%s row = %+v, %v; want two pending, none failed", k[0], r, ok)
			}
		}
	})

	t.Run("AnEmptyIPClaimsTheAccountAtAnUnknownAddress", func(t *testing.T) {
		t.Parallel()
		db, _ := setup(t)
		claim(t, db, "alice", "", t0, stale)
		rows, err := db.LoginFailures(ctx, "alice", "")
		if err != nil || len(rows) != 2 || len(allRows(t, db)) != 2 {
			t.Fatalf("rows = %+v, %v; want the account row and its row at no address", rows, err)
		}
		for _, r := range rows {
			if r.Pending != 1 || (r.Scope != postgres.ScopeAccount || r.Key != "alice") && (r.Scope != postgres.ScopeAccountIP || r.Key != "alice|") {
				t.Fatalf("rows = %+v; want account alice and account_ip alice| pending", rows)
			}
		}
	})

	t.Run("WithoutPerAddressClaimsTheAccountAndTheIPOnly", func(t *testing.T) {
		t.Parallel()
		db, _ := setup(t)
		if err := claimErr(db, "alice", "192.0.2.1", t0, stale, false); err != nil {
			t.Fatal(err)
		}
		rows := allRows(t, db)
		if len(rows) != 2 || rows[threeKeys[0]].Pending != 1 || rows[threeKeys[2]].Pending != 1 {
			t.Fatalf("rows = %+v; want the account and the ip pending, nothing else", rows)
		}
	})

	t.Run("TheLockedReadSeesThePairOfThisAddressOnly", func(t *testing.T) {
		t.Parallel()
		db, _ := setup(t)
		claim(t, db, "alice", "192.0.2.1", t0, stale)
		claim(t, db, "alice", "192.0.2.2", t0, stale)
		claim(t, db, "bob", "192.0.2.1", t0, stale)
		var seen []postgres.LoginFailures
		if err := db.InTx(ctx, func(tx *postgres.Tx) error {
			var err error
			seen, err = tx.LockLoginKeys("ALICE", "192.0.2.1")
			return err
		}); err != nil {
			t.Fatal(err)
		}
		got := map[[2]string]int{}
		for _, r := range seen {
			got[[2]string{r.Scope, r.Key}] = r.Pending
		}
		want := map[[2]string]int{threeKeys[0]: 2, threeKeys[1]: 1, threeKeys[2]: 2}
		if len(got) != len(want) {
			t.Fatalf("read %v, want %v", got, want)
		}
		for k, n := range want {
			if got[k] != n {
				t.Fatalf("read %v, want %v", got, want)
			}
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
			return tx.ClaimLogin("Alice", "192.0.2.1", t0, stale, true)
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
		if err := db.SettleLoginFailure(ctx, "Alice", "192.0.2.1", at, forget, true); err != nil {
			t.Fatal(err)
		}
		if err := db.SettleLoginFailure(ctx, "alice", "192.0.2.1", at.Add(time.Second), forget, true); err != nil {
			t.Fatal(err)
		}
		for _, k := range threeKeys {
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
		if err := db.SettleLoginFailure(ctx, "alice", "", t0, forget, true); err != nil {
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
		if err := db.SettleLoginFailure(ctx, "alice", "", t0, forget, true); err != nil {
			t.Fatal(err)
		}
		if r, _ := failureRow(t, db, postgres.ScopeAccount, "alice"); r.Failures != 10 {
			t.Fatalf("row = %+v; want ten failures", r)
		}
	})
}

func TestSettleLoginSuccess(t *testing.T) {
	t.Parallel()

	t.Run("ForgetsTheAccountAndItsPairButKeepsTheIPFailures", func(t *testing.T) {
		t.Parallel()
		db, _ := setup(t)
		before := t0.Add(-time.Minute)
		putRow(t, db, postgres.LoginFailures{Scope: postgres.ScopeAccount, Key: "alice", Failures: 3, LastFailedAt: before})
		putRow(t, db, postgres.LoginFailures{Scope: postgres.ScopeAccountIP, Key: "alice|192.0.2.1", Failures: 2, LastFailedAt: before})
		putRow(t, db, postgres.LoginFailures{Scope: postgres.ScopeAccountIP, Key: "alice|192.0.2.66", Failures: 9, LastFailedAt: before})
		putRow(t, db, postgres.LoginFailures{Scope: postgres.ScopeIP, Key: "192.0.2.1", Failures: 7, LastFailedAt: before})
		claim(t, db, "alice", "192.0.2.1", t0, t0.Add(-time.Minute))
		if err := db.SettleLoginSuccess(ctx, "Alice", "192.0.2.1"); err != nil {
			t.Fatal(err)
		}
		if r, ok := failureRow(t, db, postgres.ScopeAccount, "alice"); ok {
			t.Fatalf("account row kept: %+v", r)
		}
		if r, ok := failureRow(t, db, postgres.ScopeAccountIP, "alice|192.0.2.1"); ok {
			t.Fatalf("the pair of the succeeding address kept: %+v", r)
		}
		if r, _ := failureRow(t, db, postgres.ScopeAccountIP, "alice|192.0.2.66"); r.Failures != 9 || !r.LastFailedAt.Equal(before) {
			t.Fatalf("the pair of another address = %+v; want its 9 failures kept", r)
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
		for _, k := range [][2]string{{postgres.ScopeAccount, "alice"}, {postgres.ScopeAccountIP, "alice|"}} {
			if r, ok := failureRow(t, db, k[0], k[1]); !ok || r.Pending != 1 || r.Failures != 0 {
				t.Fatalf("%v row = %+v, %v; want one still pending", k, r, ok)
			}
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
	putRow(t, db, postgres.LoginFailures{Scope: postgres.ScopeAccountIP, Key: "quiet|192.0.2.1", Failures: 3, LastFailedAt: old})

	n, err := db.DeleteLoginFailuresBefore(ctx, before, stale)
	if err != nil || n != 3 {
		t.Fatalf("deleted %d, %v; want the quiet rows and the one whose claim went stale", n, err)
	}
	for _, k := range [][2]string{{postgres.ScopeAccount, "quiet"}, {postgres.ScopeAccount, "crashed"}, {postgres.ScopeAccountIP, "quiet|192.0.2.1"}} {
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

// TestLoginFailuresOnTheSchemaBefore000006: migration 000006 widens the
// scope CHECK and its down step narrows it again, deleting the account_ip
// rows; on the narrower schema, writes with the (account, address) row fail
// with ErrNoAccountIPScope and write nothing, and writes without it work, as
// do reads and settling a success. The release before keeps working on the
// wider schema: it writes account and ip rows only, which it admits.
func TestLoginFailuresOnTheSchemaBefore000006(t *testing.T) {
	t.Parallel()
	url := pgtest.URL(t)
	db, err := postgres.Open(ctx, url, postgres.Options{})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(db.Close)
	m, err := postgres.NewMigrator(url)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = m.Close() })
	stale, forget := t0.Add(-time.Minute), t0.Add(-24*time.Hour)
	claim(t, db, "alice", "192.0.2.1", t0, stale)
	for { // down to 000005, past any later step
		v, _, err := m.Version()
		if err != nil || v < 6 {
			t.Fatalf("version %d, %v; want 6 or later", v, err)
		}
		if err := m.Down(); err != nil {
			t.Fatalf("down from %d with an account_ip row in place: %v", v, err)
		}
		if v == 6 {
			break
		}
	}
	rows := allRows(t, db)
	if _, ok := rows[threeKeys[1]]; ok || len(rows) != 2 {
		t.Fatalf("rows after the down step: %+v; want the account_ip row deleted, the others kept", rows)
	}

	if err := claimErr(db, "alice", "192.0.2.1", t0, stale, true); !errors.Is(err, postgres.ErrNoAccountIPScope) {
		t.Fatalf("claim with the pair on the old schema: %v, want ErrNoAccountIPScope", err)
	}
	if err := db.SettleLoginFailure(ctx, "alice", "192.0.2.1", t0, forget, true); !errors.Is(err, postgres.ErrNoAccountIPScope) {
		t.Fatalf("failure with the pair on the old schema: %v, want ErrNoAccountIPScope", err)
	}
	if r := allRows(t, db)[threeKeys[0]]; r.Pending != 1 || r.Failures != 0 {
		t.Fatalf("account row after refused writes: %+v; want them to have written nothing", r)
	}
	if err := claimErr(db, "alice", "192.0.2.1", t0, stale, false); err != nil {
		t.Fatalf("claim without the pair: %v", err)
	}
	if err := db.SettleLoginFailure(ctx, "alice", "192.0.2.1", t0, forget, false); err != nil {
		t.Fatalf("failure without the pair: %v", err)
	}
	if r := allRows(t, db)[threeKeys[0]]; r.Pending != 1 || r.Failures != 1 {
		t.Fatalf("account row: %+v; want one failure and one claim still pending", r)
	}
	if _, err := db.LoginFailures(ctx, "alice", "192.0.2.1"); err != nil {
		t.Fatal(err)
	}
	if err := db.SettleLoginSuccess(ctx, "alice", "192.0.2.1"); err != nil {
		t.Fatal(err)
	}

	if err := m.Up(); err != nil {
		t.Fatal(err)
	}
	// What the release before writes is still admitted.
	if _, err := db.Pool().Exec(ctx, `INSERT INTO login_failures (scope, key, failures, last_failed_at)
		VALUES ('account', 'old-release', 1, $1), ('ip', '192.0.2.9', 1, $1)`, t0); err != nil {
		t.Fatal(err)
	}
	if err := claimErr(db, "alice", "192.0.2.1", t0, stale, true); err != nil {
		t.Fatalf("claim with the pair after the up step: %v", err)
	}
	if _, err := db.Pool().Exec(ctx, `INSERT INTO login_failures (scope, key, failures, last_failed_at) VALUES ('other', 'x', 1, $1)`, t0); err == nil {
		t.Fatal("the widened CHECK admits any scope")
	}
}
