package keys

import (
	"bytes"
	"encoding/base64"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

func mustKEK(t *testing.T) (*KEK, string) {
	t.Helper()
	v, err := NewKEK()
	if err != nil {
		t.Fatal(err)
	}
	k, err := ParseKEK(v)
	if err != nil {
		t.Fatal(err)
	}
	return k, v
}

func TestSealOpenRoundTrip(t *testing.T) {
	kek, _ := mustKEK(t)
	for _, alg := range []string{EdDSA, ES256} {
		k, err := Generate(alg)
		if err != nil {
			t.Fatal(err)
		}
		sealed, err := kek.Seal(k)
		if err != nil {
			t.Fatal(err)
		}
		der, _ := k.MarshalPEM()
		if bytes.Contains(sealed, der) {
			t.Fatal("sealed bytes contain the plain key")
		}
		got, err := kek.Open(k.ID, k.Alg, kek.ID(), sealed)
		if err != nil {
			t.Fatal(err)
		}
		if got.ID != k.ID || got.Alg != alg {
			t.Fatalf("opened %s/%s, want %s/%s", got.ID, got.Alg, k.ID, alg)
		}
		// Two seals of one key differ (a fresh nonce each).
		again, _ := kek.Seal(k)
		if bytes.Equal(again, sealed) {
			t.Fatal("two seals are identical: nonce reused")
		}
	}
}

func TestOpenRefuses(t *testing.T) {
	kek, _ := mustKEK(t)
	other, _ := mustKEK(t)
	a, _ := Generate(EdDSA)
	b, _ := Generate(EdDSA)
	sealed, _ := kek.Seal(a)

	if _, err := other.Open(a.ID, a.Alg, kek.ID(), sealed); !errors.Is(err, ErrWrongKEK) {
		t.Errorf("another KEK: err = %v, want ErrWrongKEK", err)
	}
	// A KEK id that matches while the key does not (a forged id) still fails.
	if _, err := other.Open(a.ID, a.Alg, other.ID(), sealed); err == nil {
		t.Error("opened under another KEK with a forged id")
	}
	// The ciphertext of one row moved to another row's kid.
	if _, err := kek.Open(b.ID, b.Alg, kek.ID(), sealed); err == nil {
		t.Error("a sealed key opened under another kid")
	}
	if _, err := kek.Open(a.ID, ES256, kek.ID(), sealed); err == nil {
		t.Error("a sealed key opened under another alg")
	}
	flipped := bytes.Clone(sealed)
	flipped[len(flipped)-1] ^= 1
	if _, err := kek.Open(a.ID, a.Alg, kek.ID(), flipped); err == nil {
		t.Error("a tampered sealed key opened")
	}
	if _, err := kek.Open(a.ID, a.Alg, kek.ID(), sealed[:10]); err == nil {
		t.Error("a truncated sealed key opened")
	}
}

func TestParseKEK(t *testing.T) {
	_, v := mustKEK(t)
	dir := t.TempDir()
	file := filepath.Join(dir, "kek")
	if err := os.WriteFile(file, []byte("  "+v+"\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	a, err := ParseKEK(v)
	if err != nil {
		t.Fatal(err)
	}
	b, err := ParseKEK(file)
	if err != nil {
		t.Fatal(err)
	}
	if a.ID() != b.ID() {
		t.Fatal("the value and the file holding it are different KEKs")
	}
	// URL alphabet without padding reads as the same key.
	url := strings.NewReplacer("+", "-", "/", "_", "=", "").Replace(v)
	if c, err := ParseKEK(url); err != nil || c.ID() != a.ID() {
		t.Fatalf("URL-alphabet KEK: %v", err)
	}
	// A standard-alphabet key that starts with "/" is a key, not a path.
	slash := "/" + base64.StdEncoding.EncodeToString(bytes.Repeat([]byte{0xfb}, KEKSize))[1:]
	if _, err := ParseKEK(slash); err != nil {
		t.Fatalf("a key starting with /: %v", err)
	}
	// NewKEK never makes one that could read as a path.
	for range 200 {
		v, _ := NewKEK()
		if strings.HasPrefix(v, "/") || strings.HasPrefix(v, ".") {
			t.Fatalf("NewKEK made %q", v[:1])
		}
	}
	for _, bad := range []string{"", "short", "c2hvcnQ=", strings.Repeat("A", 100), "/nonexistent/kek", "/" + strings.Repeat("B", 40)} {
		_, err := ParseKEK(bad)
		if err == nil {
			t.Errorf("ParseKEK(%q) accepted", bad)
			continue
		}
		if len(bad) > 8 && strings.Contains(err.Error(), bad) {
			t.Errorf("the error quotes the value: %v", err)
		}
	}
}
