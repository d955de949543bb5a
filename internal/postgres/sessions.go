package postgres

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"

	"github.com/seedc5a8123e/authd/internal/audit"
)

// MaxRevokeTx bounds every transaction that writes revoked_at, from the
// moment the caller picked the revocation time to its commit. The feed's
// cursor is held back by more than this (see internal/feed), which is what
// makes a poll unable to miss a revocation that commits late.
const MaxRevokeTx = 5 * time.Second

// InRevokeTx runs fn in a transaction bounded as every transaction that
// writes revoked_at must be: by MaxRevokeTx measured from now, tighter than
// any deadline ctx brought, and on the server by statement_timeout,
// lock_timeout and idle_in_transaction_session_timeout of the same length,
// so a stalled client cannot keep the transaction open either. Every
// statement of tx runs under the bounded context.
func (db *DB) InRevokeTx(ctx context.Context, fn func(tx *Tx) error) error {
	return db.inRevokeTx(ctx, false, fn)
}

func (db *DB) inRevokeTx(ctx context.Context, mint bool, fn func(tx *Tx) error) error {
	ctx, cancel := context.WithTimeout(ctx, MaxRevokeTx)
	defer cancel()
	cutoffs := db.cutoffs.Load()
	open := revokeOpen
	if mint && cutoffs {
		open = mintOpen
	}
	run := func() error {
		return runLazyTx(ctx, db.pool, open, func(tx pgx.Tx) error {
			return fn(&Tx{ctx: ctx, tx: tx, cutoffs: cutoffs, audits: db.audits.Load(), sessionColumns: db.fleet.Load(),
				mintLocked: mint && cutoffs})
		})
	}
	// As InTx: an audit table gone under a running replica (a rollback's
	// migrate down) costs the change one more try, without its audit row.
	err := run()
	if err != nil && db.noAuditTable(err) {
		err = run()
	}
	return err
}

// revokeOpen opens a revoking transaction with the server-side limits of
// MaxRevokeTx. They travel in one pipeline with the transaction's first
// statement (lazyTx), so they bind it without a round trip of their own,
// and all go in one statement: set_config(…, true) is SET LOCAL, which,
// unlike a startup parameter, passes PgBouncer in transaction mode and dies
// with the transaction.
var revokeOpen = []string{`BEGIN`, limitsSQL}

// limitsSQL sets the limits. lock_timeout comes first: it bounds a wait for
// a lock taken later in the same statement (mintOpen's), which the
// statement_timeout set here does not (PostgreSQL armed that one before the
// statement ran).
var limitsSQL = fmt.Sprintf(`SELECT set_config('lock_timeout', '%[1]d', true), set_config('statement_timeout', '%[1]d', true),
	set_config('idle_in_transaction_session_timeout', '%[1]d', true)`, MaxRevokeTx.Milliseconds())

// mintOpen is revokeOpen taking issuerCutoffLock shared as well (InMintTx),
// in the limits' statement: the server runs it before the transaction's
// first statement, so that statement's snapshot already has every
// issuer-wide cutoff committed before the lock was granted.
var mintOpen = []string{`BEGIN`, limitsSQL + `, ` + mintLockCall}

// mintLockSQL takes issuerCutoffLock shared until the transaction ends.
var (
	mintLockCall = fmt.Sprintf(`pg_advisory_xact_lock_shared(%d)`, issuerCutoffLock)
	mintLockSQL  = `SELECT ` + mintLockCall
)

// RevokedSession is a revoked session as a verifier needs to know it: the
// id of its newest access token, the session id, and that token's expiry in
// Unix seconds. The feed and the push channel turn it into the wire entry
// (verifier.Revocation).
type RevokedSession struct {
	JTI string
	SID string
	Exp int64
	// Seq is the push sequence number of the revocation's message, set by
	// the statements that revoke (0 on a schema without it, and in the
	// feed's reads).
	Seq int64 `db:"seq"`
	// Cutoff: the session was revoked under a user or issuer-wide cutoff,
	// which denies its tokens in the v2 feed.
	Cutoff bool `db:"-"`
}

// revokedColumns are the RETURNING columns of a RevokedSession revoked now.
func (tx *Tx) revokedColumns() string {
	return `last_jti::text AS jti, id::text AS sid, extract(epoch FROM access_exp)::bigint AS exp, ` + tx.seqColumn() + ` AS seq`
}

// sessions.client_id comes with migration 000007, and a binary must run on
// the schema before its own (migrations/README.md). So no statement of this
// file that the previous schema must serve names the column: reads go
// through to_jsonb(s), which has no client_id member on that schema (and a
// JSON null for a session of an older release), and a write that names it
// is retried without it when the column is missing (CreateSession) or is
// only sent when a read in the same transaction saw it (RotateRefresh).
const (
	// storedClientID is the session row's client_id, NULL where it has none
	// or the schema has no such column.
	storedClientID = `to_jsonb(s) ->> 'client_id'`
	// hasClientIDColumn: whether the schema has sessions.client_id.
	hasClientIDColumn = `to_jsonb(s) ? 'client_id'`
	// storedStatusEntry is the session's status list id and index (0, 0
	// where it has none or the schema has no such columns: migration 000009
	// comes the same way).
	storedStatusEntry = `COALESCE((to_jsonb(s) ->> 'status_list_id')::bigint, 0), COALESCE((to_jsonb(s) ->> 'status_idx')::integer, 0)`
)

