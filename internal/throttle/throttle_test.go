package throttle_test

import (
	"context"
	"errors"
	"io"
	"log/slog"
	"os"
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
	t.Run("AccountCountIgnoresLetterCase", func(t *testing.T) {
		t.Parallel()
		th, _ := setup(t, throttle.Config{MaxFailuresAccount: 2})
		for _, u := range []string{"Alice", "ALICE"} {
			if err := th.Fail(ctx, u, "192.0.2.1"); err != nil {
				t.Fatal(err)
			}
		}
		if got := retryAfter(t, th.Check(ctx, "alice", "192.0.2.99")); got != time.Second {
			t.Fatalf("retry after %s, want 1s", got)
		}
	})
	t.Run("SuccessClearsTheAccountNotTheIP", func(t *testing.T) {
		t.Parallel()
		th, _ := setup(t, throttle.Config{MaxFailuresAccount: 1, MaxFailuresIP: 1})
		if err := th.Fail(ctx, "bob", "192.0.2.1"); err != nil {
			t.Fatal(err)
		}
		if err := th.Succeed(ctx, "bob"); err != nil {
			t.Fatal(err)
		}
		if got := retryAfter(t, th.Check(ctx, "bob", "192.0.2.2")); got != 0 {
			t.Fatalf("account still throttled: %s", got)
		}
		if got := retryAfter(t, th.Check(ctx, "bob", "192.0.2.1")); got != time.Second {
			t.Fatalf("ip: retry after %s, want 1s", got)
		}
	})
	t.Run("DelayCappedAndRunsOut", func(t *testing.T) {
		t.Parallel()
		th, clk := setup(t, throttle.Config{MaxFailuresAccount: 1, Max: 4 * time.Second})
		for range 10 {
			if err := th.Fail(ctx, "carol", ""); err != nil {
				t.Fatal(err)
			}
		}
		if got := retryAfter(t, th.Check(ctx, "carol", "")); got != 4*time.Second {
			t.Fatalf("retry after %s, want the 4s cap", got)
		}
		clk.Advance(4 * time.Second)
		if err := th.Check(ctx, "carol", ""); err != nil {
			t.Fatalf("after the cap: %v", err)
		}
	})
	t.Run("QuietDayForgets", func(t *testing.T) {
		t.Parallel()
		th, clk := setup(t, throttle.Config{MaxFailuresAccount: 3})
		for range 5 {
			if err := th.Fail(ctx, "dave", ""); err != nil {
				t.Fatal(err)
			}
		}
		clk.Advance(throttle.Forget + time.Second)
		if err := th.Fail(ctx, "dave", ""); err != nil {
			t.Fatal(err)
		}
		if err := th.Check(ctx, "dave", ""); err != nil {
			t.Fatalf("one failure after a quiet day: %v", err)
		}
		clk.Advance(throttle.Forget + time.Second)
		if n, err := th.Prune(ctx); err != nil || n != 1 {
			t.Fatalf("prune: %d %v", n, err)
		}
	})
	t.Run("NilThrottleAllows", func(t *testing.T) {
		var th *throttle.Throttle
		if th.Check(ctx, "x", "y") != nil || th.Fail(ctx, "x", "y") != nil || th.Succeed(ctx, "x") != nil {
			t.Fatal("nil throttle refused")
		}
	})
}
