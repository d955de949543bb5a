package postgres

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/seedc5a8123e/authd/internal/audit"
)

// CutoffSchema is the first schema version with revocation cutoffs and push
// sequence numbers (migration 000008).
const CutoffSchema = 8

// issuerCutoffLock is the advisory lock that orders minting against the
// issuer-wide cutoff: every transaction that mints an access token holds it
// shared, the cutoff holds it exclusively (internal/feed argues why). A
// transaction-scoped advisory lock lives in the lock manager's memory, so
// holding it shared writes nothing and contends on no row, and it ends with
// the transaction, which a transaction-mode pooler allows.
const issuerCutoffLock int64 = 0x61757468645f6374 // "authd_ct"

// Cutoff is a committed user or issuer-wide cutoff: every token of UserID
// (empty: of every user) with an iat before NBF is denied until Exp.
type Cutoff struct {
	ID        int64
	UserID    string // empty for the issuer-wide cutoff
	RevokedAt time.Time
	NBF       int64 // Unix seconds
	Exp       int64 // Unix seconds
	// Seq is the push sequence number of its message; 0 where not read.
	Seq int64
}

// Revocations is what one revoking transaction committed: the sessions it
// marked revoked and the cutoff it recorded, if any. session.Announce
// publishes it.
type Revocations struct {
	Sessions []RevokedSession
	Cutoff   *Cutoff
}

// Len is how many sessions were revoked.
func (r Revocations) Len() int { return len(r.Sessions) }

// RefreshSchema reads the applied schema version and switches the statements
// that need migration 000008 on or off. A binary runs on the schema before
// its own (migrations/README.md), so until the migration has run a user's
// bulk revocation stays one revocation per session, as before, and no
// statement names what the schema lacks. The feed's follower calls it every
// few seconds, so replicas started before the migration switch over
// without a restart.
func (db *DB) RefreshSchema(ctx context.Context) error {
	ctx, cancel := withTimeout(ctx)
	defer cancel()
	var v int64
	var dirty bool
	err := db.pool.QueryRow(ctx, `SELECT version, dirty FROM schema_migrations LIMIT 1`).Scan(&v, &dirty)
	if err != nil {
		return fmt.Errorf("schema version: %w", err)
	}
	db.cutoffs.Store(!dirty && v >= CutoffSchema)
	db.audits.Store(!dirty && v >= AuditSchema)
	db.fleet.Store(!dirty && v >= FleetSchema)
	return nil
}

// Cutoffs reports whether the schema has revocation cutoffs, as last read by
// RefreshSchema.
func (db *DB) Cutoffs() bool { return db.cutoffs.Load() }

// seqColumn is the RETURNING expression of a revoked row's push sequence
// number: one nextval per row returned (none when no row is), or 0 on a
// schema without the sequence.
func (tx *Tx) seqColumn() string {
	if tx.cutoffs {
		return `nextval('auth_revoked_seq')`
	}
	return `0::bigint`
}

// InMintTx is InRevokeTx for a transaction that mints an access token: it
// also holds issuerCutoffLock shared, taken in the same round trip as the
// limits, so no issuer-wide cutoff can be decided while it mints.
func (db *DB) InMintTx(ctx context.Context, fn func(tx *Tx) error) error {
	return db.inRevokeTx(ctx, true, fn)
}

// MintFloor is the earliest iat a token minted now may carry: the newest
// cutoff of the user and the newest issuer-wide one (each 0 when none), and
// the instant the issuer-wide cutoff was decided (zero when none), before
// which no session it covers was last minted.
type MintFloor struct {
	UserNBF      int64
	IssuerNBF    int64
	IssuerCutAt  time.Time
	IssuerReason string
}

// Min is the larger of the two floors.
func (f MintFloor) Min() int64 { return max(f.UserNBF, f.IssuerNBF) }

// issuerColumns select the newest issuer-wide cutoff's nbf, decision time
// and reason, or 0, NULL and NULL: three index probes of one or no row.
const issuerColumns = `COALESCE((SELECT nbf ` + newestIssuerCutoff + `), 0),
	(SELECT revoked_at ` + newestIssuerCutoff + `),
	(SELECT reason ` + newestIssuerCutoff + `)`

