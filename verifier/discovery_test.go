package verifier

import (
	"context"
	"encoding/json"
	"errors"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"net/http/httputil"
	"net/url"
	"strings"
	"sync/atomic"
	"testing"
	"time"
)

// discoveryServer serves only the discovery document doc (404 for every
// other path, so a Verifier that falls back to the fixed paths under its URL
// fails) and counts its hits. status overrides the answer while non-zero.
type discoveryServer struct {
	srv    *httptest.Server
	hits   atomic.Int32
	status atomic.Int32
}

func newDiscoveryServer(t *testing.T, doc map[string]string, backend *fakeAuthd) *discoveryServer {
	t.Helper()
	d := &discoveryServer{}
	mux := http.NewServeMux()
	mux.HandleFunc("GET "+DiscoveryPath, func(w http.ResponseWriter, r *http.Request) {
		d.hits.Add(1)
		if s := d.status.Load(); s != 0 {
			w.WriteHeader(int(s))
			return
		}
		w.Header().Set("Content-Type", "application/json")
		_ = json.NewEncoder(w).Encode(doc)
	})
	if backend != nil {
		target, _ := url.Parse(backend.srv.URL)
		mux.Handle("/", httputil.NewSingleHostReverseProxy(target))
	}
	d.srv = httptest.NewServer(mux)
	t.Cleanup(d.srv.Close)
	return d
}

// publicOrigin is where the documents below say the endpoints are: a host
// nothing resolves, as authd's public issuer often is from inside a network.
const publicOrigin = "http://public.authd.invalid"

// docFor is authd's document for issuer, its endpoints named on publicOrigin.
func docFor(issuer string) map[string]string {
	return map[string]string{
		"issuer":                    issuer,
		"token_endpoint":            publicOrigin + "/token",
		"jwks_uri":                  publicOrigin + "/.well-known/jwks.json",
		"revoked_sessions_endpoint": publicOrigin + "/sessions/revoked",
	}
}

func quietConfig(issuerURL string, clk Clock) Config {
	return Config{
		IssuerURL: issuerURL, Audience: testAudience, ClientID: testClientID, ClientSecret: testSecret,
		PollInterval: 20 * time.Millisecond, Clock: clk, InitialTimeout: 5 * time.Second,
		Logger: slog.New(slog.DiscardHandler),
	}
}

// TestDiscoveryEndpointsAndIssuer: with only IssuerURL and credentials, the
// Verifier uses the paths of the endpoints the document names, on
// IssuerURL's origin (the document names an unreachable public host), and
// expects the document's issuer.
func TestDiscoveryEndpointsAndIssuer(t *testing.T) {
	key := newEdKey(t, "ed-1")
	f := newFakeAuthd(t, key)
	d := newDiscoveryServer(t, docFor(testIssuer), f)
	clk := &manualClock{now: testStart}
	v, err := New(context.Background(), quietConfig(d.srv.URL, clk))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = v.Close() })
	if d.hits.Load() != 1 {
		t.Errorf("discovery fetched %d times, want 1", d.hits.Load())
	}
	if f.jwksHits.Load() == 0 || f.tokenHits.Load() == 0 || f.feedHits.Load() == 0 {
		t.Errorf("discovered endpoints not used: jwks %d, token %d, feed %d hits",
			f.jwksHits.Load(), f.tokenHits.Load(), f.feedHits.Load())
	}

	ctx := context.Background()
	c := claimsAt(clk.Now())
	tok := sign(t, key, c, nil)
	got, err := v.Verify(ctx, tok)
	if err != nil {
		t.Fatalf("token of the discovered issuer: %v", err)
	}
	if got.Issuer != testIssuer {
		t.Errorf("iss = %q", got.Issuer)
	}
	// The discovered issuer, not IssuerURL, is the expected one.
	other := claimsAt(clk.Now())
	other["iss"] = d.srv.URL
	if _, err := v.Verify(ctx, sign(t, key, other, nil)); !errors.Is(err, ErrIssuer) {
		t.Errorf("token with iss = IssuerURL: %v, want ErrIssuer", err)
	}
	// The discovered feed is polled.
	f.revoke(revocationOf(t, c))
	waitFor(t, 5*time.Second, "the discovered feed to deliver the revocation", func() bool {
		_, err := v.Verify(ctx, tok)
		return errors.Is(err, ErrRevoked)
	})
}

// TestDiscoveryIssuerMismatch: a document naming another issuer than
// Config.Issuer is refused at once (RFC 8414 section 3.3), not retried
// until InitialTimeout, and none of its endpoints is contacted.
func TestDiscoveryIssuerMismatch(t *testing.T) {
	f := newFakeAuthd(t, newEdKey(t, "ed-1"))
	d := newDiscoveryServer(t, docFor("https://evil.example"), f)
	cfg := quietConfig(d.srv.URL, &manualClock{now: testStart})
	cfg.Issuer = testIssuer
	start := time.Now()
	v, err := New(context.Background(), cfg)
	if err == nil {
		_ = v.Close()
		t.Fatal("New accepted a discovery document of another issuer")
	}
	if !strings.Contains(err.Error(), "https://evil.example") {
		t.Errorf("error %q does not name the document's issuer", err)
	}
	if el := time.Since(start); el > time.Second {
		t.Errorf("New took %s; an issuer mismatch should fail at once", el)
	}
	if n := f.jwksHits.Load() + f.tokenHits.Load() + f.feedHits.Load(); n != 0 {
		t.Errorf("%d requests to the refused document's endpoints", n)
	}

	// The same document with the matching Config.Issuer is accepted.
	cfg.Issuer = "https://evil.example"
	v, err = New(context.Background(), cfg)
	if err != nil {
		t.Fatalf("matching issuer: %v", err)
	}
	_ = v.Close()
}

