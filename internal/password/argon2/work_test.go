package argon2

import (
	"bytes"
	"math/rand/v2"
	"testing"

	xargon2 "golang.org/x/crypto/argon2"
)

// TestWorkMatchesXCrypto: a key computed in a reused work area, whatever
// the area held before (an earlier hash of other inputs, or garbage), is
// the key golang.org/x/crypto/argon2 computes in fresh memory.
func TestWorkMatchesXCrypto(t *testing.T) {
	r := rand.New(rand.NewPCG(1, 2))
	var w Work
	cases := []struct {
		time, memory uint32
		threads      uint8
		keyLen       uint32
	}{
		{1, 64, 1, 32}, {2, 64, 1, 32}, {3, 256, 1, 16}, {2, 1024, 2, 32}, {1, 333, 3, 64}, {4, 64, 4, 32},
		{2, 19456, 1, 32}, // authd's parameters (password.Default)
	}
	for round := range 3 {
		for _, c := range cases {
			pw, salt := make([]byte, r.IntN(40)), make([]byte, 16)
			for i := range pw {
				pw[i] = byte(r.Uint32())
			}
			for i := range salt {
				salt[i] = byte(r.Uint32())
			}
			if round == 2 { // garbage where the last hash left its state
				for i := range w.blocks {
					for j := range w.blocks[i] {
						w.blocks[i][j] = r.Uint64()
					}
				}
			}
			want := xargon2.IDKey(pw, salt, c.time, c.memory, c.threads, c.keyLen)
			// Twice in the same area: the second call reuses it as the first left it.
			for i := range 2 {
				if got := w.IDKey(pw, salt, c.time, c.memory, c.threads, c.keyLen); !bytes.Equal(got, want) {
					t.Fatalf("round %d %+v call %d: %x, x/crypto %x", round, c, i, got, want)
				}
			}
			if got := IDKey(pw, salt, c.time, c.memory, c.threads, c.keyLen); !bytes.Equal(got, want) {
				t.Fatalf("round %d %+v without a work area: %x, x/crypto %x", round, c, got, want)
			}
		}
	}
}

// TestRFC9106Vector is RFC 9106's Argon2id test vector (section 5.3), which
// has a secret and associated data (deriveKey's arguments for them).
func TestRFC9106Vector(t *testing.T) {
	rep := func(b byte, n int) []byte { return bytes.Repeat([]byte{b}, n) }
	want := []byte{
		0x0d, 0x64, 0x0d, 0xf5, 0x8d, 0x78, 0x76, 0x6c, 0x08, 0xc0, 0x37, 0xa3, 0x4a, 0x8b, 0x53, 0xc9,
		0xd0, 0x1e, 0xf0, 0x45, 0x2d, 0x75, 0xb6, 0x5e, 0xb5, 0x25, 0x20, 0xe9, 0x6b, 0x01, 0xe6, 0x59,
	}
	var w Work
	for i := range 2 {
		got := deriveKey(argon2id, rep(1, 32), rep(2, 16), rep(3, 8), rep(4, 12), 3, 32, 4, 32, &w)
		if !bytes.Equal(got, want) {
			t.Fatalf("call %d: %x, want %x", i, got, want)
		}
	}
}
