package postgres

// The statements of a refresh, found by profiling issue 14's harness: a
// refresh was 6 statements in 6 round trips (BEGIN, the two SET LOCALs, the
// lock, the history insert, the update, COMMIT); it is now 2 round trips:
// BEGIN and the limits with the lock (lazyTx), then the one rotating
// statement with the COMMIT (Tx.RotateRefresh, lazyTx.execCommit).

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
