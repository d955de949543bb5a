package httpapi_test

import (
	"context"
	"encoding/json"
	"io"
	"net/http"
	"net/url"
	"strings"
	"testing"
	"time"

	"github.com/google/uuid"
	"golang.org/x/oauth2"

	"github.com/seedc5a8123e/authd/internal/authdtest"
	"github.com/seedc5a8123e/authd/internal/openapitest"
)

// oauthAPI sends forms to the RFC 7009/7662 endpoints through the transport
// that checks every answer against openapi.yaml.
type oauthAPI struct {
	t   *testing.T
	env *authdtest.Env
	c   *http.Client
}

func newOAuthAPI(t *testing.T, env *authdtest.Env) *oauthAPI {
	return &oauthAPI{t, env, &http.Client{Transport: openapitest.Transport(t, http.DefaultTransport)}}
}

// post sends form to path; basic is "id:secret" for HTTP Basic, bearer a token.
func (a *oauthAPI) post(path string, form url.Values, basic, bearer string) (*http.Response, string) {
	a.t.Helper()
	req, err := http.NewRequest(http.MethodPost, a.env.URL+path, strings.NewReader(form.Encode()))
	if err != nil {
		a.t.Fatal(err)
	}
	req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	if id, secret, ok := strings.Cut(basic, ":"); ok {
		req.SetBasicAuth(url.QueryEscape(id), url.QueryEscape(secret))
	}
	if bearer != "" {
		req.Header.Set("Authorization", "Bearer "+bearer)
	}
	res, err := a.c.Do(req)
	if err != nil {
		a.t.Fatal(err)
	}
	defer res.Body.Close()
	b, err := io.ReadAll(res.Body)
	if err != nil {
		a.t.Fatal(err)
	}
	return res, string(b)
}