// noClientIDColumn reports whether err is a statement refused because the
// schema has no sessions.client_id (before migration 000007).
func noClientIDColumn(err error) bool {
	var pgErr *pgconn.PgError
	return errors.As(err, &pgErr) && pgErr.Code == "42703" && strings.Contains(pgErr.Message, "client_id") // undefined_column
}

// NewSession is what a grant writes when it creates a session.
type NewSession struct {
	ID     string
	UserID string
	// The fields that depend on when the first token was minted:
	// CreateSessionMinting's mint function replaces them.
	CreatedAt        time.Time
	ExpiresAt        time.Time
	JTI              string
	AccessExp        time.Time
	RefreshTokenHash []byte // nil for client_credentials
	UserAgent        string
	IP               string // empty when unknown
	// ClientID is the OAuth client the session is issued to. It is not
	// recorded on a schema without sessions.client_id (before migration
	// 000007); empty records none.
	ClientID string
	// StatusListID and StatusIdx are the session's status list entry
	// (internal/statuslist); StatusListID 0 records none. Recorded only with
	// ClientID, on a schema that has both (migration 000009).
	StatusListID int64
	StatusIdx    int
	// The user as the grant verified it: the session is written only if the
	// user's password has not been set since, its role is the same, and it is
	// enabled.
	UserCredentialsVersion int64
	UserRole               string
	// MaxLive, when positive, caps the user's live sessions: older ones
	// beyond it are revoked with LimitReason in the same transaction.
	MaxLive     int
	LimitReason string
	// Grant is the grant type, recorded in the login's audit row.
	Grant string
}

// MintedSession is what the mint function of CreateSession made: the
// session's first access token and the times that follow from it.
type MintedSession struct {
	CreatedAt time.Time
	ExpiresAt time.Time
	JTI       string
	AccessExp time.Time
	// IssuedAt is the token's iat (Unix seconds), recorded as last_iat: a
	// cutoff covers the session only if it denies this token.
	IssuedAt int64
}

// ErrUserChanged means the user's password, role or state changed between a
// grant's password check and its session insert.
var ErrUserChanged = errors.New("user changed during the grant")

// CreateSession inserts a session with its first access token, but only if
// the user is still as the grant saw it. Without that condition a login that
// checked the old password could insert its session just after a password
// reset, disabling or role change had revoked the user's sessions, and
// survive it. FOR SHARE makes the insert wait for such a change in flight
// and then re-check; ErrUserChanged when it no longer holds. Sessions beyond
// MaxLive, oldest first, are revoked in the same transaction and returned.
//
// The first token is minted inside the transaction, by mint, once the
// issuer-wide cutoff lock is held shared and the user's row FOR SHARE: it
// gets the cutoffs no token may be minted before (MintFloor), and no new
// cutoff of the user or the issuer can commit until this transaction has
// (internal/feed argues the boundary).
//
// On a schema without sessions.client_id the insert is refused, the
// transaction rolled back, and the session created again without its
// client (NewSession.ClientID).
//
// CreateSession writes the token times s holds, for a token minted
// beforehand; the grants use CreateSessionMinting.
func (db *DB) CreateSession(ctx context.Context, s NewSession) ([]RevokedSession, error) {
	return db.CreateSessionMinting(ctx, s, func(MintFloor) (MintedSession, error) {
		return MintedSession{CreatedAt: s.CreatedAt, ExpiresAt: s.ExpiresAt, JTI: s.JTI, AccessExp: s.AccessExp}, nil
	})
}

// CreateSessionMinting is CreateSession with the first token minted by mint,
// inside the transaction.
func (db *DB) CreateSessionMinting(ctx context.Context, s NewSession, mint func(MintFloor) (MintedSession, error)) ([]RevokedSession, error) {
	evicted, err := db.createSession(ctx, s, s.ClientID != "", mint)
	if err != nil && s.StatusListID != 0 && noStatusSchema(err) {
		// Migrated down since the list was leased. The caller minted a token
		// naming the entry, so it must mint again without: not retried here.
		return nil, fmt.Errorf("create session %s: %w", s.ID, ErrNoStatusLists)
	}
	if err != nil && s.ClientID != "" && noClientIDColumn(err) {
		evicted, err = db.createSession(ctx, s, false, mint)
	}
	return evicted, err
}

// insertSessionSQL is the session insert, naming the columns later
// migrations added only where the schema has them and the session sets them:
// client_id (000007), the status list entry (000009, only with a client),
// last_iat (000008).
func insertSessionSQL(client, status, iat bool) string {
	cols := `id, user_id, created_at, expires_at, refresh_token_hash, last_jti, access_exp, user_agent, ip`
	vals := `@id, u.id, @created_at, @expires_at, @hash, @jti, @access_exp, NULLIF(@ua, ''), NULLIF(@ip, '')::inet`
	if client {
		cols, vals = cols+`, client_id`, vals+`, @client_id`
		if status {
			cols, vals = cols+`, status_list_id, status_idx`, vals+`, @status_list_id, @status_idx`
		}
	}
	if iat {
		cols, vals = cols+`, last_iat`, vals+`, @iat`
	}
	return `INSERT INTO sessions (` + cols + `)
			SELECT ` + vals + `
			FROM users u
			WHERE u.id = @user_id AND u.credentials_version = @cv AND u.role = @role AND u.disabled_at IS NULL
			FOR SHARE OF u`
}

