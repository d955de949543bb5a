package throttle_test

import (
	"context"
	"errors"
	"io"
	"log/slog"
	"os"
	"strconv"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/seedc5a8123e/authd/internal/clock"
	"github.com/seedc5a8123e/authd/internal/pgtest"
	"github.com/seedc5a8123e/authd/internal/postgres"
	"github.com/seedc5a8123e/authd/internal/throttle"
)

func TestMain(m *testing.M) { os.Exit(pgtest.Main(m)) }

func TestDelay(t *testing.T) {
	const s = time.Second
	for name, c := range map[string]struct {
		failures, threshold int
		want                time.Duration
	}{
		"BelowThreshold":  {4, 5, 0},
		"AtThreshold":     {5, 5, s},
		"Doubles":         {6, 5, 2 * s},
		"DoublesAgain":    {8, 5, 8 * s},
		"Capped":          {15, 5, 15 * time.Minute},
		"NoOverflow":      {1_000_000, 5, 15 * time.Minute},
		"ThresholdOfOne":  {1, 1, s},
		"JustBelowTheCap": {14, 5, 512 * s},
	} {
		t.Run(name, func(t *testing.T) {
			if got := throttle.Delay(c.failures, c.threshold, s, 15*time.Minute); got != c.want {
				t.Errorf("Delay(%d, %d) = %s, want %s", c.failures, c.threshold, got, c.want)
			}
		})
	}
}

func TestLimitedErrorRetryAfterSeconds(t *testing.T) {
	for d, want := range map[time.Duration]int64{time.Millisecond: 1, time.Second: 1, 1500 * time.Millisecond: 2, time.Minute: 60} {
		if got := (&throttle.LimitedError{RetryAfter: d}).RetryAfterSeconds(); got != want {
			t.Errorf("%s: got %d, want %d", d, got, want)
		}
	}
}

func setup(t *testing.T, cfg throttle.Config) (*throttle.Throttle, *clock.Manual, *postgres.DB) {
	t.Helper()
	clk := clock.NewManual(time.Date(2030, 1, 1, 0, 0, 0, 0, time.UTC))
	db := pgtest.NewDB(t)
	return throttle.New(db, clk, cfg, slog.New(slog.NewTextHandler(io.Discard, nil)), nil), clk, db
}

func retryAfter(t *testing.T, err error) time.Duration {
	t.Helper()
	if err == nil {
		return 0
	}
	var le *throttle.LimitedError
	if !errors.As(err, &le) {
		t.Fatalf("unexpected error %v", err)
	}
	return le.RetryAfter
}

// row reads the stored state of one key; ok is false when there is no row.
func row(t *testing.T, db *postgres.DB, scope, key string) (r postgres.LoginFailures, ok bool) {
	t.Helper()
	rows, _ := db.Pool().Query(context.Background(),
		`SELECT scope, key, failures, last_failed_at, pending, pending_at FROM login_failures WHERE scope = $1 AND key = $2`, scope, key)
	all, err := pgx.CollectRows(rows, pgx.RowToStructByName[postgres.LoginFailures])
	if err != nil {
		t.Fatal(err)
	}
	if len(all) == 0 {
		return r, false
	}
	return all[0], true
}

