// Package browser_test drives the admin console in a real headless
// Chromium (Debian's chromium package) through the DevTools protocol
// (chromedp), against a real authd (internal/authdtest) on PostgreSQL, with
// a real verifier polling its feed. Each page is screenshotted into a
// folder the test names in its log, so a failing run shows what the browser
// saw. Without Chromium the tests skip, unless CI is set: then they fail.
package browser_test

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/chromedp/chromedp"

	"github.com/seedc5a8123e/authd/internal/authdtest"
	"github.com/seedc5a8123e/authd/internal/feed"
	"github.com/seedc5a8123e/authd/internal/pgtest"
	"github.com/seedc5a8123e/authd/verifier"
)

// docs rewrites the README's screenshot (docs/console.png) from this run.
var docs = flag.Bool("docs", false, "write docs/console.png from the session page")

const (
	adminName = "root"
	adminPW   = "admin horse battery staple"
	userPW    = "correct horse battery staple"
	svcUser   = "svc"
	svcSecret = "service-secret-0123456789"
	// within bounds each wait for the browser or the verifier; generous,
	// since the machine runs other suites beside this one.
	within = 30 * time.Second
)

var browser struct {
	once   sync.Once
	ctx    context.Context
	cancel func()
	err    error
}

func TestMain(m *testing.M) {
	code := pgtest.Main(m)
	if browser.cancel != nil {
		browser.cancel()
	}
	os.Exit(code)
}

// chromium is the path of the browser, or "" when none is installed.
func chromium() string {
	for _, name := range []string{"chromium", "chromium-browser", "google-chrome", "google-chrome-stable"} {
		if p, err := exec.LookPath(name); err == nil {
			return p
		}
	}
	return ""
}

// tab opens a fresh browser context (its own cookie jar) in the package's
// one Chromium, at width×height, and returns it. It skips the test without
// Chromium, or fails it under CI.
func tab(t *testing.T, width, height int) context.Context {
	t.Helper()
	path := chromium()
	if path == "" {
		if os.Getenv("CI") != "" {
			t.Fatal("chromium is not installed (apt-get install chromium); CI requires the browser tests")
		}
		t.Skip("chromium is not installed (apt-get install chromium)")
	}
	browser.once.Do(func() {
		opts := append(chromedp.DefaultExecAllocatorOptions[:], chromedp.ExecPath(path),
			// Root in a container: Chromium's sandbox needs user namespaces.
			chromedp.NoSandbox, chromedp.Flag("disable-gpu", true))
		actx, cancelAlloc := chromedp.NewExecAllocator(context.Background(), opts...)
		bctx, cancelBrowser := chromedp.NewContext(actx)
		browser.ctx = bctx
		browser.cancel = func() { cancelBrowser(); cancelAlloc() }
		browser.err = chromedp.Do(bctx) // starts the browser
	})
	if browser.err != nil {
		t.Fatalf("start chromium: %v", browser.err)
	}
	ctx, cancel := chromedp.NewContext(browser.ctx, chromedp.WithNewBrowserContext())
	t.Cleanup(cancel)
	ctx, cancelT := context.WithTimeout(ctx, 2*time.Minute)
	t.Cleanup(cancelT)
	run(t, ctx, chromedp.EmulateViewport(int64(width), int64(height)))
	return ctx
}

func run(t *testing.T, ctx context.Context, actions ...chromedp.Action[chromedp.Void]) {
	t.Helper()
	if err := chromedp.Do(ctx, actions...); err != nil {
		t.Fatalf("browser: %v", err)
	}
}

// get runs one action that answers a value.
func get[T any](t *testing.T, ctx context.Context, a chromedp.Action[T]) T {
	t.Helper()
	v, err := chromedp.Run(ctx, a)
	if err != nil {
		t.Fatalf("browser: %v", err)
	}
	return v
}

// shots is the folder of the test's screenshots. It is kept after the test
// (the point is to look at them after a failure) and named in the log.
func shots(t *testing.T) string {
	t.Helper()
	dir := filepath.Join(os.TempDir(), "authd-console-screenshots", strings.ReplaceAll(t.Name(), "/", "_"))
	if err := os.MkdirAll(dir, 0o755); err != nil {
		t.Fatal(err)
	}
	t.Logf("screenshots in %s", dir)
	return dir
}

