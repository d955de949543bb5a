// Package feed serves the revocation snapshot verifiers poll, and owns the
// cursor rule that keeps a polling verifier from ever missing a revocation.
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
// Reading the feed from a streaming replica needs the replica's lag added:
// postgres.ReadSource measures it and says where to read.
package feed

import (
	"context"
	"errors"
	"strconv"
	"time"

	"github.com/seedc5a8123e/authd/internal/clock"
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

// Service answers feed polls.
type Service struct {
	db    *postgres.DB
	clock clock.Clock
	src   *postgres.ReadSource
}

// NewService wires a Service. src, when not nil, may send the query to a
// hot standby; nil reads db.
func NewService(db *postgres.DB, c clock.Clock, src *postgres.ReadSource) *Service {
	return &Service{db: db, clock: c, src: src}
}

// Snapshot returns the revocations at or after since whose tokens are still
// alive, and the cursor for the next poll. The clock is read before the query,
// as the package comment requires. AppendJSON encodes the entries.
func (s *Service) Snapshot(ctx context.Context, since time.Time) ([]postgres.RevokedSession, int64, error) {
	now := s.clock.Now()
	db, lag := s.db, time.Duration(0)
	if s.src != nil {
		db, lag = s.src.Pick(ctx, now)
	}
	// A standby's snapshot holds every commit from before now - lag only.
	cursor := Cursor(now.Add(-lag))
	entries, err := db.RevokedSince(ctx, since, now)
	if err != nil && db != s.db && postgres.Unavailable(err) {
		// The standby went away after Pick: the primary answers instead.
		cursor = Cursor(now)
		entries, err = s.db.RevokedSince(ctx, since, now)
	}
	if err != nil {
		return nil, 0, err
	}
	if entries == nil {
		entries = []postgres.RevokedSession{}
	}
	return entries, cursor, nil
}
