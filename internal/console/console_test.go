package console_test

import (
	"context"
	"fmt"
	"io"
	"net/http"
	"net/http/cookiejar"
	"net/http/httptest"
	"net/url"
	"os"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/labstack/echo/v4"
	"github.com/seedc5a8123e/authd/internal/authdtest"
	"github.com/seedc5a8123e/authd/internal/console"
	"github.com/seedc5a8123e/authd/internal/pgtest"
	"github.com/seedc5a8123e/authd/internal/throttle"
)

func TestMain(m *testing.M) { os.Exit(pgtest.Main(m)) }

const (
	adminName = "root"
	adminPW   = "admin horse battery staple"
)

// client is a browser without a browser: a cookie jar that does not follow
// redirects, so each answer can be looked at.
type client struct {
	t    *testing.T
	base string
	http *http.Client
}

func newClient(t *testing.T, env *authdtest.Env) *client { return newClientAt(t, env.URL) }

func newClientAt(t *testing.T, base string) *client {
	jar, _ := cookiejar.New(nil)
	return &client{t: t, base: base, http: &http.Client{Jar: jar,
		CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }}}
}

func (c *client) do(req *http.Request) (*http.Response, string) {
	c.t.Helper()
	res, err := c.http.Do(req)
	if err != nil {
		c.t.Fatal(err)
	}
	defer res.Body.Close()
	b, _ := io.ReadAll(res.Body)
	return res, string(b)
}

func (c *client) get(path string) (*http.Response, string) {
	c.t.Helper()
	req, _ := http.NewRequest(http.MethodGet, c.base+path, nil)
	return c.do(req)
}

func (c *client) post(path string, form url.Values) (*http.Response, string) {
	c.t.Helper()
	req, _ := http.NewRequest(http.MethodPost, c.base+path, strings.NewReader(form.Encode()))
	req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	return c.do(req)
}

var csrfField = regexp.MustCompile(`name="csrf" value="([^"]+)"`)

func csrf(t *testing.T, body string) string {
	t.Helper()
	m := csrfField.FindStringSubmatch(body)
	if m == nil {
		t.Fatalf("no CSRF token in %s", body)
	}
	return m[1]
}

// signIn signs in and returns the CSRF token of the console session.
func (c *client) signIn(name, pw string) (*http.Response, string) {
	c.t.Helper()
	_, body := c.get("/console/login")
	return c.post("/console/login", url.Values{"csrf": {csrf(c.t, body)}, "username": {name}, "password": {pw}})
}

func (c *client) mustSignIn() string {
	c.t.Helper()
	res, body := c.signIn(adminName, adminPW)
	if res.StatusCode != http.StatusSeeOther || res.Header.Get("Location") != "/console/users" {
		c.t.Fatalf("sign-in: %d %s", res.StatusCode, body)
	}
	res, body = c.get("/console/users")
	if res.StatusCode != http.StatusOK {
		c.t.Fatalf("users page: %d %s", res.StatusCode, body)
	}
	return csrf(c.t, body)
}

func setup(t *testing.T, o authdtest.Options) (*authdtest.Env, string) {
	env := authdtest.Start(t, o)
	return env, env.CreateUser(t, adminName, "admin", adminPW)
}

// TestHeaders: every console answer carries the strict policy, and the
// sign-in form's cookie is HttpOnly and SameSite=Strict; Secure except on
// plain http to a loopback name.
func TestHeaders(t *testing.T) {
	env, _ := setup(t, authdtest.Options{})
	for _, host := range []string{"", "authd.example.com", "localhost:8080"} {
		req, _ := http.NewRequest(http.MethodGet, env.URL+"/console/login", nil)
		if host != "" {
			req.Host = host
		}
		res, body := newClient(t, env).do(req)
		if res.StatusCode != http.StatusOK || !strings.Contains(body, `id="login"`) {
			t.Fatalf("%s: %d %s", host, res.StatusCode, body)
		}
		h := res.Header
		if got := h.Get("Content-Security-Policy"); !strings.Contains(got, "default-src 'none'") ||
			!strings.Contains(got, "frame-ancestors 'none'") || strings.Contains(got, "script-src") {
			t.Errorf("CSP = %q", got)
		}
		if h.Get("X-Frame-Options") != "DENY" || h.Get("Referrer-Policy") != "no-referrer" || h.Get("Cache-Control") != "no-store" {
			t.Errorf("headers = %v", h)
		}
		ck := res.Cookies()
		if len(ck) != 1 || !ck[0].HttpOnly || ck[0].SameSite != http.SameSiteStrictMode || ck[0].Path != "/console/" {
			t.Fatalf("%s: cookies = %+v", host, ck)
		}
		if want := host == "authd.example.com"; ck[0].Secure != want {
			t.Errorf("Host %q: Secure = %t, want %t", host, ck[0].Secure, want)
		}
	}
}

