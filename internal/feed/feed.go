// Package feed serves the revocation feed verifiers poll, from memory, and
// owns the cursor rule that keeps a polling verifier from ever missing a
// revocation, and the rule that makes a cutoff exact at its boundary.
//
// # Why the cursor is held back
//
// A revocation's revoked_at is chosen before its transaction commits, and
// commit order is not revoked_at order. Suppose a poll at time P answered
// "everything up to P" and the next poll asked for since=P: a revocation
// stamped P-1s whose transaction was still open during the first poll would
// be invisible to the first poll (not committed) and excluded from the second
// (stamped before P). It would be missed for good.
//
// So every transaction that writes revoked_at is bounded: it must commit
// within postgres.MaxRevokeTx of the time it stamped (a context deadline plus
// statement_timeout and idle_in_transaction_session_timeout on the server).
// A poll reads the clock (P) before it queries, and answers with the cursor
// P - Holdback, where Holdback exceeds MaxRevokeTx. Any revocation stamped
// before the cursor committed before P, so before the poll's snapshot was
// taken, and this poll returned it (it was at or after the previous cursor).
// Any revocation stamped at or after the cursor is returned by the next poll,
// which asks for exactly since=cursor. Nothing falls between two polls; the
// price is that each poll repeats the last Holdback of revocations, and a
// verifier's denylist treats a repeated entry as one.
//
// Holdback is three times MaxRevokeTx: one for the transaction, the rest for
// clock skew between replicas (revoked_at comes from the replica that
// revoked, P from the one that serves the poll) and for commit latency.
// Reading the feed from a streaming replica adds the replica's replay lag to
// the hold-back: postgres.ReadSource measures it and says where to read.
//
// # Served from memory
//
// Each replica's Service follows the database exactly as a verifier follows
// the feed: every Interval it reads the revoked sessions and the cutoffs
// stamped at or after its own cursor, merges them into memory, and moves its
// cursor to P - Holdback of that read. So by the argument above, memory holds
// every revocation stamped before the follower's cursor (that has not
// expired), and a poll is answered from memory up to that cursor and never
// past it: the cursor a verifier receives is the follower's. A verifier that
// polls another replica next gets that replica's cursor, and each answer is
// complete up to the cursor it carries, so switching replicas loses nothing.
// A poll reads no rows from PostgreSQL; the replica's own revocations (Kick)
// make its next poll catch up first, so a replica answers its own writes at
// once. A follower that has not read the database for StaleAfter answers
// polls with an error (503), never with a stale cursor that would keep a
// verifier believing it is current.
//
// # Cutoffs, and why "minted before" is exact
//
// A user cutoff (every bulk revocation of a user) and the issuer-wide cutoff
// (POST /sessions/revoke-all) deny every token whose iat is before their nbf,
// and no other. Three facts make that exact at the second boundary:
//
//  1. A cutoff's time T is read only after everything minting a token it
//     covers has finished or is held off: a user cutoff first locks the user
//     row (a login inserts its session under FOR SHARE of it) and every
//     unrevoked session of the user (a refresh holds its session FOR UPDATE
//     while it mints); the issuer-wide cutoff first takes an advisory lock
//     exclusively that every minting transaction holds shared. So every
//     token minted before the cutoff was minted before T.
//  2. nbf is the second after T (T truncated, plus one) and never below an
//     earlier cutoff's nbf, so a token minted before T, whose iat is its
//     mint time truncated to the second, has iat < nbf, and is denied.
//  3. Every mint reads, inside its transaction and after taking those
//     locks, the newest nbf that covers it (postgres.MintFloor) and stamps
//     iat = max(now, nbf). A token minted after the cutoff therefore has
//     iat >= nbf and is never denied by it, even within the second after T;
//     the price is that such a token's iat may be up to a second ahead of
//     the clock (and a replica's clock may be behind the one that decided
//     the cutoff by the skew the cursor already allows: authd accepts an
//     iat up to token.MaxClockSkew plus a second ahead, the verifier its
//     leeway).
//
// A refresh token is cut off by the issuer-wide cutoff when its session was
// last minted (created or refreshed) before T, by the same ordering. A user
// cutoff marks the user's sessions revoked in its own transaction; the
// issuer-wide one leaves that to a batched sweep, while authd's bearer check
// and refresh honour it at once. The v2 representation does not list a
// session revoked under a cutoff if the cutoff denies its newest token
// (sessions.last_iat < nbf, hence every older one too); a session whose
// newest token it does not deny (minted in the second after an earlier
// cutoff of the same second, so carrying the same nbf) stays listed on its
// own. A cutoff is served until its exp, the latest expiry of a token it
// denies.
package feed

import (
	"errors"
	"strconv"
	"time"

	"github.com/seedc5a8123e/authd/internal/postgres"
)

// Holdback is how far behind the server's clock the cursor is set.
const Holdback = 3 * postgres.MaxRevokeTx

// ErrBadSince is returned for a since that is not decimal Unix seconds.
var ErrBadSince = errors.New("since must be Unix seconds as decimal digits")

// ParseSince parses the since parameter: decimal digits only. Absent means
// the full snapshot (the zero time).
func ParseSince(raw string, present bool) (time.Time, error) {
	if !present {
		return time.Unix(0, 0), nil
	}
	if raw == "" || len(raw) > 12 {
		return time.Time{}, ErrBadSince
	}
	for i := 0; i < len(raw); i++ {
		if raw[i] < '0' || raw[i] > '9' {
			return time.Time{}, ErrBadSince
		}
	}
	n, err := strconv.ParseInt(raw, 10, 64)
	if err != nil {
		return time.Time{}, ErrBadSince
	}
	return time.Unix(n, 0), nil
}

// Cursor is the since a verifier passes on its next poll after one served at
// now. It is never later than now.
func Cursor(now time.Time) int64 {
	return now.Add(-Holdback).Unix() // Unix() floors, which only moves it earlier
}