func TestThrottle(t *testing.T) {
	ctx := context.Background()
	// fail runs an attempt whose password is wrong.
	fail := func(t *testing.T, th *throttle.Throttle, account, ip string) {
		t.Helper()
		if err := th.Claim(ctx, account, ip); err != nil {
			t.Fatalf("Claim(%s, %s): %v", account, ip, err)
		}
		if err := th.SettleFailure(ctx, account, ip); err != nil {
			t.Fatalf("SettleFailure(%s, %s): %v", account, ip, err)
		}
	}
	// succeed runs an attempt whose password is right.
	succeed := func(t *testing.T, th *throttle.Throttle, account, ip string) {
		t.Helper()
		if err := th.Claim(ctx, account, ip); err != nil {
			t.Fatalf("Claim(%s, %s): %v", account, ip, err)
		}
		if err := th.SettleSuccess(ctx, account, ip); err != nil {
			t.Fatalf("SettleSuccess(%s, %s): %v", account, ip, err)
		}
	}
	t.Run("AccountCountIgnoresLetterCase", func(t *testing.T) {
		t.Parallel()
		th, _, _ := setup(t, throttle.Config{MaxFailuresAccount: 2})
		fail(t, th, "Alice", "192.0.2.1")
		fail(t, th, "ALICE", "192.0.2.1")
		if got := retryAfter(t, th.Claim(ctx, "alice", "192.0.2.99")); got != time.Second {
			t.Fatalf("retry after %s, want 1s", got)
		}
	})
	t.Run("SettleFailureRecordsAndSettles", func(t *testing.T) {
		t.Parallel()
		th, clk, db := setup(t, throttle.Config{})
		if err := th.Claim(ctx, "Bea", "192.0.2.1"); err != nil {
			t.Fatal(err)
		}
		for _, k := range [][2]string{{postgres.ScopeAccount, "bea"}, {postgres.ScopeIP, "192.0.2.1"}} {
			if r, _ := row(t, db, k[0], k[1]); r.Failures != 0 || r.Pending != 1 || r.PendingAt == nil || !r.PendingAt.Equal(clk.Now()) {
				t.Fatalf("claimed %v: %+v, want no failure and one pending", k, r)
			}
		}
		clk.Advance(time.Second)
		if err := th.SettleFailure(ctx, "Bea", "192.0.2.1"); err != nil {
			t.Fatal(err)
		}
		for _, k := range [][2]string{{postgres.ScopeAccount, "bea"}, {postgres.ScopeIP, "192.0.2.1"}} {
			if r, _ := row(t, db, k[0], k[1]); r.Failures != 1 || r.Pending != 0 || !r.LastFailedAt.Equal(clk.Now()) {
				t.Fatalf("failed %v: %+v, want one failure at %s and nothing pending", k, r, clk.Now())
			}
		}
	})
	t.Run("SuccessClearsTheAccountNotTheIP", func(t *testing.T) {
		t.Parallel()
		th, clk, db := setup(t, throttle.Config{MaxFailuresAccount: 1, MaxFailuresIP: 2})
		fail(t, th, "bob", "192.0.2.1") // account 1, ip 1
		failedAt := clk.Now()
		clk.Advance(time.Second) // the account's delay runs out
		succeed(t, th, "bob", "192.0.2.1")
		if r, ok := row(t, db, postgres.ScopeAccount, "bob"); ok {
			t.Fatalf("account row left after a success: %+v", r)
		}
		if r, _ := row(t, db, postgres.ScopeIP, "192.0.2.1"); r.Failures != 1 || r.Pending != 0 || !r.LastFailedAt.Equal(failedAt) {
			t.Fatalf("ip row after a success: %+v, want its failure of %s untouched", r, failedAt)
		}
		if got := retryAfter(t, th.Claim(ctx, "bob", "192.0.2.3")); got != 0 {
			t.Fatalf("account still throttled after a success: %s", got)
		}
		fail(t, th, "carl", "192.0.2.1") // ip 2: the success did not clear it
		if got := retryAfter(t, th.Claim(ctx, "dan", "192.0.2.1")); got != time.Second {
			t.Fatalf("ip: retry after %s, want 1s", got)
		}
	})
	t.Run("SuccessDoesNotReArmTheIPsDelay", func(t *testing.T) {
		t.Parallel()
		th, clk, db := setup(t, throttle.Config{MaxFailuresIP: 2})
		fail(t, th, "u1", "192.0.2.1")
		fail(t, th, "u2", "192.0.2.1") // over the threshold: 1s
		failedAt := clk.Now()
		clk.Advance(time.Second)
		succeed(t, th, "u3", "192.0.2.1")
		if r, _ := row(t, db, postgres.ScopeIP, "192.0.2.1"); r.Failures != 2 || !r.LastFailedAt.Equal(failedAt) {
			t.Fatalf("ip row after a success: %+v, want 2 failures at %s", r, failedAt)
		}
		succeed(t, th, "u4", "192.0.2.1") // no delay behind the success
		clk.Advance(throttle.Forget)
		succeed(t, th, "u5", "192.0.2.1")
		clk.Advance(time.Second) // a day since the last failure, successes in between
		fail(t, th, "u6", "192.0.2.1")
		if r, _ := row(t, db, postgres.ScopeIP, "192.0.2.1"); r.Failures != 1 {
			t.Fatalf("ip row a day after its last failure: %+v, want the count started again", r)
		}
		if got := retryAfter(t, th.Claim(ctx, "u7", "192.0.2.1")); got != 0 {
			t.Fatalf("ip still throttled a day after its last failure: %s", got)
		}
	})
	t.Run("DelayCappedAndRunsOut", func(t *testing.T) {
		t.Parallel()
		th, clk, _ := setup(t, throttle.Config{MaxFailuresAccount: 1, Max: 4 * time.Second})
		for failed := 0; failed < 10; {
			err := th.Claim(ctx, "carol", "")
			if err == nil {
				if err := th.SettleFailure(ctx, "carol", ""); err != nil {
					t.Fatal(err)
				}
				failed++
				continue
			}
			clk.Advance(retryAfter(t, err)) // an attacker who waits out each delay
		}
		if got := retryAfter(t, th.Claim(ctx, "carol", "")); got != 4*time.Second {
			t.Fatalf("retry after %s, want the 4s cap", got)
		}
		clk.Advance(4 * time.Second)
		if err := th.Claim(ctx, "carol", ""); err != nil {
			t.Fatalf("after the cap: %v", err)
		}
	})
	t.Run("QuietDayForgets", func(t *testing.T) {
		t.Parallel()
		th, clk, _ := setup(t, throttle.Config{MaxFailuresAccount: 3})
		for range 3 {
			fail(t, th, "dave", "")
		}
		if th.Claim(ctx, "dave", "") == nil {
			t.Fatal("a fourth attempt right away was allowed")
		}
		clk.Advance(throttle.Forget + time.Second)
		fail(t, th, "dave", "") // starts again from one
		fail(t, th, "dave", "")
		clk.Advance(throttle.Forget + time.Second)
		if n, err := th.Prune(ctx); err != nil || n != 1 {
			t.Fatalf("prune: %d %v", n, err)
		}
	})
	t.Run("PruneKeepsAttemptsInFlight", func(t *testing.T) {
		t.Parallel()
		th, clk, db := setup(t, throttle.Config{})
		fail(t, th, "fay", "")
		clk.Advance(throttle.Forget + time.Second)
		if err := th.Claim(ctx, "fay", ""); err != nil { // quiet, but being checked
			t.Fatal(err)
		}
		if n, err := th.Prune(ctx); err != nil || n != 0 {
			t.Fatalf("prune with an attempt in flight: %d %v", n, err)
		}
		clk.Advance(throttle.PendingTTL + time.Second) // that attempt never settled
		if n, err := th.Prune(ctx); err != nil || n != 1 {
			t.Fatalf("prune after the claim expired: %d %v", n, err)
		}
		if r, ok := row(t, db, postgres.ScopeAccount, "fay"); ok {
			t.Fatalf("row left: %+v", r)
		}
	})
	t.Run("ParallelGuessesAreBoundedBeforeTheyAreChecked", func(t *testing.T) {
		t.Parallel()
		th, _, _ := setup(t, throttle.Config{MaxFailuresAccount: 5})
		var allowed, limited atomic.Int64
		var wg sync.WaitGroup
		for range 40 {
			wg.Go(func() {
				switch err := th.Claim(ctx, "eve", "198.51.100.7"); {
				case err == nil:
					allowed.Add(1)
				case errors.As(err, new(*throttle.LimitedError)):
					if got := retryAfter(t, err); got != throttle.InFlightRetry {
						t.Errorf("retry after %s, want %s", got, throttle.InFlightRetry)
					}
					limited.Add(1)
				default:
					t.Error(err)
				}
			})
		}
		wg.Wait()
		if allowed.Load() != 5 || limited.Load() != 35 {
			t.Fatalf("%d attempts allowed, %d limited; want exactly the threshold, 5, allowed", allowed.Load(), limited.Load())
		}
		for range 5 { // all five were wrong: the delay starts, nothing more in flight
			if err := th.SettleFailure(ctx, "eve", "198.51.100.7"); err != nil {
				t.Fatal(err)
			}
		}
		if got := retryAfter(t, th.Claim(ctx, "eve", "198.51.100.8")); got != time.Second {
			t.Fatalf("after five failures: retry after %s, want 1s", got)
		}
	})
	t.Run("ParallelSuccessesLeaveNoDelay", func(t *testing.T) {
		t.Parallel()
		th, _, db := setup(t, throttle.Config{MaxFailuresAccount: 5, MaxFailuresIP: 20})
		var allowed atomic.Int64
		var wg sync.WaitGroup
		for i := range 40 {
			wg.Go(func() {
				// Half share one account, all share the address.
				account := "svc"
				if i%2 == 1 {
					account = "user" + strconv.Itoa(i)
				}
				switch err := th.Claim(ctx, account, "198.51.100.9"); {
				case err == nil:
					allowed.Add(1)
					if err := th.SettleSuccess(ctx, account, "198.51.100.9"); err != nil {
						t.Error(err)
					}
				case errors.As(err, new(*throttle.LimitedError)):
					if got := retryAfter(t, err); got != throttle.InFlightRetry {
						t.Errorf("retry after %s, want %s", got, throttle.InFlightRetry)
					}
				default:
					t.Error(err)
				}
			})
		}
		wg.Wait()
		if allowed.Load() < 5 {
			t.Fatalf("%d of 40 correct attempts allowed", allowed.Load())
		}
		if r, _ := row(t, db, postgres.ScopeIP, "198.51.100.9"); r.Failures != 0 || r.Pending != 0 {
			t.Fatalf("ip row after successes only: %+v", r)
		}
		for _, account := range []string{"svc", "user1"} {
			if got := retryAfter(t, th.Claim(ctx, account, "198.51.100.9")); got != 0 {
				t.Fatalf("%s throttled after successes only: %s", account, got)
			}
		}
	})
	t.Run("OverTheThresholdOneAtATime", func(t *testing.T) {
		t.Parallel()
		th, clk, _ := setup(t, throttle.Config{MaxFailuresAccount: 2})
		fail(t, th, "gil", "")
		fail(t, th, "gil", "")
		clk.Advance(time.Second) // the delay ran out
		if err := th.Claim(ctx, "gil", ""); err != nil {
			t.Fatal(err)
		}
		if got := retryAfter(t, th.Claim(ctx, "gil", "")); got != throttle.InFlightRetry {
			t.Fatalf("a second attempt while one is checked: retry after %s, want %s", got, throttle.InFlightRetry)
		}
		if err := th.SettleSuccess(ctx, "gil", ""); err != nil {
			t.Fatal(err)
		}
		if err := th.Claim(ctx, "gil", ""); err != nil {
			t.Fatalf("after the success: %v", err)
		}
	})
	t.Run("ForgottenFailuresDoNotBoundAttemptsInFlight", func(t *testing.T) {
		t.Parallel()
		th, clk, _ := setup(t, throttle.Config{MaxFailuresAccount: 2})
		fail(t, th, "hal", "")
		fail(t, th, "hal", "")
		clk.Advance(throttle.Forget + time.Second)
		for i := range 2 {
			if err := th.Claim(ctx, "hal", ""); err != nil {
				t.Fatalf("attempt %d in flight a day after the failures: %v", i+1, err)
			}
		}
		if th.Claim(ctx, "hal", "") == nil {
			t.Fatal("a third attempt in flight was allowed")
		}
	})
	t.Run("StalePendingNoLongerBlocks", func(t *testing.T) {
		t.Parallel()
		th, clk, db := setup(t, throttle.Config{MaxFailuresAccount: 2})
		for range 2 { // claimed by a process that then crashed
			if err := th.Claim(ctx, "ida", "192.0.2.5"); err != nil {
				t.Fatal(err)
			}
		}
		if got := retryAfter(t, th.Claim(ctx, "ida", "192.0.2.5")); got != throttle.InFlightRetry {
			t.Fatalf("retry after %s, want %s", got, throttle.InFlightRetry)
		}
		clk.Advance(throttle.PendingTTL - time.Second)
		if th.Claim(ctx, "ida", "192.0.2.5") == nil {
			t.Fatal("claims expired before PendingTTL")
		}
		clk.Advance(2 * time.Second)
		if err := th.Claim(ctx, "ida", "192.0.2.5"); err != nil {
			t.Fatalf("after PendingTTL: %v", err)
		}
		if r, _ := row(t, db, postgres.ScopeAccount, "ida"); r.Pending != 1 {
			t.Fatalf("pending %d, want the stale claims dropped and this one counted", r.Pending)
		}
	})
	t.Run("RefusalTakesNoLockAndWritesNothing", func(t *testing.T) {
		t.Parallel()
		th, _, db := setup(t, throttle.Config{MaxFailuresIP: 1})
		fail(t, th, "jo", "192.0.2.6") // the ip's delay runs
		before, _ := row(t, db, postgres.ScopeIP, "192.0.2.6")
		// Another attempt from the address holds its lock meanwhile.
		tx, err := db.Pool().Begin(ctx)
		if err != nil {
			t.Fatal(err)
		}
		defer tx.Rollback(ctx)
		if _, err := tx.Exec(ctx, `SELECT pg_advisory_xact_lock(hashtextextended('login_failures/ip/' || $1, 0))`, "192.0.2.6"); err != nil {
			t.Fatal(err)
		}
		bctx, cancel := context.WithTimeout(ctx, 3*time.Second)
		defer cancel()
		if got := retryAfter(t, th.Claim(bctx, "kim", "192.0.2.6")); got != time.Second {
			t.Fatalf("retry after %s, want 1s", got)
		}
		if after, _ := row(t, db, postgres.ScopeIP, "192.0.2.6"); after.Failures != before.Failures ||
			after.Pending != before.Pending || !after.LastFailedAt.Equal(before.LastFailedAt) || !after.PendingAt.Equal(*before.PendingAt) {
			t.Fatalf("a refusal wrote: %+v, was %+v", after, before)
		}
		if r, ok := row(t, db, postgres.ScopeAccount, "kim"); ok {
			t.Fatalf("a refusal created a row: %+v", r)
		}
	})
	t.Run("NilThrottleAllows", func(t *testing.T) {
		var th *throttle.Throttle
		if th.Claim(ctx, "x", "y") != nil || th.SettleSuccess(ctx, "x", "y") != nil || th.SettleFailure(ctx, "x", "y") != nil {
			t.Fatal("nil throttle refused")
		}
	})
}