func screenshot(t *testing.T, ctx context.Context, dir, name string) []byte {
	t.Helper()
	png := get(t, ctx, chromedp.FullScreenshot(100))
	if err := os.WriteFile(filepath.Join(dir, name+".png"), png, 0o644); err != nil {
		t.Fatal(err)
	}
	return png
}

type fixture struct {
	env     *authdtest.Env
	adminID string
	v       *verifier.Verifier
}

// setup starts authd with an admin and a service identity; withVerifier
// also starts a verifier polling its feed every 100ms.
func setup(t *testing.T, withVerifier bool) *fixture {
	t.Helper()
	env := authdtest.Start(t, authdtest.Options{})
	f := &fixture{env: env, adminID: env.CreateUser(t, adminName, "admin", adminPW)}
	if !withVerifier {
		return f
	}
	env.CreateUser(t, svcUser, "service", svcSecret)
	addr := env.Server.Listener.Addr().String()
	tr := http.DefaultTransport.(*http.Transport).Clone()
	// authd's discovery names URLs under its issuer (http://authd.test),
	// which no resolver knows: every connection goes to the test server.
	tr.DialContext = func(ctx context.Context, network, _ string) (net.Conn, error) {
		var d net.Dialer
		return d.DialContext(ctx, network, addr)
	}
	v, err := verifier.New(context.Background(), verifier.Config{
		IssuerURL: env.URL, Issuer: authdtest.Issuer, Audience: authdtest.Audience,
		ClientID: svcUser, ClientSecret: svcSecret, PollInterval: 100 * time.Millisecond,
		Clock: env.Clock, InitialTimeout: 10 * time.Second, HTTPClient: &http.Client{Transport: tr, Timeout: 30 * time.Second},
		Logger: slog.New(slog.DiscardHandler),
	})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		if err := v.Close(); err != nil {
			t.Error(err)
		}
	})
	f.v = v
	return f
}

// signIn signs in through the console's form and waits for the users page.
func (f *fixture) signIn(t *testing.T, ctx context.Context, name, pw string) {
	t.Helper()
	run(t, ctx,
		chromedp.Navigate(f.env.URL+"/console/"),
		chromedp.WaitVisible(chromedp.CSS("#login")),
		chromedp.SendKeys(chromedp.CSS("#username"), name),
		chromedp.SendKeys(chromedp.CSS("#password"), pw),
		chromedp.Click(chromedp.CSS("#signin")),
	)
}

func text(t *testing.T, ctx context.Context, sel string) string {
	t.Helper()
	run(t, ctx, chromedp.WaitVisible(chromedp.CSS(sel)))
	return strings.TrimSpace(get(t, ctx, chromedp.Text(chromedp.CSS(sel))))
}

// inFeed reports whether the revocation feed lists sid.
func (f *fixture) inFeed(t *testing.T, sid string) bool {
	t.Helper()
	tok := f.env.ServiceToken(t, svcUser, svcSecret)
	res, body := f.env.Do(t, http.MethodGet, "/sessions/revoked", tok.AccessToken, "", nil)
	if res.StatusCode != http.StatusOK {
		t.Fatalf("feed: %d %s", res.StatusCode, body)
	}
	return strings.Contains(string(body), `"`+sid+`"`)
}

