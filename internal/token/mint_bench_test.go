package token

import (
	"testing"
	"time"

	"github.com/golang-jwt/jwt/v5"
	"github.com/google/uuid"

	"github.com/seedc5a8123e/authd/internal/keys"
)

// BenchmarkMintVsJWT compares MintAccess with golang-jwt's own EdDSA sign
// of the same claims and header in one run (issue 14's target: within
// 1.2x). The baseline skips only what minting adds around the signature:
// the jti's UUID and the expiry's clamp.
func BenchmarkMintVsJWT(b *testing.B) {
	iss, c, ks := newSigner(b, keys.EdDSA)
	a := Access{Subject: testSub, SID: testSID, Role: "user", ClientID: "web", NotAfter: c.Now().Add(time.Hour)}
	b.Run("MintAccess", func(b *testing.B) {
		b.ReportAllocs()
		for b.Loop() {
			if _, err := iss.MintAccess(a); err != nil {
				b.Fatal(err)
			}
		}
	})
	b.Run("GolangJWTSign", func(b *testing.B) {
		k := ks.Signing()
		now := c.Now()
		claims := Claims{
			RegisteredClaims: jwt.RegisteredClaims{
				Issuer: "https://authd.test", Subject: a.Subject, Audience: jwt.ClaimStrings{"api"},
				IssuedAt: jwt.NewNumericDate(now), NotBefore: jwt.NewNumericDate(now),
				ExpiresAt: jwt.NewNumericDate(now.Add(10 * time.Minute)), ID: uuid.NewString(),
			},
			SID: a.SID, Role: a.Role, ClientID: a.ClientID,
		}
		b.ReportAllocs()
		for b.Loop() {
			t := jwt.NewWithClaims(k.Method(), claims)
			t.Header["kid"] = k.ID
			t.Header["typ"] = Type
			if _, err := t.SignedString(k.Private()); err != nil {
				b.Fatal(err)
			}
		}
	})
}
