// Package keyset encodes the cursors of authd's paginated lists: the
// (time, key) of a page's last row, the keyset the next page resumes after.
// The time is kept in microseconds, PostgreSQL's precision, so the keyset
// is exact. The cursor is opaque to clients (base64url) but carries nothing
// secret; each list checks the key's form itself.
package keyset

import (
	"encoding/base64"
	"strconv"
	"strings"
	"time"
)

// maxMicros is the end of year 9999 in Unix microseconds, PostgreSQL's
// range.
const maxMicros = 253402300799999999

// Encode is the cursor of the row (at, key).
func Encode(at time.Time, key string) string {
	return base64.RawURLEncoding.EncodeToString([]byte(strconv.FormatInt(at.UnixMicro(), 10) + "_" + key))
}

// Decode reads a cursor Encode made; ok is false for anything else. The key
// is returned as written: the caller checks its form.
func Decode(c string) (at time.Time, key string, ok bool) {
	b, err := base64.RawURLEncoding.DecodeString(c)
	if err != nil {
		return time.Time{}, "", false
	}
	us, key, found := strings.Cut(string(b), "_")
	n, err := strconv.ParseInt(us, 10, 64)
	if !found || err != nil || n < 0 || n > maxMicros {
		return time.Time{}, "", false
	}
	return time.UnixMicro(n), key, true
}
