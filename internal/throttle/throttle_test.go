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

	"github.com/seedc5a8123e/authd/internal/authdtest"
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

func TestLimitedErrorSaysWhy(t *testing.T) {
	for e, want := range map[*throttle.LimitedError]string{
		{RetryAfter: 2 * time.Second}:                              "too many failed attempts; retry in 2s",
		{RetryAfter: time.Second, Reason: throttle.ReasonInFlight}: "too many logins in progress from this address; retry in 1s",
	} {
		if got := e.Error(); got != want {
			t.Errorf("%+v: %q, want %q", *e, got, want)
		}
	}
}

func setup(t *testing.T, cfg throttle.Config) (*throttle.Throttle, *clock.Manual, *postgres.DB) {
	t.Helper()
	clk := clock.NewManual(time.Date(2030, 1, 1, 0, 0, 0, 0, time.UTC))
	db := openDB(t, pgtest.URL(t))
	return throttle.New(db, clk, cfg, slog.New(slog.NewTextHandler(io.Discard, nil)), nil), clk, db
}

// openDB opens a pool on url big enough for the attempts a test holds in
// flight at once, each of which keeps a connection (the throttle allows
// half the pool). Always direct, even when AUTHD_TEST_POOLER_URL is set:
// test-ha's PgBouncer has 4 server connections per database, fewer than
// these tests keep in flight; the session, account and HTTP tests run the
// same transactions through it.
func openDB(t *testing.T, url string) *postgres.DB {
	t.Helper()
	db, err := postgres.Open(context.Background(), url, postgres.Options{MaxConns: 30})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(db.Close)
	return db
}

// held are the attempts claim left in flight, by throttle, account and
// address, for settle.
var held = struct {
	sync.Mutex
	m map[heldKey][]*authdtest.Held
}{m: map[heldKey][]*authdtest.Held{}}

type heldKey struct {
	th          *throttle.Throttle
	account, ip string
}

// claim claims an attempt and leaves it in flight (its password being
// checked) until settle; it returns the refusal, or nil once claimed.
func claim(t *testing.T, th *throttle.Throttle, account, ip string) error {
	t.Helper()
	if th == nil {
		return th.Guard(context.Background(), throttle.Attempt{Key: account, IP: ip,
			Check: func(tx *postgres.Tx) error {
				if tx != nil {
					t.Error("a nil throttle gave its check a transaction")
				}
				return nil
			}})
	}
	h, err := authdtest.Hold(t, th, account, ip)
	if err != nil {
		return err
	}
	held.Lock()
	defer held.Unlock()
	k := heldKey{th, account, ip}
	held.m[k] = append(held.m[k], h)
	return nil
}

// settle ends one attempt claim left in flight for account and ip: a wrong
// password if outcome is authdtest.ErrWrong, a right one if nil. It returns
// Guard's error, nil for a recorded wrong password.
func settle(t *testing.T, th *throttle.Throttle, account, ip string, outcome error) error {
	t.Helper()
	if th == nil {
		return nil
	}
	held.Lock()
	k := heldKey{th, account, ip}
	hs := held.m[k]
	if len(hs) == 0 {
		held.Unlock()
		t.Fatalf("settle(%s, %s): nothing in flight", account, ip)
	}
	h := hs[0]
	held.m[k] = hs[1:]
	held.Unlock()
	err := h.Settle(outcome)
	if errors.Is(err, authdtest.ErrWrong) {
		return nil
	}
	return err
}

// legacyClaim claims an attempt as the release before did: a committed
// pending row, under its exclusive advisory locks (LockLoginKeys).
func legacyClaim(t *testing.T, db *postgres.DB, account, ip string, at time.Time) {
	t.Helper()
	if err := db.InTx(context.Background(), func(tx *postgres.Tx) error {
		if _, err := tx.LockLoginKeys(account, ip); err != nil {
			return err
		}
		return tx.ClaimLogin(account, ip, at, at.Add(-throttle.PendingTTL), true)
	}); err != nil {
		t.Fatal(err)
	}
}

