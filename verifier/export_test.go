package verifier

import (
	"crypto/rand"
	"time"
)

// This file gives the external tests (package verifier_test, which use
// verifiertest and so cannot be in package verifier) the few internals they
// reach into.

// ForgetLastFetch lifts the JWKS rate limit, as if KeyRefetchInterval had
// passed since the last fetch.
func ForgetLastFetch(v *Verifier) {
	v.keys.fetchMu.Lock()
	defer v.keys.fetchMu.Unlock()
	v.keys.lastFetch = time.Time{}
}

// FillDenylist adds n revocations with random sids and the given exp.
func FillDenylist(v *Verifier, n int, exp int64) { fillDenylist(v.deny, n, exp) }

func fillDenylist(d *denylist, n int, exp int64) {
	d.mu.Lock()
	defer d.mu.Unlock()
	var k id
	for range n {
		_, _ = rand.Read(k[:])
		d.m[k] = exp
	}
}
