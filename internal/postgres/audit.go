package postgres

import (
	"context"
	"fmt"
	"net/netip"
	"strings"
	"time"
	"unicode/utf8"

	"github.com/jackc/pgx/v5"

	"github.com/seedc5a8123e/authd/internal/audit"
)

// AuditSchema is the first schema version with audit_events (migration
// 000011). On an older schema nothing is audited: a binary runs on the
// schema before its own (migrations/README.md), and an INSERT into a missing
// table would abort the change it records.
const AuditSchema = 11

// maxAuditUserAgent bounds the User-Agent recorded, in bytes.
const maxAuditUserAgent = 512

// AuditEvent is a row of audit_events. The writers fill Type, the subject,
// the session and Detail; Actor, IP and UserAgent come from the
// transaction's context (audit.From) when left empty.
type AuditEvent struct {
	ID            int64          `json:"id"`
	At            time.Time      `json:"at"`
	Type          string         `json:"type"`
	Actor         string         `json:"actor"`
	SubjectUserID string         `json:"subject_user_id,omitempty"`
	SessionID     string         `json:"session_id,omitempty"`
	IP            string         `json:"ip,omitempty"`
	UserAgent     string         `json:"user_agent,omitempty"`
	Detail        map[string]any `json:"detail"`
}

// Audits reports whether the schema has audit_events, as last read by
// RefreshSchema.
func (db *DB) Audits() bool { return db.audits.Load() }

// withOrigin fills what e leaves empty of who and from where from ctx. An
// address that is not one is dropped rather than allowed to fail the cast,
// and so the change.
func withOrigin(ctx context.Context, e AuditEvent) AuditEvent {
	o := audit.From(ctx)
	if e.Actor == "" {
		e.Actor = o.Actor
	}
	if e.IP == "" {
		e.IP = o.IP
	}
	if e.UserAgent == "" {
		e.UserAgent = o.UserAgent
	}
	if _, err := netip.ParseAddr(e.IP); err != nil {
		e.IP = ""
	}
	e.UserAgent = strings.ToValidUTF8(strings.ReplaceAll(e.UserAgent, "\x00", ""), "\uFFFD")
	for len(e.UserAgent) > maxAuditUserAgent {
		_, n := utf8.DecodeLastRuneInString(e.UserAgent)
		e.UserAgent = e.UserAgent[:len(e.UserAgent)-n]
	}
	if e.Detail == nil {
		e.Detail = map[string]any{}
	}
	return e
}

func (e AuditEvent) args() pgx.NamedArgs {
	return pgx.NamedArgs{
		"a_at": e.At, "a_type": e.Type, "a_actor": e.Actor, "a_subject": e.SubjectUserID, "a_sid": e.SessionID,
		"a_ip": e.IP, "a_ua": e.UserAgent, "a_detail": e.Detail,
	}
}

// insertAudit writes the row of auditArgs; it is also the CTE of the
// statements that record their event in the same statement.
const insertAudit = `INSERT INTO audit_events (at, type, actor, subject_user_id, session_id, ip, user_agent, detail)
	VALUES (@a_at, @a_type, @a_actor, NULLIF(@a_subject::text, '')::uuid, NULLIF(@a_sid::text, '')::uuid,
		NULLIF(@a_ip::text, '')::inet, NULLIF(@a_ua::text, ''), @a_detail::jsonb)`

// Audit writes e in the transaction, so it commits or rolls back with the
// change it records. A no-op on a schema without audit_events.
func (tx *Tx) Audit(e AuditEvent) error {
	if !tx.audits {
		return nil
	}
	e = withOrigin(tx.ctx, e)
	if _, err := tx.tx.Exec(tx.ctx, insertAudit, e.args()); err != nil {
		return fmt.Errorf("audit %s: %w", e.Type, err)
	}
	return nil
}

// auditRevoked writes one session_revoked row per session of sids, each
// naming the session's user, in one statement.
func (tx *Tx) auditRevoked(sids []string, reason string, by *string, at time.Time) error {
	if !tx.audits || len(sids) == 0 {
		return nil
	}
	e := revokedAudit(tx, reason, by, at)
	const q = `INSERT INTO audit_events (at, type, actor, subject_user_id, session_id, ip, user_agent, detail)
		SELECT @a_at, @a_type, @a_actor, s.user_id, s.id, NULLIF(@a_ip::text, '')::inet, NULLIF(@a_ua::text, ''), @a_detail::jsonb
		FROM sessions s WHERE s.id = ANY(@sids::uuid[]) ORDER BY s.id`
	args := e.args()
	args["sids"] = sids
	if _, err := tx.tx.Exec(tx.ctx, q, args); err != nil {
		return fmt.Errorf("audit revocations: %w", err)
	}
	return nil
}