// newestIssuerCutoff selects the issuer-wide cutoff every check compares
// with: the highest nbf and, among cutoffs decided in the same second (which
// share an nbf: CutOffIssuer), the one decided last. By nbf alone the index
// returned the oldest of those, so a session refreshed between two cutoffs
// of one second passed the second one's check, and its sweep.
const newestIssuerCutoff = `FROM revocation_cutoffs WHERE user_id IS NULL ` + issuerCutoffOrder + ` LIMIT 1`

// issuerCutoffOrder orders issuer-wide cutoffs newest first, as
// newestIssuerCutoff and the sweep's pick both need.
const issuerCutoffOrder = `ORDER BY nbf DESC, revoked_at DESC, id DESC`

// lockMintFloor reads userID's floor inside a mint transaction and locks
// the user's row FOR SHARE, so no cutoff of the user commits before this
// transaction does. ErrUserChanged when the user is gone.
func (tx *Tx) lockMintFloor(userID string) (MintFloor, error) {
	var f MintFloor
	if !tx.cutoffs {
		return f, nil
	}
	var at *time.Time
	var reason *string
	const q = `SELECT u.tokens_nbf, ` + issuerColumns + ` FROM users u WHERE u.id = $1 FOR SHARE OF u`
	var err error
	if tx.mintLocked {
		err = tx.tx.QueryRow(tx.ctx, q, userID).Scan(&f.UserNBF, &f.IssuerNBF, &at, &reason)
	} else {
		// A transaction that began for another reason (a login's claim,
		// InLoginTx) takes the lock here, in the same round trip: as with
		// mintOpen, the read is a statement after the lock, so its snapshot
		// has every issuer-wide cutoff committed before the lock was granted.
		b := &pgx.Batch{}
		b.Queue(mintLockSQL)
		b.Queue(q, userID)
		br := tx.tx.SendBatch(tx.ctx, b)
		if _, err = br.Exec(); err == nil {
			err = br.QueryRow().Scan(&f.UserNBF, &f.IssuerNBF, &at, &reason)
		}
		if cerr := br.Close(); err == nil {
			err = cerr
		}
		tx.mintLocked = err == nil
	}
	if errors.Is(err, pgx.ErrNoRows) {
		return MintFloor{}, fmt.Errorf("mint floor of %s: %w", userID, ErrUserChanged)
	}
	if err != nil {
		return MintFloor{}, fmt.Errorf("mint floor of %s: %w", userID, err)
	}
	f.setIssuer(at, reason)
	return f, nil
}

func (f *MintFloor) setIssuer(at *time.Time, reason *string) {
	if at != nil {
		f.IssuerCutAt = *at
	}
	if reason != nil {
		f.IssuerReason = *reason
	}
}

// UserCutoff asks for the cutoff of all of a user's sessions.
type UserCutoff struct {
	UserID string
	Reason string
	By     *string
	// Now is read once the user and its live sessions are locked: the
	// cutoff's time must come after every mint those locks waited for.
	Now func() time.Time
}

