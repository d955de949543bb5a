package feed

import (
	"encoding/json"
	"reflect"
	"testing"

	"github.com/seedc5a8123e/authd/internal/postgres"
	"github.com/seedc5a8123e/authd/verifier"
)

// TestAppendJSONMatchesEncodingJSON: the bytes are those encoding/json makes
// of the same entries as verifier.Revocation, the wire type, and decode back.
func TestAppendJSONMatchesEncodingJSON(t *testing.T) {
	for name, in := range map[string][]postgres.RevokedSession{
		"empty": {},
		"one":   {{JTI: "0d9e8f7a-6b5c-4d3e-2f1a-0b9c8d7e6f5a", SID: "6f1c1a8e-3b7e-4e0e-9a55-1f0d2c3b4a59", Exp: 1764150000}},
		"two": {
			{JTI: "0d9e8f7a-6b5c-4d3e-2f1a-0b9c8d7e6f5a", SID: "6f1c1a8e-3b7e-4e0e-9a55-1f0d2c3b4a59", Exp: 1},
			{JTI: "1d9e8f7a-6b5c-4d3e-2f1a-0b9c8d7e6f5a", SID: "7f1c1a8e-3b7e-4e0e-9a55-1f0d2c3b4a59", Exp: 1764150001},
		},
	} {
		t.Run(name, func(t *testing.T) {
			wire := make([]verifier.Revocation, len(in))
			for i, e := range in {
				wire[i] = verifier.Revocation{JTI: e.JTI, SID: e.SID, Exp: e.Exp}
			}
			got := AppendJSON(nil, in)
			want, _ := json.Marshal(wire)
			if string(got) != string(want)+"\n" {
				t.Fatalf("AppendJSON = %s, encoding/json = %s", got, want)
			}
			var back []verifier.Revocation
			if err := json.Unmarshal(got, &back); err != nil || !reflect.DeepEqual(back, wire) {
				t.Fatalf("round trip = %+v, %v", back, err)
			}
		})
	}
}

func BenchmarkAppendJSON10k(b *testing.B) {
	entries := make([]postgres.RevokedSession, 10000)
	for i := range entries {
		entries[i] = postgres.RevokedSession{JTI: "0d9e8f7a-6b5c-4d3e-2f1a-0b9c8d7e6f5a", SID: "6f1c1a8e-3b7e-4e0e-9a55-1f0d2c3b4a59", Exp: 1764150000}
	}
	buf := make([]byte, 0, 1<<20)
	b.ReportAllocs()
	for b.Loop() {
		buf = AppendJSON(buf[:0], entries)
	}
}
