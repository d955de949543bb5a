package verifier

import (
	"runtime"
	"strings"
	"testing"

	"github.com/google/uuid"
)

func TestDenylistExpiry(t *testing.T) {
	d := newDenylist()
	at := func(sec int64) Revocation {
		return Revocation{SID: uuid.NewString(), JTI: uuid.NewString(), Exp: sec}
	}
	early, late := at(100), at(200)
	for _, r := range []Revocation{early, late, late} { // a repeat is one entry
		if !d.add(r) {
			t.Fatal("add refused a valid entry")
		}
	}
	if got, want := d.len(), 2; got != want {
		t.Fatalf("len = %d, want %d", got, want)
	}
	if !d.add(Revocation{SID: early.SID, Exp: 50}) || d.m[mustID(t, early.SID)] != 100 {
		t.Error("an older exp replaced a newer one")
	}
	tests := []struct {
		name   string
		cutoff int64
		early  bool
		late   bool
	}{
		{"NothingExpired", 100, true, true},
		{"EarlyExpired", 101, false, true},
		{"AllExpired", 201, false, false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			d.sweep(tt.cutoff)
			if got := d.denied(mustID(t, early.SID)); got != tt.early {
				t.Errorf("early denied = %v, want %v", got, tt.early)
			}
			if got := d.denied(mustID(t, late.SID)); got != tt.late {
				t.Errorf("late denied = %v, want %v", got, tt.late)
			}
		})
	}
	if d.add(Revocation{SID: "not-a-uuid"}) {
		t.Error("add accepted a malformed sid")
	}
}

func TestParseID(t *testing.T) {
	for _, s := range []string{"", "x", strings.Repeat("0", 36), "0000000-00000-0000-0000-000000000000",
		"g0000000-0000-0000-0000-000000000000"} {
		if _, ok := parseID(s); ok {
			t.Errorf("parseID(%q) succeeded", s)
		}
	}
	u := uuid.New()
	for _, s := range []string{u.String(), strings.ToUpper(u.String())} {
		got, ok := parseID(s)
		if !ok || got != id(u) {
			t.Errorf("parseID(%q) = %x, %v", s, got, ok)
		}
	}
}

func mustID(t testing.TB, s string) id {
	t.Helper()
	u, ok := parseID(s)
	if !ok {
		t.Fatalf("bad id %q", s)
	}
	return u
}

const benchEntries = 1_000_000

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
