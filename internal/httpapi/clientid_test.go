package httpapi_test

import (
	"context"
	"net/http"
	"net/url"
	"strings"
	"testing"
	"time"

	"golang.org/x/oauth2"

	"github.com/seedc5a8123e/authd/internal/authdtest"
	"github.com/seedc5a8123e/authd/internal/openapitest"
	"github.com/seedc5a8123e/authd/migrations"
)

// The client of a session (RFC 9068's client_id, RFC 6749 section 6's
// binding of a refresh token to its client), authd's refusal of scopes, and
// the insufficient_scope challenge of a role check.

const cidSecret = "service secret 1234"

func cidEnv(t *testing.T) (*authdtest.Env, *api) {
	t.Helper()
	env := authdtest.Start(t, authdtest.Options{})
	env.CreateUser(t, "cora", "user", pw)
	env.CreateUser(t, "root", "admin", pw)
	env.CreateUser(t, "Billing-Svc", "service", cidSecret)
	return env, &api{t: t, base: env.URL, client: &http.Client{Transport: openapitest.Transport(t, http.DefaultTransport)}}
}

// cidStored is the sessions row's client_id; "" for NULL.
func cidStored(t *testing.T, env *authdtest.Env, sid string) string {
	t.Helper()
	var id *string
	if err := env.DB.Pool().QueryRow(context.Background(), `SELECT client_id FROM sessions WHERE id = $1`, sid).Scan(&id); err != nil {
		t.Fatal(err)
	}
	if id == nil {
		return ""
	}
	return *id
}

func cidTokenOK(t *testing.T, what string, r reply) authdtest.TokenResponse {
	t.Helper()
	if r.status != http.StatusOK {
		t.Fatalf("%s: %d %s", what, r.status, r.body)
	}
	var tr authdtest.TokenResponse
	r.json(t, &tr)
	return tr
}

func cidPasswordForm(extra ...string) url.Values {
	v := url.Values{"grant_type": {"password"}, "username": {"cora"}, "password": {pw}}
	for i := 0; i+1 < len(extra); i += 2 {
		v.Set(extra[i], extra[i+1])
	}
	return v
}

func cidRefreshForm(rt string, extra ...string) url.Values {
	v := url.Values{"grant_type": {"refresh_token"}, "refresh_token": {rt}}
	for i := 0; i+1 < len(extra); i += 2 {
		v.Set(extra[i], extra[i+1])
	}
	return v
}

func cidIntrospect(t *testing.T, env *authdtest.Env, tok string) map[string]any {
	t.Helper()
	api := newOAuthAPI(t, env)
	res, body := api.post("/introspect", url.Values{"token": {tok}}, "Billing-Svc:"+cidSecret, "")
	if res.StatusCode != http.StatusOK {
		t.Fatalf("introspect: %d %s", res.StatusCode, body)
	}
	return decode[map[string]any](t, []byte(body))
}

