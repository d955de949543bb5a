package statuslist

import (
	"bytes"
	"math/rand/v2"
	"testing"

	"github.com/seedc5a8123e/authd/verifier"
)

// TestBitOrder: the draft's 1-bit example (section 4.1): statuses
// 1,0,0,1,1,1,0,1, 1,1,0,0,0,1,0,1 are the bytes 0xb9 0xa3, counted from the
// least significant bit; its lst decodes to them, and so does ours.
func TestBitOrder(t *testing.T) {
	b := NewBits(16)
	for i, s := range []int{1, 0, 0, 1, 1, 1, 0, 1, 1, 1, 0, 0, 0, 1, 0, 1} {
		if s == 1 && !b.Set(i) {
			t.Fatalf("Set(%d) reported no change", i)
		}
	}
	if want := []byte{0xb9, 0xa3}; !bytes.Equal(b, want) {
		t.Fatalf("bytes %x, want %x", []byte(b), want)
	}
	for _, lst := range []string{"eNrbuRgAAhcBXQ", mustEncode(t, b)} {
		got, err := verifier.DecodeStatusList(verifier.StatusList{Bits: 1, Lst: lst})
		if err != nil || !bytes.Equal(got, b) {
			t.Errorf("decode %s: %x, %v", lst, got, err)
		}
	}
	if b.Set(0) || b.Set(16) || b.Set(-1) || b.Get(16) || b.Get(-1) {
		t.Error("Set or Get accepted a set or out-of-range entry")
	}
}

// TestEncodeRoundTrip: random lists survive Encode and the verifier's
// decoder, bit for bit, read through StatusBit.
func TestEncodeRoundTrip(t *testing.T) {
	r := rand.New(rand.NewPCG(1, 2))
	for _, size := range []int{8, 1024, 1 << 16} {
		b := NewBits(size)
		for range size / 50 {
			b.Set(r.IntN(size))
		}
		got, err := verifier.DecodeStatusList(verifier.StatusList{Bits: 1, Lst: mustEncode(t, b)})
		if err != nil {
			t.Fatal(err)
		}
		for i := range size {
			if set, ok := verifier.StatusBit(got, int64(i)); !ok || set != b.Get(i) {
				t.Fatalf("size %d entry %d: %t %t, want %t", size, i, set, ok, b.Get(i))
			}
		}
		if _, ok := verifier.StatusBit(got, int64(size)); ok {
			t.Errorf("size %d: entry %d is in range", size, size)
		}
	}
}

func mustEncode(t testing.TB, b Bits) string {
	t.Helper()
	s, err := b.Encode()
	if err != nil {
		t.Fatal(err)
	}
	return s
}

// BenchmarkEncode1M encodes a list of 2^20 entries with 1% set at random:
// the work of one re-sign, and (lst-bytes) the size of its lst.
func BenchmarkEncode1M(b *testing.B) {
	r := rand.New(rand.NewPCG(3, 4))
	bits := NewBits(1 << 20)
	for range 10000 {
		bits.Set(r.IntN(1000000))
	}
	var lst string
	b.ReportAllocs()
	for b.Loop() {
		lst = mustEncode(b, bits)
	}
	b.ReportMetric(float64(len(lst)), "lst-bytes")
}
