package postgres

import (
	"context"

	"github.com/jackc/pgx/v5"
)

// The throttle's writes that record no fact (issue 14). A login wrote three
// durable commits: the claim, the session, the settlement. The claim and a
// success's settlement only move login_failures.pending, a count of checks
// in flight that is already allowed to be wrong after a crash: a crash ends
// the checks it counts, and pending older than the throttle's PendingTTL
// stops counting (migration 000004). So their commits need not wait for the
// disk: they run with synchronous_commit off for their own transaction
// only. What parallel guesses are bounded by is the claim's visibility to
// the next claim, which an asynchronous commit has as soon as it returns;
// only its survival of a database crash is given up, and a crash loses the
// in-flight checks anyway. Every recorded failure (SettleLoginFailure) and
// everything else authd writes stays durable. A success's settlement also
// forgets the account's failures; lost to a crash, they count again until
// the next success or Forget, which delays the owner, never a guesser.
//
// The success path of a login is then one durable commit, the session's.
const asyncCommit = `SET LOCAL synchronous_commit = off`

// claimBegin opens a claim's transaction with asyncCommit in the BEGIN's
// round trip.
const claimBegin = `BEGIN; ` + asyncCommit

// InLoginClaimTx runs fn, the throttle's claim (LockLoginKeys, ClaimLogin),
// in a transaction whose commit does not wait for the disk; see above. It
// is InTx otherwise.
func (db *DB) InLoginClaimTx(ctx context.Context, fn func(tx *Tx) error) error {
	return db.inTx(ctx, pgx.TxOptions{BeginQuery: claimBegin}, fn)
}