func (db *DB) createSession(ctx context.Context, s NewSession, withClient bool, mint func(MintFloor) (MintedSession, error)) ([]RevokedSession, error) {
	var evicted []RevokedSession
	err := db.InMintTx(ctx, func(tx *Tx) error {
		var err error
		evicted, err = tx.insertSession(s, withClient, mint)
		return err
	})
	return evicted, err
}

// CreateSessionMinting is DB.CreateSessionMinting inside tx, a revoking
// transaction (InLoginTx, InMintTx): the issuer-wide cutoff lock is taken
// here if tx does not hold it yet. On a schema that may lack the session
// columns of 000007 and 000009 (before 000012) the insert runs under a
// savepoint, so that falling back without them keeps tx; on a later schema
// an insert they refuse fails tx, and InLoginTx runs it again.
func (tx *Tx) CreateSessionMinting(s NewSession, mint func(MintFloor) (MintedSession, error)) ([]RevokedSession, error) {
	if tx.sessionColumns {
		return tx.insertSession(s, s.ClientID != "", mint)
	}
	try := func(withClient bool) ([]RevokedSession, error) {
		if _, err := tx.tx.Exec(tx.ctx, `SAVEPOINT create_session`); err != nil {
			return nil, err
		}
		evicted, err := tx.insertSession(s, withClient, mint)
		if err != nil {
			if _, rerr := tx.tx.Exec(tx.ctx, `ROLLBACK TO SAVEPOINT create_session`); rerr != nil {
				return nil, errors.Join(err, rerr)
			}
			return nil, err
		}
		return evicted, nil
	}
	evicted, err := try(s.ClientID != "")
	if err != nil && s.StatusListID != 0 && noStatusSchema(err) {
		return nil, fmt.Errorf("create session %s: %w", s.ID, ErrNoStatusLists)
	}
	if err != nil && s.ClientID != "" && noClientIDColumn(err) {
		evicted, err = try(false)
	}
	return evicted, err
}

// insertSession is the statements of createSession, in tx.
func (tx *Tx) insertSession(s NewSession, withClient bool, mint func(MintFloor) (MintedSession, error)) ([]RevokedSession, error) {
	var evicted []RevokedSession
	err := func() error {
		floor, err := tx.lockMintFloor(s.UserID)
		if err != nil {
			return err
		}
		m, err := mint(floor)
		if err != nil {
			return err
		}
		args := pgx.NamedArgs{
			"id": s.ID, "user_id": s.UserID, "created_at": m.CreatedAt, "expires_at": m.ExpiresAt,
			"hash": s.RefreshTokenHash, "jti": m.JTI, "access_exp": m.AccessExp, "ua": s.UserAgent, "ip": s.IP,
			"cv": s.UserCredentialsVersion, "role": s.UserRole, "client_id": s.ClientID,
			"status_list_id": s.StatusListID, "status_idx": s.StatusIdx, "iat": m.IssuedAt,
		}
		q := insertSessionSQL(withClient, s.StatusListID != 0, tx.cutoffs)
		if tx.audits {
			// The login's audit row in the same statement, written only
			// with the session: no extra round trip on the login path.
			e := withOrigin(tx.ctx, AuditEvent{
				At: m.CreatedAt, Type: audit.LoginSucceeded, Actor: s.UserID, SubjectUserID: s.UserID, SessionID: s.ID,
				IP: s.IP, UserAgent: s.UserAgent, Detail: map[string]any{"grant": s.Grant, "client_id": s.ClientID},
			})
			for k, v := range e.args() {
				args[k] = v
			}
			q = `WITH s AS (` + q + ` RETURNING 1),
				a AS (INSERT INTO audit_events (at, type, actor, subject_user_id, session_id, ip, user_agent, detail)
					SELECT @a_at, @a_type, @a_actor, NULLIF(@a_subject::text, '')::uuid, NULLIF(@a_sid::text, '')::uuid,
						NULLIF(@a_ip::text, '')::inet, NULLIF(@a_ua::text, ''), @a_detail::jsonb FROM s)
				SELECT count(*) FROM s`
		} else {
			q = `WITH s AS (` + q + ` RETURNING 1) SELECT count(*) FROM s`
		}
		var inserted int
		if err := tx.tx.QueryRow(tx.ctx, q, args).Scan(&inserted); err != nil {
			return fmt.Errorf("create session %s: %w", s.ID, translate(err))
		}
		if inserted == 0 {
			return fmt.Errorf("create session %s: %w", s.ID, ErrUserChanged)
		}
		if s.MaxLive <= 0 {
			return nil
		}
		rows, _ := tx.tx.Query(tx.ctx, evictSQL+tx.revokedColumns(),
			pgx.NamedArgs{"at": m.CreatedAt, "reason": s.LimitReason, "user_id": s.UserID, "max": s.MaxLive})
		evicted, err = pgx.CollectRows(rows, pgx.RowToStructByName[RevokedSession])
		if err != nil {
			return fmt.Errorf("evict sessions of user %s: %w", s.UserID, err)
		}
		return tx.auditRevoked(sessionIDs(evicted), s.LimitReason, nil, m.CreatedAt)
	}()
	return evicted, err
}