// CutOffUser records a cutoff for c.UserID and marks every live session of
// the user revoked under it, in the caller's revoking transaction.
//
// The user's row and every unrevoked session of the user are locked first,
// and only then is the time read: a login (which inserts under FOR SHARE of
// the user) or a refresh (which holds its session FOR UPDATE while it mints)
// that minted before it has committed, and one that comes after waits for
// this transaction and then sees the cutoff. nbf is the second after that
// time, and never earlier than the user's previous cutoff, so every token
// minted before has iat < nbf and the mint path stamps every later token
// with iat >= nbf (internal/feed has the whole argument).
//
// A session is recorded as covered by the cutoff (revoked_cutoff_id, which
// keeps it out of the v2 feed's sessions) only if its newest token's iat
// (last_iat) is before nbf. That is every session, except where an earlier
// cutoff of the user or the issuer decided in the same second left nbf
// where it was: tokens minted since then carry that nbf, are not denied by
// it, and their sessions stay listed one by one.
//
// On a schema without cutoffs it revokes the sessions one by one, as before,
// and returns no cutoff.
func (tx *Tx) CutOffUser(c UserCutoff) (Revocations, error) {
	if !tx.cutoffs {
		at := c.Now()
		s, err := tx.RevokeUserSessions(c.UserID, "", RevokeRequest{Reason: c.Reason, By: c.By, At: at})
		if err == nil {
			err = tx.auditCutoff(c, at, len(s), 0)
		}
		return Revocations{Sessions: s}, err
	}
	const lock = `WITH u AS (SELECT id FROM users WHERE id = $1 FOR UPDATE),
			s AS (SELECT id FROM sessions WHERE user_id = $1 AND revoked_at IS NULL FOR UPDATE)
		SELECT (SELECT count(*) FROM u), (SELECT count(*) FROM s)`
	var users, live int64
	if err := tx.tx.QueryRow(tx.ctx, lock, c.UserID).Scan(&users, &live); err != nil {
		return Revocations{}, fmt.Errorf("cut off user %s: lock: %w", c.UserID, err)
	}
	if users == 0 {
		return Revocations{}, fmt.Errorf("cut off user %s: %w", c.UserID, ErrNotFound)
	}
	at := c.Now()
	// One statement: the cutoff, the user's floor and the sessions, which
	// the cutoff's exp covers (the latest access_exp among them).
	const q = `WITH live AS (
			SELECT id FROM sessions WHERE user_id = @uid AND revoked_at IS NULL AND expires_at > @at),
		c AS (
			INSERT INTO revocation_cutoffs (user_id, revoked_at, nbf, exp, reason, revoked_by_user_id)
			SELECT u.id, @at, GREATEST(@nbf, u.tokens_nbf),
				GREATEST(@at, (SELECT max(access_exp) FROM sessions WHERE id IN (SELECT id FROM live))), @reason, @by
			FROM users u WHERE u.id = @uid
			RETURNING id, nbf, exp, nextval('auth_revoked_seq') AS seq),
		f AS (UPDATE users SET tokens_nbf = c.nbf FROM c WHERE users.id = @uid),
		s AS (
			UPDATE sessions SET revoked_at = @at, revoked_reason = @reason, revoked_by_user_id = @by,
				revoked_cutoff_id = CASE WHEN sessions.last_iat < c.nbf THEN c.id END
			FROM c WHERE sessions.id IN (SELECT id FROM live)
			RETURNING sessions.last_jti::text AS jti, sessions.id::text AS sid,
				extract(epoch FROM sessions.access_exp)::bigint AS exp, sessions.revoked_cutoff_id IS NOT NULL AS covered)
		SELECT c.id, c.nbf, extract(epoch FROM c.exp)::bigint, c.seq, s.jti, s.sid, s.exp, COALESCE(s.covered, false),
			CASE WHEN s.sid IS NULL THEN NULL ELSE nextval('auth_revoked_seq') END
		FROM c LEFT JOIN s ON true`
	rows, _ := tx.tx.Query(tx.ctx, q, pgx.NamedArgs{
		"uid": c.UserID, "at": at, "nbf": at.Unix() + 1, "reason": c.Reason, "by": c.By,
	})
	out := Revocations{Cutoff: &Cutoff{UserID: c.UserID, RevokedAt: at}}
	for rows.Next() {
		var jti, sid *string
		var exp, seq *int64
		var covered bool
		if err := rows.Scan(&out.Cutoff.ID, &out.Cutoff.NBF, &out.Cutoff.Exp, &out.Cutoff.Seq, &jti, &sid, &exp, &covered, &seq); err != nil {
			rows.Close()
			return Revocations{}, fmt.Errorf("cut off user %s: %w", c.UserID, err)
		}
		if sid != nil {
			out.Sessions = append(out.Sessions, RevokedSession{JTI: *jti, SID: *sid, Exp: *exp, Seq: *seq, Cutoff: covered})
		}
	}
	if err := rows.Err(); err != nil {
		return Revocations{}, fmt.Errorf("cut off user %s: %w", c.UserID, err)
	}
	if err := tx.auditCutoff(c, at, len(out.Sessions), out.Cutoff.NBF); err != nil {
		return Revocations{}, err
	}
	return out, nil
}

// auditCutoff records a user cutoff as one row, however many sessions it
// revoked.
func (tx *Tx) auditCutoff(c UserCutoff, at time.Time, sessions int, nbf int64) error {
	e := AuditEvent{At: at, Type: audit.UserCutoff, SubjectUserID: c.UserID,
		Detail: map[string]any{"reason": c.Reason, "sessions": sessions}}
	if nbf != 0 {
		e.Detail["nbf"] = nbf
	}
	if c.By != nil && audit.From(tx.ctx).Actor == audit.ActorSystem {
		e.Actor = *c.By
	}
	return tx.Audit(e)
}