// TestDiscoveryAbsent: an authd without a discovery document (404) is read
// at the fixed paths under IssuerURL, and the expected issuer defaults to
// IssuerURL.
func TestDiscoveryAbsent(t *testing.T) {
	key := newEdKey(t, "ed-1")
	f := newFakeAuthd(t, key) // its mux answers 404 for DiscoveryPath
	clk := &manualClock{now: testStart}
	v, err := New(context.Background(), quietConfig(f.srv.URL, clk))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = v.Close() })
	c := claimsAt(clk.Now())
	c["iss"] = f.srv.URL
	if _, err := v.Verify(context.Background(), sign(t, key, c, nil)); err != nil {
		t.Errorf("iss = IssuerURL: %v", err)
	}
	if _, err := v.Verify(context.Background(), sign(t, key, claimsAt(clk.Now()), nil)); !errors.Is(err, ErrIssuer) {
		t.Errorf("iss = %s: %v, want ErrIssuer", testIssuer, err)
	}
}

// TestDiscoveryRetried: a failing discovery request (not a 404) is retried
// like the JWKS and the feed, and does not fall back to the fixed paths.
func TestDiscoveryRetried(t *testing.T) {
	f := newFakeAuthd(t, newEdKey(t, "ed-1"))
	d := newDiscoveryServer(t, docFor(testIssuer), f)
	d.status.Store(http.StatusServiceUnavailable)
	go func() {
		for d.hits.Load() < 2 {
			time.Sleep(5 * time.Millisecond)
		}
		d.status.Store(0)
	}()
	v, err := New(context.Background(), quietConfig(d.srv.URL, &manualClock{now: testStart}))
	if err != nil {
		t.Fatal(err)
	}
	_ = v.Close()
	if d.hits.Load() < 3 {
		t.Errorf("discovery fetched %d times, want retries", d.hits.Load())
	}

	d.status.Store(http.StatusServiceUnavailable)
	cfg := quietConfig(d.srv.URL, &manualClock{now: testStart})
	cfg.InitialTimeout = 300 * time.Millisecond
	if v, err := New(context.Background(), cfg); err == nil {
		_ = v.Close()
		t.Fatal("New succeeded while discovery answered 503")
	} else if !strings.Contains(err.Error(), "discovery") {
		t.Errorf("error %q does not mention discovery", err)
	}
}

func TestDiscoveryRejectsBadEndpoints(t *testing.T) {
	for _, tc := range []struct{ issuerURL, endpoint string }{
		{"http://authd.test", "/token"},
		{"http://authd.test", "ftp://authd.test/jwks"},
		{"http://authd.test", "http:///sessions/revoked"},
		{"https://authd.test", "http://authd.test/sessions/revoked"}, // no downgrade
	} {
		if err := checkEndpoint(tc.issuerURL, tc.endpoint); err == nil {
			t.Errorf("checkEndpoint(%q, %q) accepted it", tc.issuerURL, tc.endpoint)
		}
	}
	for _, ok := range []struct{ issuerURL, endpoint string }{
		{"http://authd.test", "http://authd.test/token"},
		{"http://authd.test", "https://auth.example.com/token"},
		{"https://authd.test", "https://other.example/jwks"},
	} {
		if err := checkEndpoint(ok.issuerURL, ok.endpoint); err != nil {
			t.Errorf("checkEndpoint(%q, %q): %v", ok.issuerURL, ok.endpoint, err)
		}
	}

	// New refuses such a document instead of falling back.
	f := newFakeAuthd(t, newEdKey(t, "ed-1"))
	doc := docFor(testIssuer)
	doc["token_endpoint"] = "/token"
	d := newDiscoveryServer(t, doc, f)
	cfg := quietConfig(d.srv.URL, &manualClock{now: testStart}) // InitialTimeout 5s: the refusal must not wait for it
	start := time.Now()
	if v, err := New(context.Background(), cfg); err == nil {
		_ = v.Close()
		t.Fatal("New accepted a relative token_endpoint")
	} else if el := time.Since(start); el > 2*time.Second {
		t.Errorf("New took %s; a malformed endpoint should fail at once", el)
	} else if !strings.Contains(err.Error(), "token_endpoint") {
		t.Errorf("error %q does not name token_endpoint", err)
	}
}

func TestSameOrigin(t *testing.T) {
	for _, tc := range []struct{ issuerURL, endpoint, want string }{
		{"http://authd:8080", "https://auth.example.com/token", "http://authd:8080/token"},
		{"https://authd.internal", "https://evil.example/.well-known/jwks.json", "https://authd.internal/.well-known/jwks.json"},
		{"http://authd:8080", "https://auth.example.com/sessions/revoked?x=1", "http://authd:8080/sessions/revoked?x=1"},
	} {
		if got := sameOrigin(tc.issuerURL, tc.endpoint); got != tc.want {
			t.Errorf("sameOrigin(%q, %q) = %q, want %q", tc.issuerURL, tc.endpoint, got, tc.want)
		}
	}
}
