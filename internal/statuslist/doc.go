// Package statuslist publishes authd's session revocations as IETF Token
// Status Lists (draft-ietf-oauth-status-list): a bit per session, set when
// the session is revoked, compressed and signed into a JWT that any HTTP
// cache can serve and any library of the draft can read. It owns the bit
// array and its encoding, the allocation of indexes, the list's claims and
// the in-memory service that keeps every live list encoded and signed. Its
// SQL is in internal/postgres/statuslists.go.
//
// # Allocation: leased lists, no hot row
//
// A replica leases a whole list: one INSERT into status_lists, which records
// the list's size, then hands the list's indexes out from memory under a
// mutex (Allocator). The login path writes nothing but the session row; a
// lease costs one statement per list size logins, and no two replicas
// allocate from one list, so there is no shared counter to contend on. The
// sessions row records its list id and index once, at creation, and
// nothing is ever recomputed from them: a change of AUTHD_STATUS_LIST_SIZE
// only shapes lists leased after it, and two live sessions cannot share an
// (list, index) pair, because each pair is handed out once by the single
// lessee of its list. A replica that stops leaves the rest of its list
// unused, which the draft welcomes (unused entries read as valid and hide
// how many tokens a list covers, section 13.3).
//
// Indexes are never reused (the draft's double allocation, section 13.3,
// which it asks issuers to prevent). A lease ends when its list is full or
// LeaseMaxAge after it began, so every session of the list is created
// before that and expires within the lessee's session lifetime of its
// creation; retire_after, written with the lease, bounds them all, and a
// list past it is no longer served (section 13.1: once every token of a list
// has expired it may go). Refresh mints every new token with the session's
// own entry (postgres.RefreshRow), so all tokens of a session name one bit,
// matching authd's session-level revocation.
//
// # The bits and the no-miss argument
//
// A bit is set when its session's revoked_at is set. Every path that
// revokes a session writes revoked_at (logout, logout all, admin, reuse,
// limits, lifecycle changes, RFC 7009), and user cutoffs mark each session
// they cover revoked in the same transaction, so the bits need no write of
// their own: the Service reads them from the sessions table the way the
// revocation feed does (internal/feed). Every transaction that writes
// revoked_at commits within postgres.MaxRevokeTx of the time it stamped; a
// sync reads the clock (P) first and the next sync asks for revocations
// stamped at or after P - Holdback, with Holdback beyond MaxRevokeTx. A
// revocation committed before a sync's query is returned by that sync or by
// the one before (its stamp is at or after the previous cursor), so a served
// list is at most one PollInterval, plus a query, behind a committed
// revocation. PollInterval is a sixth of the ttl the list announces, so a
// verifier that caches for ttl sees a revocation within ttl + PollInterval.
// A list seen for the first time is loaded whole (since the zero time).
//
// Bits are never cleared: a session is never un-revoked, and its index is
// never reused. The issuer-wide cutoff of the feed's next version adds one
// source of bits: a second SELECT in postgres.RevokedStatusSince for the
// sessions of the lists whose newest token was minted before the cutoff,
// run in full once when a new cutoff appears; the builder here (Service.sync
// applying entries to Bits) does not change.
//
// # Served from memory
//
// Each sync re-encodes and re-signs only the lists whose bits changed, or
// whose signed token is past half its validity; a request is a map lookup
// and a write of bytes prepared in advance, with their strong ETags. For a
// million sessions the bit array is 125 KiB; compressed, its size is what
// `make bench` reports (BenchmarkServe, next to the feed's full snapshot of
// the same revocations).
package statuslist
