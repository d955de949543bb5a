package console

import (
	"crypto/rand"
	"crypto/sha256"
	"sync"
	"time"

	"github.com/seedc5a8123e/authd/internal/clock"
)

// A console session is kept on the server, in memory, under an opaque id:
// the cookie holds the id only, so no token ever reaches the browser, where
// script (or anyone reading the cookie jar) could take it. The alternative,
// the tokens in an encrypted cookie, would need a key shared by every
// replica (one more secret to configure and rotate) and a cookie rewritten
// on each refresh rotation, where two tabs racing would trip reuse
// detection. The cost of memory: a restart, or a request routed to another
// replica, signs the admin out (the console asks for the password again),
// so a console behind several replicas needs sticky sessions. The authd
// session behind a lost entry lives on until its expiry or an admin's
// revocation, like any other session whose client went away.

// entry is one signed-in admin. mu serializes refreshes: a refresh token is
// single use, and two requests of one browser must not both spend it.
type entry struct {
	mu        sync.Mutex
	access    string
	refresh   string
	accessExp time.Time
	// csrf is the token every state-changing form of this session carries.
	csrf     string
	userID   string
	username string
	sid      string
	// lastSeen is when the browser last used the session (idle expiry).
	lastSeen time.Time
	// flash is a one-shot message shown by the next page (after a
	// redirect), such as a generated password shown once.
	flash *flash
}

type flash struct {
	Text  string
	Error bool
	// Secret is shown once, in a <code> box (a generated password).
	Secret string
}

// store maps hashed session ids to entries. The map is keyed by the id's
// SHA-256, so that a lookup's timing depends on a digest of the cookie,
// not on the cookie itself.
type store struct {
	clock clock.Clock
	idle  time.Duration
	max   int

	mu sync.Mutex
	m  map[[32]byte]*entry
}

func newStore(c clock.Clock, idle time.Duration, maxEntries int) *store {
	return &store{clock: c, idle: idle, max: maxEntries, m: map[[32]byte]*entry{}}
}

// put stores e under a fresh id and returns the id, or "" when the store
// is full.
func (s *store) put(e *entry) string {
	id := rand.Text()
	e.lastSeen = s.clock.Now()
	s.mu.Lock()
	defer s.mu.Unlock()
	if len(s.m) >= s.max {
		return ""
	}
	s.m[sha256.Sum256([]byte(id))] = e
	return id
}

// get returns the entry of id and marks it used. An entry idle for longer
// than the limit is removed and returned with live false, so the caller can
// end its authd session; no entry is nil.
func (s *store) get(id string) (e *entry, live bool) {
	if id == "" {
		return nil, false
	}
	k := sha256.Sum256([]byte(id))
	now := s.clock.Now()
	s.mu.Lock()
	defer s.mu.Unlock()
	if e = s.m[k]; e == nil {
		return nil, false
	}
	if now.Sub(e.lastSeen) > s.idle {
		delete(s.m, k)
		return e, false
	}
	e.lastSeen = now
	return e, true
}

// drop forgets id.
func (s *store) drop(id string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	delete(s.m, sha256.Sum256([]byte(id)))
}

// sweep removes every entry idle for longer than the limit and returns
// them, so their authd sessions can be ended.
func (s *store) sweep() []*entry {
	now := s.clock.Now()
	s.mu.Lock()
	defer s.mu.Unlock()
	var out []*entry
	for k, e := range s.m {
		if now.Sub(e.lastSeen) > s.idle {
			delete(s.m, k)
			out = append(out, e)
		}
	}
	return out
}
