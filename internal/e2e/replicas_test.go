package e2e_test

import (
	"context"
	"encoding/json"
	"errors"
	"log/slog"
	"net/http"
	"net/url"
	"testing"
	"time"

	"github.com/golang-jwt/jwt/v5"

	"github.com/seedc5a8123e/authd/internal/authdtest"
	"github.com/seedc5a8123e/authd/internal/clock"
	"github.com/seedc5a8123e/authd/internal/feed"
	"github.com/seedc5a8123e/authd/internal/keys"
	"github.com/seedc5a8123e/authd/internal/pgtest"
	"github.com/seedc5a8123e/authd/verifier"
)

// These tests hold authd to its claim of being stateless: two servers on
// one database, with the same keys and clock, behave as one. Every step
// below happens on another replica than the step before.

// replicas starts two authd servers sharing one database, key set and
// clock, and creates the service user.
func replicas(t *testing.T) (a, b *authdtest.Env) {
	t.Helper()
	db := pgtest.NewDB(t)
	k, err := keys.Generate(keys.EdDSA)
	if err != nil {
		t.Fatal(err)
	}
	ks, _ := keys.NewSet(k)
	clk := clock.NewManual(time.Now().Truncate(time.Second))
	a = authdtest.Start(t, authdtest.Options{DB: db, Keys: ks, Clock: clk})
	b = authdtest.Start(t, authdtest.Options{DB: db, Keys: ks, Clock: clk})
	a.CreateUser(t, svcUser, "service", svcSecret)
	return a, b
}

type feedEntry struct {
	JTI string `json:"jti"`
	SID string `json:"sid"`
	Exp int64  `json:"exp"`
}

// revokedFeed reads env's full feed snapshot with a service token.
func revokedFeed(t *testing.T, env *authdtest.Env, bearer string) map[string]feedEntry {
	t.Helper()
	res, body := env.Do(t, http.MethodGet, "/sessions/revoked", bearer, "", nil)
	if res.StatusCode != http.StatusOK {
		t.Fatalf("feed on %s: %d %s", env.URL, res.StatusCode, body)
	}
	if res.Header.Get(verifier.CursorHeader) == "" {
		t.Errorf("feed on %s: no %s", env.URL, verifier.CursorHeader)
	}
	var entries []feedEntry
	if err := json.Unmarshal(body, &entries); err != nil {
		t.Fatalf("feed on %s: %v (%s)", env.URL, err, body)
	}
	m := make(map[string]feedEntry, len(entries))
	for _, e := range entries {
		m[e.SID] = e
	}
	return m
}

func refreshOn(t *testing.T, env *authdtest.Env, rt string) (*http.Response, []byte) {
	t.Helper()
	return env.PostForm(t, "/token", url.Values{"grant_type": {"refresh_token"}, "refresh_token": {rt}})
}

func wantInvalidGrant(t *testing.T, what string, res *http.Response, body []byte) {
	t.Helper()
	var e struct {
		Error string `json:"error"`
	}
	_ = json.Unmarshal(body, &e)
	if res.StatusCode != http.StatusBadRequest || e.Error != "invalid_grant" {
		t.Errorf("%s: %d %s, want 400 invalid_grant", what, res.StatusCode, body)
	}
}

func jtiOf(t *testing.T, tok string) string {
	t.Helper()
	var c jwt.RegisteredClaims
	if _, _, err := jwt.NewParser().ParseUnverified(tok, &c); err != nil {
		t.Fatal(err)
	}
	return c.ID
}

// TestReplicasShareSessions: log in on A, refresh on B, log out on B; both
// feeds list the revocation, and the session is dead on A too.
func TestReplicasShareSessions(t *testing.T) {
	a, b := replicas(t)
	a.CreateUser(t, "alice", "user", userPW)

	login := a.Login(t, "alice", userPW)
	res, body := refreshOn(t, b, login.RefreshToken)
	if res.StatusCode != http.StatusOK {
		t.Fatalf("refresh on B of a login on A: %d %s", res.StatusCode, body)
	}
	var refreshed authdtest.TokenResponse
	if err := json.Unmarshal(body, &refreshed); err != nil {
		t.Fatal(err)
	}
	if refreshed.SID != login.SID || refreshed.RefreshToken == login.RefreshToken {
		t.Fatalf("refresh on B: sid %s (want %s), refresh token rotated: %v",
			refreshed.SID, login.SID, refreshed.RefreshToken != login.RefreshToken)
	}
	// B's token is accepted by A: same keys, same session row.
	if res, body := a.Do(t, http.MethodGet, "/sessions", refreshed.AccessToken, "", nil); res.StatusCode != http.StatusOK {
		t.Fatalf("B's access token on A: %d %s", res.StatusCode, body)
	}

	if res, body := b.Do(t, http.MethodPost, "/logout", refreshed.AccessToken, "", nil); res.StatusCode != http.StatusOK {
		t.Fatalf("logout on B: %d %s", res.StatusCode, body)
	}

	// The revocation is in the feed of either server, with the jti of the
	// newest token (minted on B). The service token comes from A and is
	// used on both.
	svc := a.ServiceToken(t, svcUser, svcSecret)
	for _, env := range []*authdtest.Env{a, b} {
		e, ok := revokedFeed(t, env, svc.AccessToken)[login.SID]
		if !ok {
			t.Errorf("feed on %s does not list session %s", env.URL, login.SID)
			continue
		}
		if want := jtiOf(t, refreshed.AccessToken); e.JTI != want {
			t.Errorf("feed on %s: jti %s, want %s (the token B minted)", env.URL, e.JTI, want)
		}
	}

	// On A the session is over: the refresh token B issued is refused, the
	// access tokens of both servers are rejected, and logout is idempotent.
	res, body = refreshOn(t, a, refreshed.RefreshToken)
	wantInvalidGrant(t, "refresh on A after logout on B", res, body)
	for what, tok := range map[string]string{"A's": login.AccessToken, "B's": refreshed.AccessToken} {
		if res, body := a.Do(t, http.MethodGet, "/sessions", tok, "", nil); res.StatusCode != http.StatusUnauthorized {
			t.Errorf("%s access token on A after logout on B: %d %s, want 401", what, res.StatusCode, body)
		}
	}
	res, body = a.Do(t, http.MethodPost, "/logout", login.AccessToken, "", nil)
	if res.StatusCode != http.StatusOK {
		t.Fatalf("logout again on A: %d %s", res.StatusCode, body)
	}
	var lo struct {
		AlreadyRevoked bool `json:"already_revoked"`
	}
	_ = json.Unmarshal(body, &lo)
	if !lo.AlreadyRevoked {
		t.Errorf("logout on A after logout on B: %s, want already_revoked", body)
	}
}

