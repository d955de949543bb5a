package postgres

import (
	"fmt"
	"time"
)

// The statements of a refresh, found by profiling issue 14's harness: a
// refresh was 6 statements in 6 round trips (BEGIN, the two SET LOCALs, the
// lock, the history insert, the update, COMMIT). The common refresh is now
// one statement (rotateCurrent) in one round trip with BEGIN, the limits
// and COMMIT; the refreshes that need a decision take 2 round trips: BEGIN
// and the limits with the lock (lazyTx), then the one rotating statement
// with the COMMIT (Tx.RotateRefresh, lazyTx.execCommit).

const (
	// refreshByHash finds a token that names no session (one of a release
	// before migration 000010's) among current, previous and older hashes:
	// a BitmapOr over sessions_refresh_token_hash_key,
	// sessions_prev_refresh_token_hash_idx and the history's primary key.
	refreshByHash = `WHERE s.refresh_token_hash = $1 OR s.prev_refresh_token_hash = $1
		   OR s.id = (SELECT session_id FROM refresh_token_history WHERE hash = $1)
		LIMIT 1
		FOR UPDATE OF s`
	// refreshBySID finds the session by primary key and checks the hash
	// against it, so neither hash column needs an index for a token that
	// names its session (token.NewRefreshFor). A hash that matches none
	// returns no row, so no lock is taken for a forged token naming
	// someone's sid. The history is probed only when the hash is neither
	// the current nor the previous one: never on the common refresh.
	refreshBySID = `WHERE s.id = $2::uuid
		  AND (s.refresh_token_hash = $1 OR s.prev_refresh_token_hash = $1
		   OR EXISTS (SELECT 1 FROM refresh_token_history h WHERE h.hash = $1 AND h.session_id = s.id))
		FOR UPDATE OF s`

	// rotateHistory, before an UPDATE of the session, moves the previous
	// hash to the history in the same statement: the CTE's insert reads the
	// row as it was before the update, which the statement's single
	// snapshot guarantees. rotateSet is that UPDATE's common SET list.
	rotateHistory = `WITH h AS (
			INSERT INTO refresh_token_history (hash, session_id)
			SELECT prev_refresh_token_hash, id FROM sessions WHERE id = @sid AND prev_refresh_token_hash IS NOT NULL
			ON CONFLICT (hash) DO NOTHING)`
	rotateSet = `prev_refresh_token_hash = refresh_token_hash, refresh_token_hash = @new,
			last_refreshed_at = @at, last_jti = @jti, access_exp = @exp`
)