// TestClientIDRecorded: every access token carries client_id (RFC 9068
// section 2.2), the session records it, and introspection reports it.
func TestClientIDRecorded(t *testing.T) {
	env, a := cidEnv(t)

	t.Run("PasswordNamed", func(t *testing.T) {
		tr := cidTokenOK(t, "login", a.form("/token", cidPasswordForm("client_id", "mobile-app")))
		if c := claimsOf(t, tr.AccessToken); c.ClientID != "mobile-app" {
			t.Errorf("client_id claim %q, want mobile-app", c.ClientID)
		}
		if got := cidStored(t, env, tr.SID); got != "mobile-app" {
			t.Errorf("session client_id %q", got)
		}
		for what, tok := range map[string]string{"access": tr.AccessToken, "refresh": tr.RefreshToken} {
			if m := cidIntrospect(t, env, tok); m["active"] != true || m["client_id"] != "mobile-app" {
				t.Errorf("introspection of the %s token: %v", what, m)
			}
		}
	})

	t.Run("PasswordDefault", func(t *testing.T) {
		for _, form := range []url.Values{cidPasswordForm(), cidPasswordForm("client_id", "")} {
			tr := cidTokenOK(t, "login", a.form("/token", form))
			if c := claimsOf(t, tr.AccessToken); c.ClientID != "authd" {
				t.Errorf("client_id claim %q, want the default authd", c.ClientID)
			}
			if got := cidStored(t, env, tr.SID); got != "authd" {
				t.Errorf("session client_id %q, want authd", got)
			}
		}
	})

	t.Run("PasswordAsJSON", func(t *testing.T) {
		r := a.do("POST", "/token", "", "application/json", strings.NewReader(
			`{"grant_type":"password","username":"cora","password":"`+pw+`","client_id":"spa"}`))
		if c := claimsOf(t, cidTokenOK(t, "login", r).AccessToken); c.ClientID != "spa" {
			t.Errorf("client_id claim %q, want spa", c.ClientID)
		}
	})

	t.Run("PasswordBasicUserID", func(t *testing.T) {
		// golang.org/x/oauth2 sends a client id without a secret as Basic
		// "id:"; a secret is ignored (public clients are not authenticated).
		for cred, want := range map[string]string{"cli/v2:": "cli/v2", "cli:anything": "cli"} {
			id, secret, _ := strings.Cut(cred, ":")
			r := a.form("/token", cidPasswordForm(), "Authorization", "Basic "+basic(id, secret))
			if c := claimsOf(t, cidTokenOK(t, "login with Basic "+cred, r).AccessToken); c.ClientID != want {
				t.Errorf("Basic %q: client_id %q, want %q", cred, c.ClientID, want)
			}
		}
		r := a.form("/token", cidPasswordForm("client_id", "cli"), "Authorization", "Basic "+basic("cli", ""))
		if c := claimsOf(t, cidTokenOK(t, "Basic and body agreeing", r).AccessToken); c.ClientID != "cli" {
			t.Errorf("client_id %q", c.ClientID)
		}
		r = a.form("/token", cidPasswordForm("client_id", "one"), "Authorization", "Basic "+basic("two", ""))
		expect(t, "Basic and body naming different clients", r, 400, `"invalid_request"`)
	})

	t.Run("ClientCredentialsIsTheServiceName", func(t *testing.T) {
		// The name as stored (RFC 8265 case-mapped at creation: billing-svc),
		// whatever spelling the client typed.
		r := a.form("/token", url.Values{"grant_type": {"client_credentials"}, "client_id": {"BILLING-svc"},
			"client_secret": {cidSecret}})
		tr := cidTokenOK(t, "client_credentials", r)
		if c := claimsOf(t, tr.AccessToken); c.ClientID != "billing-svc" || c.Role != "service" {
			t.Errorf("client_id %q role %q, want billing-svc service", c.ClientID, c.Role)
		}
		if got := cidStored(t, env, tr.SID); got != "billing-svc" {
			t.Errorf("session client_id %q", got)
		}
		if m := cidIntrospect(t, env, tr.AccessToken); m["client_id"] != "billing-svc" {
			t.Errorf("introspection: %v", m)
		}
	})

	t.Run("Validation", func(t *testing.T) {
		users, sessions := rowCounts(t, env)
		long := strings.Repeat("c", 257)
		for name, r := range map[string]reply{
			"257 bytes": a.form("/token", cidPasswordForm("client_id", long)),
			"257 bytes in Basic": a.form("/token", cidPasswordForm(),
				"Authorization", "Basic "+basic(long, "")),
			"257 bytes on refresh": a.form("/token", cidRefreshForm("whatever", "client_id", long)),
			"NUL":                  a.form("/token", cidPasswordForm("client_id", "a\x00b")),
			"NUL in Basic":         a.form("/token", cidPasswordForm(), "Authorization", "Basic "+basic("a\x00b", "")),
			"invalid UTF-8":        a.form("/token", cidPasswordForm("client_id", "\xff")),
			"invalid UTF-8 in Basic": a.form("/token", cidPasswordForm(),
				"Authorization", "Basic "+basic("\xff", "")),
		} {
			expect(t, name, r, 400, `"invalid_request"`)
		}
		if u, s := rowCounts(t, env); u != users || s != sessions {
			t.Errorf("refused requests wrote rows: users %d→%d, sessions %d→%d", users, u, sessions, s)
		}
		exact := strings.Repeat("é", 128) // 256 bytes
		tr := cidTokenOK(t, "256 bytes", a.form("/token", cidPasswordForm("client_id", exact)))
		if c := claimsOf(t, tr.AccessToken); c.ClientID != exact {
			t.Errorf("client_id %q", c.ClientID)
		}
	})
}