// evictSQL revokes the user's live sessions beyond the newest @max, oldest
// first, followed by the RETURNING columns. It first counts the user's live
// sessions through sessions_user_live_idx (migration 000014: live means
// not revoked and not expired; the index holds only unrevoked rows, and its
// range only unexpired ones), which reads the live sessions and nothing
// else: at most the cap, plus the logins racing this one, since every login
// enforces it. So a login costs the same whether the user has made ten
// sessions or a million. The count is an InitPlan: within the cap, the
// revoking scan does not run at all. It has no LIMIT on purpose: with one,
// the planner hopes a sequential scan or another index finds @max + 1 rows
// early, which it never does for a user under the cap whose old sessions
// are revoked or expired. The rows to revoke are fetched by primary key
// (= ANY of an array), never by a scan of the table. On the schema before
// 000014 the same statement walks sessions_user_id_created_at_idx, as the
// release before did.
const evictSQL = `UPDATE sessions SET revoked_at = @at, revoked_reason = @reason
	WHERE id = ANY (ARRAY(SELECT id FROM sessions
		WHERE user_id = @user_id AND revoked_at IS NULL AND expires_at > @at
		  AND (SELECT count(*) FROM sessions
				WHERE user_id = @user_id AND revoked_at IS NULL AND expires_at > @at) > @max::int
		ORDER BY created_at DESC, id DESC OFFSET @max::int))
	  AND revoked_at IS NULL
	RETURNING `

// RefreshRow is the session a presented refresh token names, with its
// user's role and state, as LockSessionByRefreshHash found and locked it.
type RefreshRow struct {
	SessionID    string
	UserID       string
	Role         string
	UserDisabled bool
	ExpiresAt    time.Time
	Revoked      bool
	// Reused is true when the presented token is one already rotated away:
	// the previous token or any older one (refresh_token_history).
	Reused bool
	// Previous is true when the presented token is the one rotated away
	// last, at LastRefreshedAt: the only one a reuse grace may forgive.
	Previous bool
	// LastActive is when the session was created or last refreshed, for the
	// idle timeout.
	LastActive      time.Time
	LastRefreshedAt *time.Time
	// ClientID is the client the session was issued to; empty when it
	// records none (a session of a release before migration 000007, or any
	// session on a schema without it).
	ClientID string
	// ClientIDColumn: the schema has sessions.client_id, so a Rotation may
	// bind the session's client.
	ClientIDColumn bool
	// Floor is the earliest iat the refresh may mint with; a session last
	// minted before Floor.IssuerCutAt is cut off.
	Floor MintFloor
	// StatusListID and StatusIdx are the session's status list entry, which
	// every token of the session names; StatusListID 0 when it has none.
	StatusListID int64
	StatusIdx    int
}

// LockSessionByRefreshHash finds the session whose current refresh token,
// previous one or any older one has hash, and locks its row for the rest of
// the transaction: FOR UPDATE, so concurrent refreshes with one token queue
// up and the second sees the first's rotation (as a reuse). sid is the
// session the token names (token.RefreshSID), empty for a token that names
// none (a release before's); with it the row is found by primary key and
// the hash only checked against it (refreshBySID). ErrNotFound when no
// session knows the hash. Run it in InRevokeTx: its caller may revoke.
//
// The row's user floor is read without locking the user: a cutoff of the
// user waits for this session's lock, so it is decided after this refresh
// commits, and its nbf is later than anything this refresh mints.
func (tx *Tx) LockSessionByRefreshHash(sid string, hash []byte) (RefreshRow, error) {
	q := `SELECT s.id::text, s.user_id::text, u.role, u.disabled_at IS NOT NULL, s.expires_at,
			s.revoked_at IS NOT NULL, s.refresh_token_hash IS DISTINCT FROM $1,
			s.prev_refresh_token_hash IS NOT DISTINCT FROM $1, COALESCE(s.last_refreshed_at, s.created_at),
			s.last_refreshed_at, COALESCE(` + storedClientID + `, ''), ` + hasClientIDColumn + `,
			` + storedStatusEntry
	var r RefreshRow
	dest := []any{&r.SessionID, &r.UserID, &r.Role, &r.UserDisabled,
		&r.ExpiresAt, &r.Revoked, &r.Reused, &r.Previous, &r.LastActive, &r.LastRefreshedAt,
		&r.ClientID, &r.ClientIDColumn, &r.StatusListID, &r.StatusIdx}
	var at *time.Time
	var reason *string
	if tx.cutoffs {
		q += `, u.tokens_nbf, ` + issuerColumns
		dest = append(dest, &r.Floor.UserNBF, &r.Floor.IssuerNBF, &at, &reason)
	}
	where, args := refreshByHash, []any{hash}
	if sid != "" {
		where, args = refreshBySID, []any{hash, sid}
	}
	q += ` FROM sessions s JOIN users u ON u.id = s.user_id ` + where
	if err := tx.tx.QueryRow(tx.ctx, q, args...).Scan(dest...); err != nil {
		return RefreshRow{}, fmt.Errorf("refresh session: %w", translate(err))
	}
	r.Floor.setIssuer(at, reason)
	return r, nil
}

