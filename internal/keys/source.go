package keys

import "time"

// JWKSMaxAge is how long verifiers and HTTP caches may keep the JWKS (its
// Cache-Control max-age). A key is published at least this long before it
// signs (internal/keyring), so a cache that was fresh when the key appeared
// has refetched by the time a token names it.
const JWKSMaxAge = 5 * time.Minute

// Source is where the key set comes from: a fixed Set (key files) or a
// keyring that changes while authd runs. Callers take Current once per
// operation and use that Set throughout, so one token is signed and its kid
// named from the same set.
type Source interface {
	Current() *Set
}

// Current returns s itself: a Set read from files never changes.
func (s *Set) Current() *Set { return s }
