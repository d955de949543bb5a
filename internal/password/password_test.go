package password

import (
	"errors"
	"strings"
	"testing"
)

// cheap keeps the unit tests fast; the production parameters are checked separately.
var cheap = Params{Memory: 64, Time: 1, Threads: 1, SaltLen: 16, KeyLen: 32}

func TestHashVerify(t *testing.T) {
	h := New(cheap)
	enc, err := h.Hash("correct horse battery staple")
	if err != nil {
		t.Fatal(err)
	}
	if !strings.HasPrefix(enc, "$argon2id$v=19$m=64,t=1,p=1$") {
		t.Fatalf("unexpected PHC prefix: %s", enc)
	}
	ok, rehash, err := h.Verify("correct horse battery staple", enc)
	if err != nil || !ok || rehash {
		t.Fatalf("Verify(right) = %v, %v, %v; want true, false, nil", ok, rehash, err)
	}
	ok, _, err = h.Verify("wrong", enc)
	if err != nil || ok {
		t.Fatalf("Verify(wrong) = %v, %v; want false, nil", ok, err)
	}
	enc2, _ := h.Hash("correct horse battery staple")
	if enc == enc2 {
		t.Fatal("two hashes of one password are equal: salt is not random")
	}
}

func TestOldParametersStillVerifyAndAskForRehash(t *testing.T) {
	old := New(cheap)
	enc, _ := old.Hash("pw-from-last-year")
	stronger := cheap
	stronger.Time = 2
	ok, rehash, err := New(stronger).Verify("pw-from-last-year", enc)
	if err != nil || !ok || !rehash {
		t.Fatalf("Verify with raised params = %v, %v, %v; want true, true, nil", ok, rehash, err)
	}
}

func TestDefaultIsOWASP(t *testing.T) {
	if Default.Memory != 19456 || Default.Time != 2 || Default.Threads != 1 {
		t.Fatalf("Default = %+v, want m=19456 t=2 p=1", Default)
	}
}

func TestMalformed(t *testing.T) {
	h := New(cheap)
	for name, s := range map[string]string{
		"empty":       "",
		"bcrypt":      "$2a$10$abcdefghijklmnopqrstuu",
		"argon2i":     "$argon2i$v=19$m=64,t=1,p=1$c2FsdA$aGFzaA",
		"bad version": "$argon2id$v=16$m=64,t=1,p=1$c2FsdA$aGFzaA",
		"zero memory": "$argon2id$v=19$m=0,t=1,p=1$c2FsdA$aGFzaA",
		"bad salt":    "$argon2id$v=19$m=64,t=1,p=1$!!!$aGFzaA",
		"no hash":     "$argon2id$v=19$m=64,t=1,p=1$c2FsdA$",
	} {
		t.Run(name, func(t *testing.T) {
			if _, _, err := h.Verify("x", s); !errors.Is(err, ErrMalformedHash) {
				t.Fatalf("Verify(%q) err = %v, want ErrMalformedHash", s, err)
			}
		})
	}
}

// TestNormalizedPasswords: a password is hashed and verified in its RFC 8265
// OpaqueString form, so composed and decomposed spellings match; a hash
// made from the raw text before normalization still verifies, once, and
// asks to be replaced.
func TestNormalizedPasswords(t *testing.T) {
	h := New(cheap)
	composed, decomposed := "\u00e9cole normale", "e\u0301cole normale"
	enc, err := h.Hash(decomposed)
	if err != nil {
		t.Fatal(err)
	}
	if ok, rehash, err := h.Verify(composed, enc); !ok || rehash || err != nil {
		t.Errorf("composed against a decomposed hash: ok=%t rehash=%t err=%v", ok, rehash, err)
	}
	if _, err := h.Hash("nul\x00inside"); err == nil {
		t.Error("Hash accepted a control character")
	}
	// A legacy hash of the raw, decomposed text.
	legacy := h.hashRaw(t, decomposed)
	if ok, rehash, _ := h.Verify(decomposed, legacy); !ok || !rehash {
		t.Errorf("legacy raw hash: ok=%t rehash=%t, want true, true", ok, rehash)
	}
	if ok, _, _ := h.Verify("wrong password", legacy); ok {
		t.Error("a wrong password matched")
	}
}

// hashRaw hashes pw without normalizing it, as before normalization.
func (h *Hasher) hashRaw(t *testing.T, pw string) string {
	t.Helper()
	salt := make([]byte, h.p.SaltLen)
	key := h.idKey([]byte(pw), salt, h.p.Time, h.p.Memory, h.p.Threads, h.p.KeyLen)
	return encode(h.p, salt, key)
}