// Rotation replaces a session's refresh token and records its new access
// token.
type Rotation struct {
	SID       string
	NewHash   []byte
	JTI       string
	AccessExp time.Time
	IssuedAt  int64 // the new token's iat, recorded as last_iat
	At        time.Time
	// BindClientID, when set, becomes the session's client_id if it records
	// none yet (a session of an older release). Set it only when the lock
	// saw the column (RefreshRow.ClientIDColumn).
	BindClientID string
}

// RotateRefresh makes r.NewHash the session's refresh token. The current one
// becomes the previous one, and the previous one moves to
// refresh_token_history, so prev_refresh_token_hash and the history together
// hold every rotated-away token and each of them is found as a reuse. One
// statement (rotateRefresh), so the move and the update cannot part. Lock
// the row first (LockSessionByRefreshHash).
//
// In a revoking or minting transaction (InRevokeTx, InMintTx) it is the
// transaction's last statement and commits it: it travels with the COMMIT
// in one pipeline, one round trip fewer per refresh (issue 14). fn must
// return right after it; a statement after it fails, and an error fn
// returns after it no longer undoes the rotation.
func (tx *Tx) RotateRefresh(r Rotation) error {
	set := rotateSet
	args := pgx.NamedArgs{"new": r.NewHash, "at": r.At, "jti": r.JTI, "exp": r.AccessExp, "sid": r.SID}
	if r.BindClientID != "" {
		set, args["client_id"] = set+`, client_id = COALESCE(client_id, @client_id)`, r.BindClientID
	}
	if tx.cutoffs { // migration 000008's column
		set, args["iat"] = set+`, last_iat = @iat`, r.IssuedAt
	}
	q := rotateHistory + ` UPDATE sessions SET ` + set + ` WHERE id = @sid`
	if err := tx.execLast(q, args); err != nil {
		return fmt.Errorf("rotate session %s: %w", r.SID, err)
	}
	return nil
}

// execLast runs the transaction's last statement: with its COMMIT in a
// lazyTx, as a plain statement otherwise (InTx commits after fn).
func (tx *Tx) execLast(sql string, args ...any) error {
	if lt, ok := tx.tx.(*lazyTx); ok {
		return lt.execCommit(tx.ctx, sql, args)
	}
	_, err := tx.tx.Exec(tx.ctx, sql, args...)
	return err
}

// queryRowLast is execLast for a statement returning at most one row.
func (tx *Tx) queryRowLast(sql string, args []any, dest ...any) error {
	if lt, ok := tx.tx.(*lazyTx); ok {
		return lt.queryRowCommit(tx.ctx, sql, args, dest...)
	}
	return tx.tx.QueryRow(tx.ctx, sql, args...).Scan(dest...)
}

// RevokeRequest says who revokes which session, when and why.
type RevokeRequest struct {
	SID    string
	Reason string
	By     *string // the acting user; nil when the session's own user or the system revoked
	At     time.Time
	// Now, when set, gives the time of a user cutoff the request becomes,
	// read once the sessions are locked (Tx.CutOffUser); At when nil.
	Now func() time.Time
}

func (r RevokeRequest) now() func() time.Time {
	if r.Now != nil {
		return r.Now
	}
	return func() time.Time { return r.At }
}

// RevokeResult is a session one call revoked: the entry for verifiers and
// what the row now records.
type RevokeResult struct {
	Entry           RevokedSession
	RevokedAt       time.Time
	RevokedReason   string
	RevokedByUserID *string
}

// RevokeSession marks r.SID revoked in its own bounded transaction; see
// Tx.RevokeSession.
func (db *DB) RevokeSession(ctx context.Context, r RevokeRequest) (*RevokeResult, error) {
	var out *RevokeResult
	err := db.InRevokeTx(ctx, func(tx *Tx) error {
		var err error
		// Its only statement, so it travels with the BEGIN and the COMMIT:
		// a logout's revocation is one round trip.
		out, err = tx.revokeSession(r, true)
		return err
	})
	return out, err
}

// RevokeSession marks r.SID revoked. The condition revoked_at IS NULL makes
// the first revocation win: a second one, concurrent or later, keeps the
// first time, reason and actor and gets nil, as does an unknown sid. Run it
// in InRevokeTx.
func (tx *Tx) RevokeSession(r RevokeRequest) (*RevokeResult, error) {
	return tx.revokeSession(r, false)
}

