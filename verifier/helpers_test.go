package verifier_test

import (
	"context"
	"crypto"
	"crypto/ecdsa"
	"crypto/ed25519"
	"crypto/elliptic"
	"crypto/rand"
	"encoding/base64"
	"log/slog"
	"testing"
	"time"

	"github.com/golang-jwt/jwt/v5"
	"github.com/google/uuid"

	"github.com/seedc5a8123e/authd/verifier"
	"github.com/seedc5a8123e/authd/verifier/verifiertest"
)

// The tests run a Verifier against verifiertest.Server, the stand-in for
// authd that services use too; internal/e2e runs it against the real one.

const (
	testIssuer   = "http://authd.test"
	testAudience = "authd-test"
)

var testStart = time.Date(2030, 1, 1, 12, 0, 0, 0, time.UTC)

// newServer starts a stand-in for authd minting for testIssuer and
// testAudience on a Clock standing at testStart.
func newServer(t testing.TB, opts ...verifiertest.Option) (*verifiertest.Server, *verifiertest.Clock) {
	t.Helper()
	clk := verifiertest.NewClock(testStart)
	opts = append([]verifiertest.Option{
		verifiertest.WithIssuer(testIssuer), verifiertest.WithAudience(testAudience), verifiertest.WithClock(clk),
	}, opts...)
	return verifiertest.NewServer(t, opts...), clk
}

// newVerifier starts a quiet Verifier on srv, closed when the test ends.
func newVerifier(t testing.TB, srv *verifiertest.Server, mod func(*verifier.Config)) *verifier.Verifier {
	t.Helper()
	cfg := srv.Config()
	cfg.InitialTimeout = 5 * time.Second
	cfg.Logger = slog.New(slog.DiscardHandler)
	if mod != nil {
		mod(&cfg)
	}
	v, err := verifier.New(context.Background(), cfg)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = v.Close() })
	return v
}

// pollHourly keeps the Verifier from polling after New, for tests where
// only the initial snapshot matters.
func pollHourly(c *verifier.Config) { c.PollInterval, c.MaxStaleness = time.Hour, time.Hour }

// setup is newServer and newVerifier.
func setup(t testing.TB, mod func(*verifier.Config)) (*verifier.Verifier, *verifiertest.Server, *verifiertest.Clock) {
	t.Helper()
	srv, clk := newServer(t)
	return newVerifier(t, srv, mod), srv, clk
}

// mint is a valid token of a new session, and the session's id.
func mint(srv *verifiertest.Server, opts ...verifiertest.MintOption) (tok, sid string) {
	sid = uuid.NewString()
	return srv.Mint(uuid.NewString(), sid, "user", opts...), sid
}

// testKey is a key of the test's own, for tokens verifiertest.Server.Mint
// would not sign: other algorithms, forged headers, fixed signatures.
type testKey struct {
	kid  string
	alg  string
	priv crypto.Signer
}

func newEdKey(t testing.TB, kid string) *testKey {
	t.Helper()
	_, priv, err := ed25519.GenerateKey(rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	return &testKey{kid: kid, alg: "EdDSA", priv: priv}
}

func newECKey(t testing.TB, kid string) *testKey {
	t.Helper()
	priv, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	return &testKey{kid: kid, alg: "ES256", priv: priv}
}

// publish adds k to srv's JWKS.
func (k *testKey) publish(t testing.TB, srv *verifiertest.Server) {
	t.Helper()
	if err := srv.PublishKey(k.kid, k.priv.Public()); err != nil {
		t.Fatal(err)
	}
}

// x is the JWK "x" member of an Ed25519 key, the bytes an HS256 forgery
// would use as its secret.
func (k *testKey) x() string {
	return base64.RawURLEncoding.EncodeToString(k.priv.Public().(ed25519.PublicKey))
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
func sign(t testing.TB, k *testKey, claims jwt.MapClaims, hdr map[string]any) string {
	t.Helper()
	tok := jwt.NewWithClaims(jwt.GetSigningMethod(k.alg), claims)
	tok.Header["kid"] = k.kid
	tok.Header["typ"] = verifier.Type
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