// TestRevokeEndpoint: RFC 7009. Either kind of token ends its whole session
// with reason token_revoked and the session's user as the actor; every
// other token gets the same empty 200; a client that authenticates must do
// so correctly.
func TestRevokeEndpoint(t *testing.T) {
	env := authdtest.Start(t, authdtest.Options{})
	api := newOAuthAPI(t, env)
	uid := env.CreateUser(t, "rita", "user", pw)
	env.CreateUser(t, "gateway", "service", "gateway service secret")

	revoke := func(tok, hint, basic string) {
		t.Helper()
		form := url.Values{"token": {tok}}
		if hint != "" {
			form.Set("token_type_hint", hint)
		}
		res, body := api.post("/revoke", form, basic, "")
		if res.StatusCode != http.StatusOK || body != "" || res.Header.Get("Cache-Control") != "no-store" {
			t.Fatalf("revoke: %d %q Cache-Control %q, want 200, empty, no-store", res.StatusCode, body, res.Header.Get("Cache-Control"))
		}
	}
	wantRevoked := func(sid string) {
		t.Helper()
		s := session(t, env, sid)
		if s.RevokedAt == nil || *s.RevokedReason != "token_revoked" || s.RevokedByUserID == nil || *s.RevokedByUserID != uid {
			t.Fatalf("session %s after /revoke: %+v", sid, s)
		}
	}

	t.Run("AccessTokenEndsTheSession", func(t *testing.T) {
		tr := env.Login(t, "rita", pw)
		revoke(tr.AccessToken, "access_token", "")
		wantRevoked(tr.SID)
		res, _ := env.Do(t, http.MethodGet, "/sessions", tr.AccessToken, "", nil)
		if res.StatusCode != http.StatusUnauthorized {
			t.Errorf("the revoked session's token still works: %d", res.StatusCode)
		}
	})
	t.Run("RefreshTokenEndsTheSession", func(t *testing.T) {
		tr := env.Login(t, "rita", pw)
		revoke(tr.RefreshToken, "refresh_token", "")
		wantRevoked(tr.SID)
	})
	t.Run("WrongOrUnknownHintIsIgnored", func(t *testing.T) {
		a, b := env.Login(t, "rita", pw), env.Login(t, "rita", pw)
		revoke(a.RefreshToken, "access_token", "")
		revoke(b.AccessToken, "no_such_hint", "")
		wantRevoked(a.SID)
		wantRevoked(b.SID)
	})
	t.Run("AuthenticatedServiceClient", func(t *testing.T) {
		tr := env.Login(t, "rita", pw)
		revoke(tr.RefreshToken, "", "gateway:gateway service secret")
		wantRevoked(tr.SID)
	})
	t.Run("PublicClientID", func(t *testing.T) {
		tr := env.Login(t, "rita", pw)
		res, body := api.post("/revoke", url.Values{"token": {tr.RefreshToken}, "client_id": {"my-spa"}}, "", "")
		if res.StatusCode != http.StatusOK || body != "" {
			t.Fatalf("public client: %d %s", res.StatusCode, body)
		}
		wantRevoked(tr.SID)
	})
	t.Run("EveryOtherTokenGetsTheSameAnswer", func(t *testing.T) {
		live := env.Login(t, "rita", pw)
		expired := env.Login(t, "rita", pw)
		env.Clock.Advance(11 * time.Minute) // past the access token's exp, not the session's
		parts := strings.Split(live.AccessToken, ".")
		for _, tok := range []string{
			"not-a-token-authd-issued",          // unknown
			"a.b.c",                             // unknown, shaped like a JWT
			parts[0] + "." + parts[1] + ".AAAA", // forged signature
			expired.AccessToken,                 // expired
			strings.Repeat("x", 4000),           // long, within the parameter limit
		} {
			revoke(tok, "", "")
		}
		if s := session(t, env, expired.SID); s.RevokedAt != nil {
			t.Error("an expired access token revoked its session")
		}
		if s := session(t, env, live.SID); s.RevokedAt != nil {
			t.Error("a forged token revoked a session")
		}
		revoke(live.RefreshToken, "", "")
		revoke(live.RefreshToken, "", "") // already revoked: same answer
	})
	t.Run("BadRequests", func(t *testing.T) {
		tr := env.Login(t, "rita", pw)
		res, body := api.post("/revoke", url.Values{}, "", "")
		wantOAuthError(t, res, []byte(body), 400, "invalid_request")
		res, body = api.post("/revoke", url.Values{"token": {tr.RefreshToken}}, "gateway:wrong secret", "")
		wantOAuthError(t, res, []byte(body), 401, "invalid_client")
		res, body = api.post("/revoke", url.Values{"token": {tr.RefreshToken}, "client_id": {"gateway"}, "client_secret": {"wrong"}}, "", "")
		wantOAuthError(t, res, []byte(body), 401, "invalid_client")
		res, body = api.post("/revoke", url.Values{"token": {tr.RefreshToken}}, "rita:"+pw, "")
		wantOAuthError(t, res, []byte(body), 401, "invalid_client")
		res, body = api.post("/revoke", url.Values{"token": {tr.RefreshToken, tr.RefreshToken}}, "", "")
		wantOAuthError(t, res, []byte(body), 400, "invalid_request")
		if s := session(t, env, tr.SID); s.RevokedAt != nil {
			t.Error("a refused request revoked the session")
		}
		r, b := env.Do(t, http.MethodPost, "/revoke", "", "application/json", strings.NewReader(`{"token":"`+tr.RefreshToken+`"}`))
		wantOAuthError(t, r, b, 415, "invalid_request")
		r, b = env.Do(t, http.MethodPost, "/revoke", "", "application/x-www-form-urlencoded", strings.NewReader("token=a%00b"))
		wantOAuthError(t, r, b, 400, "invalid_request")
		r, b = env.Do(t, http.MethodPost, "/revoke", "", "application/x-www-form-urlencoded", strings.NewReader("token=%ff%fe"))
		wantOAuthError(t, r, b, 400, "invalid_request")
		r, b = env.Do(t, http.MethodPost, "/revoke", "", "application/x-www-form-urlencoded", strings.NewReader("token="+strings.Repeat("x", 1<<20)))
		if r.StatusCode != 413 || !strings.Contains(string(b), `"error"`) {
			t.Errorf("1 MB token: %d %s, want 413 with an RFC 6749 body", r.StatusCode, b)
		}
	})
}