// TestRefreshKeepsTheClient: the refresh token is bound to the session's
// client (RFC 6749 section 6).
func TestRefreshKeepsTheClient(t *testing.T) {
	env, a := cidEnv(t)
	first := cidTokenOK(t, "login", a.form("/token", cidPasswordForm("client_id", "mobile-app")))

	// Not naming the client keeps it, naming the same one too.
	next := cidTokenOK(t, "refresh", a.form("/token", cidRefreshForm(first.RefreshToken)))
	if c := claimsOf(t, next.AccessToken); c.ClientID != "mobile-app" || next.SID != first.SID {
		t.Fatalf("refreshed token: client_id %q sid %s", c.ClientID, next.SID)
	}
	next = cidTokenOK(t, "refresh", a.form("/token", cidRefreshForm(next.RefreshToken, "client_id", "mobile-app")))
	if c := claimsOf(t, next.AccessToken); c.ClientID != "mobile-app" {
		t.Fatalf("client_id %q", c.ClientID)
	}

	// Another client is refused, and nothing is rotated or revoked: the
	// token still works for its own client.
	r := a.form("/token", cidRefreshForm(next.RefreshToken, "client_id", "other-app"))
	expect(t, "refresh by another client", r, 400, `"invalid_grant"`)
	expect(t, "the same, via Basic", a.form("/token", cidRefreshForm(next.RefreshToken),
		"Authorization", "Basic "+basic("other-app", "")), 400, `"invalid_grant"`)
	if s := session(t, env, first.SID); s.RevokedAt != nil {
		t.Fatalf("the mismatch revoked the session: %+v", s)
	}
	if got := cidStored(t, env, first.SID); got != "mobile-app" {
		t.Fatalf("session client_id %q", got)
	}
	last := cidTokenOK(t, "refresh by the session's client", a.form("/token", cidRefreshForm(next.RefreshToken)))
	if c := claimsOf(t, last.AccessToken); c.ClientID != "mobile-app" {
		t.Fatalf("client_id %q", c.ClientID)
	}

	// A default session is bound to authd like any other.
	def := cidTokenOK(t, "login", a.form("/token", cidPasswordForm()))
	expect(t, "refresh of a default session naming a client", a.form("/token",
		cidRefreshForm(def.RefreshToken, "client_id", "mobile-app")), 400, `"invalid_grant"`)
	cidTokenOK(t, "refresh naming authd", a.form("/token", cidRefreshForm(def.RefreshToken, "client_id", "authd")))
}

// TestRefreshGraceIsForTheSameClient: within the reuse grace a just-rotated
// token is forgiven only when its own client presents it; another client
// presenting it is a reuse, and the session is revoked.
func TestRefreshGraceIsForTheSameClient(t *testing.T) {
	env := authdtest.Start(t, authdtest.Options{RefreshReuseGrace: 10 * time.Second})
	env.CreateUser(t, "cora", "user", pw)
	a := &api{t: t, base: env.URL, client: &http.Client{Transport: openapitest.Transport(t, http.DefaultTransport)}}
	first := cidTokenOK(t, "login", a.form("/token", cidPasswordForm("client_id", "tab")))
	cidTokenOK(t, "refresh", a.form("/token", cidRefreshForm(first.RefreshToken)))
	expect(t, "the loser of a race", a.form("/token", cidRefreshForm(first.RefreshToken, "client_id", "tab")),
		400, "concurrent refresh")
	if s := session(t, env, first.SID); s.RevokedAt != nil {
		t.Fatal("a forgiven race revoked the session")
	}
	expect(t, "the rotated token from another client", a.form("/token",
		cidRefreshForm(first.RefreshToken, "client_id", "elsewhere")), 400, "already used")
	if s := session(t, env, first.SID); s.RevokedAt == nil || *s.RevokedReason != "refresh_token_reuse" {
		t.Fatalf("session after a reuse by another client: %+v", s)
	}
}

