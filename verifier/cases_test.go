package verifier_test

import (
	"context"
	"errors"
	"testing"

	"github.com/seedc5a8123e/authd/internal/jwtcases"
	"github.com/seedc5a8123e/authd/verifier"
)

// TestVerifyCases runs the table internal/token's TestParseCases runs too,
// so that the verifier and authd accept and refuse the same tokens.
func TestVerifyCases(t *testing.T) {
	srv, clk := newServer(t)
	ed, ec := newEdKey(t, "ed-1"), newECKey(t, "ec-1")
	ed.publish(t, srv)
	ec.publish(t, srv)
	v := newVerifier(t, srv, pollHourly)
	for _, k := range []*testKey{ed, ec} {
		t.Run(k.alg, func(t *testing.T) {
			cases := jwtcases.Cases(jwtcases.Params{
				Key:    jwtcases.Key{ID: k.kid, Alg: k.alg, Signer: k.priv},
				Issuer: testIssuer, Audience: testAudience, Now: clk.Now(),
			})
			for _, tc := range cases {
				t.Run(tc.Name, func(t *testing.T) {
					got, err := v.Verify(context.Background(), tc.Token)
					if !tc.Valid && !tc.AuthdOnly {
						if err == nil || got != nil {
							t.Fatalf("Verify = %+v, %v; want an error", got, err)
						}
						if !errors.Is(err, verifier.ErrMalformed) && !errors.Is(err, verifier.ErrSignature) &&
							!errors.Is(err, verifier.ErrExpired) && !errors.Is(err, verifier.ErrNotYetValid) &&
							!errors.Is(err, verifier.ErrIssuer) && !errors.Is(err, verifier.ErrAudience) {
							t.Fatalf("Verify: %v matches no sentinel", err)
						}
						return
					}
					if err != nil {
						t.Fatalf("Verify: %v, want success", err)
					}
					if got.SessionID == "" || got.Subject == "" || got.Role != jwtcases.Role || got.ExpiresAt.IsZero() {
						t.Errorf("claims = %+v", got)
					}
				})
			}
		})
	}
}
