package authdtest

import (
	"fmt"
	"testing"
	"time"
)

// PollInterval is how often Eventually checks its condition.
const PollInterval = 10 * time.Millisecond

// Eventually waits for an asynchronous effect: it calls cond every
// PollInterval until it returns true, and fails the test, naming what was
// awaited (format and args, as for fmt.Sprintf), if within passes first.
// cond runs on the caller's goroutine, so it may call t.Fatal itself; it is
// called once more after the deadline, so a condition that holds just in
// time is not failed.
func Eventually(t testing.TB, within time.Duration, cond func() bool, format string, args ...any) {
	t.Helper()
	EventuallyEvery(t, within, PollInterval, cond, format, args...)
}

// EventuallyEvery is Eventually polling every every, for the tests that
// measure how soon an effect shows (a latency benchmark polls every
// millisecond so that its figure is not rounded up to PollInterval).
func EventuallyEvery(t testing.TB, within, every time.Duration, cond func() bool, format string, args ...any) {
	t.Helper()
	deadline := time.Now().Add(within)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out after %s waiting for %s", within, fmt.Sprintf(format, args...))
		}
		time.Sleep(every)
	}
}