// TestClientIDAcrossSchemas: the release works on the schema before
// migration 000007, which has no sessions.client_id (a replica started
// before the migration Job, or after a rollback's migrate down): tokens
// still carry the client, which then cannot be bound. Sessions written
// without a client (by the previous release) get one at their first
// refresh once the column is there.
func TestClientIDAcrossSchemas(t *testing.T) {
	env, a := cidEnv(t)
	run := func(file string) {
		t.Helper()
		sql, err := migrations.FS.ReadFile(file)
		if err != nil {
			t.Fatal(err)
		}
		if _, err := env.DB.Pool().Exec(context.Background(), string(sql)); err != nil {
			t.Fatalf("%s: %v", file, err)
		}
	}
	// A session of the previous release: no client recorded.
	legacy := cidTokenOK(t, "login", a.form("/token", cidPasswordForm()))
	if _, err := env.DB.Pool().Exec(context.Background(), `UPDATE sessions SET client_id = NULL WHERE id = $1`, legacy.SID); err != nil {
		t.Fatal(err)
	}
	if m := cidIntrospect(t, env, legacy.RefreshToken); m["client_id"] != "authd" {
		t.Errorf("introspection of a session without a client: %v", m)
	}

	run("000007_session_client_id.down.sql")
	old := cidTokenOK(t, "login on the old schema", a.form("/token", cidPasswordForm("client_id", "mobile-app")))
	if c := claimsOf(t, old.AccessToken); c.ClientID != "mobile-app" {
		t.Errorf("client_id on the old schema %q", c.ClientID)
	}
	svc := cidTokenOK(t, "client_credentials on the old schema", a.form("/token", url.Values{
		"grant_type": {"client_credentials"}, "client_id": {"Billing-Svc"}, "client_secret": {cidSecret}}))
	if m := cidIntrospect(t, env, svc.AccessToken); m["client_id"] != "billing-svc" {
		t.Errorf("introspection on the old schema: %v", m)
	}
	if m := cidIntrospect(t, env, old.RefreshToken); m["active"] != true || m["client_id"] != "authd" {
		t.Errorf("introspection of a refresh token on the old schema: %v", m)
	}
	old = cidTokenOK(t, "refresh on the old schema", a.form("/token", cidRefreshForm(old.RefreshToken, "client_id", "mobile-app")))
	if c := claimsOf(t, old.AccessToken); c.ClientID != "mobile-app" {
		t.Errorf("refreshed client_id on the old schema %q", c.ClientID)
	}
	if m := cidIntrospect(t, env, old.AccessToken); m["client_id"] != "mobile-app" {
		t.Errorf("introspection of an access token on the old schema: %v", m)
	}

	run("000007_session_client_id.up.sql")
	// Both sessions record no client: the first refresh binds one.
	bound := cidTokenOK(t, "first refresh after the migration", a.form("/token",
		cidRefreshForm(legacy.RefreshToken, "client_id", "legacy-app")))
	if c := claimsOf(t, bound.AccessToken); c.ClientID != "legacy-app" {
		t.Errorf("client_id %q", c.ClientID)
	}
	if got := cidStored(t, env, legacy.SID); got != "legacy-app" {
		t.Errorf("bound client_id %q", got)
	}
	expect(t, "the next refresh by another client", a.form("/token",
		cidRefreshForm(bound.RefreshToken, "client_id", "mobile-app")), 400, `"invalid_grant"`)
	cidTokenOK(t, "refresh without naming the client", a.form("/token", cidRefreshForm(old.RefreshToken)))
	if got := cidStored(t, env, old.SID); got != "authd" {
		t.Errorf("a session refreshed without a client is bound to %q, want authd", got)
	}
}

// TestScopeRefused: authd grants no OAuth scopes, so a scope a client asks
// for is refused rather than silently ignored (RFC 6749 section 5.2); an
// empty one is no request.
func TestScopeRefused(t *testing.T) {
	env, a := cidEnv(t)
	tr := cidTokenOK(t, "login", a.form("/token", cidPasswordForm("scope", "")))
	users, sessions := rowCounts(t, env)
	for name, form := range map[string]url.Values{
		"password":           cidPasswordForm("scope", "read"),
		"password, wrong pw": {"grant_type": {"password"}, "username": {"cora"}, "password": {"wrong!"}, "scope": {"openid"}},
		"refresh":            cidRefreshForm(tr.RefreshToken, "scope", "read write"),
		"client_credentials": {"grant_type": {"client_credentials"}, "client_id": {"Billing-Svc"},
			"client_secret": {cidSecret}, "scope": {"admin"}},
		"whitespace": cidPasswordForm("scope", " "),
	} {
		r := a.form("/token", form)
		expect(t, name, r, 400, `"invalid_scope"`)
		if e := decode[oauthErr](t, r.body); !strings.Contains(e.Description, "grants no OAuth scopes") {
			t.Errorf("%s: description %q", name, e.Description)
		}
	}
	if u, s := rowCounts(t, env); u != users || s != sessions {
		t.Errorf("refused requests wrote rows: users %d→%d, sessions %d→%d", users, u, sessions, s)
	}
	// The refresh token was not spent by the refused refresh.
	cidTokenOK(t, "refresh with an empty scope", a.form("/token", cidRefreshForm(tr.RefreshToken, "scope", "")))
	// A grant type authd does not serve is still that error first.
	expect(t, "unsupported grant with a scope", a.form("/token", url.Values{"grant_type": {"authorization_code"},
		"scope": {"x"}}), 400, `"unsupported_grant_type"`)
}

