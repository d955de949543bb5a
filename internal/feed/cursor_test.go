package feed

import (
	"errors"
	"testing"
	"time"

	"github.com/seedc5a8123e/authd/internal/postgres"
)

func TestParseSince(t *testing.T) {
	good := []struct {
		raw  string
		want int64
	}{
		{"0", 0}, {"1764150000", 1764150000}, {"007", 7},
	}
	for _, tc := range good {
		got, err := ParseSince(tc.raw, true)
		if err != nil || got.Unix() != tc.want {
			t.Errorf("ParseSince(%q) = %v, %v; want %d", tc.raw, got.Unix(), err, tc.want)
		}
	}
	if got, err := ParseSince("", false); err != nil || got.Unix() != 0 {
		t.Errorf("absent since = %v, %v; want 0", got, err)
	}
	for _, raw := range []string{"", "-1", "1.5", "0x10", "1e9", " 1", "1 ", "+1", "abc", "9999999999999999999"} {
		if _, err := ParseSince(raw, true); !errors.Is(err, ErrBadSince) {
			t.Errorf("ParseSince(%q) err = %v, want ErrBadSince", raw, err)
		}
	}
}

func TestCursorIsHeldBackAndNeverAhead(t *testing.T) {
	now := time.Unix(1_800_000_000, 999_000_000)
	c := Cursor(now)
	if c > now.Unix() {
		t.Fatalf("cursor %d is later than the clock %d", c, now.Unix())
	}
	if got, want := c, now.Unix()-int64(Holdback/time.Second); got != want {
		t.Fatalf("cursor = %d, want %d", got, want)
	}
	if Holdback <= postgres.MaxRevokeTx {
		t.Fatalf("Holdback %v is not longer than the longest revoking transaction %v", Holdback, postgres.MaxRevokeTx)
	}
}