// TestRevokeASessionFromTheBrowser is the console's purpose: an admin signs
// in, finds a user, opens one of their sessions, revokes it with a reason;
// the feed lists it, a running verifier then rejects its token, and signing
// out revokes the console's own session, which enters the feed too.
func TestRevokeASessionFromTheBrowser(t *testing.T) {
	f := setup(t, true)
	f.env.CreateUser(t, "alice", "user", userPW)
	f.env.CreateUser(t, "bob", "user", userPW)
	alice := f.env.Login(t, "alice", userPW)
	if _, err := f.v.Verify(context.Background(), alice.AccessToken); err != nil {
		t.Fatalf("Verify before the revocation: %v", err)
	}
	ctx := tab(t, 1280, 900)
	dir := shots(t)

	f.signIn(t, ctx, adminName, adminPW)
	run(t, ctx, chromedp.WaitVisible(chromedp.CSS("#users")))
	screenshot(t, ctx, dir, "users")

	run(t, ctx,
		chromedp.SetValue(chromedp.CSS("#q"), "ali"),
		chromedp.Click(chromedp.CSS("#find")),
		chromedp.WaitVisible(`//table[@id="users"]//a[text()="alice"]`),
	)
	if got := text(t, ctx, "#users tbody"); strings.Contains(got, "bob") {
		t.Errorf("search for ali lists %q, want alice only", got)
	}
	screenshot(t, ctx, dir, "search")

	run(t, ctx,
		chromedp.Click(`//table[@id="users"]//a[text()="alice"]`),
		chromedp.WaitVisible(chromedp.CSS("#sessions")),
	)
	if got := text(t, ctx, "#sessions tbody"); !strings.Contains(got, alice.SID) || !strings.Contains(got, "live") {
		t.Errorf("alice's sessions = %q, want her live session %s", got, alice.SID)
	}
	screenshot(t, ctx, dir, "user")

	run(t, ctx,
		chromedp.Click(chromedp.CSS(`a.sid`)),
		chromedp.WaitVisible(chromedp.CSS("#revoke")),
		chromedp.SendKeys(chromedp.CSS("#reason-input"), "laptop stolen, ticket 4711"),
		chromedp.Click(chromedp.CSS("#revoke-button")),
		chromedp.WaitVisible(chromedp.CSS("#revoked")),
	)
	if got := text(t, ctx, "#flash"); !strings.Contains(got, "Session revoked") {
		t.Errorf("flash = %q, want the revocation confirmed", got)
	}
	if got, want := text(t, ctx, "#reason"), "laptop stolen, ticket 4711"; got != want {
		t.Errorf("reason shown = %q, want %q", got, want)
	}
	if got := text(t, ctx, "#actor"); got != adminName {
		t.Errorf("actor shown = %q, want %q", got, adminName)
	}
	png := screenshot(t, ctx, dir, "session")
	if *docs {
		if err := os.WriteFile(filepath.Join("..", "..", "..", "docs", "console.png"), png, 0o644); err != nil {
			t.Fatal(err)
		}
	}

	s, err := f.env.Accounts.Session(context.Background(), alice.SID)
	if err != nil || s.RevokedAt == nil || *s.RevokedReason != "laptop stolen, ticket 4711" ||
		s.RevokedByUserID == nil || *s.RevokedByUserID != f.adminID {
		t.Fatalf("session row = %+v, %v: want revoked by the admin with the reason", s, err)
	}
	if !f.inFeed(t, alice.SID) {
		t.Error("the feed does not list the revoked session")
	}
	authdtest.Eventually(t, within, func() bool {
		_, err := f.v.Verify(context.Background(), alice.AccessToken)
		if err != nil && !errors.Is(err, verifier.ErrRevoked) {
			t.Fatalf("Verify: %v, want success or ErrRevoked", err)
		}
		return err != nil
	}, "the verifier to reject the revoked session's token")

	// The audit and fleet pages render (issue 15 supplies their data).
	run(t, ctx, chromedp.Navigate(f.env.URL+"/console/audit"), chromedp.WaitVisible(chromedp.CSS("main")))
	screenshot(t, ctx, dir, "audit")
	// The fleet page shows the revocation reaching the verifier: once the
	// clock is past the feed's hold-back, the verifier's next poll gets a
	// cursor past it, and the tracker's sync settles it.
	f.env.Clock.Advance(feed.Holdback + 2*time.Second)
	authdtest.Eventually(t, 10*time.Second, func() bool {
		if err := f.env.App.Fleet.Sync(context.Background()); err != nil {
			t.Fatal(err)
		}
		run(t, ctx, chromedp.Navigate(f.env.URL+"/console/fleet"), chromedp.WaitVisible(chromedp.CSS("main")))
		return strings.Contains(text(t, ctx, "#revocations"), "1 of 1")
	}, "the fleet page to show the revocation reached by the one active verifier")
	screenshot(t, ctx, dir, "fleet")

	// Sign out: the console's authd session is revoked and enters the feed.
	console := f.consoleSession(t)
	run(t, ctx, chromedp.Click(chromedp.CSS("#signout")), chromedp.WaitVisible(chromedp.CSS("#login")))
	if got := text(t, ctx, "#flash"); !strings.Contains(got, "Signed out") {
		t.Errorf("after sign-out the page says %q", got)
	}
	s, err = f.env.Accounts.Session(context.Background(), console)
	if err != nil || s.RevokedAt == nil || *s.RevokedReason != "user_logout" {
		t.Fatalf("console session after sign-out = %+v, %v: want revoked (user_logout)", s, err)
	}
	if !f.inFeed(t, console) {
		t.Error("the feed does not list the console's ended session")
	}
	// The old cookie no longer opens a page.
	run(t, ctx, chromedp.Navigate(f.env.URL+"/console/users"), chromedp.WaitVisible(chromedp.CSS("#login")))
}

