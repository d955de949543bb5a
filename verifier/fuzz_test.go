package verifier_test

import (
	"context"
	"crypto/ed25519"
	"encoding/base64"
	"errors"
	"flag"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/golang-jwt/jwt/v5"

	"github.com/seedc5a8123e/authd/internal/jwtcases"
	"github.com/seedc5a8123e/authd/verifier"
)

var updateCorpus = flag.Bool("update-corpus", false, "rewrite testdata/fuzz/FuzzVerify from the seeds")

// fuzzKey is fixed, so the seed corpus on disk stays valid across runs.
var fuzzKey = func() *testKey {
	seed := make([]byte, ed25519.SeedSize)
	copy(seed, "authd verifier fuzz key, fixed!!")
	return &testKey{kid: "fuzz-key", alg: "EdDSA", priv: ed25519.NewKeyFromSeed(seed)}
}()

// fuzzClaims are valid at testStart and fixed, so seeds are reproducible.
func fuzzClaims() jwt.MapClaims {
	return jwt.MapClaims{
		"iss": testIssuer, "sub": "5b0e6f0a-1c2d-4e3f-8a9b-0c1d2e3f4a5b", "aud": []string{testAudience},
		"iat": testStart.Unix(), "nbf": testStart.Unix(), "exp": testStart.Add(time.Hour).Unix(),
		"jti": "1f2e3d4c-5b6a-4978-8695-a4b3c2d1e0f9", "sid": "9a8b7c6d-5e4f-4a3b-9c2d-1e0f9a8b7c6d", "role": "user",
	}
}

func fuzzSeeds(t testing.TB) []string {
	valid := sign(t, fuzzKey, fuzzClaims(), nil)
	parts := strings.Split(valid, ".")
	enc := base64.RawURLEncoding.EncodeToString
	none, _ := jwt.NewWithClaims(jwt.SigningMethodNone, fuzzClaims()).SignedString(jwt.UnsafeAllowNoneSignatureType)
	hs := jwt.NewWithClaims(jwt.SigningMethodHS256, fuzzClaims())
	hs.Header["kid"], hs.Header["typ"] = fuzzKey.kid, verifier.Type
	hsTok, _ := hs.SignedString([]byte(fuzzKey.x()))
	hsRaw := jwt.NewWithClaims(jwt.SigningMethodHS256, fuzzClaims())
	hsRaw.Header["kid"], hsRaw.Header["typ"] = fuzzKey.kid, verifier.Type
	hsRawTok, _ := hsRaw.SignedString([]byte(fuzzKey.priv.Public().(ed25519.PublicKey)))
	seeds := []string{
		valid,
		none,
		hsTok,
		hsRawTok,
		sign(t, fuzzKey, fuzzClaims(), map[string]any{"typ": "JWT"}),
		sign(t, fuzzKey, fuzzClaims(), map[string]any{"kid": "unknown"}),
		sign(t, fuzzKey, fuzzClaims(), map[string]any{"alg": "ES256"}),
		enc([]byte(`{"alg":"EdDSA","typ":"at+jwt","kid":"fuzz-key","pad":"`+strings.Repeat("A", 20000)+`"}`)) + "." + parts[1] + "." + parts[2],
		parts[0] + "." + enc([]byte(`{"sub":"x","sid":"9a8b7c6d-5e4f-4a3b-9c2d-1e0f9a8b7c6d","role":"admin"}`)) + "." + parts[2],
		parts[0] + "." + parts[1] + ".",
		parts[0] + "." + parts[1],
		parts[0] + "..." + parts[2],
		"",
		".",
		"..",
		"eyJ.eyJ.eyJ",
		strings.Repeat("a.", 5000),
		enc([]byte(`{"alg":"none"}`)) + "." + parts[1] + ".",
		enc([]byte(`{"alg":"EdDSA","kid":{"x":1},"typ":"at+jwt"}`)) + "." + parts[1] + "." + parts[2],
	}
	// Then every hostile token of the table authd's token tests share
	// (Ed25519 signatures are deterministic, so these are fixed too).
	for _, c := range jwtcases.Cases(jwtcases.Params{
		Key:    jwtcases.Key{ID: fuzzKey.kid, Alg: fuzzKey.alg, Signer: fuzzKey.priv},
		Issuer: testIssuer, Audience: testAudience, Now: testStart,
	}) {
		if !c.Valid {
			seeds = append(seeds, c.Token)
		}
	}
	return seeds
}

// FuzzVerify feeds hostile tokens to Verify: it must never panic and never
// accept a token whose signature is not a valid Ed25519 signature by the
// test key over exactly its header and payload (the server's own key, also
// published, is never seen by the fuzzer), nor one that is not three
// segments of base64url alone.
func FuzzVerify(f *testing.F) {
	seeds := fuzzSeeds(f)
	if *updateCorpus {
		dir := filepath.Join("testdata", "fuzz", "FuzzVerify")
		if err := os.MkdirAll(dir, 0o755); err != nil {
			f.Fatal(err)
		}
		for i, s := range seeds {
			body := fmt.Sprintf("go test fuzz v1\nstring(%q)\n", s)
			if err := os.WriteFile(filepath.Join(dir, fmt.Sprintf("seed%02d", i)), []byte(body), 0o644); err != nil {
				f.Fatal(err)
			}
		}
	}
	srv, _ := newServer(f)
	fuzzKey.publish(f, srv)
	v := newVerifier(f, srv, func(c *verifier.Config) {
		pollHourly(c)
		c.KeyRefetchInterval = time.Hour
	})
	pub := fuzzKey.priv.Public().(ed25519.PublicKey)
	f.Fuzz(func(t *testing.T, tok string) {
		c, err := v.Verify(context.Background(), tok)
		if err != nil {
			if c != nil {
				t.Fatal("claims returned with an error")
			}
			for _, want := range []error{verifier.ErrMalformed, verifier.ErrSignature, verifier.ErrExpired,
				verifier.ErrNotYetValid, verifier.ErrIssuer, verifier.ErrAudience, verifier.ErrRevoked} {
				if errors.Is(err, want) {
					return
				}
			}
			t.Fatalf("error matches no sentinel: %v", err)
		}
		parts := strings.Split(tok, ".")
		if len(parts) != 3 {
			t.Fatalf("accepted a token of %d parts", len(parts))
		}
		if i := strings.IndexFunc(tok, func(r rune) bool {
			return r != '.' && r != '-' && r != '_' && !('0' <= r && r <= '9') && !('a' <= r && r <= 'z') && !('A' <= r && r <= 'Z')
		}); i >= 0 {
			t.Fatalf("accepted a token with %q at offset %d: %q", tok[i], i, tok)
		}
		sig, derr := base64.RawURLEncoding.DecodeString(parts[2])
		if derr != nil || !ed25519.Verify(pub, []byte(parts[0]+"."+parts[1]), sig) {
			t.Fatalf("accepted a token not signed by the test key: %q", tok)
		}
	})
}