// TestCSRF: sign-in and every state-changing form without the token are
// 403 and change nothing.
func TestCSRF(t *testing.T) {
	env, _ := setup(t, authdtest.Options{})
	env.CreateUser(t, "alice", "user", "correct horse battery staple")
	alice := env.Login(t, "alice", "correct horse battery staple")
	c := newClient(t, env)
	c.get("/console/login") // the login cookie, without its form field
	res, body := c.post("/console/login", url.Values{"username": {adminName}, "password": {adminPW}})
	if res.StatusCode != http.StatusForbidden || !strings.Contains(body, "CSRF token missing or wrong") {
		t.Errorf("sign-in without the token: %d %s", res.StatusCode, body)
	}
	tok := c.mustSignIn()
	for _, form := range []url.Values{{}, {"csrf": {"wrong"}}, {"csrf": {tok + "x"}}} {
		form.Set("reason", "x")
		res, body := c.post("/console/sessions/"+alice.SID+"/revoke", form)
		if res.StatusCode != http.StatusForbidden || !strings.Contains(body, "nothing was changed") {
			t.Errorf("revoke with csrf %q: %d %s", form.Get("csrf"), res.StatusCode, body)
		}
	}
	if s, err := env.Accounts.Session(context.Background(), alice.SID); err != nil || s.RevokedAt != nil {
		t.Fatalf("session = %+v, %v: want live", s, err)
	}
	res, _ = c.post("/console/sessions/"+alice.SID+"/revoke", url.Values{"csrf": {tok}, "reason": {"x"}})
	if res.StatusCode != http.StatusSeeOther {
		t.Fatalf("revoke with the token: %d", res.StatusCode)
	}
	if s, _ := env.Accounts.Session(context.Background(), alice.SID); s.RevokedAt == nil {
		t.Error("the revoke with the token did not revoke")
	}
}

// TestSignInIsThrottled: the console's sign-in is the password grant, so
// the login throttle counts its failures as it counts /token's.
func TestSignInIsThrottled(t *testing.T) {
	env, _ := setup(t, authdtest.Options{Throttle: throttle.Config{MaxFailuresAccount: 2, Base: time.Minute, Max: time.Hour}})
	c := newClient(t, env)
	for i := range 2 {
		if res, body := c.signIn(adminName, "wrong password here"); res.StatusCode != http.StatusUnauthorized {
			t.Fatalf("failure %d: %d %s", i+1, res.StatusCode, body)
		}
	}
	res, body := c.signIn(adminName, adminPW)
	if res.StatusCode != http.StatusTooManyRequests || res.Header.Get("Retry-After") == "" ||
		!strings.Contains(body, "Too many failed attempts") {
		t.Errorf("after two failures: %d %q %s", res.StatusCode, res.Header.Get("Retry-After"), body)
	}
}

