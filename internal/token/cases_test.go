package token

import (
	"errors"
	"testing"
	"time"

	"github.com/seedc5a8123e/authd/internal/clock"
	"github.com/seedc5a8123e/authd/internal/jwtcases"
	"github.com/seedc5a8123e/authd/internal/keys"
)

// TestParseCases runs the table verifier's TestVerifyCases runs too, so that
// authd and the verifier accept and refuse the same tokens.
func TestParseCases(t *testing.T) {
	for _, alg := range []string{keys.EdDSA, keys.ES256} {
		t.Run(alg, func(t *testing.T) {
			k, err := keys.Generate(alg)
			if err != nil {
				t.Fatal(err)
			}
			ks, _ := keys.NewSet(k)
			c := clock.NewManual(time.Unix(1_800_000_000, 0))
			s := NewSigner(ks, "https://authd.test", "api", 10*time.Minute, c)
			cases := jwtcases.Cases(jwtcases.Params{
				Key:    jwtcases.Key{ID: k.ID, Alg: k.Alg, Signer: k.Private()},
				Issuer: "https://authd.test", Audience: "api", Now: c.Now(),
			})
			for _, tc := range cases {
				t.Run(tc.Name, func(t *testing.T) {
					got, err := s.Parse(tc.Token)
					if !tc.Valid {
						if !errors.Is(err, ErrInvalid) || got != nil {
							t.Fatalf("Parse = %+v, %v; want ErrInvalid", got, err)
						}
						return
					}
					if err != nil {
						t.Fatalf("Parse: %v, want success", err)
					}
					if got.SID == "" || got.Subject != jwtcases.Subject || got.Role != jwtcases.Role || got.ExpiresAt == nil {
						t.Errorf("claims = %+v", got)
					}
				})
			}
		})
	}
}