// TestGolangOAuth2SignOut: a stock x/oauth2 client logs in, refreshes, then
// signs out by revoking its refresh token; the next refresh fails and the
// feed lists the session.
func TestGolangOAuth2SignOut(t *testing.T) {
	env := authdtest.Start(t, authdtest.Options{})
	env.CreateUser(t, "olga", "user", pw)
	env.CreateUser(t, "feed-svc", "service", "feed service secret")
	ctx := context.WithValue(context.Background(), oauth2.HTTPClient, env.Server.Client())
	cfg := &oauth2.Config{ClientID: "cli", Endpoint: oauth2.Endpoint{TokenURL: env.URL + "/token"}}
	tok, err := cfg.PasswordCredentialsToken(ctx, "olga", pw)
	if err != nil {
		t.Fatal(err)
	}
	stale := *tok
	stale.Expiry = time.Now().Add(-time.Minute)
	fresh, err := cfg.TokenSource(ctx, &stale).Token()
	if err != nil {
		t.Fatal(err)
	}
	res, err := env.Server.Client().PostForm(env.URL+"/revoke", url.Values{"token": {fresh.RefreshToken}, "token_type_hint": {"refresh_token"}})
	if err != nil {
		t.Fatal(err)
	}
	res.Body.Close()
	if res.StatusCode != http.StatusOK {
		t.Fatalf("revoke: %d", res.StatusCode)
	}
	dead := *fresh
	dead.Expiry = time.Now().Add(-time.Minute)
	if _, err := cfg.TokenSource(ctx, &dead).Token(); err == nil {
		t.Fatal("refresh after /revoke succeeded")
	} else if re, ok := err.(*oauth2.RetrieveError); !ok || re.ErrorCode != "invalid_grant" {
		t.Fatalf("refresh after /revoke: %v, want invalid_grant", err)
	}
	sid, _ := tok.Extra("sid").(string)
	svc := env.ServiceToken(t, "feed-svc", "feed service secret")
	_, body := env.Do(t, http.MethodGet, "/sessions/revoked", svc.AccessToken, "", nil)
	if !strings.Contains(string(body), sid) {
		t.Fatalf("feed %s does not list the revoked session %s", body, sid)
	}
}

