package verifiertest

import (
	"sync"
	"time"
)

// Clock is a clock a test moves by hand. Give the same Clock to a Server
// ([WithClock]) and to its Verifier (Config does) to expire tokens, or to
// make the revocation data stale, without waiting. It is safe for
// concurrent use; the zero Clock stands at the zero time.
type Clock struct {
	mu  sync.Mutex
	now time.Time
}

// NewClock returns a Clock standing at t.
func NewClock(t time.Time) *Clock { return &Clock{now: t} }

// Now returns the Clock's time.
func (c *Clock) Now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.now
}

// Advance moves the Clock forward by d (backward if d is negative).
func (c *Clock) Advance(d time.Duration) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.now = c.now.Add(d)
}
