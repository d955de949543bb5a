package verifier

import (
	"sync"
	"time"
)

// UserAgent is the User-Agent of every request the verifier makes to authd,
// so authd's logs and fleet view can tell which verifiers poll.
const UserAgent = "authd-verifier/2 (+https://github.com/seedc5a8123e/authd/tree/main/verifier)"

// DefaultGapTimeout is how long a skipped push sequence number may stay
// unfilled before the verifier polls the feed at once.
const DefaultGapTimeout = 2 * time.Second

// maxTrackedGap bounds the numbers one jump may leave missing; a larger
// jump (a long Redis outage) asks for a poll at once instead.
const maxTrackedGap = 1024

// gaps follows the push messages' sequence numbers. authd numbers every
// committed revocation from one database sequence, so a number that has not
// arrived while a later one has is a message lost (or one still in flight
// from another replica, which GapTimeout allows for, or one whose
// transaction rolled back, which costs one needless poll).
type gaps struct {
	mu      sync.Mutex
	max     int64               // the largest number seen; 0 before the first
	missing map[int64]time.Time // numbers below max not seen, with when they were noticed
	flood   bool                // a jump too large to track: poll at once
}

func newGaps() *gaps { return &gaps{missing: make(map[int64]time.Time)} }

// saw records seq, noticed at now. Messages without a number (seq 0, from an
// authd before numbering) are not tracked.
func (g *gaps) saw(seq int64, now time.Time) {
	if seq <= 0 {
		return
	}
	g.mu.Lock()
	defer g.mu.Unlock()
	switch {
	case g.max == 0:
		g.max = seq
	case seq > g.max:
		if seq-g.max-1 > maxTrackedGap {
			g.flood = true
		} else {
			for n := g.max + 1; n < seq; n++ {
				g.missing[n] = now
			}
		}
		g.max = seq
	default:
		delete(g.missing, seq)
	}
}

// overdue reports whether a gap has stayed unfilled for timeout at now.
func (g *gaps) overdue(now time.Time, timeout time.Duration) bool {
	g.mu.Lock()
	defer g.mu.Unlock()
	if g.flood {
		return true
	}
	for _, at := range g.missing {
		if now.Sub(at) >= timeout {
			return true
		}
	}
	return false
}

// polled forgets the gaps noticed at or before start: a poll that began
// then returned every revocation committed before it, so whatever those
// lost messages carried is in the denylist now.
func (g *gaps) polled(start time.Time) {
	g.mu.Lock()
	defer g.mu.Unlock()
	g.flood = false
	for n, at := range g.missing {
		if !at.After(start) {
			delete(g.missing, n)
		}
	}
}

// pending is how many numbers are missing.
func (g *gaps) pending() int {
	g.mu.Lock()
	defer g.mu.Unlock()
	return len(g.missing)
}