// TestIntrospectEndpoint: RFC 7662 for service identities only; every token
// kind in every state.
func TestIntrospectEndpoint(t *testing.T) {
	env := authdtest.Start(t, authdtest.Options{})
	api := newOAuthAPI(t, env)
	uid := env.CreateUser(t, "ivan", "user", pw)
	env.CreateUser(t, "dora", "user", pw)
	env.CreateUser(t, "gw", "service", "gateway service secret")
	const basic = "gw:gateway service secret"

	inspect := func(tok string) map[string]any {
		t.Helper()
		res, body := api.post("/introspect", url.Values{"token": {tok}}, basic, "")
		if res.StatusCode != http.StatusOK || res.Header.Get("Cache-Control") != "no-store" {
			t.Fatalf("introspect: %d %s (Cache-Control %q)", res.StatusCode, body, res.Header.Get("Cache-Control"))
		}
		var m map[string]any
		if err := json.Unmarshal([]byte(body), &m); err != nil {
			t.Fatal(err)
		}
		return m
	}
	inactive := func(what, tok string) {
		t.Helper()
		m := inspect(tok)
		if len(m) != 1 || m["active"] != false {
			t.Errorf("%s: %v, want {\"active\":false} and nothing else", what, m)
		}
	}

	t.Run("LiveAccessToken", func(t *testing.T) {
		tr := env.Login(t, "ivan", pw)
		c := claimsOf(t, tr.AccessToken)
		m := inspect(tr.AccessToken)
		want := map[string]any{"active": true, "token_type": "access_token", "sub": uid, "sid": tr.SID, "jti": c.ID,
			"role": "user", "client_id": "authd", "iss": authdtest.Issuer, "exp": float64(c.ExpiresAt.Unix()),
			"iat": float64(c.IssuedAt.Unix()), "nbf": float64(c.NotBefore.Unix())}
		for k, v := range want {
			if m[k] != v {
				t.Errorf("%s = %v, want %v", k, m[k], v)
			}
		}
		if aud, _ := m["aud"].([]any); len(aud) != 1 || aud[0] != authdtest.Audience {
			t.Errorf("aud = %v", m["aud"])
		}
		if len(m) != len(want)+1 {
			t.Errorf("members %v, want exactly %d", m, len(want)+1)
		}
	})
	t.Run("LiveRefreshToken", func(t *testing.T) {
		tr := env.Login(t, "ivan", pw)
		m := inspect(tr.RefreshToken)
		s := session(t, env, tr.SID)
		if m["active"] != true || m["token_type"] != "refresh_token" || m["sub"] != uid || m["sid"] != tr.SID ||
			m["client_id"] != "authd" || m["exp"] != float64(s.ExpiresAt.Unix()) || len(m) != 6 {
			t.Errorf("refresh token: %v", m)
		}
	})
	t.Run("NothingElseIsActive", func(t *testing.T) {
		revoked := env.Login(t, "ivan", pw)
		env.Do(t, http.MethodPost, "/logout", revoked.AccessToken, "", nil)
		inactive("revoked session's access token", revoked.AccessToken)
		inactive("revoked session's refresh token", revoked.RefreshToken)

		rotated := env.Login(t, "ivan", pw)
		res, body := env.PostForm(t, "/token", url.Values{"grant_type": {"refresh_token"}, "refresh_token": {rotated.RefreshToken}})
		if res.StatusCode != 200 {
			t.Fatalf("refresh: %d %s", res.StatusCode, body)
		}
		inactive("rotated-away refresh token", rotated.RefreshToken)
		if next := decode[authdtest.TokenResponse](t, body); inspect(next.RefreshToken)["active"] != true {
			t.Error("the new refresh token is not active")
		}

		parts := strings.Split(rotated.AccessToken, ".")
		inactive("bad signature", parts[0]+"."+parts[1]+".AAAA")
		inactive("garbage", "garbage")
		inactive("unknown refresh token", strings.Repeat("A", 43))

		disabled := env.Login(t, "dora", pw)
		doraID := claimsOf(t, disabled.AccessToken).Subject
		env.CreateUser(t, "boss", "admin", pw)
		boss := env.Login(t, "boss", pw)
		r, b := env.Do(t, http.MethodPatch, "/users/"+doraID, boss.AccessToken, "application/json", strings.NewReader(`{"disabled":true}`))
		if r.StatusCode != 200 {
			t.Fatalf("disable: %d %s", r.StatusCode, b)
		}
		inactive("disabled user's access token", disabled.AccessToken)

		expiring := env.Login(t, "ivan", pw)
		env.Clock.Advance(11 * time.Minute)
		inactive("expired access token", expiring.AccessToken)
		if inspect(expiring.RefreshToken)["active"] != true {
			t.Error("the refresh token of a live session must stay active after its access token expired")
		}
	})
	t.Run("Callers", func(t *testing.T) {
		tr := env.Login(t, "ivan", pw)
		svc := env.ServiceToken(t, "gw", "gateway service secret")
		form := url.Values{"token": {tr.AccessToken}}
		res, body := api.post("/introspect", form, "", "")
		wantOAuthError(t, res, []byte(body), 401, "invalid_client")
		res, body = api.post("/introspect", form, "gw:wrong", "")
		wantOAuthError(t, res, []byte(body), 401, "invalid_client")
		res, body = api.post("/introspect", form, "ivan:"+pw, "")
		wantOAuthError(t, res, []byte(body), 401, "invalid_client")
		res, body = api.post("/introspect", form, "", tr.AccessToken)
		wantOAuthError(t, res, []byte(body), 403, "insufficient_scope")
		res, body = api.post("/introspect", form, "", "not-a-token")
		wantOAuthError(t, res, []byte(body), 401, "invalid_token")
		res, body = api.post("/introspect", form, "", svc.AccessToken)
		if res.StatusCode != 200 || !strings.Contains(body, `"active":true`) {
			t.Errorf("service bearer: %d %s", res.StatusCode, body)
		}
		res, body = api.post("/introspect", url.Values{}, basic, "")
		wantOAuthError(t, res, []byte(body), 400, "invalid_request")
		if strings.Contains(body, pw) {
			t.Error("an answer echoes a secret")
		}
	})
}

