package keys

import (
	"errors"
	"testing"
	"time"
)

func TestAtFollowsTheSchedule(t *testing.T) {
	t0 := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
	a, _ := Generate(EdDSA)
	b, _ := Generate(ES256)
	lead, retire := 6*time.Minute, 11*time.Minute
	// a signs from t0; b is added at t1, signs lead later; a retires after.
	t1 := t0.Add(time.Hour)
	ts := []Timed{
		{KID: a.ID, Key: a, PublishAt: t0, SignAt: t0, RetireAt: t1.Add(lead + retire)},
		{KID: b.ID, Key: b, PublishAt: t1, SignAt: t1.Add(lead)},
	}
	for _, c := range []struct {
		at        time.Time
		signs     *Key
		published []*Key
		next      time.Time
	}{
		{t0.Add(-time.Second), nil, nil, t0},
		{t0, a, []*Key{a}, t1},
		{t1.Add(-time.Nanosecond), a, []*Key{a}, t1},
		{t1, a, []*Key{a, b}, t1.Add(lead)},
		{t1.Add(lead), b, []*Key{b, a}, t1.Add(lead + retire)},
		{t1.Add(lead + retire), b, []*Key{b}, time.Time{}},
	} {
		set, next, err := At(ts, c.at)
		if c.signs == nil {
			if !errors.Is(err, ErrNoSigningKey) {
				t.Errorf("at %s: err = %v, want ErrNoSigningKey", c.at, err)
			}
			continue
		}
		if err != nil {
			t.Fatalf("at %s: %v", c.at, err)
		}
		if set.Signing() != c.signs {
			t.Errorf("at %s: %s signs, want %s", c.at, set.Signing().ID, c.signs.ID)
		}
		all := set.All()
		if len(all) != len(c.published) {
			t.Errorf("at %s: %d published, want %d", c.at, len(all), len(c.published))
		}
		for i := range min(len(all), len(c.published)) {
			if all[i] != c.published[i] {
				t.Errorf("at %s: published[%d] = %s, want %s", c.at, i, all[i].ID, c.published[i].ID)
			}
		}
		if !next.Equal(c.next) {
			t.Errorf("at %s: next change %s, want %s", c.at, next, c.next)
		}
	}
}
