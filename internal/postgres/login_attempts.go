package postgres

import (
	"context"
	"fmt"
	"time"

	"github.com/jackc/pgx/v5"
)

// Scopes of login_failures rows.
const (
	ScopeAccount = "account" // key: lower(username or client_id)
	ScopeIP      = "ip"      // key: the client address
)

// LoginFailures is the failure count of one throttling key.
type LoginFailures struct {
	Scope        string    `db:"scope"`
	Key          string    `db:"key"`
	Failures     int       `db:"failures"`
	LastFailedAt time.Time `db:"last_failed_at"`
}

// ClaimLoginAttempt decides, atomically per key, whether a login attempt may
// go ahead. It serialises attempts on the account (compared as
// lower(account)) and on ip (skipped when empty) with transaction-scoped
// advisory locks, always account first so two claims cannot deadlock, reads
// both counts, and asks wait how long the attempt must still wait. When it
// need not, the attempt is charged in advance as a failure on both keys
// (SettleLoginSuccess refunds it), so parallel guesses cannot all pass the
// check before any of them is counted. A row quiet since before
// forgetBefore starts again from one.
func (db *DB) ClaimLoginAttempt(ctx context.Context, account, ip string, at, forgetBefore time.Time,
	wait func([]LoginFailures) time.Duration) (time.Duration, error) {
	var d time.Duration
	err := db.inTx(ctx, func(tx pgx.Tx) error {
		const lock = `SELECT pg_advisory_xact_lock(hashtextextended('login_failures/account/' || lower($1), 0)),
			CASE WHEN $2 <> '' THEN pg_advisory_xact_lock(hashtextextended('login_failures/ip/' || $2, 0)) END`
		if _, err := tx.Exec(ctx, lock, account, ip); err != nil {
			return fmt.Errorf("lock login failures: %w", err)
		}
		const read = `SELECT scope, key, failures, last_failed_at FROM login_failures
			WHERE (scope = 'account' AND key = lower($1)) OR (scope = 'ip' AND key = $2 AND $2 <> '')`
		rows, _ := tx.Query(ctx, read, account, ip)
		cur, err := pgx.CollectRows(rows, pgx.RowToStructByName[LoginFailures])
		if err != nil {
			return fmt.Errorf("login failures: %w", err)
		}
		if d = wait(cur); d > 0 {
			return nil
		}
		const charge = `INSERT INTO login_failures AS f (scope, key, failures, last_failed_at)
			SELECT v.scope, v.key, 1, @at
			FROM (VALUES ('account', lower(@account::text)), ('ip', @ip::text)) AS v (scope, key)
			WHERE v.key <> ''
			ON CONFLICT (scope, key) DO UPDATE SET
				failures = CASE WHEN f.last_failed_at < @forget THEN 1 ELSE LEAST(f.failures + 1, 1000000) END,
				last_failed_at = GREATEST(f.last_failed_at, EXCLUDED.last_failed_at)`
		if _, err := tx.Exec(ctx, charge, pgx.NamedArgs{"at": at, "account": account, "ip": ip, "forget": forgetBefore}); err != nil {
			return fmt.Errorf("charge login attempt: %w", err)
		}
		return nil
	})
	return d, err
}

// SettleLoginSuccess undoes what ClaimLoginAttempt charged for an attempt
// that succeeded: the account's failures are forgotten, and the ip is
// refunded the one failure charged (its other failures stay, so one good
// password does not reset a spray across many accounts).
func (db *DB) SettleLoginSuccess(ctx context.Context, account, ip string) error {
	ctx, cancel := withTimeout(ctx)
	defer cancel()
	const q = `WITH a AS (DELETE FROM login_failures WHERE scope = 'account' AND key = lower($1)),
			i AS (DELETE FROM login_failures WHERE scope = 'ip' AND key = $2 AND failures <= 1)
		UPDATE login_failures SET failures = failures - 1 WHERE scope = 'ip' AND key = $2 AND failures > 1`
	if _, err := db.pool.Exec(ctx, q, account, ip); err != nil {
		return fmt.Errorf("settle login success: %w", err)
	}
	return nil
}

// DeleteLoginFailuresBefore deletes rows whose last failure is older than
// before (login_failures_last_failed_at_idx).
func (db *DB) DeleteLoginFailuresBefore(ctx context.Context, before time.Time) (int64, error) {
	ctx, cancel := withTimeout(ctx)
	defer cancel()
	tag, err := db.pool.Exec(ctx, `DELETE FROM login_failures WHERE last_failed_at < $1`, before)
	if err != nil {
		return 0, fmt.Errorf("delete old login failures: %w", err)
	}
	return tag.RowsAffected(), nil
}
