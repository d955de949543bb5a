package verifier

import (
	"context"
	"crypto"
	"crypto/ecdsa"
	"crypto/ed25519"
	"crypto/elliptic"
	"crypto/rand"
	"encoding/json"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"strconv"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/golang-jwt/jwt/v5"
	"github.com/google/uuid"
)

// This file holds a small stand-in for authd for the package's unit tests:
// the same three endpoints, locally generated keys, a feed the test fills.
// The real server is exercised in internal/e2e.

const (
	testIssuer   = "http://authd.test"
	testAudience = "authd-test"
	testClientID = "svc"
	testSecret   = "s3cret"
)

// manualClock is a Clock tests move by hand.
type manualClock struct {
	mu  sync.Mutex
	now time.Time
}

func (c *manualClock) Now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.now
}

func (c *manualClock) Advance(d time.Duration) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.now = c.now.Add(d)
}

// signingKey is a local key and its JWK.
type signingKey struct {
	kid  string
	alg  string
	priv crypto.Signer
	jwk  map[string]string
}

func newEdKey(t testing.TB, kid string) *signingKey {
	t.Helper()
	pub, priv, err := ed25519.GenerateKey(rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	return edKey(kid, pub, priv)
}

func edKey(kid string, pub ed25519.PublicKey, priv ed25519.PrivateKey) *signingKey {
	return &signingKey{kid: kid, alg: algEdDSA, priv: priv, jwk: map[string]string{
		"kty": "OKP", "crv": "Ed25519", "x": b64.EncodeToString(pub), "kid": kid, "alg": algEdDSA, "use": "sig",
	}}
}

func newECKey(t testing.TB, kid string) *signingKey {
	t.Helper()
	priv, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	return &signingKey{kid: kid, alg: algES256, priv: priv, jwk: map[string]string{
		"kty": "EC", "crv": "P-256", "x": b64.EncodeToString(priv.X.FillBytes(make([]byte, 32))),
		"y": b64.EncodeToString(priv.Y.FillBytes(make([]byte, 32))), "kid": kid, "alg": algES256, "use": "sig",
	}}
}

// fakeAuthd serves JWKS, /token (client credentials) and the feed.
type fakeAuthd struct {
	srv       *httptest.Server
	mu        sync.Mutex
	keys      []*signingKey
	revs      []Revocation
	feedDown  bool
	token     string
	jwksHits  atomic.Int32
	feedHits  atomic.Int32
	tokenHits atomic.Int32
}

func newFakeAuthd(t testing.TB, keys ...*signingKey) *fakeAuthd {
	t.Helper()
	f := &fakeAuthd{keys: keys, token: "service-token-1"}
	mux := http.NewServeMux()
	mux.HandleFunc("GET /.well-known/jwks.json", func(w http.ResponseWriter, r *http.Request) {
		f.jwksHits.Add(1)
		f.mu.Lock()
		doc := map[string]any{"keys": []map[string]string{}}
		var ks []map[string]string
		for _, k := range f.keys {
			ks = append(ks, k.jwk)
		}
		doc["keys"] = ks
		f.mu.Unlock()
		_ = json.NewEncoder(w).Encode(doc)
	})
	mux.HandleFunc("POST /token", func(w http.ResponseWriter, r *http.Request) {
		f.tokenHits.Add(1)
		id, secret, ok := r.BasicAuth()
		if !ok {
			id, secret = r.PostFormValue("client_id"), r.PostFormValue("client_secret")
		}
		if r.PostFormValue("grant_type") != "client_credentials" || id != testClientID || secret != testSecret {
			w.Header().Set("Content-Type", "application/json")
			w.WriteHeader(http.StatusUnauthorized)
			_, _ = io.WriteString(w, `{"error":"invalid_client"}`)
			return
		}
		f.mu.Lock()
		tok := f.token
		f.mu.Unlock()
		w.Header().Set("Content-Type", "application/json")
		_ = json.NewEncoder(w).Encode(map[string]any{"access_token": tok, "token_type": "Bearer", "expires_in": 600})
	})
	mux.HandleFunc("GET /sessions/revoked", func(w http.ResponseWriter, r *http.Request) {
		f.feedHits.Add(1)
		f.mu.Lock()
		defer f.mu.Unlock()
		if f.feedDown {
			http.Error(w, "down", http.StatusServiceUnavailable)
			return
		}
		if r.Header.Get("Authorization") != "Bearer "+f.token {
			w.Header().Set("WWW-Authenticate", `Bearer error="invalid_token"`)
			w.WriteHeader(http.StatusUnauthorized)
			return
		}
		w.Header().Set(CursorHeader, strconv.Itoa(len(f.revs)))
		since, _ := strconv.Atoi(r.URL.Query().Get("since"))
		_ = json.NewEncoder(w).Encode(append([]Revocation{}, f.revs[min(since, len(f.revs)):]...))
	})
	f.srv = httptest.NewServer(mux)
	t.Cleanup(f.srv.Close)
	return f
}

func (f *fakeAuthd) revoke(r Revocation) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.revs = append(f.revs, r)
}

