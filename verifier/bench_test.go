package verifier_test

import (
	"context"
	"testing"
	"time"

	"github.com/golang-jwt/jwt/v5"

	"github.com/seedc5a8123e/authd/verifier"
	"github.com/seedc5a8123e/authd/verifier/verifiertest"
)

const benchEntries = 1_000_000

// benchClaims is the wire form the Verifier decodes into.
type benchClaims struct {
	jwt.RegisteredClaims
	SID  string `json:"sid"`
	Role string `json:"role"`
}

// BenchmarkVerify is Verify of a valid EdDSA token with 1,000,000 revoked
// sessions on the denylist; compare with BenchmarkBaselineJWT.
func BenchmarkVerify(b *testing.B) {
	srv, clk := newServer(b)
	key := newEdKey(b, "bench")
	key.publish(b, srv)
	v := newVerifier(b, srv, pollHourly)
	verifier.FillDenylist(v, benchEntries, clk.Now().Add(time.Hour).Unix())
	tok := sign(b, key, claimsAt(clk.Now()), nil)
	ctx := context.Background()
	if _, err := v.Verify(ctx, tok); err != nil {
		b.Fatal(err)
	}
	b.ReportAllocs()
	b.ResetTimer()
	b.RunParallel(func(pb *testing.PB) {
		for pb.Next() {
			if _, err := v.Verify(ctx, tok); err != nil {
				b.Fatal(err)
			}
		}
	})
}

// BenchmarkBaselineJWT is bare golang-jwt EdDSA parse and verify of the same
// token with the same claim checks, no denylist.
func BenchmarkBaselineJWT(b *testing.B) {
	key := newEdKey(b, "bench")
	clk := verifiertest.NewClock(testStart) // read like the Verifier reads its Clock
	tok := sign(b, key, claimsAt(clk.Now()), nil)
	pub := key.priv.Public()
	p := jwt.NewParser(jwt.WithValidMethods([]string{"EdDSA"}), jwt.WithIssuer(testIssuer),
		jwt.WithAudience(testAudience), jwt.WithExpirationRequired(), jwt.WithTimeFunc(clk.Now))
	b.ReportAllocs()
	b.ResetTimer()
	b.RunParallel(func(pb *testing.PB) {
		for pb.Next() {
			var c benchClaims
			if _, err := p.ParseWithClaims(tok, &c, func(*jwt.Token) (any, error) { return pub, nil }); err != nil {
				b.Fatal(err)
			}
		}
	})
}