// revokeSession is RevokeSession, as the transaction's last statement when
// last (Tx.queryRowLast).
func (tx *Tx) revokeSession(r RevokeRequest, last bool) (*RevokeResult, error) {
	// Positional arguments: pgx.NamedArgs lexes the statement again on
	// every call, a cost every logout would pay (issue 14).
	q := `UPDATE sessions SET revoked_at = $1, revoked_reason = $2, revoked_by_user_id = $3
		WHERE id = $4 AND revoked_at IS NULL
		RETURNING last_jti::text AS jti, id, extract(epoch FROM access_exp)::bigint AS exp, ` + tx.seqColumn() + ` AS seq,
			revoked_at, revoked_reason, revoked_by_user_id::text AS by, user_id`
	args := []any{r.At, r.Reason, r.By, r.SID}
	if tx.audits {
		// Its audit row in the same statement, written only if it revoked:
		// no extra round trip on logout.
		e := revokedAudit(tx, r.Reason, r.By, r.At)
		args = append(args, e.At, e.Type, e.Actor, e.IP, e.UserAgent, e.Detail)
		q = `WITH r AS (` + q + `),
			a AS (INSERT INTO audit_events (at, type, actor, subject_user_id, session_id, ip, user_agent, detail)
				SELECT $5, $6, $7, r.user_id, r.id, NULLIF($8::text, '')::inet, NULLIF($9::text, ''), $10::jsonb
				FROM r)
			SELECT jti, id::text, exp, seq, revoked_at, revoked_reason, by FROM r`
	} else {
		q = `WITH r AS (` + q + `) SELECT jti, id::text, exp, seq, revoked_at, revoked_reason, by FROM r`
	}
	var out RevokeResult
	dest := []any{&out.Entry.JTI, &out.Entry.SID, &out.Entry.Exp, &out.Entry.Seq, &out.RevokedAt, &out.RevokedReason, &out.RevokedByUserID}
	var err error
	if last {
		err = tx.queryRowLast(q, args, dest...)
	} else {
		err = tx.tx.QueryRow(tx.ctx, q, args...).Scan(dest...)
	}
	if err != nil {
		if errors.Is(err, pgx.ErrNoRows) {
			return nil, nil
		}
		return nil, fmt.Errorf("revoke session %s: %w", r.SID, err)
	}
	return &out, nil
}

// RevokeUserSessions revokes every live session of userID except except in
// its own bounded transaction; see Tx.RevokeUserSessions.
func (db *DB) RevokeUserSessions(ctx context.Context, userID, except string, r RevokeRequest) ([]RevokedSession, error) {
	var out []RevokedSession
	err := db.InRevokeTx(ctx, func(tx *Tx) error {
		var err error
		out, err = tx.RevokeUserSessions(userID, except, r)
		return err
	})
	return out, err
}

// RevokeUserSessions revokes, in one statement, every live session of userID
// except the one named except (empty: none), and returns what it revoked;
// sessions revoked before keep their first revocation. r.SID is ignored. Run
// it in InRevokeTx.
func (tx *Tx) RevokeUserSessions(userID, except string, r RevokeRequest) ([]RevokedSession, error) {
	q := `UPDATE sessions SET revoked_at = @at, revoked_reason = @reason, revoked_by_user_id = @by
		WHERE user_id = @uid AND revoked_at IS NULL AND expires_at > @at
		  AND (@except = '' OR id::text <> @except)
		RETURNING ` + tx.revokedColumns()
	rows, _ := tx.tx.Query(tx.ctx, q, pgx.NamedArgs{"at": r.At, "reason": r.Reason, "by": r.By, "uid": userID, "except": except})
	out, err := pgx.CollectRows(rows, pgx.RowToStructByName[RevokedSession])
	if err != nil {
		return nil, fmt.Errorf("revoke sessions of user %s: %w", userID, err)
	}
	if err := tx.auditRevoked(sessionIDs(out), r.Reason, r.By, r.At); err != nil {
		return nil, err
	}
	return out, nil
}

// SessionAuth is what authenticating a request, or introspecting a token,
// needs to know about a session.
type SessionAuth struct {
	SID          string
	UserID       string
	Role         string
	UserDisabled bool
	ExpiresAt    time.Time
	RevokedAt    *time.Time
	// LastActive is when the session was created or last refreshed.
	LastActive time.Time
	// ClientID is the client the session was issued to, set only by the
	// loaders that say so. A session that records none (written before
	// migration 000007, or on a schema without it) has its service
	// identity's name if it is of one (what client_credentials records),
	// and is empty otherwise.
	ClientID string
	// NBF is the later of the user's and the issuer-wide cutoff (Unix
	// seconds, 0 when none): an access token with an earlier iat is denied.
	NBF int64
	// IssuerCutAt is when the newest issuer-wide cutoff was decided (zero
	// when none): a session last minted before it is cut off, its refresh
	// token included.
	IssuerCutAt time.Time
}

// CutOff reports whether an access token of the session issued at iat (Unix
// seconds; 0 when it has none) is denied by a cutoff.
func (a SessionAuth) CutOff(iat int64) bool { return iat < a.NBF }

// RefreshCutOff reports whether the session's refresh token is denied by
// the issuer-wide cutoff: it was last minted before the cutoff was decided.
func (a SessionAuth) RefreshCutOff() bool {
	return !a.IssuerCutAt.IsZero() && a.LastActive.Before(a.IssuerCutAt)
}

