package httpapi_test

import (
	"bytes"
	"compress/gzip"
	"context"
	"encoding/base64"
	"encoding/json"
	"io"
	"net/http"
	"net/url"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/google/uuid"
	"github.com/labstack/echo/v4"

	"github.com/seedc5a8123e/authd/internal/authdtest"
	"github.com/seedc5a8123e/authd/internal/console"
	"github.com/seedc5a8123e/authd/internal/openapitest"
)

func TestOpenAPISpecIsValid(t *testing.T) {
	doc, err := openapitest.Load()
	if err != nil {
		t.Fatal(err)
	}
	if err := doc.Validate(context.Background()); err != nil {
		t.Fatalf("openapi.yaml: %v", err)
	}
}

// TestOpenAPIDocumentsEveryRoute fails for a route the server registers
// that openapi.yaml does not describe.
func TestOpenAPIDocumentsEveryRoute(t *testing.T) {
	env := authdtest.Start(t, authdtest.Options{})
	e, ok := env.Server.Config.Handler.(*echo.Echo)
	if !ok {
		t.Fatalf("the test server's handler is a %T, not *echo.Echo", env.Server.Config.Handler)
	}
	doc := openapitest.Doc(t)
	param := regexp.MustCompile(`:([A-Za-z0-9_]+)`)
	n := 0
	for _, r := range e.Routes() {
		if r.Method == echo.RouteNotFound || strings.HasPrefix(r.Method, "echo_") {
			continue
		}
		if r.Path == console.Prefix || strings.HasPrefix(r.Path, console.Prefix+"/") {
			continue // the console's HTML pages, for browsers: README documents them
		}
		n++
		path := param.ReplaceAllString(r.Path, "{$1}")
		item := doc.Paths.Find(path)
		if item == nil {
			t.Errorf("route %s %s is not in openapi.yaml (no path %s)", r.Method, r.Path, path)
			continue
		}
		if item.GetOperation(r.Method) == nil {
			t.Errorf("route %s %s is not in openapi.yaml (path %s has no %s operation)", r.Method, r.Path, path, r.Method)
		}
	}
	if n == 0 {
		t.Fatal("the server registered no routes")
	}
}

// api is a client whose every response is checked against openapi.yaml.
type api struct {
	t      *testing.T
	base   string
	client *http.Client
}

type reply struct {
	status int
	header http.Header
	body   []byte
}

func (r reply) json(t *testing.T, v any) {
	t.Helper()
	if err := json.Unmarshal(r.body, v); err != nil {
		t.Fatalf("decode %s: %v", r.body, err)
	}
}

// do sends a request; hdr holds header name/value pairs.
func (a *api) do(method, path, bearer, contentType string, body io.Reader, hdr ...string) reply {
	a.t.Helper()
	req, err := http.NewRequest(method, a.base+path, body)
	if err != nil {
		a.t.Fatal(err)
	}
	if contentType != "" {
		req.Header.Set("Content-Type", contentType)
	}
	if bearer != "" {
		req.Header.Set("Authorization", "Bearer "+bearer)
	}
	for i := 0; i+1 < len(hdr); i += 2 {
		req.Header.Set(hdr[i], hdr[i+1])
	}
	res, err := a.client.Do(req)
	if err != nil {
		a.t.Fatal(err)
	}
	defer res.Body.Close()
	b, err := io.ReadAll(res.Body)
	if err != nil {
		a.t.Fatal(err)
	}
	return reply{res.StatusCode, res.Header, b}
}

func (a *api) form(path string, v url.Values, hdr ...string) reply {
	a.t.Helper()
	return a.do(http.MethodPost, path, "", "application/x-www-form-urlencoded", strings.NewReader(v.Encode()), hdr...)
}

// expect checks the status (the transport already checked the rest against
// the spec) and, for error bodies, the error or detail member.
func expect(t *testing.T, what string, r reply, status int, contains string) {
	t.Helper()
	if r.status != status {
		t.Errorf("%s: status %d, want %d; body %s", what, r.status, status, r.body)
		return
	}
	if contains != "" && !bytes.Contains(r.body, []byte(contains)) {
		t.Errorf("%s: body %s does not contain %q", what, r.body, contains)
	}
}

