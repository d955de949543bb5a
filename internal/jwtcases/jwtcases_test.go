package jwtcases

import (
	"crypto/ecdsa"
	"crypto/ed25519"
	"crypto/elliptic"
	"crypto/rand"
	"encoding/base64"
	"strings"
	"testing"
	"time"
)

func params(t *testing.T, alg string) Params {
	t.Helper()
	k := Key{ID: "test-key", Alg: alg}
	switch alg {
	case "EdDSA":
		_, priv, err := ed25519.GenerateKey(rand.Reader)
		if err != nil {
			t.Fatal(err)
		}
		k.Signer = priv
	case "ES256":
		priv, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
		if err != nil {
			t.Fatal(err)
		}
		k.Signer = priv
	}
	return Params{Key: k, Issuer: "https://authd.test", Audience: "api", Now: time.Unix(1_800_000_000, 0)}
}

func TestCasesWellFormedTable(t *testing.T) {
	for _, alg := range []string{"EdDSA", "ES256"} {
		t.Run(alg, func(t *testing.T) {
			cs := Cases(params(t, alg))
			names := map[string]bool{}
			tokens := map[string]string{}
			var valid, hostile int
			for _, c := range cs {
				if c.Name == "" || names[c.Name] {
					t.Errorf("case name %q empty or repeated", c.Name)
				}
				names[c.Name] = true
				if prev, dup := tokens[c.Token]; dup {
					t.Errorf("cases %q and %q have the same token", prev, c.Name)
				}
				tokens[c.Token] = c.Name
				if c.Valid && c.AuthdOnly {
					t.Errorf("%s: both Valid and AuthdOnly", c.Name)
				}
				if c.Valid {
					valid++
				} else {
					hostile++
				}
			}
			if valid < 5 || hostile < 50 {
				t.Errorf("%d valid and %d hostile cases", valid, hostile)
			}
		})
	}
}

// The Ed25519 tokens are the same on every run: the verifier's fuzz corpus
// is made of them.
func TestCasesDeterministicForEd25519(t *testing.T) {
	p := params(t, "EdDSA")
	a, b := Cases(p), Cases(p)
	for i := range a {
		if a[i].Token != b[i].Token {
			t.Errorf("%s: tokens differ between calls", a[i].Name)
		}
	}
}

func TestSignSignsTheRawBytes(t *testing.T) {
	p := params(t, "EdDSA")
	h, c := `{"alg":"EdDSA","crit":["x"]}`, `{"exp":"1893456000","exp":1}`
	tok := Sign(p.Key, h, c)
	parts := strings.Split(tok, ".")
	if len(parts) != 3 {
		t.Fatalf("token %q", tok)
	}
	for i, want := range []string{h, c} {
		if got, _ := base64.RawURLEncoding.DecodeString(parts[i]); string(got) != want {
			t.Errorf("segment %d = %q, want %q", i, got, want)
		}
	}
	sig, _ := base64.RawURLEncoding.DecodeString(parts[2])
	if !ed25519.Verify(p.Key.Signer.Public().(ed25519.PublicKey), []byte(parts[0]+"."+parts[1]), sig) {
		t.Error("signature does not verify")
	}
}

func TestNonCanonical(t *testing.T) {
	for _, s := range []string{"QQ", "QUI", "QUJD", "QUJDRA"} {
		nc := nonCanonical(s)
		if len(s)%4 == 0 {
			if nc != "" {
				t.Errorf("nonCanonical(%q) = %q, want \"\"", s, nc)
			}
			continue
		}
		want, _ := base64.RawURLEncoding.DecodeString(s)
		got, err := base64.RawURLEncoding.DecodeString(nc)
		if nc == s || err != nil || string(got) != string(want) {
			t.Errorf("nonCanonical(%q) = %q decodes to %q, %v", s, nc, got, err)
		}
		if _, err := base64.RawURLEncoding.Strict().DecodeString(nc); err == nil {
			t.Errorf("strict decoding accepts %q", nc)
		}
	}
}