// killBackends ends, from db, the connections of another pool that sit in
// an open transaction, as the death of that pool's process would: the
// server sees its connections go.
func killBackends(t *testing.T, db *postgres.DB) {
	t.Helper()
	var n int
	if err := db.Pool().QueryRow(context.Background(), `SELECT count(pg_terminate_backend(pid)) FROM pg_stat_activity
		WHERE datname = current_database() AND state = 'idle in transaction' AND pid <> pg_backend_pid()`).Scan(&n); err != nil {
		t.Fatal(err)
	}
	if n == 0 {
		t.Fatal("no open transaction to end")
	}
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

// limited is err's *LimitedError; the test fails if err is another error
// or none.
func limited(t *testing.T, err error) *throttle.LimitedError {
	t.Helper()
	var le *throttle.LimitedError
	if !errors.As(err, &le) {
		t.Fatalf("got %v, want a *LimitedError", err)
	}
	return le
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
		if err := claim(t, th, account, ip); err != nil {
			t.Fatalf("Claim(%s, %s): %v", account, ip, err)
		}
		if err := settle(t, th, account, ip, authdtest.ErrWrong); err != nil {
			t.Fatalf("SettleFailure(%s, %s): %v", account, ip, err)
		}
	}
	// succeed runs an attempt whose password is right.
	succeed := func(t *testing.T, th *throttle.Throttle, account, ip string) {
		t.Helper()
		if err := claim(t, th, account, ip); err != nil {
			t.Fatalf("Claim(%s, %s): %v", account, ip, err)
		}
		if err := settle(t, th, account, ip, nil); err != nil {
			t.Fatalf("SettleSuccess(%s, %s): %v", account, ip, err)
		}
	}
	t.Run("AccountCountIgnoresLetterCase", func(t *testing.T) {
		t.Parallel()
		th, _, _ := setup(t, throttle.Config{MaxFailuresAccount: 2, MaxFailuresAccountAnyIP: 3})
		fail(t, th, "Alice", "192.0.2.1")
		fail(t, th, "ALICE", "192.0.2.1")
		if got := retryAfter(t, claim(t, th, "alice", "192.0.2.1")); got != time.Second {
			t.Fatalf("same address: retry after %s, want 1s", got)
		}
		fail(t, th, "aLiCe", "192.0.2.2") // the third of the account anywhere
		if got := retryAfter(t, claim(t, th, "alice", "192.0.2.99")); got != time.Second {
			t.Fatalf("another address: retry after %s, want 1s", got)
		}
	})
	t.Run("GuesserOnOneAddressDoesNotLockTheOwnerOut", func(t *testing.T) {
		t.Parallel()
		th, clk, _ := setup(t, throttle.Config{}) // 5 per account and address, 50 per account
		for failed := 0; failed < 12; {
			err := claim(t, th, "owner", "10.0.0.1")
			if err == nil {
				if err := settle(t, th, "owner", "10.0.0.1", authdtest.ErrWrong); err != nil {
					t.Fatal(err)
				}
				failed++
				continue
			}
			clk.Advance(retryAfter(t, err)) // a guesser who waits out each delay
		}
		if got := retryAfter(t, claim(t, th, "owner", "10.0.0.1")); got != 128*time.Second {
			t.Fatalf("the guesser after 12 failures: retry after %s, want 128s", got)
		}
		succeed(t, th, "owner", "10.0.0.2") // the owner, elsewhere, gets in
		if got := retryAfter(t, claim(t, th, "owner", "10.0.0.1")); got != 128*time.Second {
			t.Fatalf("the guesser after the owner's success: retry after %s, want his delay to stand", got)
		}
	})
	t.Run("DistributedGuessHitsTheAccountWideBackoff", func(t *testing.T) {
		t.Parallel()
		th, _, db := setup(t, throttle.Config{}) // 5 per account and address, 50 per account
		for i := range 50 {
			fail(t, th, "target", "10.1.0."+strconv.Itoa(i))
		}
		for _, ip := range []string{"10.1.0.50", "10.1.0.0", "10.9.9.9"} {
			if le := limited(t, claim(t, th, "target", ip)); le.RetryAfter != time.Second || le.Reason != throttle.ReasonFailures {
				t.Fatalf("from %s after 50 failures from 50 addresses: %+v, want 1s for failures", ip, le)
			}
		}
		if r, _ := row(t, db, postgres.ScopeAccount, "target"); r.Failures != 50 {
			t.Fatalf("account row %+v, want 50 failures", r)
		}
	})
	t.Run("SettleFailureRecordsAndSettles", func(t *testing.T) {
		t.Parallel()
		th, clk, db := setup(t, throttle.Config{})
		if err := claim(t, th, "Bea", "192.0.2.1"); err != nil {
			t.Fatal(err)
		}
		keys := [][2]string{{postgres.ScopeAccount, "bea"}, {postgres.ScopeAccountIP, "bea|192.0.2.1"}, {postgres.ScopeIP, "192.0.2.1"}}
		for _, k := range keys { // a claim writes nothing: its slot is a lock
			if r, ok := row(t, db, k[0], k[1]); ok {
				t.Fatalf("claimed %v: %+v, want no row", k, r)
			}
		}
		clk.Advance(time.Second)
		if err := settle(t, th, "Bea", "192.0.2.1", authdtest.ErrWrong); err != nil {
			t.Fatal(err)
		}
		for _, k := range keys {
			if r, _ := row(t, db, k[0], k[1]); r.Failures != 1 || r.Pending != 0 || !r.LastFailedAt.Equal(clk.Now()) {
				t.Fatalf("failed %v: %+v, want one failure at %s and nothing pending", k, r, clk.Now())
			}
		}
	})
	t.Run("SuccessClearsTheAccountNotTheIP", func(t *testing.T) {
		t.Parallel()
		th, clk, db := setup(t, throttle.Config{MaxFailuresAccount: 1, MaxFailuresIP: 2})
		fail(t, th, "bob", "192.0.2.1") // account 1, account at ip 1, ip 1
		failedAt := clk.Now()
		clk.Advance(time.Second) // the account's delay runs out
		succeed(t, th, "bob", "192.0.2.1")
		if r, ok := row(t, db, postgres.ScopeAccount, "bob"); ok {
			t.Fatalf("account row left after a success: %+v", r)
		}
		if r, ok := row(t, db, postgres.ScopeAccountIP, "bob|192.0.2.1"); ok {
			t.Fatalf("account at ip row left after a success: %+v", r)
		}
		if r, _ := row(t, db, postgres.ScopeIP, "192.0.2.1"); r.Failures != 1 || r.Pending != 0 || !r.LastFailedAt.Equal(failedAt) {
			t.Fatalf("ip row after a success: %+v, want its failure of %s untouched", r, failedAt)
		}
		if got := retryAfter(t, claim(t, th, "bob", "192.0.2.3")); got != 0 {
			t.Fatalf("account still throttled after a success: %s", got)
		}
		fail(t, th, "carl", "192.0.2.1") // ip 2: the success did not clear it
		if got := retryAfter(t, claim(t, th, "dan", "192.0.2.1")); got != time.Second {
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
		if got := retryAfter(t, claim(t, th, "u7", "192.0.2.1")); got != 0 {
			t.Fatalf("ip still throttled a day after its last failure: %s", got)
		}
	})
	t.Run("DelayCappedAndRunsOut", func(t *testing.T) {
		t.Parallel()
		th, clk, _ := setup(t, throttle.Config{MaxFailuresAccount: 1, Max: 4 * time.Second})
		for failed := 0; failed < 10; {
			err := claim(t, th, "carol", "")
			if err == nil {
				if err := settle(t, th, "carol", "", authdtest.ErrWrong); err != nil {
					t.Fatal(err)
				}
				failed++
				continue
			}
			clk.Advance(retryAfter(t, err)) // an attacker who waits out each delay
		}
		if got := retryAfter(t, claim(t, th, "carol", "")); got != 4*time.Second {
			t.Fatalf("retry after %s, want the 4s cap", got)
		}
		clk.Advance(4 * time.Second)
		if err := claim(t, th, "carol", ""); err != nil {
			t.Fatalf("after the cap: %v", err)
		}
	})
	t.Run("QuietDayForgets", func(t *testing.T) {
		t.Parallel()
		th, clk, _ := setup(t, throttle.Config{MaxFailuresAccount: 3})
		for range 3 {
			fail(t, th, "dave", "")
		}
		if claim(t, th, "dave", "") == nil {
			t.Fatal("a fourth attempt right away was allowed")
		}
		clk.Advance(throttle.Forget + time.Second)
		fail(t, th, "dave", "") // starts again from one
		fail(t, th, "dave", "")
		clk.Advance(throttle.Forget + time.Second)
		if n, err := th.Prune(ctx); err != nil || n != 2 { // the account's and its pair with no address
			t.Fatalf("prune: %d %v", n, err)
		}
	})
	t.Run("PruneKeepsAttemptsInFlight", func(t *testing.T) {
		t.Parallel()
		th, clk, db := setup(t, throttle.Config{})
		fail(t, th, "fay", "")
		clk.Advance(throttle.Forget + time.Second)
		legacyClaim(t, db, "fay", "", clk.Now()) // quiet, but being checked by the release before
		if n, err := th.Prune(ctx); err != nil || n != 0 {
			t.Fatalf("prune with an attempt in flight: %d %v", n, err)
		}
		clk.Advance(throttle.PendingTTL + time.Second) // that attempt never settled
		if n, err := th.Prune(ctx); err != nil || n != 2 {
			t.Fatalf("prune after the claim expired: %d %v", n, err)
		}
		if r, ok := row(t, db, postgres.ScopeAccount, "fay"); ok {
			t.Fatalf("row left: %+v", r)
		}
		if r, ok := row(t, db, postgres.ScopeAccountIP, "fay|"); ok {
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
				switch err := claim(t, th, "eve", "198.51.100.7"); {
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
			if err := settle(t, th, "eve", "198.51.100.7", authdtest.ErrWrong); err != nil {
				t.Fatal(err)
			}
		}
		if got := retryAfter(t, claim(t, th, "eve", "198.51.100.7")); got != time.Second {
			t.Fatalf("after five failures: retry after %s, want 1s", got)
		}
		if err := claim(t, th, "eve", "198.51.100.8"); err != nil {
			t.Fatalf("from another address, 5 failures below the account-wide 50: %v", err)
		}
	})
	t.Run("ParallelGuessesFromManyAddressesAreBoundedAccountWide", func(t *testing.T) {
		t.Parallel()
		th, _, _ := setup(t, throttle.Config{MaxFailuresAccountAnyIP: 8}) // 5 per account and address, 8 per account
		var allowed, limitedN atomic.Int64
		var wg sync.WaitGroup
		for i := range 20 {
			wg.Go(func() {
				switch err := claim(t, th, "eve", "203.0.113."+strconv.Itoa(i)); {
				case err == nil:
					allowed.Add(1)
				case errors.As(err, new(*throttle.LimitedError)):
					if le := limited(t, err); le.RetryAfter != throttle.InFlightRetry || le.Reason != throttle.ReasonFailures {
						t.Errorf("refused with %+v", le)
					}
					limitedN.Add(1)
				default:
					t.Error(err)
				}
			})
		}
		wg.Wait()
		if allowed.Load() != 8 || limitedN.Load() != 12 {
			t.Fatalf("%d attempts allowed, %d limited; want exactly the account-wide threshold, 8, allowed", allowed.Load(), limitedN.Load())
		}
	})
	t.Run("ManyAccountsFromOneAddressAtOnce", func(t *testing.T) {
		t.Parallel()
		th, _, db := setup(t, throttle.Config{}) // 20 failures per address, 200 in flight
		var wg sync.WaitGroup
		for i := range 12 { // more than the address's threshold of failures
			wg.Go(func() {
				if err := claim(t, th, "nat"+strconv.Itoa(i), "198.51.100.10"); err != nil {
					t.Errorf("login %d of 12 from one address: %v", i, err)
				}
			})
		}
		wg.Wait()
		if r, ok := row(t, db, postgres.ScopeIP, "198.51.100.10"); ok {
			t.Fatalf("ip row %+v, want none: attempts in flight write nothing", r)
		}
	})
	t.Run("InFlightFromOneAddressHasItsOwnBound", func(t *testing.T) {
		t.Parallel()
		th, _, _ := setup(t, throttle.Config{MaxInFlightIP: 6})
		var allowed atomic.Int64
		var wg sync.WaitGroup
		for i := range 14 {
			wg.Go(func() {
				switch err := claim(t, th, "user"+strconv.Itoa(i), "198.51.100.11"); {
				case err == nil:
					allowed.Add(1)
				case errors.As(err, new(*throttle.LimitedError)):
					if le := limited(t, err); le.RetryAfter != throttle.InFlightRetry || le.Reason != throttle.ReasonInFlight {
						t.Errorf("refused with %+v, want %s for attempts in flight", le, throttle.InFlightRetry)
					}
				default:
					t.Error(err)
				}
			})
		}
		wg.Wait()
		if allowed.Load() != 6 {
			t.Fatalf("%d of 14 allowed, want MaxInFlightIP, 6", allowed.Load())
		}
		var one heldKey
		held.Lock()
		for k, hs := range held.m {
			if k.th == th && len(hs) > 0 {
				one = k
			}
		}
		held.Unlock()
		if err := settle(t, th, one.account, one.ip, nil); err != nil {
			t.Fatal(err)
		}
		if err := claim(t, th, "another", "198.51.100.11"); err != nil {
			t.Fatalf("with one settled: %v", err)
		}
	})
	t.Run("AddressPastItsThresholdOneAtATime", func(t *testing.T) {
		t.Parallel()
		th, clk, _ := setup(t, throttle.Config{MaxFailuresIP: 2})
		fail(t, th, "u1", "192.0.2.7")
		if err := claim(t, th, "u2", "192.0.2.7"); err != nil { // below the threshold, several at once
			t.Fatal(err)
		}
		if err := claim(t, th, "u3", "192.0.2.7"); err != nil {
			t.Fatal(err)
		}
		for _, u := range []string{"u2", "u3"} {
			if err := settle(t, th, u, "192.0.2.7", authdtest.ErrWrong); err != nil {
				t.Fatal(err)
			}
		}
		clk.Advance(time.Minute) // the delay ran out; 3 failures, past the threshold of 2
		if err := claim(t, th, "u4", "192.0.2.7"); err != nil {
			t.Fatal(err)
		}
		if le := limited(t, claim(t, th, "u5", "192.0.2.7")); le.RetryAfter != throttle.InFlightRetry || le.Reason != throttle.ReasonFailures {
			t.Fatalf("a second attempt while one is checked: %+v, want %s for failures", le, throttle.InFlightRetry)
		}
	})
	t.Run("ParallelSuccessesLeaveNoDelay", func(t *testing.T) {
		t.Parallel()
		th, _, db := setup(t, throttle.Config{MaxFailuresAccount: 5, MaxFailuresIP: 20})
		var allowed, refusedUsers atomic.Int64
		var wg sync.WaitGroup
		for i := range 40 {
			wg.Go(func() {
				// Half share one account, all share the address.
				account := "svc"
				if i%2 == 1 {
					account = "user" + strconv.Itoa(i)
				}
				switch err := claim(t, th, account, "198.51.100.9"); {
				case err == nil:
					allowed.Add(1)
					if err := settle(t, th, account, "198.51.100.9", nil); err != nil {
						t.Error(err)
					}
				case errors.As(err, new(*throttle.LimitedError)):
					if got := retryAfter(t, err); got != throttle.InFlightRetry {
						t.Errorf("retry after %s, want %s", got, throttle.InFlightRetry)
					}
					if account != "svc" {
						refusedUsers.Add(1)
					}
				default:
					t.Error(err)
				}
			})
		}
		wg.Wait()
		if allowed.Load() < 25 || refusedUsers.Load() != 0 {
			t.Fatalf("%d of 40 correct attempts allowed, %d of the 20 lone accounts refused; want all of those and 5 of svc at least",
				allowed.Load(), refusedUsers.Load())
		}
		if r, _ := row(t, db, postgres.ScopeIP, "198.51.100.9"); r.Failures != 0 || r.Pending != 0 {
			t.Fatalf("ip row after successes only: %+v", r)
		}
		for _, account := range []string{"svc", "user1"} {
			if got := retryAfter(t, claim(t, th, account, "198.51.100.9")); got != 0 {
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
		if err := claim(t, th, "gil", ""); err != nil {
			t.Fatal(err)
		}
		if got := retryAfter(t, claim(t, th, "gil", "")); got != throttle.InFlightRetry {
			t.Fatalf("a second attempt while one is checked: retry after %s, want %s", got, throttle.InFlightRetry)
		}
		if err := settle(t, th, "gil", "", nil); err != nil {
			t.Fatal(err)
		}
		if err := claim(t, th, "gil", ""); err != nil {
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
			if err := claim(t, th, "hal", ""); err != nil {
				t.Fatalf("attempt %d in flight a day after the failures: %v", i+1, err)
			}
		}
		if claim(t, th, "hal", "") == nil {
			t.Fatal("a third attempt in flight was allowed")
		}
	})
	t.Run("StalePendingNoLongerBlocks", func(t *testing.T) {
		t.Parallel()
		th, clk, db := setup(t, throttle.Config{MaxFailuresAccount: 2})
		for range 2 { // claimed by a replica of the release before that then crashed
			legacyClaim(t, db, "ida", "192.0.2.5", clk.Now())
		}
		if got := retryAfter(t, claim(t, th, "ida", "192.0.2.5")); got != throttle.InFlightRetry {
			t.Fatalf("retry after %s, want %s", got, throttle.InFlightRetry)
		}
		clk.Advance(throttle.PendingTTL - time.Second)
		if claim(t, th, "ida", "192.0.2.5") == nil {
			t.Fatal("claims expired before PendingTTL")
		}
		clk.Advance(2 * time.Second)
		if err := claim(t, th, "ida", "192.0.2.5"); err != nil {
			t.Fatalf("after PendingTTL: %v", err)
		}
	})
	t.Run("ADeadProcessLeavesNoClaim", func(t *testing.T) {
		t.Parallel()
		_, clk, db := setup(t, throttle.Config{MaxFailuresAccount: 2})
		log := slog.New(slog.NewTextHandler(io.Discard, nil))
		url := db.Pool().Config().ConnString()
		// Another process checks both attempts the pair still allows, and dies
		// with them in flight: its connections end.
		other := openDB(t, url)
		dying := throttle.New(other, clk, throttle.Config{MaxFailuresAccount: 2}, log, nil)
		for range 2 {
			if _, err := authdtest.Hold(t, dying, "ivy", "192.0.2.8"); err != nil {
				t.Fatal(err)
			}
		}
		th := throttle.New(db, clk, throttle.Config{MaxFailuresAccount: 2}, log, nil)
		if got := retryAfter(t, claim(t, th, "ivy", "192.0.2.8")); got != throttle.InFlightRetry {
			t.Fatalf("while the other process checks two: retry after %s, want %s", got, throttle.InFlightRetry)
		}
		killBackends(t, db)
		authdtest.Eventually(t, 5*time.Second, func() bool {
			return claim(t, th, "ivy", "192.0.2.8") == nil
		}, "the dead process's claims were not released")
		// Its two checks were never recorded, and nothing of them is left.
		if r, ok := row(t, db, postgres.ScopeAccountIP, "ivy|192.0.2.8"); ok {
			t.Fatalf("row %+v after a dead process's checks, want none", r)
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
		if got := retryAfter(t, claim(t, th, "kim", "192.0.2.6")); got != time.Second {
			t.Fatalf("retry after %s, want 1s", got)
		}
		if after, _ := row(t, db, postgres.ScopeIP, "192.0.2.6"); after.Failures != before.Failures ||
			after.Pending != before.Pending || !after.LastFailedAt.Equal(before.LastFailedAt) || after.PendingAt != nil {
			t.Fatalf("a refusal wrote: %+v, was %+v", after, before)
		}
		if r, ok := row(t, db, postgres.ScopeAccount, "kim"); ok {
			t.Fatalf("a refusal created a row: %+v", r)
		}
	})
	t.Run("NilThrottleAllows", func(t *testing.T) {
		var th *throttle.Throttle
		if claim(t, th, "x", "y") != nil || settle(t, th, "x", "y", nil) != nil || settle(t, th, "x", "y", authdtest.ErrWrong) != nil {
			t.Fatal("nil throttle refused")
		}
	})
}

// TestThrottleOnTheSchemaBefore000006: on a schema whose CHECK refuses
// (account, address) rows (a replica started before the migration Job, or
// a rollback's migrate down) logins still work, counted per account and per
// address as the release before counted them; a minute after the schema
// admits the rows again, the throttle counts them again.
func TestThrottleOnTheSchemaBefore000006(t *testing.T) {
	ctx := context.Background()
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
	clk := clock.NewManual(time.Date(2030, 1, 1, 0, 0, 0, 0, time.UTC))
	th := throttle.New(db, clk, throttle.Config{}, slog.New(slog.NewTextHandler(io.Discard, nil)), nil)
	fail := func(account, ip string) {
		t.Helper()
		if err := claim(t, th, account, ip); err != nil {
			t.Fatalf("Claim(%s, %s): %v", account, ip, err)
		}
		if err := settle(t, th, account, ip, authdtest.ErrWrong); err != nil {
			t.Fatalf("SettleFailure(%s, %s): %v", account, ip, err)
		}
	}

	// One failure on schema 6. (An attempt in flight holds its read of
	// login_failures until it is recorded, so the down step waits for it.)
	fail("old", "10.0.0.1")
	for {
		v, _, err := m.Version()
		if err != nil || v < 6 {
			t.Fatalf("version %d, %v; want 6 or later", v, err)
		}
		if err := m.Down(); err != nil {
			t.Fatal(err)
		}
		if v == 6 {
			break
		}
	}
	for range 4 {
		fail("old", "10.0.0.1")
	}
	if r, _ := row(t, db, postgres.ScopeAccount, "old"); r.Failures != 5 || r.Pending != 0 {
		t.Fatalf("account row %+v, want 5 failures, none in flight", r)
	}
	// The account's own threshold is the per-address one again: the owner
	// waits too, as with the release before.
	if got := retryAfter(t, claim(t, th, "old", "10.0.0.2")); got != time.Second {
		t.Fatalf("another address on the old schema: retry after %s, want 1s", got)
	}

	if err := m.Up(); err != nil {
		t.Fatal(err)
	}
	clk.Advance(throttle.SchemaRecheck)
	if err := claim(t, th, "old", "10.0.0.2"); err != nil {
		t.Fatalf("another address once the schema is back: %v", err)
	}
	if err := settle(t, th, "old", "10.0.0.2", nil); err != nil { // the owner forgets the account's failures
		t.Fatal(err)
	}
	for range 5 {
		fail("old", "10.0.0.1")
	}
	if got := retryAfter(t, claim(t, th, "old", "10.0.0.1")); got != time.Second {
		t.Fatalf("the guessing address: retry after %s, want 1s", got)
	}
	if err := claim(t, th, "old", "10.0.0.2"); err != nil {
		t.Fatalf("the owner's address: %v", err)
	}
}

// TestParallelWrongGuessesAcrossReplicas: a burst of wrong guesses at one
// account from one address, spread over two replicas (two throttles, two
// pools, one database), each check slow enough that all of them are in
// flight at once: no more passwords are checked than the threshold allows,
// and every one of them is counted.
func TestParallelWrongGuessesAcrossReplicas(t *testing.T) {
	ctx := context.Background()
	clk := clock.NewManual(time.Date(2030, 1, 1, 0, 0, 0, 0, time.UTC))
	url := pgtest.URL(t)
	log := slog.New(slog.NewTextHandler(io.Discard, nil))
	cfg := throttle.Config{MaxFailuresAccount: 5}
	replicas := []*throttle.Throttle{
		throttle.New(openDB(t, url), clk, cfg, log, nil),
		throttle.New(openDB(t, url), clk, cfg, log, nil),
	}
	const n = 24
	var checked, refused atomic.Int64
	release := make(chan struct{})
	var wg sync.WaitGroup
	start := make(chan struct{})
	for i := range n {
		wg.Go(func() {
			<-start
			err := replicas[i%2].Guard(ctx, throttle.Attempt{Key: "login:target", IP: "198.51.100.20",
				Check: func(*postgres.Tx) error {
					checked.Add(1)
					<-release // a slow hash: every other attempt arrives meanwhile
					return authdtest.ErrWrong
				},
				Wrong: func(err error) bool { return errors.Is(err, authdtest.ErrWrong) },
			})
			switch {
			case errors.Is(err, authdtest.ErrWrong):
			case errors.As(err, new(*throttle.LimitedError)):
				refused.Add(1)
			default:
				t.Error(err)
			}
		})
	}
	close(start)
	authdtest.Eventually(t, 10*time.Second, func() bool { return checked.Load()+refused.Load() == n },
		"%d checked and %d refused of %d", checked.Load(), refused.Load(), n)
	close(release)
	wg.Wait()
	if checked.Load() != 5 {
		t.Fatalf("%d of %d guesses checked, want the threshold, 5", checked.Load(), n)
	}
	db := openDB(t, url)
	if r, _ := row(t, db, postgres.ScopeAccountIP, "login:target|198.51.100.20"); r.Failures != 5 {
		t.Fatalf("pair row %+v, want the 5 checked guesses counted", r)
	}
	for _, th := range replicas {
		if got := retryAfter(t, claim(t, th, "login:target", "198.51.100.20")); got != time.Second {
			t.Fatalf("after the burst: retry after %s, want the backoff's 1s", got)
		}
	}
}

// TestMixedFleetCannotOutrunTheBound: during a rolling upgrade a replica
// of the release before claims with a committed pending row under an
// exclusive advisory lock. Its claim waits for this release's checks in
// flight, then counts their failures; this release counts its pending row
// as in flight. Together they check no more than the threshold.
func TestMixedFleetCannotOutrunTheBound(t *testing.T) {
	th, clk, db := setup(t, throttle.Config{MaxFailuresAccount: 5})
	for range 3 {
		if err := claim(t, th, "mix", "192.0.2.30"); err != nil {
			t.Fatal(err)
		}
	}
	old := make(chan struct{})
	go func() {
		defer close(old)
		legacyClaim(t, db, "mix", "192.0.2.30", clk.Now())
	}()
	authdtest.Eventually(t, 5*time.Second, func() bool {
		var waiting int
		_ = db.Pool().QueryRow(context.Background(), `SELECT count(*) FROM pg_stat_activity
			WHERE datname = current_database() AND wait_event_type = 'Lock' AND wait_event = 'advisory'`).Scan(&waiting)
		return waiting == 1
	}, "the old release's claim does not wait for the checks in flight")
	for range 3 {
		if err := settle(t, th, "mix", "192.0.2.30", authdtest.ErrWrong); err != nil {
			t.Fatal(err)
		}
	}
	<-old
	r, _ := row(t, db, postgres.ScopeAccountIP, "mix|192.0.2.30")
	if r.Failures != 3 || r.Pending != 1 {
		t.Fatalf("pair row %+v, want 3 failures and the old release's claim in flight", r)
	}
	// 3 failed and 1 in flight on the old replica: one more check allowed.
	if err := claim(t, th, "mix", "192.0.2.30"); err != nil {
		t.Fatalf("the fifth check: %v", err)
	}
	if got := retryAfter(t, claim(t, th, "mix", "192.0.2.30")); got != throttle.InFlightRetry {
		t.Fatalf("a sixth check: retry after %s, want %s", got, throttle.InFlightRetry)
	}
}

// TestHangUpMidCheckStillRecordsTheGuess: the client goes away while its
// password is being hashed; the wrong guess is recorded all the same, in
// the attempt's transaction, which does not follow the request's context.
func TestHangUpMidCheckStillRecordsTheGuess(t *testing.T) {
	th, _, db := setup(t, throttle.Config{})
	ctx, cancel := context.WithCancel(context.Background())
	err := th.Guard(ctx, throttle.Attempt{Key: "login:gone", IP: "192.0.2.40",
		Check: func(*postgres.Tx) error {
			cancel() // the client hangs up mid-hash
			return authdtest.ErrWrong
		},
		Wrong: func(err error) bool { return errors.Is(err, authdtest.ErrWrong) },
	})
	if !errors.Is(err, authdtest.ErrWrong) {
		t.Fatalf("Guard = %v, want the wrong password, recorded", err)
	}
	for _, k := range [][2]string{{postgres.ScopeAccount, "login:gone"}, {postgres.ScopeAccountIP, "login:gone|192.0.2.40"}, {postgres.ScopeIP, "192.0.2.40"}} {
		if r, _ := row(t, db, k[0], k[1]); r.Failures != 1 {
			t.Fatalf("%v after a hang-up mid-check: %+v, want the failure counted", k, r)
		}
	}
}
