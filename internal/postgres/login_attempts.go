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

// LoginFailuresFor loads the rows of the account (compared as lower(account))
// and of ip; an empty ip is skipped. Served by the primary key.
func (db *DB) LoginFailuresFor(ctx context.Context, account, ip string) ([]LoginFailures, error) {
	ctx, cancel := withTimeout(ctx)
	defer cancel()
	const q = `SELECT scope, key, failures, last_failed_at FROM login_failures
		WHERE (scope = 'account' AND key = lower($1)) OR (scope = 'ip' AND key = $2 AND $2 <> '')`
	rows, _ := db.pool.Query(ctx, q, account, ip)
	out, err := pgx.CollectRows(rows, pgx.RowToStructByName[LoginFailures])
	if err != nil {
		return nil, fmt.Errorf("login failures: %w", err)
	}
	return out, nil
}

// RecordLoginFailure counts one failed login against the account and the ip
// (skipped when empty) in one statement, so concurrent failures all count.
// A row quiet since before forgetBefore starts again from one.
func (db *DB) RecordLoginFailure(ctx context.Context, account, ip string, at, forgetBefore time.Time) ([]LoginFailures, error) {
	ctx, cancel := withTimeout(ctx)
	defer cancel()
	const q = `INSERT INTO login_failures AS f (scope, key, failures, last_failed_at)
		SELECT v.scope, v.key, 1, @at
		FROM (VALUES ('account', lower(@account::text)), ('ip', @ip::text)) AS v (scope, key)
		WHERE v.key <> ''
		ON CONFLICT (scope, key) DO UPDATE SET
			failures = CASE WHEN f.last_failed_at < @forget THEN 1 ELSE LEAST(f.failures + 1, 1000000) END,
			last_failed_at = GREATEST(f.last_failed_at, EXCLUDED.last_failed_at)
		RETURNING scope, key, failures, last_failed_at`
	rows, _ := db.pool.Query(ctx, q, pgx.NamedArgs{"at": at, "account": account, "ip": ip, "forget": forgetBefore})
	out, err := pgx.CollectRows(rows, pgx.RowToStructByName[LoginFailures])
	if err != nil {
		return nil, fmt.Errorf("record login failure: %w", err)
	}
	return out, nil
}

// ClearAccountLoginFailures forgets the failures of account (compared as
// lower(account)).
func (db *DB) ClearAccountLoginFailures(ctx context.Context, account string) error {
	ctx, cancel := withTimeout(ctx)
	defer cancel()
	const q = `DELETE FROM login_failures WHERE scope = 'account' AND key = lower($1)`
	if _, err := db.pool.Exec(ctx, q, account); err != nil {
		return fmt.Errorf("clear login failures: %w", err)
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
