package postgres

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"

	"github.com/seedc5a8123e/authd/internal/audit"
)

// Scopes of login_failures rows.
const (
	ScopeAccount = "account" // key: lower(username or client_id)
	// ScopeAccountIP is one account from one client address. Key:
	// lower(account) || '|' || address, the address possibly empty (an
	// attempt whose address is unknown). An address never contains '|', so
	// the last '|' splits the key. Needs migration 000006.
	ScopeAccountIP = "account_ip"
	ScopeIP        = "ip" // key: the client address
)

// ErrNoAccountIPScope means the schema predates migration 000006, whose
// CHECK on login_failures.scope admits ScopeAccountIP rows: a replica
// started before the migration Job ran, or after a rollback's migrate down.
// Nothing was written; write again without the row (perAddress false).
var ErrNoAccountIPScope = errors.New("login_failures refuses scope 'account_ip': migration 000006 not applied")

// LoginFailures is the state of one throttling key: its recorded failures
// and the attempts in flight (claimed, not yet settled).
type LoginFailures struct {
	Scope    string `db:"scope"`
	Key      string `db:"key"`
	Failures int    `db:"failures"`
	// LastFailedAt is the time of the newest failure; for a row without
	// failures, the time it was created.
	LastFailedAt time.Time `db:"last_failed_at"`
	Pending      int       `db:"pending"`
	// PendingAt is the time of the newest claim, nil if none was made.
	PendingAt *time.Time `db:"pending_at"`
}

// The rows of one attempt: account compared as lower(account); the
// account_ip row skipped when account is empty, or when perAddress is false;
// ip skipped when empty. The VALUES lists keep the rows in the order account,
// account_ip, ip, the order every statement below locks them in (the older
// release locks account, then ip: the same order), so that none can deadlock
// another.
const (
	readLoginRows = `SELECT scope, key, failures, last_failed_at, pending, pending_at FROM login_failures
		WHERE (scope = 'account' AND key = lower($1))
			OR (scope = 'account_ip' AND key = lower($1) || '|' || $2 AND $1 <> '')
			OR (scope = 'ip' AND key = $2 AND $2 <> '')`
	loginKeys = `(VALUES ('account', lower(@account::text)),
			('account_ip', CASE WHEN @per_address::boolean AND @account::text <> ''
				THEN lower(@account::text) || '|' || @ip::text ELSE '' END),
			('ip', @ip::text)) AS v (scope, key) WHERE v.key <> ''`
)

// loginWriteErr wraps a write's error, as ErrNoAccountIPScope when the
// schema's CHECK refused an account_ip row.
func loginWriteErr(what string, err error) error {
	var pgErr *pgconn.PgError
	if errors.As(err, &pgErr) && pgErr.Code == "23514" && pgErr.ConstraintName == "login_failures_scope_check" {
		return fmt.Errorf("%s: %w", what, ErrNoAccountIPScope)
	}
	return fmt.Errorf("%s: %w", what, err)
}

// LoginFailures reads the rows of account, of account at ip and of ip
// without taking a lock. A claim reads them this way first, so that an
// attempt refused anyway costs one query and waits for nobody.
func (db *DB) LoginFailures(ctx context.Context, account, ip string) ([]LoginFailures, error) {
	ctx, cancel := withTimeout(ctx)
	defer cancel()
	rows, _ := db.pool.Query(ctx, readLoginRows, account, ip)
	out, err := pgx.CollectRows(rows, pgx.RowToStructByName[LoginFailures])
	if err != nil {
		return nil, fmt.Errorf("login failures: %w", err)
	}
	return out, nil
}

// LockLoginKeys takes transaction-scoped advisory locks on account and on ip
// (always account first, so two claims cannot deadlock) and then reads the
// rows of account, of account at ip and of ip. The account's lock also
// serialises the claims of every (account, address) pair of that account,
// whose keys all contain it, so the pair needs no lock of its own. Claims of
// a key are serialised by the lock, so the rows returned include every
// claim committed before this one. The read is a statement of its own,
// after the lock, so its snapshot is taken once the lock is held; both go in
// one round trip.
func (tx *Tx) LockLoginKeys(account, ip string) ([]LoginFailures, error) {
	const lock = `SELECT pg_advisory_xact_lock(hashtextextended('login_failures/account/' || lower($1), 0)),
		CASE WHEN $2 <> '' THEN pg_advisory_xact_lock(hashtextextended('login_failures/ip/' || $2, 0)) END`
	b := &pgx.Batch{}
	b.Queue(lock, account, ip)
	b.Queue(readLoginRows, account, ip)
	br := tx.tx.SendBatch(tx.ctx, b)
	if _, err := br.Exec(); err != nil {
		br.Close()
		return nil, fmt.Errorf("lock login failures: %w", err)
	}
	rows, _ := br.Query()
	out, err := pgx.CollectRows(rows, pgx.RowToStructByName[LoginFailures])
	if cerr := br.Close(); err == nil {
		err = cerr
	}
	if err != nil {
		return nil, fmt.Errorf("login failures: %w", err)
	}
	return out, nil
}