// CutOffUser is Tx.CutOffUser in its own revoking transaction.
func (db *DB) CutOffUser(ctx context.Context, c UserCutoff) (Revocations, error) {
	var out Revocations
	err := db.InRevokeTx(ctx, func(tx *Tx) error {
		var err error
		out, err = tx.CutOffUser(c)
		return err
	})
	return out, err
}

// ErrNoCutoffSchema: an issuer-wide cutoff was asked for on a schema
// without cutoffs (before migration 000008).
var ErrNoCutoffSchema = errors.New("the database schema has no revocation cutoffs yet: run authd migrate up")

// IssuerCutoff asks for a cutoff of every user's tokens.
type IssuerCutoff struct {
	Reason string
	By     *string
	// Now is read once issuerCutoffLock is held exclusively.
	Now func() time.Time
	// AccessTTL is the configured access-token lifetime: no token minted
	// before the cutoff outlives its time by more (the cutoff's exp is the
	// later of that and the latest access_exp of a live session).
	AccessTTL time.Duration
}

// CutOffIssuer records an issuer-wide cutoff. It takes issuerCutoffLock
// exclusively, so it waits for every transaction minting at that moment and
// holds off new ones until it commits; only then is the time read. Sessions
// are not marked here (there may be millions): SweepIssuerCutoff does it in
// batches, while the bearer check and refresh honour the cutoff at once.
func (db *DB) CutOffIssuer(ctx context.Context, c IssuerCutoff) (Cutoff, error) {
	if !db.Cutoffs() {
		return Cutoff{}, ErrNoCutoffSchema
	}
	var out Cutoff
	err := db.InRevokeTx(ctx, func(tx *Tx) error {
		if _, err := tx.tx.Exec(tx.ctx, `SELECT pg_advisory_xact_lock($1)`, issuerCutoffLock); err != nil {
			return fmt.Errorf("issuer cutoff: lock: %w", err)
		}
		at := c.Now()
		const q = `INSERT INTO revocation_cutoffs (user_id, revoked_at, nbf, exp, reason, revoked_by_user_id)
			SELECT NULL, @at,
				GREATEST(@nbf, COALESCE((SELECT max(nbf) FROM revocation_cutoffs WHERE user_id IS NULL), 0)),
				GREATEST(@at::timestamptz + @ttl::interval,
					(SELECT max(access_exp) FROM sessions WHERE revoked_at IS NULL AND access_exp > @at)),
				@reason, @by
			RETURNING id, nbf, extract(epoch FROM exp)::bigint, nextval('auth_revoked_seq')`
		out = Cutoff{RevokedAt: at}
		if err := tx.tx.QueryRow(tx.ctx, q, pgx.NamedArgs{
			"at": at, "nbf": at.Unix() + 1, "ttl": c.AccessTTL, "reason": c.Reason, "by": c.By,
		}).Scan(&out.ID, &out.NBF, &out.Exp, &out.Seq); err != nil {
			return err
		}
		e := AuditEvent{At: at, Type: audit.IssuerCutoff, Detail: map[string]any{"reason": c.Reason, "nbf": out.NBF}}
		if c.By != nil && audit.From(tx.ctx).Actor == audit.ActorSystem {
			e.Actor = *c.By
		}
		return tx.Audit(e)
	})
	if err != nil {
		return Cutoff{}, fmt.Errorf("issuer cutoff: %w", err)
	}
	return out, nil
}