// TestRoleCheckChallenge: a live token whose role is not enough gets 403
// with WWW-Authenticate error="insufficient_scope" (RFC 6750 section 3.1);
// other 403s do not.
func TestRoleCheckChallenge(t *testing.T) {
	env, a := cidEnv(t)
	user := env.Login(t, "cora", pw)
	root := env.Login(t, "root", pw)
	svc := env.ServiceToken(t, "Billing-Svc", cidSecret)
	const want = `Bearer realm="authd", error="insufficient_scope"`
	for name, r := range map[string]reply{
		"a user on GET /users":              a.do("GET", "/users", user.AccessToken, "", nil),
		"a service on GET /users":           a.do("GET", "/users", svc.AccessToken, "", nil),
		"a user on the revocation feed":     a.do("GET", "/sessions/revoked", user.AccessToken, "", nil),
		"a user revoking another's session": a.do("POST", "/sessions/"+root.SID+"/revoke", user.AccessToken, "", nil),
	} {
		expect(t, name, r, 403, `"status":403`)
		if got := r.header.Get("WWW-Authenticate"); got != want {
			t.Errorf("%s: WWW-Authenticate %q, want %q", name, got, want)
		}
	}
	r := a.do("POST", "/me/password", user.AccessToken, "application/json",
		strings.NewReader(`{"current_password":"not the password","new_password":"a brand new passphrase"}`))
	expect(t, "wrong current password", r, 403, `"status":403`)
	if got := r.header.Get("WWW-Authenticate"); got != "" {
		t.Errorf("a wrong current password is no token problem, but WWW-Authenticate is %q", got)
	}
}

// TestGolangOAuth2ClientID: golang.org/x/oauth2, unmodified, puts its
// ClientID in HTTP Basic; the session records it and the refreshing token
// source keeps it.
func TestGolangOAuth2ClientID(t *testing.T) {
	env, _ := cidEnv(t)
	ctx := context.WithValue(context.Background(), oauth2.HTTPClient, env.Server.Client())
	cfg := &oauth2.Config{ClientID: "cli", Endpoint: oauth2.Endpoint{TokenURL: env.URL + "/token"}}
	tok, err := cfg.PasswordCredentialsToken(ctx, "cora", pw)
	if err != nil {
		t.Fatal(err)
	}
	if c := claimsOf(t, tok.AccessToken); c.ClientID != "cli" {
		t.Fatalf("client_id %q, want cli", c.ClientID)
	}
	stale := *tok
	stale.Expiry = time.Now().Add(-time.Minute)
	fresh, err := cfg.TokenSource(ctx, &stale).Token()
	if err != nil {
		t.Fatal(err)
	}
	if c := claimsOf(t, fresh.AccessToken); c.ClientID != "cli" || fresh.AccessToken == tok.AccessToken {
		t.Fatalf("refreshed client_id %q", c.ClientID)
	}
	other := &oauth2.Config{ClientID: "not-cli", Endpoint: cfg.Endpoint}
	dead := *fresh
	dead.Expiry = time.Now().Add(-time.Minute)
	if _, err := other.TokenSource(ctx, &dead).Token(); err == nil {
		t.Fatal("another client refreshed the session")
	} else if re, ok := err.(*oauth2.RetrieveError); !ok || re.ErrorCode != "invalid_grant" {
		t.Fatalf("refresh by another client: %v, want invalid_grant", err)
	}
}
