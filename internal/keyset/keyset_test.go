package keyset

import (
	"encoding/base64"
	"testing"
	"time"
)

func TestRoundTripAndRefusals(t *testing.T) {
	at := time.Date(2026, 12, 2, 6, 0, 0, 123456000, time.UTC)
	got, key, ok := Decode(Encode(at, "k_1"))
	if !ok || !got.Equal(at) || key != "k_1" {
		t.Fatalf("round trip = %v %q %v", got, key, ok)
	}
	// Below microseconds is dropped, as PostgreSQL drops it.
	if got, _, _ := Decode(Encode(at.Add(999), "k")); !got.Equal(at) {
		t.Fatalf("nanoseconds kept: %v", got)
	}
	raw := func(s string) string { return base64.RawURLEncoding.EncodeToString([]byte(s)) }
	for name, c := range map[string]string{
		"NotBase64": "!!", "NoSeparator": raw("123"), "NotANumber": raw("x_1"), "Negative": raw("-1_1"),
		"PastYear9999": raw("253402300800000000_1"), "Padded": raw("1_1") + "==",
	} {
		if _, _, ok := Decode(c); ok {
			t.Errorf("%s: %q decoded", name, c)
		}
	}
}