const (
	sessionAuthColumns = `s.id::text, s.user_id::text, u.role, u.disabled_at IS NOT NULL, s.expires_at, s.revoked_at,
	COALESCE(s.last_refreshed_at, s.created_at)`
	// sessionClientColumn follows sessionAuthColumns where ClientID is
	// wanted.
	sessionClientColumn = `, COALESCE(` + storedClientID + `, CASE WHEN u.role = 'service' THEN u.username END, '')`
)

// cutoffColumns follow the others where the schema has cutoffs: the later
// of the user's and the issuer-wide cutoff, and when the issuer-wide one was
// decided.
const cutoffColumns = `, GREATEST(u.tokens_nbf,
		COALESCE((SELECT nbf ` + newestIssuerCutoff + `), 0)),
	(SELECT revoked_at ` + newestIssuerCutoff + `)`

// loadSessionAuth runs SELECT columns[, client][, cutoffs] from, and scans
// it into a SessionAuth.
func (db *DB) loadSessionAuth(ctx context.Context, from string, withClient bool, args ...any) (SessionAuth, error) {
	ctx, cancel := withTimeout(ctx)
	defer cancel()
	var a SessionAuth
	q := `SELECT ` + sessionAuthColumns
	dest := []any{&a.SID, &a.UserID, &a.Role, &a.UserDisabled, &a.ExpiresAt, &a.RevokedAt, &a.LastActive}
	if withClient {
		q += sessionClientColumn
		dest = append(dest, &a.ClientID)
	}
	var cutAt *time.Time
	if db.Cutoffs() {
		q += cutoffColumns
		dest = append(dest, &a.NBF, &cutAt)
	}
	if err := db.pool.QueryRow(ctx, q+` FROM sessions s JOIN users u ON u.id = s.user_id `+from, args...).Scan(dest...); err != nil {
		return SessionAuth{}, translate(err)
	}
	if cutAt != nil {
		a.IssuerCutAt = *cutAt
	}
	return a, nil
}

// SessionAuthByID loads the session sid with its user's role and state,
// without ClientID: the bearer check of every request runs it.
func (db *DB) SessionAuthByID(ctx context.Context, sid string) (SessionAuth, error) {
	a, err := db.loadSessionAuth(ctx, `WHERE s.id = $1`, false, sid)
	if err != nil {
		return SessionAuth{}, fmt.Errorf("session %s: %w", sid, err)
	}
	return a, nil
}

// SessionClientByID is SessionAuthByID with ClientID.
func (db *DB) SessionClientByID(ctx context.Context, sid string) (SessionAuth, error) {
	a, err := db.loadSessionAuth(ctx, `WHERE s.id = $1`, true, sid)
	if err != nil {
		return SessionAuth{}, fmt.Errorf("session %s: %w", sid, err)
	}
	return a, nil
}

// SessionAuthByRefreshHash loads the session whose current refresh token
// has hash (never a rotated-away one), with its user's role and state and
// its ClientID; it locks nothing. sid is the session the token names
// (token.RefreshSID), empty for a token that names none; with it the row is
// found by primary key, as a refresh finds it. ErrNotFound when no
// session's current token has hash.
func (db *DB) SessionAuthByRefreshHash(ctx context.Context, sid string, hash []byte) (SessionAuth, error) {
	from, args := `WHERE s.refresh_token_hash = $1`, []any{hash}
	if sid != "" {
		from, args = from+` AND s.id = $2::uuid`, append(args, sid)
	}
	a, err := db.loadSessionAuth(ctx, from, true, args...)
	if err != nil {
		return SessionAuth{}, fmt.Errorf("session by refresh token: %w", err)
	}
	return a, nil
}

// Session is a row of sessions, without its refresh token hashes.
type Session struct {
	ID              string     `db:"id"`
	UserID          string     `db:"user_id"`
	CreatedAt       time.Time  `db:"created_at"`
	ExpiresAt       time.Time  `db:"expires_at"`
	LastRefreshedAt *time.Time `db:"last_refreshed_at"`
	LastJTI         string     `db:"last_jti"`
	AccessExp       time.Time  `db:"access_exp"`
	RevokedAt       *time.Time `db:"revoked_at"`
	RevokedReason   *string    `db:"revoked_reason"`
	RevokedByUserID *string    `db:"revoked_by_user_id"`
	UserAgent       *string    `db:"user_agent"`
	IP              *string    `db:"ip"`
}

const sessionColumns = `id::text AS id, user_id::text AS user_id, created_at, expires_at, last_refreshed_at,
	last_jti::text AS last_jti, access_exp, revoked_at, revoked_reason, revoked_by_user_id::text AS revoked_by_user_id,
	user_agent, host(ip) AS ip`

// SessionByID loads one session.
func (db *DB) SessionByID(ctx context.Context, sid string) (Session, error) {
	ctx, cancel := withTimeout(ctx)
	defer cancel()
	rows, _ := db.pool.Query(ctx, `SELECT `+sessionColumns+` FROM sessions WHERE id = $1`, sid)
	s, err := pgx.CollectExactlyOneRow(rows, pgx.RowToStructByName[Session])
	if err != nil {
		return Session{}, fmt.Errorf("session %s: %w", sid, translate(err))
	}
	return s, nil
}

