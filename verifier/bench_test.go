package verifier

import (
	"context"
	"crypto/rand"
	"runtime"
	"testing"
	"time"

	"github.com/golang-jwt/jwt/v5"
)

const benchEntries = 1_000_000

// fillDenylist adds n revocations with random sids.
func fillDenylist(d *denylist, n int, exp int64) {
	d.mu.Lock()
	defer d.mu.Unlock()
	var k id
	for range n {
		_, _ = rand.Read(k[:])
		d.m[k] = exp
	}
}

// BenchmarkVerify is Verify of a valid EdDSA token with 1,000,000 revoked
// sessions on the denylist; compare with BenchmarkBaselineJWT.
func BenchmarkVerify(b *testing.B) {
	v, _, key, clk := setup(b, func(c *Config) { c.PollInterval = time.Hour })
	fillDenylist(v.deny, benchEntries, clk.Now().Add(time.Hour).Unix())
	tok := sign(b, key, claimsAt(clk.Now()), nil)
	ctx := context.Background()
	if _, err := v.Verify(ctx, tok); err != nil {
		b.Fatal(err)
	}
	b.ReportAllocs()
	b.ResetTimer()
	b.RunParallel(func(pb *testing.PB) {
		for pb.Next() {
			if _, err := v.Verify(ctx, tok); err != nil {
				b.Fatal(err)
			}
		}
	})
}

// BenchmarkBaselineJWT is bare golang-jwt EdDSA parse and verify of the same
// token with the same claim checks, no denylist.
func BenchmarkBaselineJWT(b *testing.B) {
	_, _, key, clk := setup(b, func(c *Config) { c.PollInterval = time.Hour })
	tok := sign(b, key, claimsAt(clk.Now()), nil)
	pub := key.priv.Public()
	p := jwt.NewParser(jwt.WithValidMethods([]string{algEdDSA}), jwt.WithIssuer(testIssuer),
		jwt.WithAudience(testAudience), jwt.WithExpirationRequired(), jwt.WithTimeFunc(clk.Now))
	b.ReportAllocs()
	b.ResetTimer()
	b.RunParallel(func(pb *testing.PB) {
		for pb.Next() {
			var c tokenClaims
			if _, err := p.ParseWithClaims(tok, &c, func(*jwt.Token) (any, error) { return pub, nil }); err != nil {
				b.Fatal(err)
			}
		}
	})
}

// BenchmarkDenylistLookup is the denylist's share of Verify: parsing the
// sid and one read-locked lookup in a 1,000,000-entry list.
func BenchmarkDenylistLookup(b *testing.B) {
	d := newDenylist()
	fillDenylist(d, benchEntries, 1<<40)
	sid := "6f1c2a9e-3b4d-4e5f-8a7b-9c0d1e2f3a4b"
	b.ReportAllocs()
	b.ResetTimer()
	b.RunParallel(func(pb *testing.PB) {
		for pb.Next() {
			s, _ := parseID(sid)
			if d.denied(s) {
				b.Fatal("denied")
			}
		}
	})
}

// BenchmarkDenylistMemory reports the heap held per denylist entry (one
// revoked session) after inserting 1,000,000 entries.
func BenchmarkDenylistMemory(b *testing.B) {
	b.ReportAllocs()
	var perEntry float64
	for b.Loop() {
		var before, after runtime.MemStats
		runtime.GC()
		runtime.ReadMemStats(&before)
		d := newDenylist()
		fillDenylist(d, benchEntries, 1<<40)
		runtime.GC()
		runtime.ReadMemStats(&after)
		perEntry = float64(after.HeapAlloc-before.HeapAlloc) / benchEntries
		runtime.KeepAlive(d)
	}
	b.ReportMetric(perEntry, "bytes/entry")
}