// TestOpenAPIResponses drives every endpoint through its successes and main
// errors with a client that checks each response against openapi.yaml.
func TestOpenAPIResponses(t *testing.T) {
	env := authdtest.Start(t, authdtest.Options{})
	a := &api{t: t, base: env.URL, client: &http.Client{Transport: openapitest.Transport(t, http.DefaultTransport)}}
	const pw = "correct horse battery"
	env.CreateUser(t, "root", "admin", pw)
	env.CreateUser(t, "alice", "user", pw)
	env.CreateUser(t, "feeder", "service", "service secret 1234")

	login := func(user string) authdtest.TokenResponse {
		t.Helper()
		r := a.form("/token", url.Values{"grant_type": {"password"}, "username": {user}, "password": {pw}})
		expect(t, "login "+user, r, 200, `"token_type":"Bearer"`)
		var tr authdtest.TokenResponse
		r.json(t, &tr)
		return tr
	}

	t.Run("ops", func(t *testing.T) {
		expect(t, "healthz", a.do("GET", "/healthz", "", "", nil), 200, `"ok"`)
		expect(t, "readyz", a.do("GET", "/readyz", "", "", nil), 200, `"ready"`)
		r := a.do("GET", "/.well-known/jwks.json", "", "", nil)
		expect(t, "jwks", r, 200, `"use":"sig"`)
	})

	t.Run("token", func(t *testing.T) {
		admin := login("root")
		if admin.RefreshToken == "" || admin.SID == "" {
			t.Fatalf("login: %+v", admin)
		}
		r := a.do("POST", "/token", "", "application/json",
			strings.NewReader(`{"grant_type":"password","username":"alice","password":"`+pw+`"}`))
		expect(t, "password grant as JSON", r, 200, `"refresh_token"`)

		r = a.form("/token", url.Values{"grant_type": {"refresh_token"}, "refresh_token": {admin.RefreshToken}})
		expect(t, "refresh", r, 200, `"refresh_token"`)
		r = a.form("/token", url.Values{"grant_type": {"refresh_token"}, "refresh_token": {admin.RefreshToken}})
		expect(t, "refresh token reuse", r, 400, `"invalid_grant"`)

		r = a.form("/token", url.Values{"grant_type": {"client_credentials"},
			"client_id": {"feeder"}, "client_secret": {"service secret 1234"}})
		expect(t, "client_credentials in the body", r, 200, `"access_token"`)
		if bytes.Contains(r.body, []byte("refresh_token")) {
			t.Errorf("client_credentials issued a refresh token: %s", r.body)
		}
		req, _ := http.NewRequest("POST", env.URL+"/token", strings.NewReader("grant_type=client_credentials"))
		req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
		req.SetBasicAuth("feeder", url.QueryEscape("service secret 1234"))
		res, err := a.client.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		res.Body.Close()
		if res.StatusCode != 200 {
			t.Errorf("client_credentials with Basic: %d", res.StatusCode)
		}

		r = a.form("/token", url.Values{"grant_type": {"password"}, "username": {"alice"}, "password": {"wrong password!!"}})
		expect(t, "wrong password", r, 400, `"invalid_grant"`)
		r = a.form("/token", url.Values{"grant_type": {"password"}, "username": {"alice"}})
		expect(t, "missing password", r, 400, `"invalid_request"`)
		r = a.form("/token", url.Values{"grant_type": {"authorization_code"}, "code": {"x"}})
		expect(t, "unsupported grant type", r, 400, `"unsupported_grant_type"`)
		r = a.form("/token", url.Values{"username": {"alice"}})
		expect(t, "no grant type", r, 400, `"invalid_request"`)
		r = a.form("/token", url.Values{"grant_type": {"client_credentials"}, "client_id": {"feeder"}, "client_secret": {"nope"}})
		expect(t, "wrong client secret", r, 401, `"invalid_client"`)
		r = a.form("/token", url.Values{"grant_type": {"client_credentials"}},
			"Authorization", "Basic "+basic("feeder", "nope"))
		expect(t, "wrong client secret with Basic", r, 401, `"invalid_client"`)
		if got := r.header.Get("WWW-Authenticate"); got != `Basic realm="authd"` {
			t.Errorf("invalid_client challenge %q", got)
		}
		big := "grant_type=password&username=alice&password=" + strings.Repeat("x", 70<<10)
		r = a.do("POST", "/token", "", "application/x-www-form-urlencoded", strings.NewReader(big))
		expect(t, "oversized body", r, 413, `"invalid_request"`)
		r = a.do("POST", "/token", "", "text/plain", strings.NewReader("grant_type=password"))
		expect(t, "text/plain body", r, 415, `"invalid_request"`)
		r = a.do("POST", "/token", "", "application/json", strings.NewReader(`{"grant_type":1}`))
		expect(t, "JSON of a number", r, 400, `"invalid_request"`)
	})

	t.Run("logout", func(t *testing.T) {
		tr := login("alice")
		expect(t, "logout", a.do("POST", "/logout", tr.AccessToken, "", nil), 200, `"already_revoked":false`)
		expect(t, "logout again", a.do("POST", "/logout", tr.AccessToken, "", nil), 200, `"already_revoked":true`)
		r := a.do("POST", "/logout/all", tr.AccessToken, "", nil)
		expect(t, "logout/all with a revoked session", r, 401, `"status":401`)
		if got := r.header.Get("WWW-Authenticate"); got != `Bearer realm="authd", error="invalid_token"` {
			t.Errorf("challenge for a revoked token %q", got)
		}

		login("alice")
		tr = login("alice")
		expect(t, "logout/all", a.do("POST", "/logout/all", tr.AccessToken, "", nil), 200, `"revoked":`)

		r = a.do("POST", "/logout", "", "", nil)
		expect(t, "logout without a token", r, 401, `"a bearer access token is required"`)
		if got := r.header.Get("WWW-Authenticate"); got != `Bearer realm="authd"` {
			t.Errorf("challenge without a token %q", got)
		}
		expect(t, "logout with a bad token", a.do("POST", "/logout", "not.a.jwt", "", nil), 401, `"Unauthorized"`)
		expect(t, "logout/all without a token", a.do("POST", "/logout/all", "", "", nil), 401, "")
		r = a.do("POST", "/logout", tr.AccessToken, "application/json", strings.NewReader(strings.Repeat(" ", 70<<10)))
		expect(t, "logout with an oversized body", r, 413, `"Request Entity Too Large"`)
	})

	t.Run("feed", func(t *testing.T) {
		svc := env.ServiceToken(t, "feeder", "service secret 1234")
		victim := login("alice")
		expect(t, "logout", a.do("POST", "/logout", victim.AccessToken, "", nil), 200, "")

		r := a.do("GET", "/sessions/revoked", svc.AccessToken, "", nil)
		expect(t, "full snapshot", r, 200, victim.SID)
		if r.header.Get("X-Revocation-Cursor") == "" {
			t.Errorf("no X-Revocation-Cursor")
		}
		r = a.do("GET", "/sessions/revoked?since=0", svc.AccessToken, "", nil, "Accept-Encoding", "gzip")
		expect(t, "gzip snapshot", r, 200, "")
		if r.header.Get("Content-Encoding") != "gzip" {
			t.Errorf("Content-Encoding %q, want gzip", r.header.Get("Content-Encoding"))
		} else if zr, err := gzip.NewReader(bytes.NewReader(r.body)); err != nil {
			t.Error(err)
		} else if b, err := io.ReadAll(zr); err != nil || !bytes.Contains(b, []byte(victim.SID)) {
			t.Errorf("gzip body %q, %v", b, err)
		}
		r = a.do("GET", "/sessions/revoked?since=99999999999", login("root").AccessToken, "", nil)
		expect(t, "admin, nothing since", r, 200, "[]")

		expect(t, "bad since", a.do("GET", "/sessions/revoked?since=-1", svc.AccessToken, "", nil), 400, `"since must be`)
		expect(t, "empty since", a.do("GET", "/sessions/revoked?since=", svc.AccessToken, "", nil), 400, `"since must be`)
		expect(t, "repeated since", a.do("GET", "/sessions/revoked?since=1&since=2", svc.AccessToken, "", nil), 400, `"since must be`)
		expect(t, "user on the feed", a.do("GET", "/sessions/revoked", login("alice").AccessToken, "", nil), 403, `"Forbidden"`)
		expect(t, "feed without a token", a.do("GET", "/sessions/revoked", "", "", nil), 401, "")
		expect(t, "feed with a bad token", a.do("GET", "/sessions/revoked", "x", "", nil), 401, "")
	})

	t.Run("admin revoke", func(t *testing.T) {
		admin := login("root")
		victim := login("alice")
		path := "/sessions/" + victim.SID + "/revoke"
		r := a.do("POST", path, admin.AccessToken, "application/json", strings.NewReader(`{"reason":"stolen laptop"}`))
		expect(t, "revoke", r, 200, `"revoked_reason":"stolen laptop"`)
		r = a.do("POST", path, admin.AccessToken, "", nil)
		expect(t, "revoke again", r, 200, `"already_revoked":true`)
		other := login("alice")
		r = a.do("POST", "/sessions/"+other.SID+"/revoke", admin.AccessToken, "", nil)
		expect(t, "revoke without a body", r, 200, `"revoked_reason":"admin_revoke"`)

		expect(t, "unknown sid", a.do("POST", "/sessions/"+uuid.NewString()+"/revoke", admin.AccessToken, "", nil), 404, `"Not Found"`)
		expect(t, "malformed sid", a.do("POST", "/sessions/not-a-uuid/revoke", admin.AccessToken, "", nil), 400, `"the session id must be a UUID"`)
		r = a.do("POST", path, admin.AccessToken, "application/json", strings.NewReader(`{"reason":"`+strings.Repeat("r", 201)+`"}`))
		expect(t, "reason too long", r, 400, `"reason must be`)
		r = a.do("POST", path, admin.AccessToken, "application/json", strings.NewReader(`{"why":"x"}`))
		expect(t, "unknown body member", r, 400, `unknown field`)
		r = a.do("POST", path, admin.AccessToken, "application/json", strings.NewReader(strings.Repeat(" ", 70<<10)))
		expect(t, "oversized body", r, 413, "")
		user := login("alice")
		expect(t, "user revokes another's session", a.do("POST", "/sessions/"+admin.SID+"/revoke", user.AccessToken, "", nil), 403, `"Forbidden"`)
		expect(t, "user revokes an unknown session", a.do("POST", "/sessions/"+uuid.NewString()+"/revoke", user.AccessToken, "", nil), 403, `"Forbidden"`)
		own := login("alice")
		expect(t, "user revokes their own", a.do("POST", "/sessions/"+own.SID+"/revoke", user.AccessToken, "", nil), 200, `"user_revoke"`)
		expect(t, "no token", a.do("POST", path, "", "", nil), 401, "")
		expect(t, "bad token", a.do("POST", path, "eyJ.bad.token", "", nil), 401, "")
	})

	t.Run("account", func(t *testing.T) {
		env.CreateUser(t, "bob", "user", pw)
		bob := login("bob")
		other := login("bob")
		r := a.do("GET", "/sessions", bob.AccessToken, "", nil)
		expect(t, "own sessions", r, 200, `"current":true`)
		r = a.do("GET", "/sessions?include=revoked&limit=1", bob.AccessToken, "", nil)
		expect(t, "own sessions, one page", r, 200, `"next_cursor":"`)
		expect(t, "bad include", a.do("GET", "/sessions?include=all", bob.AccessToken, "", nil), 400, "")
		expect(t, "bad limit", a.do("GET", "/sessions?limit=0", bob.AccessToken, "", nil), 400, "")
		expect(t, "sessions without a token", a.do("GET", "/sessions", "", "", nil), 401, "")

		r = a.do("POST", "/me/password", bob.AccessToken, "application/json",
			strings.NewReader(`{"current_password":"`+pw+`","new_password":"an even better passphrase"}`))
		expect(t, "change password", r, 200, `"revoked":1`)
		expect(t, "other session after the change", a.do("GET", "/sessions", other.AccessToken, "", nil), 401, "")
		r = a.do("POST", "/me/password", bob.AccessToken, "application/json",
			strings.NewReader(`{"current_password":"wrong wrong wrong","new_password":"yet another passphrase"}`))
		expect(t, "wrong current password", r, 403, "")
		r = a.do("POST", "/me/password", bob.AccessToken, "application/json",
			strings.NewReader(`{"current_password":"an even better passphrase","new_password":"short"}`))
		expect(t, "policy violation", r, 400, "at least 12 characters")
		expect(t, "no body", a.do("POST", "/me/password", bob.AccessToken, "application/json", nil), 400, "")
	})

	t.Run("audit", func(t *testing.T) {
		admin := login("root").AccessToken
		r := a.do("GET", "/audit?limit=2", admin, "", nil)
		expect(t, "audit page", r, 200, `"next_cursor"`)
		var p struct {
			NextCursor string `json:"next_cursor"`
		}
		r.json(t, &p)
		expect(t, "audit next page", a.do("GET", "/audit?limit=2&type=login_succeeded&cursor="+p.NextCursor, admin, "", nil), 200, `"items"`)
		expect(t, "audit bad type", a.do("GET", "/audit?type=nope", admin, "", nil), 400, `"type must be one of`)
		expect(t, "audit as a user", a.do("GET", "/audit", login("alice").AccessToken, "", nil), 403, `"Forbidden"`)
	})

	t.Run("verifiers", func(t *testing.T) {
		admin := login("root").AccessToken
		svc := a.form("/token", url.Values{"grant_type": {"client_credentials"}, "client_id": {"feeder"}, "client_secret": {"service secret 1234"}})
		var tr authdtest.TokenResponse
		svc.json(t, &tr)
		expect(t, "feed poll", a.do("GET", "/sessions/revoked?format=2", tr.AccessToken, "", nil), 200, `"format":2`)
		r := a.do("POST", "/sessions/revoke-all", admin, "application/json", strings.NewReader(`{}`))
		expect(t, "revoke-all", r, 200, `"nbf"`)
		if err := env.App.Fleet.Sync(t.Context()); err != nil {
			t.Fatal(err)
		}
		env.Clock.Advance(2 * time.Second)
		expect(t, "verifiers", a.do("GET", "/verifiers", login("root").AccessToken, "", nil), 200, `"client_id":"feeder"`)
	})

	t.Run("service secrets", func(t *testing.T) {
		admin := login("root").AccessToken
		u, err := env.Accounts.UserByName(t.Context(), "feeder")
		if err != nil {
			t.Fatal(err)
		}
		r := a.do("POST", "/users/"+u.ID+"/secrets", admin, "", nil)
		expect(t, "add secret", r, 201, `"secret"`)
		expect(t, "third secret", a.do("POST", "/users/"+u.ID+"/secrets", admin, "", nil), 409, `two secrets`)
		var s struct{ ID string }
		r.json(t, &s)
		expect(t, "remove secret", a.do("DELETE", "/users/"+u.ID+"/secrets/"+s.ID, admin, "", nil), 204, ``)
		expect(t, "remove the only secret", a.do("DELETE", "/users/"+u.ID+"/secrets/primary", admin, "", nil), 409, `only secret`)
		expect(t, "remove an unknown secret", a.do("DELETE", "/users/"+u.ID+"/secrets/nope", admin, "", nil), 404, `no secret`)
	})

	t.Run("admin users", func(t *testing.T) {
		admin := login("root").AccessToken
		user := login("alice").AccessToken
		r := a.do("POST", "/users", admin, "application/json", strings.NewReader(`{"username":"carol","role":"user"}`))
		expect(t, "create with a generated password", r, 201, `"password":"`)
		var carol struct{ ID, Password string }
		r.json(t, &carol)
		r = a.do("POST", "/users", admin, "application/json",
			strings.NewReader(`{"username":"dave","role":"service","password":"dave's long secret"}`))
		expect(t, "create with a password", r, 201, `"role":"service"`)
		if bytes.Contains(r.body, []byte(`"password"`)) {
			t.Errorf("a chosen password was echoed: %s", r.body)
		}
		expect(t, "taken username", a.do("POST", "/users", admin, "application/json",
			strings.NewReader(`{"username":"CAROL","role":"user"}`)), 409, "")
		expect(t, "bad role", a.do("POST", "/users", admin, "application/json",
			strings.NewReader(`{"username":"erin","role":"root"}`)), 400, "")
		expect(t, "user creates", a.do("POST", "/users", user, "application/json",
			strings.NewReader(`{"username":"erin","role":"user"}`)), 403, "")

		expect(t, "get", a.do("GET", "/users/"+carol.ID, admin, "", nil), 200, `"username":"carol"`)
		expect(t, "get unknown", a.do("GET", "/users/"+uuid.NewString(), admin, "", nil), 404, "")
		expect(t, "get malformed", a.do("GET", "/users/nope", admin, "", nil), 400, "")
		expect(t, "list", a.do("GET", "/users?query=car&limit=1", admin, "", nil), 200, `"items":[`)
		expect(t, "list, bad cursor", a.do("GET", "/users?cursor=%25%25", admin, "", nil), 400, "")

		a.form("/token", url.Values{"grant_type": {"password"}, "username": {"carol"}, "password": {carol.Password}})
		r = a.do("GET", "/users/"+carol.ID+"/sessions?include=revoked", admin, "", nil)
		expect(t, "user sessions", r, 200, `"current":false`)
		r = a.do("PATCH", "/users/"+carol.ID, admin, "application/json", strings.NewReader(`{"disabled":true}`))
		expect(t, "disable", r, 200, `"revoked":1`)
		expect(t, "empty patch", a.do("PATCH", "/users/"+carol.ID, admin, "application/json", strings.NewReader(`{}`)), 400, "")
		otherID := env.CreateUser(t, "root2", "user", pw)
		expect(t, "last admin", a.do("PATCH", "/users/"+adminID(t, a, admin), admin, "application/json",
			strings.NewReader(`{"role":"user"}`)), 409, "")
		r = a.do("PUT", "/users/"+otherID+"/password", admin, "application/json", strings.NewReader(`{"password":"a fresh passphrase"}`))
		expect(t, "reset password", r, 200, `"revoked":0`)
		r = a.do("PUT", "/users/"+otherID+"/password", admin, "application/json", strings.NewReader(`{"password":"short"}`))
		expect(t, "reset to a weak password", r, 400, "")
		r = a.do("POST", "/users/"+otherID+"/sessions/revoke", admin, "", nil)
		expect(t, "revoke all of a user", r, 200, `"revoked":0`)
		expect(t, "revoke all of nobody", a.do("POST", "/users/"+uuid.NewString()+"/sessions/revoke", admin, "", nil), 404, "")
	})

	t.Run("throttle", func(t *testing.T) {
		var r reply
		for i := 0; i < 10 && r.status != 429; i++ {
			r = a.form("/token", url.Values{"grant_type": {"password"}, "username": {"mallory"}, "password": {"guess guess guess"}})
		}
		expect(t, "throttled login", r, 429, "")
		if r.header.Get("Retry-After") == "" {
			t.Errorf("429 without Retry-After")
		}
	})

	// Last: it takes the database away.
	t.Run("readyz unavailable", func(t *testing.T) {
		env.DB.Close()
		expect(t, "readyz without a database", a.do("GET", "/readyz", "", "", nil), 503, `"Service Unavailable"`)
	})
}

func basic(id, secret string) string {
	return base64.StdEncoding.EncodeToString([]byte(url.QueryEscape(id) + ":" + url.QueryEscape(secret)))
}

// adminID finds the id of the only admin, root.
func adminID(t *testing.T, a *api, token string) string {
	t.Helper()
	var list struct {
		Items []struct {
			ID       string `json:"id"`
			Username string `json:"username"`
		} `json:"items"`
	}
	a.do("GET", "/users?query=root", token, "", nil).json(t, &list)
	for _, u := range list.Items {
		if u.Username == "root" {
			return u.ID
		}
	}
	t.Fatalf("no user root in %+v", list)
	return ""
}
