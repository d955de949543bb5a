package console_test

import (
	"context"
	"io"
	"net/http"
	"net/http/cookiejar"
	"net/url"
	"os"
	"regexp"
	"strings"
	"testing"
	"time"

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
	env  *authdtest.Env
	http *http.Client
}

func newClient(t *testing.T, env *authdtest.Env) *client {
	jar, _ := cookiejar.New(nil)
	return &client{t: t, env: env, http: &http.Client{Jar: jar,
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
	req, _ := http.NewRequest(http.MethodGet, c.env.URL+path, nil)
	return c.do(req)
}

func (c *client) post(path string, form url.Values) (*http.Response, string) {
	c.t.Helper()
	req, _ := http.NewRequest(http.MethodPost, c.env.URL+path, strings.NewReader(form.Encode()))
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