// TestTokensRefreshAndIdleEnds: past its access token's lifetime the
// console refreshes on the server and stays signed in on the same authd
// session; idle past the limit it signs the browser out and revokes that
// session.
func TestTokensRefreshAndIdleEnds(t *testing.T) {
	env, adminID := setup(t, authdtest.Options{AccessTTL: 5 * time.Minute})
	c := newClient(t, env)
	c.mustSignIn()
	p, err := env.Accounts.Sessions(context.Background(), adminID, false, "", 10)
	if err != nil || len(p.Items) != 1 {
		t.Fatalf("sessions = %+v, %v", p.Items, err)
	}
	sid := p.Items[0].ID
	for range 3 { // 3 × 10 minutes: two access lifetimes each
		env.Clock.Advance(10 * time.Minute)
		if res, body := c.get("/console/users"); res.StatusCode != http.StatusOK {
			t.Fatalf("after %s: %d %s", 10*time.Minute, res.StatusCode, body)
		}
	}
	s, err := env.Accounts.Session(context.Background(), sid)
	if err != nil || s.RevokedAt != nil || s.LastRefreshedAt == nil {
		t.Fatalf("console session = %+v, %v: want live and refreshed", s, err)
	}
	env.Clock.Advance(console.DefaultIdleTimeout + time.Second)
	res, _ := c.get("/console/users")
	if res.StatusCode != http.StatusSeeOther || res.Header.Get("Location") != "/console/login?m=ended" {
		t.Errorf("idle: %d %s", res.StatusCode, res.Header.Get("Location"))
	}
	if s, _ := env.Accounts.Session(context.Background(), sid); s.RevokedAt == nil {
		t.Error("the idle console session's authd session is still live")
	}
}

// TestSignedOutByRevocation: revoking the console's own session through
// the API signs the browser out at its next request.
func TestSignedOutByRevocation(t *testing.T) {
	env, adminID := setup(t, authdtest.Options{})
	c := newClient(t, env)
	c.mustSignIn()
	if _, err := env.Accounts.RevokeAll(context.Background(), adminID, "", nil); err != nil {
		t.Fatal(err)
	}
	res, _ := c.get("/console/users")
	if res.StatusCode != http.StatusSeeOther || res.Header.Get("Location") != "/console/login?m=ended" {
		t.Errorf("after revocation: %d %s", res.StatusCode, res.Header.Get("Location"))
	}
}

// TestErrorsAreMessages: bad input is a message on a page with a 4xx
// status, never a stack or a blank page.
func TestErrorsAreMessages(t *testing.T) {
	env, _ := setup(t, authdtest.Options{})
	c := newClient(t, env)
	c.mustSignIn()
	for path, want := range map[string]string{
		"/console/users/not-a-uuid":                                  "User id must be a UUID.",
		"/console/users/00000000-0000-0000-0000-000000000000":        "No such user.",
		"/console/sessions?sid=nope":                                 "Session id must be a UUID.",
		"/console/sessions?sid=00000000-0000-0000-0000-000000000000": "No session has this id.",
		"/console/users?cursor=!!":                                   "Cursor is malformed.",
		"/console/nowhere":                                           "There is no such console page.",
	} {
		res, body := c.get(path)
		if res.StatusCode < 400 || res.StatusCode >= 500 || !strings.Contains(body, want) ||
			!strings.HasPrefix(res.Header.Get("Content-Type"), "text/html") {
			t.Errorf("%s: %d %s, want a 4xx page saying %q", path, res.StatusCode, body, want)
		}
	}
}

// auditLog answers one fixed page and keeps the filter it was asked for.
// It stands in for the audit log's reader, which internal/app wires once
// the audit package exists (console.AuditLog is the contract).
type auditLog struct {
	got    console.AuditFilter
	cursor string
}

func (a *auditLog) AuditPage(_ context.Context, f console.AuditFilter, cursor string, _ int) (console.AuditPage, error) {
	a.got, a.cursor = f, cursor
	return console.AuditPage{NextCursor: "c2", Items: []console.AuditEvent{{
		ID: 1, At: time.Date(2026, 1, 2, 3, 4, 5, 0, time.UTC), Type: "session_revoked", Actor: "cli",
		SessionID: "6f1c1c49-8c55-4a34-9d1c-4c7c9a1f0b11", UserAgent: "<img src=x onerror=alert(1)>",
		Detail: map[string]any{"reason": "<b>stolen</b>"},
	}}}, nil
}

type fleet struct{}

func (fleet) Fleet(context.Context) (console.FleetView, error) {
	return console.FleetView{
		Verifiers:   []console.Verifier{{ClientID: "<svc>", LastPoll: time.Unix(1e9, 0), Lag: 1500 * time.Millisecond, State: "silent"}},
		Revocations: []console.Propagation{{At: time.Unix(1e9, 0), Count: 3, Reached: 1, Active: 2, Waiting: []string{"<svc>"}}},
	}, nil
}

