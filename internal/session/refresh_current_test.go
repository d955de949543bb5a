package session_test

import (
	"reflect"
	"testing"
	"time"

	"github.com/seedc5a8123e/authd/internal/session"
	"github.com/seedc5a8123e/authd/internal/token"
)

// The common refresh is one statement (postgres.Tx.RotateCurrentRefresh)
// and mints the token the full transaction would: the same claims, the
// times of the clock, the row recording them. The full path takes over
// where a decision is needed: here a session of a release that recorded no
// client, and one ending before a full access token's life.
func TestRefreshInOneStatementMintsAsTheFullPath(t *testing.T) {
	t.Parallel()
	s, b := setup(t, session.Limits{IdleTTL: time.Hour})
	alice := b.user(t, "alice", session.RoleUser)
	g := login(t, s, "alice")
	parse := func(g session.Grant) *token.Claims {
		t.Helper()
		c, err := b.signer.Parse(g.AccessToken)
		if err != nil {
			t.Fatalf("parse the refreshed token: %v", err)
		}
		return c
	}
	// check: the token's times are the clock's, truncated, its expiry
	// wantExp, and the session row records it.
	check := func(g session.Grant, c *token.Claims, wantExp time.Time) {
		t.Helper()
		now := b.clk.Now().Truncate(time.Second)
		if c.Subject != alice.ID || c.SID != g.SID || c.Role != session.RoleUser || c.ClientID != token.DefaultClientID {
			t.Errorf("claims %+v; want alice's session, role user, client %s", c, token.DefaultClientID)
		}
		if !c.IssuedAt.Equal(now) || !c.NotBefore.Equal(now) || !c.ExpiresAt.Equal(wantExp) {
			t.Errorf("iat %v nbf %v exp %v; want %v, %v, %v", c.IssuedAt, c.NotBefore, c.ExpiresAt, now, now, wantExp)
		}
		if want := int64(wantExp.Sub(b.clk.Now()).Round(time.Second) / time.Second); g.ExpiresIn != want {
			t.Errorf("expires_in %d, want %d", g.ExpiresIn, want)
		}
		var jti, client string
		var iat int64
		var exp time.Time
		if err := b.db.Pool().QueryRow(ctx, `SELECT last_jti::text, last_iat, access_exp, client_id FROM sessions WHERE id = $1`, g.SID).
			Scan(&jti, &iat, &exp, &client); err != nil {
			t.Fatal(err)
		}
		if jti != c.ID || iat != now.Unix() || !exp.Equal(wantExp) || client != token.DefaultClientID {
			t.Errorf("row: jti %s iat %d access_exp %v client %q; want %s %d %v %q", jti, iat, exp, client, c.ID, now.Unix(), wantExp, token.DefaultClientID)
		}
	}

	b.clk.Advance(time.Minute + 500*time.Millisecond)
	g1 := refresh(t, s, g.RefreshToken)
	c1 := parse(g1)
	if n := b.obs.fullPaths(); n != 0 {
		t.Fatalf("a refresh of a live session took the full path (%d)", n)
	}
	check(g1, c1, b.clk.Now().Truncate(time.Second).Add(accessTTL))

	// A session of a release before sessions.client_id: the full path binds
	// the default client, and mints the same claims.
	if _, err := b.db.Pool().Exec(ctx, `UPDATE sessions SET client_id = NULL WHERE id = $1`, g.SID); err != nil {
		t.Fatal(err)
	}
	b.clk.Advance(time.Minute)
	g2 := refresh(t, s, g1.RefreshToken)
	c2 := parse(g2)
	if n := b.obs.fullPaths(); n != 1 {
		t.Fatalf("the refresh of a session without a client: %d full paths, want 1", n)
	}
	check(g2, c2, b.clk.Now().Truncate(time.Second).Add(accessTTL))
	same := func(c *token.Claims) token.Claims {
		d := *c
		d.ID, d.IssuedAt, d.NotBefore, d.ExpiresAt = "", nil, nil, nil
		return d
	}
	if a, b := same(c1), same(c2); !reflect.DeepEqual(a, b) {
		t.Errorf("one statement minted %+v, the full path %+v", a, b)
	}

	// Bound again: one statement again.
	b.clk.Advance(time.Minute)
	g3 := refresh(t, s, g2.RefreshToken)
	if n := b.obs.fullPaths(); n != 1 {
		t.Fatalf("a refresh after the client was bound took the full path (%d full paths)", n)
	}
	check(g3, parse(g3), b.clk.Now().Truncate(time.Second).Add(accessTTL))

	// Five minutes before the session ends, a token may live only that long:
	// the full path caps it.
	end := b.row(t, g.SID).ExpiresAt
	for b.clk.Now().Add(50 * time.Minute).Before(end.Add(-5 * time.Minute)) {
		b.clk.Advance(50 * time.Minute) // within the idle timeout
		g3 = refresh(t, s, g3.RefreshToken)
	}
	b.clk.Set(end.Add(-5 * time.Minute))
	before := b.obs.fullPaths()
	g4 := refresh(t, s, g3.RefreshToken)
	if n := b.obs.fullPaths(); n != before+1 {
		t.Fatalf("a refresh near the session's end: %d full paths, want %d", n, before+1)
	}
	check(g4, parse(g4), end.Truncate(time.Second))
}
