package keys

import (
	"errors"
	"slices"
	"time"
)

// Timed is a key with its schedule: published in the JWKS from PublishAt,
// signing from SignAt (until a key with a later SignAt takes over), and
// withdrawn from the JWKS at RetireAt (zero: not yet scheduled).
type Timed struct {
	KID, Alg  string
	Key       *Key // nil where only the schedule was read
	PublishAt time.Time
	SignAt    time.Time
	RetireAt  time.Time
}

// Published reports whether t is in the JWKS at now.
func (t Timed) Published(now time.Time) bool {
	return !now.Before(t.PublishAt) && (t.RetireAt.IsZero() || now.Before(t.RetireAt))
}

// ErrNoSigningKey: no published key has begun to sign.
var ErrNoSigningKey = errors.New("keys: no published key signs yet")

// At is the Set the schedule ts describes at now, and the next instant at
// which it changes (zero when it never does without a new key): the
// published keys, the one with the latest SignAt not after now signing.
// Every replica reads the same rows, so each computes the same Set from
// its own clock, with no message to pass at the switch.
func At(ts []Timed, now time.Time) (*Set, time.Time, error) {
	var next time.Time
	soonest := func(t time.Time) {
		if t.After(now) && (next.IsZero() || t.Before(next)) {
			next = t
		}
	}
	for _, t := range ts {
		soonest(t.PublishAt)
		soonest(t.SignAt)
		soonest(t.RetireAt)
	}
	live := published(ts, now)
	if len(live) == 0 || live[0].SignAt.After(now) {
		return nil, next, ErrNoSigningKey
	}
	ks := make([]*Key, len(live))
	for i, t := range live {
		ks[i] = t.Key
	}
	s, err := NewSet(ks...)
	return s, next, err
}

// Signing is the kid of the key that signs at now under the schedule ts,
// false when none does: At's choice, for a schedule read without its keys.
func Signing(ts []Timed, now time.Time) (string, bool) {
	live := published(ts, now)
	if len(live) == 0 || live[0].SignAt.After(now) {
		return "", false
	}
	return live[0].KID, true
}

// published is the keys of ts published at now, the signing key first,
// then the others, newest first: the JWKS lists what a verifier is likeliest
// to need first.
func published(ts []Timed, now time.Time) []Timed {
	var live []Timed
	for _, t := range ts {
		if t.Published(now) {
			live = append(live, t)
		}
	}
	slices.SortStableFunc(live, func(a, b Timed) int {
		aSigns, bSigns := !a.SignAt.After(now), !b.SignAt.After(now)
		if aSigns != bSigns {
			if aSigns {
				return -1
			}
			return 1
		}
		return b.SignAt.Compare(a.SignAt)
	})
	return live
}