// TestAuditAndFleetPages: the pages pass GET /audit's filters to the log,
// page with its cursor, refuse a bad time with a message, escape what the
// rows carry, and the fleet page reloads itself.
func TestAuditAndFleetPages(t *testing.T) {
	env, _ := setup(t, authdtest.Options{})
	al := &auditLog{}
	con, err := console.New(console.Deps{Sessions: env.Sessions, Accounts: env.Accounts, Clock: env.Clock, Log: env.Log,
		Audit: al, Fleet: fleet{}})
	if err != nil {
		t.Fatal(err)
	}
	e := echo.New()
	con.Register(e.Group(console.Prefix))
	srv := httptest.NewServer(e)
	t.Cleanup(srv.Close)
	c := newClientAt(t, srv.URL)
	c.mustSignIn()

	const uid = "0d6f3c3e-55a4-4b5b-8d55-9a4f1e0e3c1a"
	res, body := c.get("/console/audit?user=" + uid + "&type=session_revoked&since=2026-01-02T00:00:00Z&until=2026-01-03T10:30")
	if res.StatusCode != http.StatusOK {
		t.Fatalf("audit: %d %s", res.StatusCode, body)
	}
	want := console.AuditFilter{UserID: uid, Type: "session_revoked",
		Since: time.Date(2026, 1, 2, 0, 0, 0, 0, time.UTC), Until: time.Date(2026, 1, 3, 10, 30, 0, 0, time.UTC)}
	if al.got != want || al.cursor != "" {
		t.Errorf("filter = %+v cursor %q, want %+v", al.got, al.cursor, want)
	}
	for _, s := range []string{"session_revoked", "&lt;img src=x onerror=alert(1)&gt;", "reason=&lt;b&gt;stolen&lt;/b&gt;", "cursor=c2", "type=session_revoked"} {
		if !strings.Contains(body, s) {
			t.Errorf("audit page lacks %q", s)
		}
	}
	if strings.Contains(body, "<img") || strings.Contains(body, "<b>") {
		t.Error("audit page carries a row's markup unescaped")
	}
	c.get("/console/audit?cursor=c2")
	if al.cursor != "c2" {
		t.Errorf("next page asked with cursor %q", al.cursor)
	}
	res, body = c.get("/console/audit?since=yesterday")
	if res.StatusCode != http.StatusBadRequest || !strings.Contains(body, "since must be a time") {
		t.Errorf("bad since: %d %s", res.StatusCode, body)
	}

	res, body = c.get("/console/fleet")
	if res.StatusCode != http.StatusOK {
		t.Fatalf("fleet: %d %s", res.StatusCode, body)
	}
	for _, s := range []string{`<meta http-equiv="refresh" content="3">`, "&lt;svc&gt;", "silent", "1.5s", "1 of 2"} {
		if !strings.Contains(body, s) {
			t.Errorf("fleet page lacks %q", s)
		}
	}
}

// TestUsersPaginate: a search with more matches than a page links to the
// next page, which holds the rest.
func TestUsersPaginate(t *testing.T) {
	env, _ := setup(t, authdtest.Options{})
	for i := range 27 {
		env.CreateUser(t, fmt.Sprintf("user-%02d", i), "user", "correct horse battery staple")
	}
	c := newClient(t, env)
	c.mustSignIn()
	_, body := c.get("/console/users?q=user-")
	next := regexp.MustCompile(`id="next" href="([^"]+)"`).FindStringSubmatch(body)
	if next == nil || strings.Count(body, `class="user"`) != 25 || !strings.Contains(body, ">user-24<") {
		t.Fatalf("first page: %s", body)
	}
	_, body = c.get(strings.ReplaceAll(next[1], "&amp;", "&"))
	if strings.Count(body, `class="user"`) != 2 || !strings.Contains(body, ">user-25<") || !strings.Contains(body, ">user-26<") ||
		strings.Contains(body, `id="next"`) {
		t.Errorf("second page: %s", body)
	}
}