// TestUsersControlTheirSessions: a user ends one of their own sessions by
// id, or all others; /logout's scope is never silently something else.
func TestUsersControlTheirSessions(t *testing.T) {
	env := authdtest.Start(t, authdtest.Options{})
	env.CreateUser(t, "una", "user", pw)
	env.CreateUser(t, "eve", "user", pw)

	t.Run("OwnerRevokesOneSession", func(t *testing.T) {
		laptop, phone := env.Login(t, "una", pw), env.Login(t, "una", pw)
		res, body := env.Do(t, http.MethodPost, "/sessions/"+phone.SID+"/revoke", laptop.AccessToken, "", nil)
		if res.StatusCode != 200 || !strings.Contains(string(body), `"revoked_reason":"user_revoke"`) {
			t.Fatalf("%d %s", res.StatusCode, body)
		}
		if s := session(t, env, laptop.SID); s.RevokedAt != nil {
			t.Error("the caller's own session was revoked")
		}
		eve := env.Login(t, "eve", pw)
		res, _ = env.Do(t, http.MethodPost, "/sessions/"+laptop.SID+"/revoke", eve.AccessToken, "", nil)
		if res.StatusCode != 403 || session(t, env, laptop.SID).RevokedAt != nil {
			t.Errorf("another user: %d, want 403 and nothing revoked", res.StatusCode)
		}
		res, _ = env.Do(t, http.MethodPost, "/sessions/"+uuid.NewString()+"/revoke", eve.AccessToken, "", nil)
		if res.StatusCode != 403 {
			t.Errorf("unknown sid for a user: %d, want 403 (no hint which ids exist)", res.StatusCode)
		}
	})
	t.Run("LogoutOthers", func(t *testing.T) {
		a, b, c := env.Login(t, "una", pw), env.Login(t, "una", pw), env.Login(t, "una", pw)
		res, body := env.Do(t, http.MethodPost, "/logout/others", a.AccessToken, "", nil)
		if res.StatusCode != 200 || decode[map[string]int](t, body)["revoked"] < 2 {
			t.Fatalf("%d %s", res.StatusCode, body)
		}
		if session(t, env, a.SID).RevokedAt != nil {
			t.Error("the current session was revoked")
		}
		for _, sid := range []string{b.SID, c.SID} {
			if s := session(t, env, sid); s.RevokedAt == nil || *s.RevokedReason != "user_logout_others" {
				t.Errorf("session %s: %+v", sid, s)
			}
		}
	})
	t.Run("LogoutScopes", func(t *testing.T) {
		a, b := env.Login(t, "una", pw), env.Login(t, "una", pw)
		res, body := env.Do(t, http.MethodPost, "/logout?scope=others", a.AccessToken, "", nil)
		if res.StatusCode != 200 || !strings.Contains(string(body), `"revoked"`) || session(t, env, a.SID).RevokedAt != nil ||
			session(t, env, b.SID).RevokedAt == nil {
			t.Fatalf("scope=others: %d %s", res.StatusCode, body)
		}
		for _, bad := range []string{"everything", "LOCAL", "local%00"} {
			res, body = env.Do(t, http.MethodPost, "/logout?scope="+bad, a.AccessToken, "", nil)
			if res.StatusCode != 400 || !strings.Contains(string(body), "local, global or others") || session(t, env, a.SID).RevokedAt != nil {
				t.Errorf("scope=%s: %d %s, want 400 naming the scopes and nothing revoked", bad, res.StatusCode, body)
			}
		}
		res, _ = env.Do(t, http.MethodPost, "/logout?scope=local&scope=global", a.AccessToken, "", nil)
		if res.StatusCode != 400 {
			t.Errorf("repeated scope: %d, want 400", res.StatusCode)
		}
		c := env.Login(t, "una", pw)
		res, body = env.Do(t, http.MethodPost, "/logout?scope=global", a.AccessToken, "", nil)
		if res.StatusCode != 200 || session(t, env, a.SID).RevokedAt == nil || session(t, env, c.SID).RevokedAt == nil {
			t.Fatalf("scope=global: %d %s", res.StatusCode, body)
		}
		res, _ = env.Do(t, http.MethodPost, "/logout?scope=others", a.AccessToken, "", nil)
		if res.StatusCode != 401 {
			t.Errorf("scope=others with a revoked session: %d, want 401", res.StatusCode)
		}
		res, body = env.Do(t, http.MethodPost, "/logout?scope=local", a.AccessToken, "", nil)
		if res.StatusCode != 200 || !strings.Contains(string(body), `"already_revoked":true`) {
			t.Errorf("scope=local with a revoked session: %d %s", res.StatusCode, body)
		}
	})
}

// TestServiceIdentitiesUseClientCredentialsOnly: the password grant for a
// service user is unauthorized_client and writes nothing.
func TestServiceIdentitiesUseClientCredentialsOnly(t *testing.T) {
	env := authdtest.Start(t, authdtest.Options{})
	env.CreateUser(t, "robot", "service", "robot service secret")
	count := func() (n int) {
		if err := env.DB.Pool().QueryRow(context.Background(), `SELECT count(*) FROM sessions`).Scan(&n); err != nil {
			t.Fatal(err)
		}
		return n
	}
	before := count()
	res, body := env.PostForm(t, "/token", url.Values{"grant_type": {"password"}, "username": {"robot"}, "password": {"robot service secret"}})
	if res.StatusCode != 400 || !strings.Contains(string(body), `"unauthorized_client"`) {
		t.Fatalf("%d %s, want 400 unauthorized_client", res.StatusCode, body)
	}
	if count() != before {
		t.Error("a refused grant wrote a session")
	}
	res, body = env.PostForm(t, "/token", url.Values{"grant_type": {"password"}, "username": {"robot"}, "password": {"wrong"}})
	if res.StatusCode != 400 || !strings.Contains(string(body), `"invalid_grant"`) {
		t.Errorf("wrong secret: %d %s, want invalid_grant (nothing told)", res.StatusCode, body)
	}
}

