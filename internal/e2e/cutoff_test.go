package e2e_test

import (
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/seedc5a8123e/authd/internal/authdtest"
	"github.com/seedc5a8123e/authd/internal/push"
	"github.com/seedc5a8123e/authd/verifier"
)

// advance moves the shared clock and waits for the verifier's next poll, so
// that a jump past its MaxStaleness does not read as a stale feed.
func (f *fixture) advance(t *testing.T, d time.Duration) {
	t.Helper()
	polls := f.v.Stats().Polls
	f.env.Clock.Advance(d)
	if f.v.Stats().LastSync.IsZero() {
		return
	}
	authdtest.Eventually(t, 5*time.Second, func() bool {
		st := f.v.Stats()
		return !st.Stale || st.Polls > polls+1
	}, "the verifier to poll after the clock moved")
}

// TestLogoutAllOf200ArrivesAsOneEntry: a user with 200 sessions logs out
// everywhere; the verifier holds one user cutoff (no session entries) that
// denies all 200 tokens, and a login right after is accepted. By pull and by
// push.
func TestLogoutAllOf200ArrivesAsOneEntry(t *testing.T) {
	for _, m := range modes {
		t.Run(m.name, func(t *testing.T) {
			t.Parallel()
			f := setup(t, m.o)
			toks := []string{f.login(t, "alice", "user", userPW).AccessToken}
			for len(toks) < 200 {
				toks = append(toks, f.env.Login(t, "alice", userPW).AccessToken)
			}
			bob := f.login(t, "bob", "user", userPW)
			for _, tok := range toks {
				f.mustAccept(t, tok)
			}
			f.advance(t, 300*time.Millisecond)
			f.post(t, "/logout/all", toks[0])
			for _, tok := range toks {
				f.waitRevoked(t, tok, m.within)
			}
			st := f.v.Stats()
			if st.UserCutoffs != 1 {
				t.Fatalf("verifier holds %d user cutoffs, want 1 (stats %+v)", st.UserCutoffs, st)
			}
			if m.name == "Pull" && st.DenylistSize != 0 {
				// Push also sends each session for old subscribers; the
				// format-2 feed does not.
				t.Fatalf("verifier holds %d session entries from the feed, want 0: the cutoff covers them", st.DenylistSize)
			}
			f.mustAccept(t, bob.AccessToken)
			// Within the cutoff's second: accepted, because its iat is the
			// cutoff's nbf.
			next := f.env.Login(t, "alice", userPW)
			f.mustAccept(t, next.AccessToken)
			f.advance(t, time.Second)
			f.mustAccept(t, f.env.Login(t, "alice", userPW).AccessToken)
		})
	}
}

// TestIssuerCutoffReachesTheVerifier: POST /sessions/revoke-all denies
// every token minted before it, of every user, at the verifier; tokens
// minted after it are accepted.
func TestIssuerCutoffReachesTheVerifier(t *testing.T) {
	for _, m := range modes {
		t.Run(m.name, func(t *testing.T) {
			t.Parallel()
			f := setup(t, m.o)
			alice := f.login(t, "alice", "user", userPW)
			admin := f.login(t, "root", "admin", adminPW)
			f.advance(t, 500*time.Millisecond)
			res, body := f.env.Do(t, http.MethodPost, "/sessions/revoke-all", admin.AccessToken, "application/json",
				strings.NewReader(`{"reason":"signing key leaked"}`))
			if res.StatusCode != 200 {
				t.Fatalf("revoke-all: %d %s", res.StatusCode, body)
			}
			f.waitRevoked(t, alice.AccessToken, m.within)
			f.waitRevoked(t, admin.AccessToken, m.within)
			if !f.v.Stats().IssuerCutoff {
				t.Fatalf("verifier stats %+v: no issuer cutoff", f.v.Stats())
			}
			f.mustAccept(t, f.env.Login(t, "alice", userPW).AccessToken)
		})
	}
}

// TestDroppedPushIsRepaired: a revocation whose push message never arrives
// (committed by a replica without Redis) is noticed as a gap in the sequence
// numbers when the next message arrives, and repaired by a poll within the
// gap timeout, although the poll interval is an hour.
func TestDroppedPushIsRepaired(t *testing.T) {
	f := setup(t, options{push: true, pollInterval: time.Hour})
	// A second replica on the same database that pushes nothing: its
	// revocations take sequence numbers no message carries.
	silent := authdtest.Start(t, authdtest.Options{DB: f.env.DB, Clock: f.env.Clock, Keys: f.env.Keys, Publisher: push.Nop{}})
	first := f.login(t, "alice", "user", userPW)
	lost := f.login(t, "bob", "user", userPW)
	last := f.login(t, "carol", "user", userPW)
	f.post(t, "/logout", first.AccessToken) // sets the verifier's baseline
	f.waitRevoked(t, first.AccessToken, time.Second)
	if res, body := silent.Do(t, http.MethodPost, "/logout", lost.AccessToken, "", nil); res.StatusCode != 200 {
		t.Fatalf("logout on the silent replica: %d %s", res.StatusCode, body)
	}
	polls := f.v.Stats().Polls
	start := time.Now()
	f.post(t, "/logout", last.AccessToken) // its number is one past the lost one
	f.waitRevoked(t, last.AccessToken, time.Second)
	f.waitRevoked(t, lost.AccessToken, verifier.DefaultGapTimeout+2*time.Second)
	st := f.v.Stats()
	if st.GapWakeups == 0 || st.Polls == polls {
		t.Fatalf("the lost revocation arrived without a gap poll: %+v", st)
	}
	t.Logf("lost push repaired %s after the next message (gap timeout %s)", time.Since(start), verifier.DefaultGapTimeout)
}
