package session_test

import (
	"errors"
	"testing"
	"time"

	"github.com/google/uuid"

	"github.com/seedc5a8123e/authd/internal/postgres"
	"github.com/seedc5a8123e/authd/internal/session"
	"github.com/seedc5a8123e/authd/internal/token"
)

// Grants hand out refresh tokens that name their session, so a refresh
// finds the row by primary key.
func TestRefreshTokensNameTheirSession(t *testing.T) {
	t.Parallel()
	s, b := setup(t, session.Limits{})
	b.user(t, "alice", session.RoleUser)
	g0 := login(t, s, "alice")
	g1 := refresh(t, s, g0.RefreshToken)
	for _, g := range []session.Grant{g0, g1} {
		if got := token.RefreshSID(g.RefreshToken); got != g.SID {
			t.Fatalf("refresh token names %q, want the session %s", got, g.SID)
		}
	}
}

// A session of the release before migration 000010 holds a token that
// names no session (token.NewRefresh): during a rolling upgrade, and until
// such sessions expire, it still refreshes, is then rotated into a token
// that names the session, and its reuse is still detected.
func TestALegacyRefreshTokenStillRefreshesAndItsReuseIsDetected(t *testing.T) {
	t.Parallel()
	s, b := setup(t, session.Limits{})
	u := b.user(t, "alice", session.RoleUser)
	legacy, err := token.NewRefresh()
	if err != nil {
		t.Fatal(err)
	}
	now := b.clk.Now()
	sid := uuid.NewString()
	if _, err := b.db.CreateSession(ctx, postgres.NewSession{
		ID: sid, UserID: u.ID, CreatedAt: now, ExpiresAt: now.Add(time.Hour), RefreshTokenHash: token.HashRefresh(legacy),
		JTI: uuid.NewString(), AccessExp: now.Add(time.Minute), UserCredentialsVersion: 1, UserRole: u.Role, // a new user's version
	}); err != nil {
		t.Fatal(err)
	}
	b.clk.Advance(time.Minute)
	g := refresh(t, s, legacy)
	if g.SID != sid || token.RefreshSID(g.RefreshToken) != sid {
		t.Fatalf("refresh of a legacy token = %+v; want session %s and a token naming it", g, sid)
	}
	g = refresh(t, s, g.RefreshToken)
	refresh(t, s, g.RefreshToken) // the legacy token is now in refresh_token_history
	if _, err := s.RefreshGrant(ctx, legacy); !errors.Is(err, session.ErrRefreshReused) {
		t.Fatalf("reuse of the legacy token: %v, want ErrRefreshReused", err)
	}
	if row := b.row(t, sid); row.RevokedAt == nil || *row.RevokedReason != session.ReasonRefreshReuse {
		t.Fatalf("session after the reuse = %+v, want revoked", row)
	}
}

// A token naming a session it does not belong to is unknown, and revokes
// nothing: a sid is no secret (every access token carries it), so a forged
// token built on one must not let anyone end that session.
func TestARefreshTokenNamingAnotherSessionIsUnknown(t *testing.T) {
	t.Parallel()
	s, b := setup(t, session.Limits{})
	b.user(t, "alice", session.RoleUser)
	b.user(t, "bob", session.RoleUser)
	alice, bob := login(t, s, "alice"), login(t, s, "bob")
	old := bob.RefreshToken
	bob = refresh(t, s, old) // old is now bob's rotated-away token
	aliceHead := alice.RefreshToken[:22]
	for _, forged := range []string{aliceHead + old[22:], aliceHead + bob.RefreshToken[22:], aliceHead + ".AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA"} {
		if _, err := s.RefreshGrant(ctx, forged); !errors.Is(err, session.ErrInvalidRefresh) {
			t.Errorf("forged %q: %v, want ErrInvalidRefresh", forged, err)
		}
	}
	if row := b.row(t, alice.SID); row.RevokedAt != nil {
		t.Fatalf("alice's session was revoked by a forged token: %+v", row)
	}
	refresh(t, s, alice.RefreshToken)
}