func (f *fakeAuthd) setFeedDown(down bool) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.feedDown = down
}

func (f *fakeAuthd) addKey(k *signingKey) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.keys = append([]*signingKey{k}, f.keys...)
}

var testStart = time.Date(2030, 1, 1, 12, 0, 0, 0, time.UTC)

// setup starts a fake authd with one EdDSA key and a Verifier on it.
func setup(t testing.TB, mod func(*Config)) (*Verifier, *fakeAuthd, *signingKey, *manualClock) {
	t.Helper()
	key := newEdKey(t, "ed-1")
	f := newFakeAuthd(t, key)
	clk := &manualClock{now: testStart}
	cfg := Config{
		IssuerURL: f.srv.URL, Issuer: testIssuer, Audience: testAudience,
		ClientID: testClientID, ClientSecret: testSecret,
		PollInterval: 20 * time.Millisecond, Clock: clk, InitialTimeout: 5 * time.Second,
		Logger: slog.New(slog.DiscardHandler),
	}
	if mod != nil {
		mod(&cfg)
	}
	v, err := New(context.Background(), cfg)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = v.Close() })
	return v, f, key, clk
}

// claimsAt returns valid claims for a token minted at now.
func claimsAt(now time.Time) jwt.MapClaims {
	return jwt.MapClaims{
		"iss": testIssuer, "sub": uuid.NewString(), "aud": []string{testAudience},
		"iat": now.Unix(), "nbf": now.Unix(), "exp": now.Add(10 * time.Minute).Unix(),
		"jti": uuid.NewString(), "sid": uuid.NewString(), "role": "user",
	}
}

// sign makes a token with k; header entries in hdr override the defaults
// (nil values delete them).
func sign(t testing.TB, k *signingKey, claims jwt.MapClaims, hdr map[string]any) string {
	t.Helper()
	m := jwt.GetSigningMethod(k.alg)
	tok := jwt.NewWithClaims(m, claims)
	tok.Header["kid"] = k.kid
	tok.Header["typ"] = Type
	for h, val := range hdr {
		if val == nil {
			delete(tok.Header, h)
		} else {
			tok.Header[h] = val
		}
	}
	s, err := tok.SignedString(k.priv)
	if err != nil {
		t.Fatal(err)
	}
	return s
}

// waitFor polls cond until it holds or the deadline passes.
func waitFor(t testing.TB, d time.Duration, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(d)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out after %s waiting for %s", d, what)
		}
		time.Sleep(5 * time.Millisecond)
	}
}

func revocationOf(t testing.TB, c jwt.MapClaims) Revocation {
	t.Helper()
	return Revocation{SID: c["sid"].(string), JTI: c["jti"].(string), Exp: c["exp"].(int64)}
}

var _ = fmt.Sprintf

// forgetLastFetch lifts the JWKS rate limit, as if KeyRefetchInterval had
// passed since the last fetch.
func (c *keyCache) forgetLastFetch() {
	c.fetchMu.Lock()
	defer c.fetchMu.Unlock()
	c.lastFetch = time.Time{}
}