// SessionQuery selects a page of one user's sessions, newest first.
type SessionQuery struct {
	UserID         string
	IncludeRevoked bool      // false: only sessions neither revoked nor expired at Now
	Now            time.Time // what "expired" is measured against
	// AfterCreatedAt and AfterID, both set or both zero, resume after the
	// last session of the previous page.
	AfterCreatedAt time.Time
	AfterID        string
	Limit          int
}

// UserSessions lists sessions by (created_at, id) descending, which
// sessions_user_id_created_at_idx serves.
func (db *DB) UserSessions(ctx context.Context, sq SessionQuery) ([]Session, error) {
	ctx, cancel := withTimeout(ctx)
	defer cancel()
	var after *time.Time
	var afterID *string
	if sq.AfterID != "" {
		after, afterID = &sq.AfterCreatedAt, &sq.AfterID
	}
	q := `SELECT ` + sessionColumns + ` FROM sessions
		WHERE user_id = @uid
		  AND (@all OR (revoked_at IS NULL AND expires_at > @now))
		  AND (@after::timestamptz IS NULL OR (created_at, id) < (@after::timestamptz, @after_id::uuid))
		ORDER BY created_at DESC, id DESC
		LIMIT @limit`
	rows, _ := db.readPool().Query(ctx, q, pgx.NamedArgs{
		"uid": sq.UserID, "all": sq.IncludeRevoked, "now": sq.Now, "after": after, "after_id": afterID, "limit": sq.Limit,
	})
	out, err := pgx.CollectRows(rows, pgx.RowToStructByName[Session])
	if err != nil {
		return nil, fmt.Errorf("sessions of user %s: %w", sq.UserID, err)
	}
	return out, nil
}

// RevokedSince lists sessions revoked at or after since whose newest access
// token is still valid at now, oldest revocation first. Served by
// sessions_revoked_at_idx for deltas and sessions_revoked_access_exp_idx for
// the full snapshot.
func (db *DB) RevokedSince(ctx context.Context, since, now time.Time) ([]RevokedSession, error) {
	ctx, cancel := withTimeout(ctx)
	defer cancel()
	const q = `SELECT last_jti::text AS jti, id::text AS sid, extract(epoch FROM access_exp)::bigint AS exp
		FROM sessions
		WHERE revoked_at IS NOT NULL AND revoked_at >= $1 AND access_exp > $2
		ORDER BY revoked_at, id`
	rows, _ := db.pool.Query(ctx, q, since, now)
	// Scanned by position, not by name: this is the feed's hot loop.
	var e RevokedSession
	out, err := pgx.AppendRows(make([]RevokedSession, 0, 64), rows, func(r pgx.CollectableRow) (RevokedSession, error) {
		err := r.Scan(&e.JTI, &e.SID, &e.Exp)
		return e, err
	})
	if err != nil {
		return nil, fmt.Errorf("revoked since %s: %w", since.UTC().Format(time.RFC3339), err)
	}
	return out, nil
}

// FeedSession is a revoked session as the feed's follower keeps it.
type FeedSession struct {
	RevokedSession
	RevokedAt time.Time
}

// FeedSince is RevokedSince for the feed's follower: each entry with its
// revocation time and whether a cutoff covers it.
func (db *DB) FeedSince(ctx context.Context, since, now time.Time) ([]FeedSession, error) {
	ctx, cancel := withTimeout(ctx)
	defer cancel()
	cutoff := `false`
	if db.Cutoffs() {
		cutoff = `revoked_cutoff_id IS NOT NULL`
	}
	q := `SELECT last_jti::text, id::text, extract(epoch FROM access_exp)::bigint, revoked_at, ` + cutoff + `
		FROM sessions
		WHERE revoked_at IS NOT NULL AND revoked_at >= $1 AND access_exp > $2
		ORDER BY revoked_at, id`
	rows, _ := db.pool.Query(ctx, q, since, now)
	var e FeedSession
	out, err := pgx.AppendRows(make([]FeedSession, 0, 64), rows, func(r pgx.CollectableRow) (FeedSession, error) {
		err := r.Scan(&e.JTI, &e.SID, &e.Exp, &e.RevokedAt, &e.Cutoff)
		return e, err
	})
	if err != nil {
		return nil, fmt.Errorf("feed since %s: %w", since.UTC().Format(time.RFC3339), err)
	}
	return out, nil
}

// DeleteSessionsExpiredBefore deletes sessions whose absolute expiry is older
// than before, in batches so no single statement holds locks for long.
func (db *DB) DeleteSessionsExpiredBefore(ctx context.Context, before time.Time, batch int) (int64, error) {
	var total int64
	const q = `DELETE FROM sessions WHERE id IN (
		SELECT id FROM sessions WHERE expires_at < $1 LIMIT $2 FOR UPDATE SKIP LOCKED)`
	for {
		cctx, cancel := withTimeout(ctx)
		tag, err := db.pool.Exec(cctx, q, before, batch)
		cancel()
		if err != nil {
			return total, fmt.Errorf("delete expired sessions: %w", err)
		}
		total += tag.RowsAffected()
		if tag.RowsAffected() < int64(batch) {
			return total, nil
		}
	}
}