// SweepIssuerCutoff marks up to batch sessions revoked that the newest
// unswept issuer-wide cutoff covers (last minted before it, not yet revoked,
// not expired at now), and records the cutoff swept once none is left. It
// returns how many it marked; 0 means nothing is left to do. Each batch is
// its own revoking transaction, and rows other transactions hold are
// skipped until the next batch, so the sweep never waits on a login.
func (db *DB) SweepIssuerCutoff(ctx context.Context, now time.Time, batch int) (int, error) {
	if !db.Cutoffs() {
		return 0, nil
	}
	var n int
	err := db.InRevokeTx(ctx, func(tx *Tx) error {
		var id int64
		var cutAt time.Time
		var reason string
		var by *string
		err := tx.tx.QueryRow(tx.ctx, `SELECT id, revoked_at, reason, revoked_by_user_id::text FROM revocation_cutoffs
			WHERE user_id IS NULL AND swept_at IS NULL `+issuerCutoffOrder+` LIMIT 1`).Scan(&id, &cutAt, &reason, &by)
		if errors.Is(err, pgx.ErrNoRows) {
			return nil
		}
		if err != nil {
			return err
		}
		const q = `UPDATE sessions SET revoked_at = @now, revoked_reason = @reason, revoked_by_user_id = @by,
				revoked_cutoff_id = CASE WHEN last_iat < (SELECT nbf FROM revocation_cutoffs WHERE id = @id) THEN @id::bigint END
			WHERE id IN (SELECT id FROM sessions
				WHERE revoked_at IS NULL AND expires_at > @now AND COALESCE(last_refreshed_at, created_at) < @cut
				LIMIT @batch FOR UPDATE SKIP LOCKED)`
		tag, err := tx.tx.Exec(tx.ctx, q, pgx.NamedArgs{"now": now, "reason": reason, "by": by, "id": id, "cut": cutAt, "batch": batch})
		if err != nil {
			return err
		}
		n = int(tag.RowsAffected())
		if n > 0 {
			return nil
		}
		// Nothing left unlocked. A row locked by a refresh in flight is one
		// that refresh will refuse (it was last minted before the cutoff),
		// and the next sweep finds it if it is still unrevoked then.
		var left bool
		if err := tx.tx.QueryRow(tx.ctx, `SELECT EXISTS (SELECT 1 FROM sessions WHERE revoked_at IS NULL
				AND expires_at > $1 AND COALESCE(last_refreshed_at, created_at) < $2)`, now, cutAt).Scan(&left); err != nil {
			return err
		}
		if !left {
			// Older issuer-wide cutoffs cover a subset of this one's
			// sessions: they are swept with it. Not one decided later in
			// the same second (same nbf), which may have committed since
			// this one was picked: its sweep is still to come.
			_, err = tx.tx.Exec(tx.ctx, `UPDATE revocation_cutoffs SET swept_at = $2
				WHERE user_id IS NULL AND swept_at IS NULL
				  AND (nbf, revoked_at) <= (SELECT nbf, revoked_at FROM revocation_cutoffs WHERE id = $1)`, id, now)
		}
		return err
	})
	if err != nil {
		return 0, fmt.Errorf("sweep issuer cutoff: %w", err)
	}
	return n, nil
}

// CutoffsSince lists cutoffs decided at or after since whose exp is after
// now, oldest first: what the feed's follower reads besides RevokedSince.
func (db *DB) CutoffsSince(ctx context.Context, since, now time.Time) ([]Cutoff, error) {
	if !db.Cutoffs() {
		return nil, nil
	}
	ctx, cancel := withTimeout(ctx)
	defer cancel()
	const q = `SELECT id, COALESCE(user_id::text, ''), revoked_at, nbf, extract(epoch FROM exp)::bigint
		FROM revocation_cutoffs WHERE revoked_at >= $1 AND exp > $2 ORDER BY revoked_at, id`
	rows, _ := db.pool.Query(ctx, q, since, now)
	out, err := pgx.CollectRows(rows, func(r pgx.CollectableRow) (Cutoff, error) {
		var c Cutoff
		err := r.Scan(&c.ID, &c.UserID, &c.RevokedAt, &c.NBF, &c.Exp)
		return c, err
	})
	if err != nil {
		return nil, fmt.Errorf("cutoffs since %s: %w", since.UTC().Format(time.RFC3339), err)
	}
	return out, nil
}

// DeleteCutoffsExpiredBefore deletes cutoffs whose exp is before before (the
// pruning job): no token they deny is alive any more.
func (db *DB) DeleteCutoffsExpiredBefore(ctx context.Context, before time.Time) (int64, error) {
	if !db.Cutoffs() {
		return 0, nil
	}
	ctx, cancel := withTimeout(ctx)
	defer cancel()
	// An issuer-wide cutoff not yet swept stays: its sessions must be marked.
	tag, err := db.pool.Exec(ctx, `DELETE FROM revocation_cutoffs WHERE exp < $1 AND (user_id IS NOT NULL OR swept_at IS NOT NULL)`, before)
	if err != nil {
		return 0, fmt.Errorf("delete expired cutoffs: %w", err)
	}
	return tag.RowsAffected(), nil
}