// consoleSession is the sid of the admin's one live session: the console's.
func (f *fixture) consoleSession(t *testing.T) string {
	t.Helper()
	p, err := f.env.Accounts.Sessions(context.Background(), f.adminID, false, "", 10)
	if err != nil || len(p.Items) != 1 {
		t.Fatalf("admin's live sessions = %+v, %v: want exactly the console's", p.Items, err)
	}
	return p.Items[0].ID
}

// TestFormWithoutCSRFTokenIsRefused: a state-changing form whose CSRF token
// is missing changes nothing and says why.
func TestFormWithoutCSRFTokenIsRefused(t *testing.T) {
	f := setup(t, false)
	f.env.CreateUser(t, "alice", "user", userPW)
	alice := f.env.Login(t, "alice", userPW)
	ctx := tab(t, 1280, 900)
	dir := shots(t)
	f.signIn(t, ctx, adminName, adminPW)
	run(t, ctx,
		chromedp.WaitVisible(chromedp.CSS("#users")),
		chromedp.Navigate(f.env.URL+"/console/sessions?sid="+alice.SID),
		chromedp.WaitVisible(chromedp.CSS("#revoke")),
	)
	// DevTools evaluation is not the page's script: the CSP does not apply.
	get(t, ctx, chromedp.Evaluate[*int](`document.querySelector('#revoke input[name=csrf]').remove(), null`))
	run(t, ctx, chromedp.Click(chromedp.CSS("#revoke-button")))
	if got := text(t, ctx, "#error"); !strings.Contains(got, "CSRF token missing or wrong") {
		t.Errorf("page says %q, want the CSRF refusal", got)
	}
	screenshot(t, ctx, dir, "refused")
	if s, err := f.env.Accounts.Session(context.Background(), alice.SID); err != nil || s.RevokedAt != nil {
		t.Errorf("session after the refused form = %+v, %v: want it live", s, err)
	}
	// The same form with its token works, so the refusal was the token's.
	run(t, ctx,
		chromedp.Navigate(f.env.URL+"/console/sessions?sid="+alice.SID),
		chromedp.Click(chromedp.CSS("#revoke-button")),
		chromedp.WaitVisible(chromedp.CSS("#revoked")),
	)
}

// TestNonAdminCannotSignIn: a user's correct password gets no console
// session, and the authd session the grant made is revoked at once.
func TestNonAdminCannotSignIn(t *testing.T) {
	f := setup(t, false)
	aliceID := f.env.CreateUser(t, "alice", "user", userPW)
	ctx := tab(t, 1280, 900)
	dir := shots(t)
	f.signIn(t, ctx, "alice", userPW)
	if got := text(t, ctx, "#error"); got != "Only admins can sign in to the console." {
		t.Errorf("page says %q", got)
	}
	screenshot(t, ctx, dir, "non-admin")
	run(t, ctx, chromedp.Navigate(f.env.URL+"/console/users"), chromedp.WaitVisible(chromedp.CSS("#login")))
	p, err := f.env.Accounts.Sessions(context.Background(), aliceID, false, "", 10)
	if err != nil || len(p.Items) != 0 {
		t.Errorf("alice's live sessions = %+v, %v: want none", p.Items, err)
	}
	// A wrong password says so, without a session.
	f.signIn(t, ctx, adminName, "not the password at all")
	if got := text(t, ctx, "#error"); got != "Invalid username or password." {
		t.Errorf("wrong password: page says %q", got)
	}
}