// TestRefreshReuseGrace: within the grace the token rotated away last is
// refused without ending the session; past it, or for an older token,
// reuse revokes as always. Exactly one concurrent refresh still wins.
func TestRefreshReuseGrace(t *testing.T) {
	const grace = 10 * time.Second
	env := authdtest.Start(t, authdtest.Options{RefreshReuseGrace: grace})
	env.CreateUser(t, "tabs", "user", pw)

	rotate := func(rt string) authdtest.TokenResponse {
		t.Helper()
		res, body := refresh(t, env, rt)
		if res.StatusCode != 200 {
			t.Fatalf("refresh: %d %s", res.StatusCode, body)
		}
		return decode[authdtest.TokenResponse](t, body)
	}
	t.Run("InsideTheWindow", func(t *testing.T) {
		first := env.Login(t, "tabs", pw)
		second := rotate(first.RefreshToken)
		env.Clock.Advance(grace) // the edge itself is inside
		res, body := refresh(t, env, first.RefreshToken)
		if res.StatusCode != 400 || !strings.Contains(string(body), `"invalid_grant"`) || !strings.Contains(string(body), "already used") {
			t.Fatalf("loser: %d %s", res.StatusCode, body)
		}
		if s := session(t, env, first.SID); s.RevokedAt != nil {
			t.Fatalf("the grace revoked the session: %+v", s)
		}
		rotate(second.RefreshToken) // the winner's token still works
		if got := scrape(t, env).get("authd_refresh_reuse_grace_total"); got != 1 {
			t.Errorf("authd_refresh_reuse_grace_total = %v, want 1", got)
		}
	})
	t.Run("PastTheWindow", func(t *testing.T) {
		first := env.Login(t, "tabs", pw)
		rotate(first.RefreshToken)
		env.Clock.Advance(grace + time.Second)
		res, body := refresh(t, env, first.RefreshToken)
		if res.StatusCode != 400 || !strings.Contains(string(body), "session has been revoked") {
			t.Fatalf("%d %s", res.StatusCode, body)
		}
		if s := session(t, env, first.SID); s.RevokedAt == nil || *s.RevokedReason != "refresh_token_reuse" {
			t.Fatalf("session %+v, want revoked for reuse", s)
		}
	})
	t.Run("OlderTokenInsideTheWindow", func(t *testing.T) {
		first := env.Login(t, "tabs", pw)
		second := rotate(first.RefreshToken)
		rotate(second.RefreshToken)
		res, _ := refresh(t, env, first.RefreshToken) // two rotations old, no grace
		if res.StatusCode != 400 {
			t.Fatalf("%d", res.StatusCode)
		}
		if s := session(t, env, first.SID); s.RevokedAt == nil || *s.RevokedReason != "refresh_token_reuse" {
			t.Fatalf("session %+v, want revoked for reuse", s)
		}
	})
}

// TestSessionIdleTimeout: a refresh after more than the idle TTL without a
// refresh ends the session; at the edge it does not.
func TestSessionIdleTimeout(t *testing.T) {
	const idle = time.Hour
	env := authdtest.Start(t, authdtest.Options{SessionIdleTTL: idle})
	env.CreateUser(t, "sleepy", "user", pw)
	tr := env.Login(t, "sleepy", pw)
	env.Clock.Advance(idle) // exactly the TTL since creation: still fine
	res, body := refresh(t, env, tr.RefreshToken)
	if res.StatusCode != 200 {
		t.Fatalf("refresh at the edge: %d %s", res.StatusCode, body)
	}
	next := decode[authdtest.TokenResponse](t, body)
	env.Clock.Advance(idle + time.Second) // idle since that refresh
	res, body = refresh(t, env, next.RefreshToken)
	if res.StatusCode != 400 || !strings.Contains(string(body), `"invalid_grant"`) {
		t.Fatalf("refresh past the idle TTL: %d %s", res.StatusCode, body)
	}
	if s := session(t, env, tr.SID); s.RevokedAt == nil || *s.RevokedReason != "idle_timeout" {
		t.Fatalf("session %+v, want revoked as idle_timeout", s)
	}
}
