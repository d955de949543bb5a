// Package e2e_test runs the public verifier against a real authd (HTTP
// handler, PostgreSQL, optionally Redis): login, logout, bulk and admin
// revocation, feed outages and key rotation.
package e2e_test

import (
	"context"
	"errors"
	"log/slog"
	"net"
	"net/http"
	"net/http/httptest"
	"net/http/httputil"
	"net/url"
	"os"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/seedc5a8123e/authd/internal/authdtest"
	"github.com/seedc5a8123e/authd/internal/keys"
	"github.com/seedc5a8123e/authd/internal/pgtest"
	"github.com/seedc5a8123e/authd/internal/push"
	"github.com/seedc5a8123e/authd/verifier"
)

func TestMain(m *testing.M) { os.Exit(pgtest.Main(m)) }

const (
	svcUser   = "svc"
	svcSecret = "service-secret-0123456789"
	userPW    = "correct horse battery staple"
	adminPW   = "admin horse battery staple"
)

// proxy sits between the verifier and authd so tests can cut the feed (a
// real connection failure) or point the verifier at another authd.
type proxy struct {
	*httptest.Server
	mu     sync.Mutex
	target *url.URL // nil: every connection is dropped
}

func newProxy(t testing.TB, target string) *proxy {
	t.Helper()
	p := &proxy{}
	p.setTarget(target)
	p.Server = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		p.mu.Lock()
		tgt := p.target
		p.mu.Unlock()
		if tgt == nil {
			conn, _, err := http.NewResponseController(w).Hijack()
			if err == nil {
				conn.Close()
			}
			return
		}
		httputil.NewSingleHostReverseProxy(tgt).ServeHTTP(w, r)
	}))
	t.Cleanup(p.Close)
	return p
}

func (p *proxy) setTarget(target string) {
	p.mu.Lock()
	defer p.mu.Unlock()
	if target == "" {
		p.target = nil
		return
	}
	u, _ := url.Parse(target)
	p.target = u
}

// clientVia is the verifier's HTTP client: like a DNS entry pointing
// authd's public name at addr, it connects to addr whatever host a URL
// names. authd's discovery document names URLs under its issuer
// (authdtest.Issuer, http://authd.test), which no resolver knows.
func clientVia(addr string) *http.Client {
	tr := http.DefaultTransport.(*http.Transport).Clone()
	tr.DialContext = func(ctx context.Context, network, _ string) (net.Conn, error) {
		var d net.Dialer
		return d.DialContext(ctx, network, addr)
	}
	return &http.Client{Transport: tr, Timeout: 30 * time.Second}
}

// hostOf is the host:port a test server listens on.
func hostOf(s *httptest.Server) string { return s.Listener.Addr().String() }

type fixture struct {
	env   *authdtest.Env
	proxy *proxy
	v     *verifier.Verifier
}

type options struct {
	push         bool
	pollInterval time.Duration
	maxStaleness time.Duration
	failOpen     bool
	keys         keys.Source
}

// setup starts authd (with the Redis publisher when o.push), a proxy in
// front of it, a service user, and a verifier reading the manual clock the
// server mints with.
func setup(t testing.TB, o options) *fixture {
	t.Helper()
	var ao authdtest.Options
	var rURL string
	if o.push {
		rURL = authdtest.RedisURL(t)
		pub, err := push.NewRedis(rURL, slog.New(slog.DiscardHandler), nil)
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { _ = pub.Close() })
		ao.Publisher = pub
	}
	ao.Keys = o.keys
	env := authdtest.Start(t, ao)
	env.CreateUser(t, svcUser, "service", svcSecret)
	px := newProxy(t, env.URL)
	if o.pollInterval == 0 {
		o.pollInterval = 100 * time.Millisecond
	}
	v, err := verifier.New(context.Background(), verifier.Config{
		IssuerURL: px.URL, Issuer: authdtest.Issuer, Audience: authdtest.Audience,
		ClientID: svcUser, ClientSecret: svcSecret, PollInterval: o.pollInterval, RedisURL: rURL,
		MaxStaleness: o.maxStaleness, FailOpen: o.failOpen, Clock: env.Clock, InitialTimeout: 10 * time.Second,
		KeyRefetchInterval: time.Millisecond, HTTPClient: clientVia(hostOf(px.Server)),
		Logger: slog.New(slog.NewTextHandler(testWriter{t}, &slog.HandlerOptions{Level: slog.LevelWarn})),
	})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		if err := v.Close(); err != nil {
			t.Error(err)
		}
	})
	return &fixture{env: env, proxy: px, v: v}
}

type testWriter struct{ t testing.TB }

func (w testWriter) Write(p []byte) (int, error) {
	w.t.Log(string(p))
	return len(p), nil
}

// login creates a user and returns a fresh access token and its session.
func (f *fixture) login(t testing.TB, name, role, pw string) authdtest.TokenResponse {
	t.Helper()
	f.env.CreateUser(t, name, role, pw)
	return f.env.Login(t, name, pw)
}

