package token

import (
	"bytes"
	"os"
	"testing"
)

// TestCompactCopiesIdentical: compact.go has a twin in verifier, so that
// authd and the verifier refuse the same tokens.
func TestCompactCopiesIdentical(t *testing.T) {
	body := func(path string) []byte {
		b, err := os.ReadFile(path)
		if err != nil {
			t.Fatal(err)
		}
		_, rest, _ := bytes.Cut(b, []byte("\n"))
		return rest
	}
	if !bytes.Equal(body("compact.go"), body("../../verifier/compact.go")) {
		t.Fatal("internal/token/compact.go and verifier/compact.go differ below the package clause; keep them identical")
	}
}
