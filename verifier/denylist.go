package verifier

import (
	"sync"
)

// id is a UUID in binary form: the denylist's key. Sixteen bytes instead of a
// 36-byte string keeps an entry near 40 bytes including map overhead.
type id [16]byte

// parseID parses the canonical 8-4-4-4-12 hexadecimal UUID form (either
// case) without allocating.
func parseID(s string) (id, bool) {
	var u id
	if len(s) != 36 || s[8] != '-' || s[13] != '-' || s[18] != '-' || s[23] != '-' {
		return u, false
	}
	j := 0
	for i := 0; i < 36; {
		if i == 8 || i == 13 || i == 18 || i == 23 {
			i++
			continue
		}
		hi, ok1 := unhex(s[i])
		lo, ok2 := unhex(s[i+1])
		if !ok1 || !ok2 {
			return u, false
		}
		u[j] = hi<<4 | lo
		j++
		i += 2
	}
	return u, true
}

func unhex(c byte) (byte, bool) {
	switch {
	case '0' <= c && c <= '9':
		return c - '0', true
	case 'a' <= c && c <= 'f':
		return c - 'a' + 10, true
	case 'A' <= c && c <= 'F':
		return c - 'A' + 10, true
	}
	return 0, false
}

// denylist maps revoked session ids to the Unix second after which no token
// of the session can be valid any more (the feed's exp). Lookups take the
// read lock and allocate nothing.
//
// It is keyed by sid alone. Every authd access token carries its sid and
// authd only ever revokes whole sessions, so the sid entry already denies the
// token a Revocation's jti names and every older token of the session; a
// second key per jti would double the memory (about 56 bytes per key with
// Go's map, measured by BenchmarkDenylistMemory) and deny nothing more.
//
// Beside the sessions it holds the feed's cutoffs (format 2): per user the
// latest nbf with the latest exp of every cutoff of that user (the merged
// entry denies exactly what the cutoffs together do, since a later nbf
// denies every token an earlier one does), and the issuer-wide cutoff
// merged the same way. A token is denied by a cutoff when its iat is before
// the nbf; one minted at or after it never is.
type denylist struct {
	mu     sync.RWMutex
	m      map[id]int64
	users  map[id]cut
	issuer cut
}

// cut is a merged cutoff; the zero cut denies nothing.
type cut struct{ nbf, exp int64 }

func (c cut) merge(nbf, exp int64) cut { return cut{max(c.nbf, nbf), max(c.exp, exp)} }

func newDenylist() *denylist { return &denylist{m: make(map[id]int64), users: make(map[id]cut)} }

// addUser records a user cutoff; it reports false if sub is not a UUID.
func (d *denylist) addUser(c UserCutoff) bool {
	sub, ok := parseID(c.Sub)
	if !ok {
		return false
	}
	d.mu.Lock()
	d.users[sub] = d.users[sub].merge(c.NBF, c.Exp)
	d.mu.Unlock()
	return true
}

// addIssuer records the issuer-wide cutoff.
func (d *denylist) addIssuer(c IssuerCutoff) {
	d.mu.Lock()
	d.issuer = d.issuer.merge(c.NBF, c.Exp)
	d.mu.Unlock()
}

// deniedToken reports whether a token of session sid and user sub (hasSub
// false when sub is not a UUID, which no cutoff names) issued at iat is
// denied: by its session's entry, its user's cutoff or the issuer's. One
// read lock, no allocation.
func (d *denylist) deniedToken(sid, sub id, hasSub bool, iat int64) (bool, string) {
	d.mu.RLock()
	defer d.mu.RUnlock()
	if _, ok := d.m[sid]; ok {
		return true, "session"
	}
	if iat < d.issuer.nbf {
		return true, "issuer cutoff"
	}
	if hasSub && len(d.users) > 0 {
		if c, ok := d.users[sub]; ok && iat < c.nbf {
			return true, "user cutoff"
		}
	}
	return false, ""
}

// add records r; it reports false if r's sid is not a UUID. An entry seen
// twice (poll and push, or two overlapping polls) stays one entry with the
// later exp.
func (d *denylist) add(r Revocation) bool {
	sid, ok := parseID(r.SID)
	if !ok {
		return false
	}
	d.mu.Lock()
	if r.Exp > d.m[sid] {
		d.m[sid] = r.Exp
	}
	d.mu.Unlock()
	return true
}

// denied reports whether sid is on the list.
func (d *denylist) denied(sid id) bool {
	d.mu.RLock()
	_, ok := d.m[sid]
	d.mu.RUnlock()
	return ok
}

// len is the number of revoked sessions held.
func (d *denylist) len() int {
	d.mu.RLock()
	defer d.mu.RUnlock()
	return len(d.m)
}

// cutoffs is the number of user cutoffs held, and whether an issuer-wide
// one is.
func (d *denylist) cutoffs() (int, bool) {
	d.mu.RLock()
	defer d.mu.RUnlock()
	return len(d.users), d.issuer.nbf > 0
}

// sweep drops every entry whose exp is before cutoff (Unix seconds) and
// returns how many it dropped. The scan runs under the read lock and the
// deletes under the write lock in small batches, so Verify is never held up
// for a whole pass over a large list.
func (d *denylist) sweep(cutoff int64) int {
	var dead []id
	d.mu.RLock()
	for k, exp := range d.m {
		if exp < cutoff {
			dead = append(dead, k)
		}
	}
	d.mu.RUnlock()
	d.mu.Lock()
	// Cutoffs are few (one per user revoked in bulk): swept in one pass.
	for k, c := range d.users {
		if c.exp < cutoff {
			delete(d.users, k)
		}
	}
	if d.issuer.exp < cutoff {
		d.issuer = cut{}
	}
	d.mu.Unlock()
	const batch = 4096
	for i := 0; i < len(dead); i += batch {
		end := min(i+batch, len(dead))
		d.mu.Lock()
		for _, k := range dead[i:end] {
			// Re-check: a push may have extended the entry since the scan.
			if exp, ok := d.m[k]; ok && exp < cutoff {
				delete(d.m, k)
			}
		}
		d.mu.Unlock()
	}
	return len(dead)
}
