package throttle_test

import (
	"context"
	"errors"
	"io"
	"log/slog"
	"os"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/seedc5a8123e/authd/internal/clock"
	"github.com/seedc5a8123e/authd/internal/pgtest"
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

func setup(t *testing.T, cfg throttle.Config) (*throttle.Throttle, *clock.Manual) {
	t.Helper()
	clk := clock.NewManual(time.Date(2030, 1, 1, 0, 0, 0, 0, time.UTC))
	return throttle.New(pgtest.NewDB(t), clk, cfg, slog.New(slog.NewTextHandler(io.Discard, nil))), clk
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

func TestThrottle(t *testing.T) {
	ctx := context.Background()
	// fail runs an attempt whose password is wrong: Begin, no Succeed.
	fail := func(t *testing.T, th *throttle.Throttle, account, ip string) {
		t.Helper()
		if err := th.Begin(ctx, account, ip); err != nil {
			t.Fatalf("Begin(%s, %s): %v", account, ip, err)
		}
	}
	t.Run("AccountCountIgnoresLetterCase", func(t *testing.T) {
		t.Parallel()
		th, _ := setup(t, throttle.Config{MaxFailuresAccount: 2})
		fail(t, th, "Alice", "192.0.2.1")
		fail(t, th, "ALICE", "192.0.2.1")
		if got := retryAfter(t, th.Begin(ctx, "alice", "192.0.2.99")); got != time.Second {
			t.Fatalf("retry after %s, want 1s", got)
		}
	})
	t.Run("SuccessClearsTheAccountAndRefundsTheIP", func(t *testing.T) {
		t.Parallel()
		th, clk := setup(t, throttle.Config{MaxFailuresAccount: 1, MaxFailuresIP: 2})
		fail(t, th, "bob", "192.0.2.1") // account 1, ip 1
		clk.Advance(time.Second)        // the account's delay runs out
		if err := th.Begin(ctx, "bob", "192.0.2.1"); err != nil {
			t.Fatal(err)
		}
		if err := th.Succeed(ctx, "bob", "192.0.2.1"); err != nil { // account cleared, ip back to 1
			t.Fatal(err)
		}
		if got := retryAfter(t, th.Begin(ctx, "bob", "192.0.2.3")); got != 0 {
			t.Fatalf("account still throttled after a success: %s", got)
		}
		fail(t, th, "carl", "192.0.2.1") // ip 2: allowed only because the success was refunded
		if got := retryAfter(t, th.Begin(ctx, "dan", "192.0.2.1")); got != time.Second {
			t.Fatalf("ip: retry after %s, want 1s", got)
		}
	})
	t.Run("DelayCappedAndRunsOut", func(t *testing.T) {
		t.Parallel()
		th, clk := setup(t, throttle.Config{MaxFailuresAccount: 1, Max: 4 * time.Second})
		for charged := 0; charged < 10; {
			err := th.Begin(ctx, "carol", "")
			if err == nil {
				charged++
				continue
			}
			clk.Advance(retryAfter(t, err)) // an attacker who waits out each delay
		}
		if got := retryAfter(t, th.Begin(ctx, "carol", "")); got != 4*time.Second {
			t.Fatalf("retry after %s, want the 4s cap", got)
		}
		clk.Advance(4 * time.Second)
		if err := th.Begin(ctx, "carol", ""); err != nil {
			t.Fatalf("after the cap: %v", err)
		}
	})
	t.Run("QuietDayForgets", func(t *testing.T) {
		t.Parallel()
		th, clk := setup(t, throttle.Config{MaxFailuresAccount: 3})
		for range 3 {
			fail(t, th, "dave", "")
		}
		if th.Begin(ctx, "dave", "") == nil {
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
	t.Run("ParallelGuessesAreCountedBeforeTheyAreChecked", func(t *testing.T) {
		t.Parallel()
		th, _ := setup(t, throttle.Config{MaxFailuresAccount: 5})
		var allowed, limited atomic.Int64
		var wg sync.WaitGroup
		for range 40 {
			wg.Add(1)
			go func() {
				defer wg.Done()
				switch err := th.Begin(ctx, "eve", "198.51.100.7"); {
				case err == nil:
					allowed.Add(1)
				case errors.As(err, new(*throttle.LimitedError)):
					limited.Add(1)
				default:
					t.Error(err)
				}
			}()
		}
		wg.Wait()
		if allowed.Load() != 5 || limited.Load() != 35 {
			t.Fatalf("%d attempts allowed, %d limited; want exactly the threshold, 5, allowed", allowed.Load(), limited.Load())
		}
	})
	t.Run("NilThrottleAllows", func(t *testing.T) {
		var th *throttle.Throttle
		if th.Begin(ctx, "x", "y") != nil || th.Succeed(ctx, "x", "y") != nil {
			t.Fatal("nil throttle refused")
		}
	})
}
