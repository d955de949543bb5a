package authdtest

import (
	"context"
	"errors"
	"sync"
	"sync/atomic"
	"testing"

	"github.com/seedc5a8123e/authd/internal/postgres"
	"github.com/seedc5a8123e/authd/internal/throttle"
)

// ErrWrong is the wrong password of a held attempt (Hold).
var ErrWrong = errors.New("authdtest: wrong password")

// Held is an attempt Hold claimed, its password being checked until Settle.
type Held struct {
	outcome chan error
	done    chan error
	settled atomic.Bool
}

// Settle ends the check with outcome (nil: a right password; ErrWrong: a
// wrong one) and returns what Guard returned.
func (h *Held) Settle(outcome error) error {
	h.settled.Store(true)
	h.outcome <- outcome
	return <-h.done
}

// Hold claims an attempt for key and ip under th and keeps its password
// check running until Settle: an attempt in flight. It returns the
// refusal (or other error) instead when the attempt is not claimed. Held
// attempts not settled by the end of t are settled as right.
func Hold(t testing.TB, th *throttle.Throttle, key, ip string) (*Held, error) {
	t.Helper()
	h := &Held{outcome: make(chan error, 1), done: make(chan error, 1)}
	entered := make(chan struct{})
	var once sync.Once
	var outcome error
	go func() {
		h.done <- th.Guard(context.Background(), throttle.Attempt{Key: key, IP: ip,
			// Check may run twice (postgres.InLoginTx): the second time it
			// answers as the first.
			Check: func(*postgres.Tx) error {
				once.Do(func() {
					close(entered)
					outcome = <-h.outcome
				})
				return outcome
			},
			Wrong: func(err error) bool { return errors.Is(err, ErrWrong) },
		})
	}()
	select {
	case <-entered:
		t.Cleanup(func() {
			if !h.settled.Load() {
				_ = h.Settle(nil)
			}
		})
		return h, nil
	case err := <-h.done:
		if err == nil {
			err = errors.New("authdtest: Guard returned without checking")
		}
		return nil, err
	}
}