// ClaimLogin counts one attempt as pending on account, on account at ip (if
// perAddress) and on ip: pending goes up by one and pending_at becomes at;
// pending left from before staleBefore starts again from zero. Missing rows
// are created with no failures. Take the keys' locks first (LockLoginKeys)
// and decide on the rows it returned. On a schema without the account_ip
// scope it fails with ErrNoAccountIPScope unless perAddress is false; the
// transaction is then aborted.
func (tx *Tx) ClaimLogin(account, ip string, at, staleBefore time.Time, perAddress bool) error {
	const claim = `INSERT INTO login_failures AS f (scope, key, failures, last_failed_at, pending, pending_at)
		SELECT v.scope, v.key, 0, @at, 1, @at FROM ` + loginKeys + `
		ON CONFLICT (scope, key) DO UPDATE SET
			pending = CASE WHEN f.pending_at IS NULL OR f.pending_at < @stale THEN 1
				ELSE LEAST(f.pending + 1, 1000000) END,
			pending_at = GREATEST(f.pending_at, EXCLUDED.pending_at)`
	args := pgx.NamedArgs{"at": at, "account": account, "ip": ip, "stale": staleBefore, "per_address": perAddress}
	if _, err := tx.tx.Exec(tx.ctx, claim, args); err != nil {
		return loginWriteErr("claim login attempt", err)
	}
	return nil
}

// SettleLoginFailure settles a claimed attempt whose password was wrong: on
// account, on account at ip (if perAddress) and on ip one failure more (one
// only, if the last failure is from before forgetBefore), last_failed_at =
// at, and one attempt fewer in flight. One statement; a missing row is
// created. On a schema without the account_ip scope it fails with
// ErrNoAccountIPScope, recording nothing, unless perAddress is false.
func (db *DB) SettleLoginFailure(ctx context.Context, account, ip string, at, forgetBefore time.Time, perAddress bool) error {
	ctx, cancel := withTimeout(ctx)
	defer cancel()
	q := `INSERT INTO login_failures AS f (scope, key, failures, last_failed_at)
		SELECT v.scope, v.key, 1, @at FROM ` + loginKeys + `
		ON CONFLICT (scope, key) DO UPDATE SET
			failures = CASE WHEN f.last_failed_at < @forget THEN 1 ELSE LEAST(f.failures + 1, 1000000) END,
			last_failed_at = GREATEST(f.last_failed_at, EXCLUDED.last_failed_at),
			pending = GREATEST(f.pending - 1, 0)`
	args := pgx.NamedArgs{"at": at, "account": account, "ip": ip, "forget": forgetBefore, "per_address": perAddress}
	if db.Audits() {
		// The failed login's audit row, in the same statement: a failed
		// login writes nothing else. The account key, never the password.
		e := withOrigin(ctx, AuditEvent{At: at, Type: audit.LoginFailed, Actor: audit.ActorSystem, IP: ip,
			Detail: map[string]any{"account": account}})
		audited := `WITH audit AS (` + insertAudit + `) ` + q
		for k, v := range e.args() {
			args[k] = v
		}
		_, err := db.pool.Exec(ctx, audited, args)
		if err == nil || !db.noAuditTable(err) {
			if err != nil {
				return loginWriteErr("record login failure", err)
			}
			return nil
		}
		// audit_events is gone (InTx): record the failure without it.
	}
	if _, err := db.pool.Exec(ctx, q, args); err != nil {
		return loginWriteErr("record login failure", err)
	}
	return nil
}

// SettleLoginSuccess settles a claimed attempt whose password was right (or
// that failed for another reason): the failures of the account and of the
// account at ip are forgotten, each row deleted once nothing is in flight on
// it; the ip only gets one attempt fewer in flight, its failures and
// last_failed_at stay, so one good password neither resets nor prolongs a
// spray across many accounts. The (account, address) rows of other
// addresses stay as they are. The statements go in one round trip, locking
// the rows in the order account, account_ip, ip; on a schema without the
// account_ip scope its statements find no row.
func (db *DB) SettleLoginSuccess(ctx context.Context, account, ip string) error {
	ctx, cancel := withTimeout(ctx)
	defer cancel()
	b := &pgx.Batch{}
	b.Queue(`UPDATE login_failures SET failures = 0, pending = GREATEST(pending - 1, 0)
		WHERE scope = 'account' AND key = lower($1)`, account)
	b.Queue(`DELETE FROM login_failures
		WHERE scope = 'account' AND key = lower($1) AND failures = 0 AND pending = 0`, account)
	b.Queue(`UPDATE login_failures SET failures = 0, pending = GREATEST(pending - 1, 0)
		WHERE scope = 'account_ip' AND key = lower($1) || '|' || $2 AND $1 <> ''`, account, ip)
	b.Queue(`DELETE FROM login_failures
		WHERE scope = 'account_ip' AND key = lower($1) || '|' || $2 AND $1 <> '' AND failures = 0 AND pending = 0`, account, ip)
	b.Queue(`UPDATE login_failures SET pending = GREATEST(pending - 1, 0)
		WHERE scope = 'ip' AND key = $1 AND $1 <> ''`, ip)
	if err := db.pool.SendBatch(ctx, b).Close(); err != nil {
		return fmt.Errorf("settle login success: %w", err)
	}
	return nil
}

// DeleteLoginFailuresBefore deletes rows whose last failure (or creation) is
// older than before and that have no attempt in flight claimed since
// staleBefore (login_failures_last_failed_at_idx). Rows locked right now are
// in use and skipped, so pruning never waits for, or deadlocks with, a login.
func (db *DB) DeleteLoginFailuresBefore(ctx context.Context, before, staleBefore time.Time) (int64, error) {
	ctx, cancel := withTimeout(ctx)
	defer cancel()
	const q = `DELETE FROM login_failures WHERE (scope, key) IN (
		SELECT scope, key FROM login_failures
		WHERE last_failed_at < $1 AND (pending = 0 OR pending_at IS NULL OR pending_at < $2)
		FOR UPDATE SKIP LOCKED)`
	tag, err := db.pool.Exec(ctx, q, before, staleBefore)
	if err != nil {
		return 0, fmt.Errorf("delete old login failures: %w", err)
	}
	return tag.RowsAffected(), nil
}