// rotateCurrent is the whole of a plain refresh in one statement: it locks
// the session whose current refresh token was presented, only if every
// check of a refresh that mints at once holds (session live and not
// expiring within the new token's life, user enabled and no service
// identity, the session's client bound and named alike, not idle, minted
// since the newest issuer-wide cutoff, and no cutoff that would move the
// new token's iat), moves the previous hash to the history and rotates, as
// rotateHistory and rotateSet do (its SET list is rotateSet's, with
// last_iat, in positional arguments). No row is every other case, to be
// decided by the transaction that reads first (LockSessionByRefreshHash).
//
// The lock is taken by cur's FOR UPDATE: a refresh that raced it with the
// same token finds the row rotated when the lock is granted (PostgreSQL
// rechecks cur's conditions on the newest version of the row) and returns
// no row, to be found as a reuse, or a race within the grace, by the full
// path. The history's insert and the update read the locked row (cur), not
// the statement's snapshot.
//
// The plan must find the session by its key, whatever the statistics say:
// a generic plan made while the table was small found it through
// sessions_user_live_idx instead, by expires_at alone or by a user's id,
// reading every live session or all of a user's. So the user is read after
// the session (a lateral subquery the planner cannot flatten, OFFSET 0),
// whether the session is live (not revoked, not expiring before the new
// token) is checked on cur's row, not in its WHERE, which then implies no
// partial index's predicate, and the update finds its row by the key, not
// by a join with cur.
//
// Its arguments are positional, not pgx.NamedArgs, which lexes the whole
// statement again on every call (about 6% of authd's CPU per refresh in the
// issue 14 profile): $1 sid, $2 presented hash, $3 new hash, $4 jti, $5 iat,
// $6 the new token's exp, $7 now, $8 the client named (or ”), $9 the
// idle timeout's earliest last activity (or NULL), $10 the service role.
const rotateCurrent = `WITH cur AS (
		SELECT s.id, s.prev_refresh_token_hash AS prev, s.user_id, u.role, s.client_id, s.expires_at,
			s.revoked_at IS NULL AND s.expires_at >= $6 AS live,
			COALESCE(s.status_list_id, 0) AS status_list_id, COALESCE(s.status_idx, 0) AS status_idx
		FROM sessions s
		CROSS JOIN LATERAL (SELECT role, disabled_at, tokens_nbf FROM users WHERE id = s.user_id OFFSET 0) u
		LEFT JOIN LATERAL (SELECT nbf, revoked_at ` + newestIssuerCutoff + `) c ON true
		WHERE s.id = $1 AND s.refresh_token_hash = $2
		  AND u.disabled_at IS NULL
		  AND u.role <> $10
		  AND s.client_id IS NOT NULL AND ($8 = '' OR s.client_id = $8)
		  AND ($9::timestamptz IS NULL OR COALESCE(s.last_refreshed_at, s.created_at) >= $9)
		  AND u.tokens_nbf <= $5 AND COALESCE(c.nbf, 0) <= $5
		  AND (c.revoked_at IS NULL OR COALESCE(s.last_refreshed_at, s.created_at) >= c.revoked_at)
		FOR UPDATE OF s),
	h AS (
		INSERT INTO refresh_token_history (hash, session_id)
		SELECT prev, id FROM cur WHERE prev IS NOT NULL AND live
		ON CONFLICT (hash) DO NOTHING),
	r AS (
		UPDATE sessions SET prev_refresh_token_hash = refresh_token_hash, refresh_token_hash = $3,
			last_refreshed_at = $7, last_jti = $4, access_exp = $6, last_iat = $5
		WHERE id = $1 AND (SELECT live FROM cur)
		RETURNING id)
	SELECT cur.user_id::text, cur.role, cur.client_id, cur.expires_at, cur.status_list_id, cur.status_idx
	FROM cur WHERE EXISTS (SELECT FROM r)`

// CurrentRotation is a refresh that rotates in one statement
// (Tx.RotateCurrentRefresh): the presented token, its replacement, and the
// new access token's stamp, chosen before the session is read.
type CurrentRotation struct {
	SID     string
	Hash    []byte // the presented refresh token's
	NewHash []byte
	JTI     string
	// IssuedAt and AccessExp are the new access token's iat and exp. The
	// session must outlive AccessExp, and no cutoff may be at or after
	// IssuedAt, for the statement to rotate.
	IssuedAt  int64
	AccessExp time.Time
	At        time.Time
	// ClientID is the client the refresh names; empty names none.
	ClientID string
	// IdleSince is the earliest last activity the idle timeout allows;
	// zero when there is none.
	IdleSince time.Time
	// ServiceRole is the role that may not refresh.
	ServiceRole string
}

// RotatedSession is what a refresh that rotated in one statement needs to
// sign its access token.
type RotatedSession struct {
	UserID       string
	Role         string
	ClientID     string
	ExpiresAt    time.Time
	StatusListID int64
	StatusIdx    int
}

// RotateCurrentRefresh rotates r's session in one statement (rotateCurrent)
// if r.Hash is its current refresh token and nothing about the session
// calls for a decision: the common refresh, one round trip with BEGIN, the
// limits and COMMIT (issue 14). ErrNotFound, having written nothing, means
// the refresh must be decided by a transaction of its own
// (LockSessionByRefreshHash, then RotateRefresh or a revocation); so does
// every schema before migration 000012, whose columns the statement names.
// Like RotateRefresh, it is its transaction's last statement.
func (tx *Tx) RotateCurrentRefresh(r CurrentRotation) (RotatedSession, error) {
	if !tx.cutoffs || !tx.sessionColumns {
		return RotatedSession{}, ErrNotFound
	}
	var idleSince *time.Time
	if !r.IdleSince.IsZero() {
		idleSince = &r.IdleSince
	}
	args := []any{r.SID, r.Hash, r.NewHash, r.JTI, r.IssuedAt, r.AccessExp, r.At, r.ClientID, idleSince, r.ServiceRole}
	var s RotatedSession
	err := tx.queryRowLast(rotateCurrent, args,
		&s.UserID, &s.Role, &s.ClientID, &s.ExpiresAt, &s.StatusListID, &s.StatusIdx)
	if err != nil {
		return RotatedSession{}, fmt.Errorf("rotate session %s: %w", r.SID, translate(err))
	}
	return s, nil
}
