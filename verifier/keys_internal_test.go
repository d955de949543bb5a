package verifier

import (
	"testing"
	"time"
)

func TestJWKSMaxAge(t *testing.T) {
	for _, c := range []struct {
		cc   string
		want time.Duration
	}{
		{"public, max-age=300", 300 * time.Second},
		{"MAX-AGE=60", time.Minute},
		{`max-age="120"`, 2 * time.Minute},
		{"", defaultJWKSMaxAge},
		{"no-cache", defaultJWKSMaxAge},
		{"max-age=abc", defaultJWKSMaxAge},
		{"max-age=-5", defaultJWKSMaxAge},
		{"max-age=0", minJWKSMaxAge},                   // no hammering authd
		{"max-age=99999999999999", maxJWKSMaxAge},      // no key set kept for ever
		{"s-maxage=10, max-age=600", 10 * time.Minute}, // s-maxage is for shared caches
	} {
		if got := jwksMaxAge(c.cc); got != c.want {
			t.Errorf("jwksMaxAge(%q) = %s, want %s", c.cc, got, c.want)
		}
	}
}

func TestKeyCacheDue(t *testing.T) {
	clk := &fixedClock{t: time.Unix(1_000_000, 0)}
	c := &keyCache{clock: clk, fetchedAt: clk.t, maxAge: 5 * time.Minute}
	if c.due(30 * time.Second) {
		t.Fatal("due right after a fetch")
	}
	clk.t = clk.t.Add(4*time.Minute + 29*time.Second)
	if c.due(30 * time.Second) {
		t.Fatal("due with more than one poll interval left")
	}
	clk.t = clk.t.Add(time.Second)
	if !c.due(30 * time.Second) {
		t.Fatal("not due although the next poll would be past max-age")
	}
	c.retryAt = clk.t.Add(time.Second) // a refetch just failed
	if c.due(30 * time.Second) {
		t.Fatal("due again before the failed refetch's retry time")
	}
	clk.t = c.retryAt
	if !c.due(30 * time.Second) {
		t.Fatal("not due at the retry time")
	}
	if (&keyCache{clock: clk, maxAge: time.Minute}).due(time.Hour) {
		t.Fatal("a cache never fetched is due (the initial load fetches it)")
	}
}

type fixedClock struct{ t time.Time }

func (c *fixedClock) Now() time.Time { return c.t }