// TestScriptUsernameRendersAsText: a user created from the console with the
// name <script>…</script> is shown as that text on every page naming it,
// and no script element reaches the page.
func TestScriptUsernameRendersAsText(t *testing.T) {
	f := setup(t, false)
	ctx := tab(t, 1280, 900)
	dir := shots(t)
	const name = `<script>document.title="pwned"</script>`
	f.signIn(t, ctx, adminName, adminPW)
	run(t, ctx,
		chromedp.WaitVisible(chromedp.CSS("#create")),
		chromedp.SendKeys(chromedp.CSS(`#create input[name=username]`), name),
		chromedp.Click(chromedp.CSS(`#create button`)),
		chromedp.WaitVisible(chromedp.CSS("#secret")), // the generated password, shown once
	)
	if got := text(t, ctx, "#username"); got != name {
		t.Errorf("user page shows %q, want %q", got, name)
	}
	screenshot(t, ctx, dir, "user")
	run(t, ctx, chromedp.Navigate(f.env.URL+"/console/users"), chromedp.WaitVisible(chromedp.CSS("#users")))
	if got := text(t, ctx, "#users tbody"); !strings.Contains(got, name) {
		t.Errorf("users list = %q, want the name as text", got)
	}
	scripts := get(t, ctx, chromedp.Evaluate[int](`document.querySelectorAll('script').length`))
	title := get(t, ctx, chromedp.Title())
	if scripts != 0 || title == "pwned" {
		t.Errorf("%d script elements, title %q: the name was parsed as markup", scripts, title)
	}
	screenshot(t, ctx, dir, "users")
}

// TestUsableAt375px: at a phone's 375px width no page is wider than the
// screen (wide tables scroll inside their box) and the main action of each
// is on screen.
func TestUsableAt375px(t *testing.T) {
	f := setup(t, false)
	f.env.CreateUser(t, "alice-with-a-rather-long-name-for-a-narrow-screen", "user", userPW)
	alice := f.env.Login(t, "alice-with-a-rather-long-name-for-a-narrow-screen", userPW)
	ctx := tab(t, 375, 812)
	dir := shots(t)
	f.signIn(t, ctx, adminName, adminPW)
	run(t, ctx, chromedp.WaitVisible(chromedp.CSS("#users")))
	u, err := f.env.Accounts.UserByName(context.Background(), "alice-with-a-rather-long-name-for-a-narrow-screen")
	if err != nil {
		t.Fatal(err)
	}
	pages := []struct{ name, path, action string }{
		{"login", "", ""},
		{"users", "/console/users", "#find"},
		{"user", "/console/users/" + u.ID, "#revoke-all"},
		{"session", "/console/sessions?sid=" + alice.SID, "#revoke-button"},
		{"audit", "/console/audit", "main"},
		{"fleet", "/console/fleet", "main"},
	}
	for _, p := range pages {
		if p.path == "" {
			continue // the login page was seen by signIn; screenshot it in a fresh tab below
		}
		run(t, ctx, chromedp.Navigate(f.env.URL+p.path), chromedp.WaitVisible(chromedp.CSS(p.action)),
			chromedp.ScrollIntoView(chromedp.CSS(p.action)))
		w := get(t, ctx, chromedp.Evaluate[struct{ Scroll, Client, Right float64 }](fmt.Sprintf(`({Scroll: document.documentElement.scrollWidth,
			Client: document.documentElement.clientWidth,
			Right: document.querySelector(%q).getBoundingClientRect().right})`, p.action)))
		if w.Scroll > w.Client || w.Client > 375 {
			t.Errorf("%s: page is %vpx wide in a %vpx viewport", p.name, w.Scroll, w.Client)
		}
		if w.Right > w.Client {
			t.Errorf("%s: %s ends at %vpx, off the %vpx screen", p.name, p.action, w.Right, w.Client)
		}
		screenshot(t, ctx, dir, p.name)
	}
	login := tab(t, 375, 812)
	run(t, login, chromedp.Navigate(f.env.URL+"/console/login"), chromedp.WaitVisible(chromedp.CSS("#signin")))
	screenshot(t, login, dir, "login")
}