func (f *fixture) mustAccept(t testing.TB, tok string) *verifier.Claims {
	t.Helper()
	c, err := f.v.Verify(context.Background(), tok)
	if err != nil {
		t.Fatalf("Verify: %v, want success", err)
	}
	return c
}

// waitRevoked polls Verify until it answers ErrRevoked, failing after within.
// It returns how long that took. It polls every millisecond, not every
// authdtest.PollInterval, because BenchmarkLogoutToRejection reports this
// latency.
func (f *fixture) waitRevoked(t testing.TB, tok string, within time.Duration) time.Duration {
	t.Helper()
	start := time.Now()
	authdtest.EventuallyEvery(t, within, time.Millisecond, func() bool {
		_, err := f.v.Verify(context.Background(), tok)
		if err != nil && !errors.Is(err, verifier.ErrRevoked) {
			t.Fatalf("Verify: %v, want success or ErrRevoked", err)
		}
		return err != nil
	}, "the verifier to reject the revoked token")
	return time.Since(start)
}

func (f *fixture) post(t testing.TB, path, bearer string) {
	t.Helper()
	res, body := f.env.Do(t, http.MethodPost, path, bearer, "", nil)
	if res.StatusCode != http.StatusOK {
		t.Fatalf("POST %s: %d %s", path, res.StatusCode, body)
	}
}

// modes runs fn with pull only (short poll interval) and with push (a poll
// interval so long that only push can explain a prompt rejection).
var modes = []struct {
	name   string
	o      options
	within time.Duration
}{
	{"Pull", options{pollInterval: 100 * time.Millisecond}, 1 * time.Second},
	{"Push", options{push: true, pollInterval: time.Hour}, 1 * time.Second},
}

func TestLoginAccepted(t *testing.T) {
	f := setup(t, options{})
	tr := f.login(t, "alice", "user", userPW)
	c := f.mustAccept(t, tr.AccessToken)
	if c.SessionID != tr.SID || c.Role != "user" || c.Issuer != authdtest.Issuer || c.Subject == "" {
		t.Errorf("claims = %+v, sid %s", c, tr.SID)
	}
	if st := f.v.Stats(); !st.LastSync.Equal(f.env.Clock.Now()) {
		t.Errorf("Stats().LastSync = %s, want the server clock %s", st.LastSync, f.env.Clock.Now())
	}
}

func TestLogoutRejected(t *testing.T) {
	for _, m := range modes {
		t.Run(m.name, func(t *testing.T) {
			t.Parallel()
			f := setup(t, m.o)
			tr := f.login(t, "alice", "user", userPW)
			other := f.env.Login(t, "alice", userPW) // a second session stays valid
			f.mustAccept(t, tr.AccessToken)
			f.post(t, "/logout", tr.AccessToken)
			d := f.waitRevoked(t, tr.AccessToken, m.within)
			t.Logf("rejected %s after logout", d)
			f.mustAccept(t, other.AccessToken)
		})
	}
}

func TestLogoutAllRejected(t *testing.T) {
	for _, m := range modes {
		t.Run(m.name, func(t *testing.T) {
			t.Parallel()
			f := setup(t, m.o)
			a := f.login(t, "alice", "user", userPW)
			b := f.env.Login(t, "alice", userPW)
			bob := f.login(t, "bob", "user", userPW)
			f.post(t, "/logout/all", a.AccessToken)
			f.waitRevoked(t, a.AccessToken, m.within)
			f.waitRevoked(t, b.AccessToken, m.within)
			f.mustAccept(t, bob.AccessToken)
		})
	}
}

func TestAdminRevokeRejected(t *testing.T) {
	for _, m := range modes {
		t.Run(m.name, func(t *testing.T) {
			t.Parallel()
			f := setup(t, m.o)
			a := f.login(t, "alice", "user", userPW)
			admin := f.login(t, "root", "admin", adminPW)
			f.post(t, "/sessions/"+a.SID+"/revoke", admin.AccessToken)
			f.waitRevoked(t, a.AccessToken, m.within)
			f.mustAccept(t, admin.AccessToken)
		})
	}
}

