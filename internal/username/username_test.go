package username_test

import (
	"errors"
	"strings"
	"testing"

	"github.com/seedc5a8123e/authd/internal/username"
)

func TestMap(t *testing.T) {
	for _, c := range []struct {
		in, want string // want "" means refused
	}{
		{"alice", "alice"},
		{"Alice", "alice"},
		{"ＡＬＩＣＥ", "alice"},            // full-width letters map to their narrow forms
		{"e\u0301cole", "\u00e9cole"}, // decomposed é composes (NFC)
		{"billing-svc", "billing-svc"},
		{"jürgen.o'neil", "jürgen.o'neil"},
		{"\u202eadmin", ""}, // RIGHT-TO-LEFT OVERRIDE
		{"ad\u200bmin", ""}, // ZERO WIDTH SPACE
		{"ad\u00admin", ""}, // SOFT HYPHEN
		{"two words", ""},   // a space
		{"tab\tname", ""},   // a control
		{"nul\x00name", ""}, // NUL
		{"a:b", ""},         // Basic's separator
		{"", ""},            // empty
		{"\xff\xfe", ""},    // not UTF-8
		{strings.Repeat("a", 256), strings.Repeat("a", 256)},
		{strings.Repeat("a", 257), ""},
	} {
		got, err := username.Map(c.in)
		if c.want == "" {
			var ue *username.Error
			if err == nil || !errors.As(err, &ue) {
				t.Errorf("Map(%q) = %q, %v: want a refusal", c.in, got, err)
			}
			continue
		}
		if err != nil || got != c.want {
			t.Errorf("Map(%q) = %q, %v: want %q", c.in, got, err, c.want)
		}
		if again, err := username.Map(got); err != nil || again != got {
			t.Errorf("Map is not idempotent on %q: %q, %v", got, again, err)
		}
	}
}
