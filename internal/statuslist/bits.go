package statuslist

import (
	"bytes"
	"compress/zlib"
	"encoding/base64"
	"fmt"
)

// Bits is a status list with one bit per entry (the draft's bits = 1): entry
// i is bit i%8 of byte i/8, counting from the least significant bit (section
// 4.1). Set means revoked (the draft's INVALID, 0x01); clear, valid.
type Bits []byte

// NewBits returns a list of size entries, all clear; size is a multiple of 8
// (the draft recommends it, and status_lists enforces it).
func NewBits(size int) Bits { return make(Bits, (size+7)/8) }

// Len is the number of entries.
func (b Bits) Len() int { return len(b) * 8 }

// Set sets entry i; it reports false, changing nothing, when i is out of
// range or already set.
func (b Bits) Set(i int) bool {
	if i < 0 || i >= b.Len() || b.Get(i) {
		return false
	}
	b[i>>3] |= 1 << (i & 7)
	return true
}

// Get reports entry i; false when out of range.
func (b Bits) Get(i int) bool {
	return i >= 0 && i < b.Len() && b[i>>3]&(1<<(i&7)) != 0
}

// Encode returns the list's lst: base64url without padding of the list
// compressed with DEFLATE in the ZLIB format, at the highest level, as the
// draft recommends (section 4.1, step 4).
func (b Bits) Encode() (string, error) {
	var buf bytes.Buffer
	zw, err := zlib.NewWriterLevel(&buf, zlib.BestCompression)
	if err != nil {
		return "", err
	}
	if _, err := zw.Write(b); err != nil {
		return "", fmt.Errorf("statuslist: compress: %w", err)
	}
	if err := zw.Close(); err != nil {
		return "", fmt.Errorf("statuslist: compress: %w", err)
	}
	return base64.RawURLEncoding.EncodeToString(buf.Bytes()), nil
}