// TestReplicasAdminRevoke: an admin on B revokes a session created on A;
// A then refuses its refresh token.
func TestReplicasAdminRevoke(t *testing.T) {
	a, b := replicas(t)
	a.CreateUser(t, "alice", "user", userPW)
	a.CreateUser(t, "root", "admin", adminPW)

	alice := a.Login(t, "alice", userPW)
	other := a.Login(t, "alice", userPW) // another session of alice stays live
	admin := b.Login(t, "root", adminPW)
	res, body := b.Do(t, http.MethodPost, "/sessions/"+alice.SID+"/revoke", admin.AccessToken, "", nil)
	if res.StatusCode != http.StatusOK {
		t.Fatalf("admin revoke on B: %d %s", res.StatusCode, body)
	}

	res, body = refreshOn(t, a, alice.RefreshToken)
	wantInvalidGrant(t, "refresh on A of a session revoked on B", res, body)
	if res, body := refreshOn(t, a, other.RefreshToken); res.StatusCode != http.StatusOK {
		t.Errorf("refresh on A of alice's other session: %d %s", res.StatusCode, body)
	}

	svc := b.ServiceToken(t, svcUser, svcSecret)
	for _, env := range []*authdtest.Env{a, b} {
		feed := revokedFeed(t, env, svc.AccessToken)
		if _, ok := feed[alice.SID]; !ok {
			t.Errorf("feed on %s does not list session %s", env.URL, alice.SID)
		}
		if _, ok := feed[other.SID]; ok {
			t.Errorf("feed on %s lists the live session %s", env.URL, other.SID)
		}
	}
}

// TestReplicasVerifier: a verifier pointed at A sees a logout made on B
// within one poll interval (plus the time of a poll in flight).
func TestReplicasVerifier(t *testing.T) {
	a, b := replicas(t)
	a.CreateUser(t, "alice", "user", userPW)
	const poll = 300 * time.Millisecond
	v, err := verifier.New(context.Background(), verifier.Config{
		IssuerURL: a.URL, Audience: authdtest.Audience, ClientID: svcUser, ClientSecret: svcSecret,
		PollInterval: poll, Clock: a.Clock, InitialTimeout: 10 * time.Second,
		HTTPClient: clientVia(hostOf(a.Server)), // every request goes to A, never B
		Logger:     slog.New(slog.NewTextHandler(testWriter{t}, &slog.HandlerOptions{Level: slog.LevelWarn})),
	})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = v.Close() })

	tr := b.Login(t, "alice", userPW)
	if _, err := v.Verify(context.Background(), tr.AccessToken); err != nil {
		t.Fatalf("token minted on B, verifier on A: %v", err)
	}
	start := time.Now()
	if res, body := b.Do(t, http.MethodPost, "/logout", tr.AccessToken, "", nil); res.StatusCode != http.StatusOK {
		t.Fatalf("logout on B: %d %s", res.StatusCode, body)
	}
	// A serves B's revocation once its feed follower has read it (within
	// feed.DefaultInterval); a poll jitters by up to 10%; the slack covers
	// a poll that was in flight during the logout and the request that
	// then sees it.
	authdtest.Eventually(t, time.Until(start.Add(feed.DefaultInterval+poll+poll/10+500*time.Millisecond)), func() bool {
		_, err := v.Verify(context.Background(), tr.AccessToken)
		if err != nil && !errors.Is(err, verifier.ErrRevoked) {
			t.Fatalf("Verify: %v, want success or ErrRevoked", err)
		}
		return err != nil
	}, "the verifier on A to reject the token after the logout on B (poll interval %s)", poll)
	t.Logf("verifier on A rejected the token %s after the logout on B", time.Since(start))
}
