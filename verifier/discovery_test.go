package verifier_test

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

	"github.com/seedc5a8123e/authd/verifier"
	"github.com/seedc5a8123e/authd/verifier/verifiertest"
)

// discoveryServer serves the discovery document doc, counting its hits, and
// passes every other request on to backend, for documents a
// verifiertest.Server would not serve. status overrides the answer while
// non-zero.
type discoveryServer struct {
	srv    *httptest.Server
	hits   atomic.Int32
	status atomic.Int32
}

func newDiscoveryServer(t *testing.T, doc map[string]string, backend *verifiertest.Server) *discoveryServer {
	t.Helper()
	d := &discoveryServer{}
	mux := http.NewServeMux()
	mux.HandleFunc("GET "+verifier.DiscoveryPath, func(w http.ResponseWriter, r *http.Request) {
		d.hits.Add(1)
		if s := d.status.Load(); s != 0 {
			w.WriteHeader(int(s))
			return
		}
		w.Header().Set("Content-Type", "application/json")
		_ = json.NewEncoder(w).Encode(doc)
	})
	target, _ := url.Parse(backend.URL)
	mux.Handle("/", httputil.NewSingleHostReverseProxy(target))
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

// quietConfig is a Config naming only issuerURL, no Issuer.
func quietConfig(issuerURL string, clk verifier.Clock) verifier.Config {
	return verifier.Config{
		IssuerURL: issuerURL, Audience: testAudience,
		ClientID: verifiertest.ClientID, ClientSecret: verifiertest.ClientSecret,
		PollInterval: 20 * time.Millisecond, Clock: clk, InitialTimeout: 5 * time.Second,
		Logger: slog.New(slog.DiscardHandler),
	}
}

// TestDiscoveryEndpointsAndIssuer: with only IssuerURL and credentials, the
// Verifier uses the paths of the endpoints the document names, on
// IssuerURL's origin (the document names them under the issuer, a host
// nothing resolves), and expects the document's issuer.
func TestDiscoveryEndpointsAndIssuer(t *testing.T) {
	srv, clk := newServer(t)
	v, err := verifier.New(context.Background(), quietConfig(srv.URL, clk))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = v.Close() })
	if n := srv.Requests(); n.Discovery != 1 || n.JWKS == 0 || n.Token == 0 || n.Feed == 0 {
		t.Errorf("requests %+v: want one discovery, then the discovered endpoints", n)
	}

	ctx := context.Background()
	tok, sid := mint(srv)
	got, err := v.Verify(ctx, tok)
	if err != nil {
		t.Fatalf("token of the discovered issuer: %v", err)
	}
	if got.Issuer != testIssuer {
		t.Errorf("iss = %q", got.Issuer)
	}
	// The discovered issuer, not IssuerURL, is the expected one.
	other, _ := mint(srv, verifiertest.WithClaim("iss", srv.URL))
	if _, err := v.Verify(ctx, other); !errors.Is(err, verifier.ErrIssuer) {
		t.Errorf("token with iss = IssuerURL: %v, want ErrIssuer", err)
	}
	// The discovered feed is polled.
	srv.Revoke(sid)
	waitFor(t, 5*time.Second, "the discovered feed to deliver the revocation", func() bool {
		_, err := v.Verify(ctx, tok)
		return errors.Is(err, verifier.ErrRevoked)
	})
}

// TestDiscoveryIssuerMismatch: a document naming another issuer than
// Config.Issuer is refused at once (RFC 8414 section 3.3), not retried
// until InitialTimeout, and none of its endpoints is contacted.
func TestDiscoveryIssuerMismatch(t *testing.T) {
	srv, clk := newServer(t, verifiertest.WithIssuer("https://evil.example"))
	cfg := quietConfig(srv.URL, clk)
	cfg.Issuer = testIssuer
	start := time.Now()
	v, err := verifier.New(context.Background(), cfg)
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
	if n := srv.Requests(); n.JWKS+n.Token+n.Feed != 0 {
		t.Errorf("requests to the refused document's endpoints: %+v", n)
	}

	// The same document with the matching Config.Issuer is accepted.
	cfg.Issuer = "https://evil.example"
	v, err = verifier.New(context.Background(), cfg)
	if err != nil {
		t.Fatalf("matching issuer: %v", err)
	}
	_ = v.Close()
}

// TestDiscoveryAbsent: an authd without a discovery document (404) is read
// at the fixed paths under IssuerURL, and the expected issuer defaults to
// IssuerURL.
func TestDiscoveryAbsent(t *testing.T) {
	srv, clk := newServer(t, verifiertest.WithoutDiscovery())
	v, err := verifier.New(context.Background(), quietConfig(srv.URL, clk))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = v.Close() })
	tok, _ := mint(srv, verifiertest.WithClaim("iss", srv.URL))
	if _, err := v.Verify(context.Background(), tok); err != nil {
		t.Errorf("iss = IssuerURL: %v", err)
	}
	tok, _ = mint(srv)
	if _, err := v.Verify(context.Background(), tok); !errors.Is(err, verifier.ErrIssuer) {
		t.Errorf("iss = %s: %v, want ErrIssuer", testIssuer, err)
	}
}

// TestDiscoveryRetried: a failing discovery request (not a 404) is retried
// like the JWKS and the feed, and does not fall back to the fixed paths.
func TestDiscoveryRetried(t *testing.T) {
	srv, clk := newServer(t)
	d := newDiscoveryServer(t, docFor(testIssuer), srv)
	d.status.Store(http.StatusServiceUnavailable)
	go func() {
		for d.hits.Load() < 2 {
			time.Sleep(5 * time.Millisecond)
		}
		d.status.Store(0)
	}()
	v, err := verifier.New(context.Background(), quietConfig(d.srv.URL, clk))
	if err != nil {
		t.Fatal(err)
	}
	_ = v.Close()
	if d.hits.Load() < 3 {
		t.Errorf("discovery fetched %d times, want retries", d.hits.Load())
	}

	d.status.Store(http.StatusServiceUnavailable)
	cfg := quietConfig(d.srv.URL, clk)
	cfg.InitialTimeout = 300 * time.Millisecond
	if v, err := verifier.New(context.Background(), cfg); err == nil {
		_ = v.Close()
		t.Fatal("New succeeded while discovery answered 503")
	} else if !strings.Contains(err.Error(), "discovery") {
		t.Errorf("error %q does not mention discovery", err)
	}
}

// TestDiscoveryRejectsBadEndpoints: New refuses a document naming a
// malformed endpoint at once instead of falling back or retrying.
func TestDiscoveryRejectsBadEndpoints(t *testing.T) {
	srv, clk := newServer(t)
	doc := docFor(testIssuer)
	doc["token_endpoint"] = "/token"
	d := newDiscoveryServer(t, doc, srv)
	cfg := quietConfig(d.srv.URL, clk) // InitialTimeout 5s: the refusal must not wait for it
	start := time.Now()
	if v, err := verifier.New(context.Background(), cfg); err == nil {
		_ = v.Close()
		t.Fatal("New accepted a relative token_endpoint")
	} else if el := time.Since(start); el > 2*time.Second {
		t.Errorf("New took %s; a malformed endpoint should fail at once", el)
	} else if !strings.Contains(err.Error(), "token_endpoint") {
		t.Errorf("error %q does not name token_endpoint", err)
	}
}
