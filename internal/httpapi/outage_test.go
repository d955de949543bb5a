package httpapi_test

import (
	"context"
	"net/http"
	"net/url"
	"strings"
	"testing"
	"time"

	"github.com/seedc5a8123e/authd/internal/authdtest"
	"github.com/seedc5a8123e/authd/internal/pgtest"
	"github.com/seedc5a8123e/authd/internal/postgres"
	"github.com/seedc5a8123e/authd/internal/tcpproxy"
)

// throughProxy opens a fresh test database through a TCP proxy the test
// controls.
func throughProxy(t *testing.T) (*postgres.DB, *tcpproxy.Proxy) {
	t.Helper()
	u, err := url.Parse(pgtest.URL(t))
	if err != nil {
		t.Fatal(err)
	}
	px := tcpproxy.Start(t, u.Host)
	u.Host = px.Addr()
	db, err := postgres.Open(context.Background(), u.String())
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(db.Close)
	return db, px
}

// TestDatabaseOutageAnswers503: with the database cut or frozen, every
// endpoint that needs it answers 503 with Retry-After (temporarily_unavailable
// on the OAuth endpoints), never a 500; when it returns, authd recovers
// without a restart and every revocation acknowledged before is in the feed.
func TestDatabaseOutageAnswers503(t *testing.T) {
	db, px := throughProxy(t)
	env := authdtest.Start(t, authdtest.Options{DB: db})
	env.CreateUser(t, "out", "user", pw)
	env.CreateUser(t, "feeder", "service", "feeder service secret")
	a := env.Login(t, "out", pw)
	gone := env.Login(t, "out", pw)
	if res, _ := env.Do(t, http.MethodPost, "/logout", gone.AccessToken, "", nil); res.StatusCode != 200 {
		t.Fatal("logout before the outage failed")
	}

	requests := []struct {
		name  string
		oauth bool
		do    func() (*http.Response, []byte)
	}{
		{"login", true, func() (*http.Response, []byte) {
			return env.PostForm(t, "/token", url.Values{"grant_type": {"password"}, "username": {"out"}, "password": {pw}})
		}},
		{"refresh", true, func() (*http.Response, []byte) { return refresh(t, env, a.RefreshToken) }},
		{"revoke", true, func() (*http.Response, []byte) {
			return env.PostForm(t, "/revoke", url.Values{"token": {a.RefreshToken}})
		}},
		{"logout", false, func() (*http.Response, []byte) { return env.Do(t, http.MethodPost, "/logout", a.AccessToken, "", nil) }},
		{"sessions", false, func() (*http.Response, []byte) { return env.Do(t, http.MethodGet, "/sessions", a.AccessToken, "", nil) }},
	}
	check := func(phase string) {
		t.Helper()
		for _, r := range requests {
			start := time.Now()
			res, body := r.do()
			t.Logf("%s %s: %d in %s", phase, r.name, res.StatusCode, time.Since(start).Round(time.Millisecond))
			if res.StatusCode != http.StatusServiceUnavailable || res.Header.Get("Retry-After") == "" {
				t.Errorf("%s %s: %d %s (Retry-After %q), want 503 with Retry-After", phase, r.name, res.StatusCode, body, res.Header.Get("Retry-After"))
				continue
			}
			if r.oauth && !strings.Contains(string(body), `"temporarily_unavailable"`) {
				t.Errorf("%s %s: %s, want temporarily_unavailable", phase, r.name, body)
			}
			if !r.oauth && res.Header.Get("Content-Type") != "application/problem+json" {
				t.Errorf("%s %s: Content-Type %q, want problem+json", phase, r.name, res.Header.Get("Content-Type"))
			}
		}
	}

	px.Cut()
	check("cut")
	if err := px.Restore(); err != nil {
		t.Fatal(err)
	}
	px.Freeze()
	check("frozen")
	if err := px.Restore(); err != nil {
		t.Fatal(err)
	}

	authdtest.Eventually(t, 10*time.Second, func() bool {
		res, _ := env.PostForm(t, "/token", url.Values{"grant_type": {"password"}, "username": {"out"}, "password": {pw}})
		return res.StatusCode == http.StatusOK
	}, "a login after the database returned")
	svc := env.ServiceToken(t, "feeder", "feeder service secret")
	_, feed := env.Do(t, http.MethodGet, "/sessions/revoked", svc.AccessToken, "", nil)
	if !strings.Contains(string(feed), gone.SID) {
		t.Fatalf("the revocation acknowledged before the outage is not in the feed: %s", feed)
	}
}