// TestRevokedBeforeStart: a verifier that starts after a logout rejects the
// token from its first Verify call. It is configured with authd's address
// and its credentials only (no Issuer): the issuer and the endpoints come
// from the discovery document. (Audience stays: the test server's is not
// the default, and RFC 8414 metadata has no audience.)
func TestRevokedBeforeStart(t *testing.T) {
	f := setup(t, options{})
	tr := f.login(t, "alice", "user", userPW)
	live := f.login(t, "bob", "user", userPW)
	f.post(t, "/logout", tr.AccessToken)

	// Record where the verifier's requests go.
	var mu sync.Mutex
	var seen []string
	client := clientVia(hostOf(f.env.Server))
	base := client.Transport
	client.Transport = roundTripFunc(func(r *http.Request) (*http.Response, error) {
		mu.Lock()
		seen = append(seen, r.URL.Host+r.URL.Path)
		mu.Unlock()
		return base.RoundTrip(r)
	})
	v, err := verifier.New(context.Background(), verifier.Config{
		IssuerURL: f.env.URL, ClientID: svcUser, ClientSecret: svcSecret,
		Audience: authdtest.Audience, PollInterval: time.Hour, Clock: f.env.Clock, HTTPClient: client,
	})
	if err != nil {
		t.Fatal(err)
	}
	defer v.Close()
	if _, err := v.Verify(context.Background(), tr.AccessToken); !errors.Is(err, verifier.ErrRevoked) {
		t.Fatalf("got %v, want ErrRevoked", err)
	}
	// Accepted only because the expected issuer is the discovered one:
	// IssuerURL (127.0.0.1:port) is not the tokens' iss.
	if c, err := v.Verify(context.Background(), live.AccessToken); err != nil || c.Issuer != authdtest.Issuer {
		t.Fatalf("live token: %+v, %v", c, err)
	}
	mu.Lock()
	defer mu.Unlock()
	// The document names http://authd.test/...; only its paths are used, on
	// IssuerURL's host.
	host := strings.TrimPrefix(f.env.URL, "http://")
	want := []string{
		host + "/.well-known/oauth-authorization-server",
		host + "/.well-known/jwks.json", host + "/token", host + "/sessions/revoked",
	}
	if !slices.Equal(seen, want) {
		t.Errorf("requests %q, want %q", seen, want)
	}
}

type roundTripFunc func(*http.Request) (*http.Response, error)

func (f roundTripFunc) RoundTrip(r *http.Request) (*http.Response, error) { return f(r) }

func TestFeedOutage(t *testing.T) {
	for _, failOpen := range []bool{false, true} {
		name := "FailClosed"
		if failOpen {
			name = "FailOpen"
		}
		t.Run(name, func(t *testing.T) {
			t.Parallel()
			f := setup(t, options{maxStaleness: time.Minute, failOpen: failOpen})
			revoked := f.login(t, "alice", "user", userPW)
			live := f.login(t, "bob", "user", userPW)
			f.post(t, "/logout", revoked.AccessToken)
			f.waitRevoked(t, revoked.AccessToken, time.Second)

			f.proxy.setTarget("") // the feed is unreachable from here on
			errs := f.v.Stats().PollErrors
			deadline := time.Now().Add(5 * time.Second)
			for f.v.Stats().PollErrors < errs+2 {
				if time.Now().After(deadline) {
					t.Fatal("no failed polls during the outage")
				}
				time.Sleep(5 * time.Millisecond)
			}
			// Within MaxStaleness: the denylist is kept, live tokens pass.
			if _, err := f.v.Verify(context.Background(), revoked.AccessToken); !errors.Is(err, verifier.ErrRevoked) {
				t.Errorf("revoked token during the outage: %v", err)
			}
			f.mustAccept(t, live.AccessToken)

			f.env.Clock.Advance(time.Minute + time.Second)
			_, err := f.v.Verify(context.Background(), live.AccessToken)
			if failOpen && err != nil {
				t.Errorf("fail open past MaxStaleness: %v, want success", err)
			}
			if !failOpen && !errors.Is(err, verifier.ErrStale) {
				t.Errorf("past MaxStaleness: %v, want ErrStale", err)
			}

			f.proxy.setTarget(f.env.URL)
			deadline = time.Now().Add(5 * time.Second)
			for {
				if _, err := f.v.Verify(context.Background(), live.AccessToken); err == nil {
					break
				}
				if time.Now().After(deadline) {
					t.Fatal("verifier did not recover after the outage")
				}
				time.Sleep(5 * time.Millisecond)
			}
		})
	}
}

// TestKeyRotation: authd restarts with a new signing key (the old one still
// published as retired); tokens of both keys verify without restarting the
// verifier.
func TestKeyRotation(t *testing.T) {
	oldKey, err := keys.Generate(keys.EdDSA)
	if err != nil {
		t.Fatal(err)
	}
	oldSet, _ := keys.NewSet(oldKey)
	f := setup(t, options{keys: oldSet})
	before := f.login(t, "alice", "user", userPW)
	f.mustAccept(t, before.AccessToken)

	newKey, err := keys.Generate(keys.ES256)
	if err != nil {
		t.Fatal(err)
	}
	newSet, _ := keys.NewSet(newKey, oldKey)
	env2 := authdtest.Start(t, authdtest.Options{DB: f.env.DB, Keys: newSet, Clock: f.env.Clock})
	f.proxy.setTarget(env2.URL)

	after := env2.Login(t, "alice", userPW)
	c := f.mustAccept(t, after.AccessToken)
	if c.SessionID != after.SID {
		t.Errorf("sid = %s, want %s", c.SessionID, after.SID)
	}
	f.mustAccept(t, before.AccessToken)

	// Revocation keeps working through the new server.
	res, body := env2.Do(t, http.MethodPost, "/logout", after.AccessToken, "", nil)
	if res.StatusCode != http.StatusOK {
		t.Fatalf("logout: %d %s", res.StatusCode, body)
	}
	f.waitRevoked(t, after.AccessToken, time.Second)
}

var _ = net.ErrClosed