// revokedAudit is the session_revoked row of a revocation for reason by
// by (the actor when the context names none) at at.
func revokedAudit(tx *Tx, reason string, by *string, at time.Time) AuditEvent {
	e := withOrigin(tx.ctx, AuditEvent{At: at, Type: audit.SessionRevoked, Detail: map[string]any{"reason": reason}})
	if by != nil && e.Actor == audit.ActorSystem {
		e.Actor = *by
	}
	return e
}

func sessionIDs(s []RevokedSession) []string {
	out := make([]string, len(s))
	for i, e := range s {
		out[i] = e.SID
	}
	return out
}

// AuditQuery selects audit rows, newest first. Zero fields do not filter.
type AuditQuery struct {
	// UserID matches rows whose subject or actor is the user.
	UserID    string
	SessionID string
	Type      string
	Since     time.Time // at >= Since
	Until     time.Time // at < Until
	// Before is the keyset: rows strictly older than (BeforeAt, BeforeID).
	BeforeAt time.Time
	BeforeID int64
	Limit    int
}

// AuditEvents lists the rows q selects, newest first, at most q.Limit. It
// reads from the replica when there is one: an export may lag.
func (db *DB) AuditEvents(ctx context.Context, q AuditQuery) ([]AuditEvent, error) {
	ctx, cancel := withTimeout(ctx)
	defer cancel()
	var where []string
	args := pgx.NamedArgs{"limit": q.Limit}
	if q.UserID != "" {
		where = append(where, `(subject_user_id = @user::text::uuid OR actor = @user::text)`)
		args["user"] = q.UserID
	}
	if q.SessionID != "" {
		where = append(where, `session_id = @sid::uuid`)
		args["sid"] = q.SessionID
	}
	if q.Type != "" {
		where = append(where, `type = @type`)
		args["type"] = q.Type
	}
	if !q.Since.IsZero() {
		where = append(where, `at >= @since`)
		args["since"] = q.Since
	}
	if !q.Until.IsZero() {
		where = append(where, `at < @until`)
		args["until"] = q.Until
	}
	if !q.BeforeAt.IsZero() {
		where = append(where, `(at, id) < (@before_at, @before_id)`)
		args["before_at"], args["before_id"] = q.BeforeAt, q.BeforeID
	}
	sql := `SELECT id, at, type, actor, COALESCE(subject_user_id::text, ''), COALESCE(session_id::text, ''),
			COALESCE(host(ip), ''), COALESCE(user_agent, ''), detail
		FROM audit_events`
	if len(where) > 0 {
		sql += ` WHERE ` + strings.Join(where, ` AND `)
	}
	sql += ` ORDER BY at DESC, id DESC LIMIT @limit`
	rows, _ := db.readPool().Query(ctx, sql, args)
	out, err := pgx.CollectRows(rows, func(r pgx.CollectableRow) (AuditEvent, error) {
		var e AuditEvent
		err := r.Scan(&e.ID, &e.At, &e.Type, &e.Actor, &e.SubjectUserID, &e.SessionID, &e.IP, &e.UserAgent, &e.Detail)
		return e, err
	})
	if err != nil {
		return nil, fmt.Errorf("list audit events: %w", err)
	}
	return out, nil
}

// DeleteAuditEventsBefore deletes up to batch rows older than before, the
// oldest first, and returns how many it deleted; the retention job calls it
// until it returns less than batch, so no one statement holds many locks.
func (db *DB) DeleteAuditEventsBefore(ctx context.Context, before time.Time, batch int) (int64, error) {
	if !db.Audits() {
		return 0, nil
	}
	ctx, cancel := withTimeout(ctx)
	defer cancel()
	const q = `DELETE FROM audit_events WHERE id IN (
		SELECT id FROM audit_events WHERE at < $1 ORDER BY at, id LIMIT $2 FOR UPDATE SKIP LOCKED)`
	tag, err := db.pool.Exec(ctx, q, before, batch)
	if err != nil {
		return 0, fmt.Errorf("delete old audit events: %w", err)
	}
	return tag.RowsAffected(), nil
}
