package verifier

import (
	"testing"
	"time"
)

// TestGaps: a skipped number is overdue only after the timeout, a late
// arrival fills it, a poll forgets what it covers, and a jump too large to
// track asks for a poll at once. Messages without numbers are not tracked.
func TestGaps(t *testing.T) {
	t0 := time.Unix(1_900_000_000, 0)
	g := newGaps()
	g.saw(0, t0) // an old authd's message
	g.saw(10, t0)
	g.saw(13, t0) // 11 and 12 missing
	if g.pending() != 2 || g.overdue(t0.Add(DefaultGapTimeout-time.Millisecond), DefaultGapTimeout) {
		t.Fatalf("pending %d, overdue before the timeout", g.pending())
	}
	g.saw(11, t0.Add(time.Second)) // late, from another replica
	if g.pending() != 1 || !g.overdue(t0.Add(DefaultGapTimeout), DefaultGapTimeout) {
		t.Fatalf("pending %d; 12 not overdue at the timeout", g.pending())
	}
	g.saw(15, t0.Add(3*time.Second)) // 14 noticed after the poll below began
	g.polled(t0.Add(2 * time.Second))
	if g.pending() != 1 || g.overdue(t0.Add(3*time.Second+DefaultGapTimeout-time.Millisecond), DefaultGapTimeout) {
		t.Fatalf("after a poll: pending %d", g.pending())
	}
	g.saw(15+maxTrackedGap+2, t0.Add(4*time.Second))
	if !g.overdue(t0.Add(4*time.Second), DefaultGapTimeout) {
		t.Fatal("a jump too large to track is not a reason to poll at once")
	}
	g.polled(t0.Add(5 * time.Second))
	if g.overdue(t0.Add(time.Hour), DefaultGapTimeout) {
		t.Fatal("still overdue after the poll that covered everything")
	}
}

// TestCutoffBoundaryInTheDenylist: a user cutoff denies iat < nbf only, of
// its user only; the issuer's of everyone; merged cutoffs keep the later
// nbf and the later exp; sweeping drops them after exp.
func TestCutoffBoundaryInTheDenylist(t *testing.T) {
	d := newDenylist()
	sub := "11111111-1111-4111-8111-111111111111"
	other, _ := parseID("21111111-1111-4111-8111-111111111111")
	sid, _ := parseID("31111111-1111-4111-8111-111111111111")
	u, _ := parseID(sub)
	d.addUser(UserCutoff{Sub: sub, NBF: 1000, Exp: 5000})
	d.addUser(UserCutoff{Sub: sub, NBF: 900, Exp: 6000}) // older cutoff, later exp
	for _, tc := range []struct {
		sub  id
		iat  int64
		want bool
	}{{u, 999, true}, {u, 1000, false}, {u, 0, true}, {other, 999, false}} {
		if got, _ := d.deniedToken(sid, tc.sub, true, tc.iat); got != tc.want {
			t.Errorf("iat %d sub %x: denied %v, want %v", tc.iat, tc.sub[:2], got, tc.want)
		}
	}
	if denied, _ := d.deniedToken(sid, u, false, 999); denied {
		t.Error("a sub that is no UUID matched a user cutoff")
	}
	d.addIssuer(IssuerCutoff{NBF: 2000, Exp: 7000})
	if denied, by := d.deniedToken(sid, other, true, 1999); !denied || by != "issuer cutoff" {
		t.Errorf("issuer cutoff: %v %q", denied, by)
	}
	if denied, _ := d.deniedToken(sid, other, true, 2000); denied {
		t.Error("a token minted at the issuer's nbf is denied")
	}
	d.sweep(6001)
	if n, issuer := d.cutoffs(); n != 0 || !issuer {
		t.Fatalf("after sweeping past 6000: %d users, issuer %v", n, issuer)
	}
	d.sweep(7001)
	if _, issuer := d.cutoffs(); issuer {
		t.Fatal("issuer cutoff kept past its exp")
	}
}
