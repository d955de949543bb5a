package feed

import (
	"errors"
	"strconv"
	"strings"
	"testing"
)

// FuzzParseSince: an accepted since is 1 to 12 ASCII digits and reads back
// as the same number of whole seconds; anything else is ErrBadSince.
//
//	go test -run '^$' -fuzz '^FuzzParseSince$' -fuzztime 20s ./internal/feed/
func FuzzParseSince(f *testing.F) {
	for _, s := range []string{
		"0", "1764150000", "007", "000000000000", "999999999999", "", "-1", "1.5", "0x10", "1e9", " 1", "1 ", "+1",
		"abc", "9999999999999", "99999999999999999999", "\x00", "1\x00", "١", "１", "¹", "-0",
	} {
		f.Add(s, true)
	}
	f.Add("", false)
	f.Add("junk", false)
	f.Fuzz(func(t *testing.T, raw string, present bool) {
		got, err := ParseSince(raw, present)
		digitsOnly := raw != "" && len(raw) <= 12 && strings.Trim(raw, "0123456789") == ""
		switch {
		case !present:
			if err != nil || got.Unix() != 0 {
				t.Fatalf("absent since = %v, %v", got, err)
			}
		case err != nil:
			if !errors.Is(err, ErrBadSince) {
				t.Fatalf("ParseSince(%q) error %v is not ErrBadSince", raw, err)
			}
			if digitsOnly {
				t.Fatalf("refused %q", raw)
			}
		default:
			if !digitsOnly {
				t.Fatalf("accepted %q", raw)
			}
			want := strings.TrimLeft(raw, "0")
			if want == "" {
				want = "0"
			}
			if strconv.FormatInt(got.Unix(), 10) != want || got.Nanosecond() != 0 {
				t.Fatalf("ParseSince(%q) = %d", raw, got.Unix())
			}
		}
	})
}
