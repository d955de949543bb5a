package keys

import (
	"os"
	"path/filepath"
	"testing"
)

func TestThumbprintRFC7638(t *testing.T) {
	// RFC 8037 appendix A.3: the thumbprint of the example Ed25519 key.
	j := JWK{Kty: "OKP", Crv: "Ed25519", X: "11qYAYKxCrfVS_7TyWQHOg7hcvPapiMlrwIaaPcHURo"}
	if got, want := thumbprint(j), "kPrK_qmxVWaYVA9wwBF6Iuo3vVzz7TxHCTwXBygrS4k"; got != want {
		t.Fatalf("thumbprint = %s, want %s", got, want)
	}
}

func TestGenerateWriteLoad(t *testing.T) {
	for _, alg := range []string{EdDSA, ES256} {
		t.Run(alg, func(t *testing.T) {
			k, err := Generate(alg)
			if err != nil {
				t.Fatal(err)
			}
			path := filepath.Join(t.TempDir(), "k.pem")
			if err := k.WriteFile(path); err != nil {
				t.Fatal(err)
			}
			st, _ := os.Stat(path)
			if st.Mode().Perm() != 0o600 {
				t.Fatalf("mode = %v, want 0600", st.Mode().Perm())
			}
			if err := k.WriteFile(path); err == nil {
				t.Fatal("WriteFile overwrote an existing key")
			}
			set, err := LoadFiles([]string{path})
			if err != nil {
				t.Fatal(err)
			}
			if got := set.Signing(); got.ID != k.ID || got.Alg != alg {
				t.Fatalf("loaded %s/%s, want %s/%s", got.ID, got.Alg, k.ID, alg)
			}
			doc := set.Document()
			if len(doc.Keys) != 1 || doc.Keys[0].Kid != k.ID || doc.Keys[0].Alg != alg {
				t.Fatalf("JWKS = %+v", doc)
			}
		})
	}
}

func TestSetRejectsDuplicatesAndFindsRetired(t *testing.T) {
	a, _ := Generate(EdDSA)
	b, _ := Generate(ES256)
	if _, err := NewSet(a, a); err == nil {
		t.Fatal("NewSet accepted a duplicate key")
	}
	s, err := NewSet(a, b)
	if err != nil {
		t.Fatal(err)
	}
	if s.Signing() != a {
		t.Fatal("first key must sign")
	}
	if _, ok := s.Lookup(b.ID); !ok {
		t.Fatal("retired key not found")
	}
	if _, ok := s.Lookup("nope"); ok {
		t.Fatal("unknown kid found")
	}
}

func TestParsePEMRejectsGarbage(t *testing.T) {
	if _, err := ParsePEM([]byte("not a pem")); err == nil {
		t.Fatal("accepted garbage")
	}
}
