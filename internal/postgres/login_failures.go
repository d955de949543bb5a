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
//
// It is the claim protocol of the release before (pending rows), which this
// release no longer runs: kept, with the pending columns, until a contract
// step drops them, so tests can run that release's claims beside this one's.
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
//
// It is the claim protocol of the release before (pending rows), which this
// release no longer runs: kept, with the pending columns, until a contract
// step drops them, so tests can run that release's claims beside this one's.
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
//
// It is the claim protocol of the release before (pending rows), which this
// release no longer runs: kept, with the pending columns, until a contract
// step drops them, so tests can run that release's claims beside this one's.
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
//
// It is the claim protocol of the release before (pending rows), which this
// release no longer runs: kept, with the pending columns, until a contract
// step drops them, so tests can run that release's claims beside this one's.
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

// The claim of a login attempt as this release makes it: no pending row,
// nothing committed. The attempt's transaction (InLoginTx) stays open from
// the claim to the outcome, and its claim is a transaction-level advisory
// lock on a "slot" of each key, which every other connection sees at once
// and which COMMIT, ROLLBACK or the connection's end releases. The slots of
// a key are two-int4 advisory locks (hashtext of the scope and key, slot
// number), a lock space apart from the one-int8 locks of everything else.
// Two keys whose hashes collide share their slots: each then finds fewer
// free, never more, so a collision can only over-throttle.

// SlotRange is what a claim asks of one key: the first free of the slots
// [0, Take), exclusively, and every slot of [Take, Of), shared. The shared
// locks prove that no attempt claimed under an older, lower failure count
// still holds a slot the current count no longer allows (internal/throttle
// argues the bound). Take 0: the key is not claimed (it does not apply).
type SlotRange struct{ Take, Of int }

// SlotPlan is a claim's ranges for the account, the account at the address
// (skipped when perAddress is false or the account is empty) and the
// address (skipped when it is empty).
type SlotPlan struct{ Account, AccountIP, IP SlotRange }

// SlotClaim says which keys' slots the claim got; a key the plan skipped
// counts as got.
type SlotClaim struct{ Account, AccountIP, IP bool }

// All reports whether every key's slots were got.
func (c SlotClaim) All() bool { return c.Account && c.AccountIP && c.IP }

// slotCTE claims one key's slots: prev is the CTE before (its columns carry
// on), name this one's, key the SQL of the key's text, p the parameter
// prefix. A key is tried only if every key before it was got, so a refused
// claim holds as few locks as it can until its rollback; the shared locks
// only once the exclusive one is held, so a burst that finds the slots
// taken piles up no shared locks.
func slotCTE(prev, name, scope, key, p, carry string) string {
	lockKey := `hashtext('login_slots/` + scope + `/' || ` + key + `)`
	return name + `_slot AS MATERIALIZED (SELECT ` + carry + `CASE WHEN NOT ` + prev + `_ok THEN NULL
			WHEN @` + p + `_take::int = 0 THEN -1
			ELSE (SELECT s FROM generate_series(0, @` + p + `_take::int - 1) s
				WHERE pg_try_advisory_xact_lock(` + lockKey + `, s) LIMIT 1) END AS slot FROM ` + prev + `),
		` + name + ` AS MATERIALIZED (SELECT ` + carry + `CASE WHEN slot IS NULL THEN false
			WHEN slot < 0 THEN true
			ELSE (SELECT coalesce(bool_and(pg_try_advisory_xact_lock_shared(` + lockKey + `, s)), true)
				FROM generate_series(@` + p + `_take::int, @` + p + `_of::int - 1) s) END AS ` + name + `_ok FROM ` + name + `_slot)`
}

// claimSlotsSQL first takes, shared, the advisory locks the release before
// takes exclusively to serialise its claims (LockLoginKeys), in its order:
// a claim of that release, made while a replica of this one checks the
// key, waits until the check is settled and then counts its failure, and
// any attempt of this release starting after that claim reads its pending
// row. Without a replica of the release before nobody takes them
// exclusively, and shared holders never wait for each other. Then the slots
// of the account, the account at the address and the address, in that
// order.
var claimSlotsSQL = `WITH legacy AS MATERIALIZED (
		SELECT pg_advisory_xact_lock_shared(hashtextextended('login_failures/account/' || lower(@account::text), 0)) IS NOT NULL
			AND (@ip::text = '' OR pg_advisory_xact_lock_shared(hashtextextended('login_failures/ip/' || @ip::text, 0)) IS NOT NULL)
			AS legacy_ok),
	` + slotCTE("legacy", "acc", ScopeAccount, `lower(@account::text)`, "acc", "") + `,
	` + slotCTE("acc", "pair", ScopeAccountIP, `lower(@account::text) || '|' || @ip::text`, "pair", "acc_ok, ") + `,
	` + slotCTE("pair", "ip", ScopeIP, `@ip::text`, "ip", "acc_ok, pair_ok, ") + `
	SELECT acc_ok, pair_ok, ip_ok FROM ip`

// ClaimLoginSlots claims one attempt for account and ip in tx, the first
// statement of a transaction of InLoginTx, and then reads the rows of the
// account, of the account at ip and of ip (as LoginFailures does). The read
// is a statement of its own after the locks, so its snapshot is taken with
// them held: every failure recorded by an attempt that held a slot this
// claim now holds, or that it found free, is in it (a failure commits
// before its slot is released). Both go in the transaction's first round
// trip. The caller decides on the rows; a claim it refuses is rolled back.
func (tx *Tx) ClaimLoginSlots(account, ip string, p SlotPlan) (SlotClaim, []LoginFailures, error) {
	args := pgx.NamedArgs{"account": account, "ip": ip,
		"acc_take": p.Account.Take, "acc_of": p.Account.Of,
		"pair_take": p.AccountIP.Take, "pair_of": p.AccountIP.Of,
		"ip_take": p.IP.Take, "ip_of": p.IP.Of}
	b := &pgx.Batch{}
	b.Queue(claimSlotsSQL, args)
	b.Queue(readLoginRows, account, ip)
	br := tx.tx.SendBatch(tx.ctx, b)
	var c SlotClaim
	if err := br.QueryRow().Scan(&c.Account, &c.AccountIP, &c.IP); err != nil {
		br.Close()
		return SlotClaim{}, nil, fmt.Errorf("claim login slots: %w", err)
	}
	rows, _ := br.Query()
	out, err := pgx.CollectRows(rows, pgx.RowToStructByName[LoginFailures])
	if cerr := br.Close(); err == nil {
		err = cerr
	}
	if err != nil {
		return SlotClaim{}, nil, fmt.Errorf("login failures: %w", err)
	}
	return c, out, nil
}

// RecordLoginFailure records, in tx, a wrong password of an attempt
// claimed with ClaimLoginSlots: on account, on account at ip (if perAddress)
// and on ip one failure more (one only, if the last failure is from before
// forgetBefore), last_failed_at = at, and its audit row. pending is left
// alone: it counts the claims of the release before, and this attempt made
// none. It runs under a savepoint, so that on a schema without the
// account_ip scope (ErrNoAccountIPScope) or without audit_events the caller
// can record it again without them in the same transaction, whose slots
// must stay held until the failure commits.
func (tx *Tx) RecordLoginFailure(account, ip string, at, forgetBefore time.Time, perAddress bool) error {
	q := `INSERT INTO login_failures AS f (scope, key, failures, last_failed_at)
		SELECT v.scope, v.key, 1, @at FROM ` + loginKeys + `
		ON CONFLICT (scope, key) DO UPDATE SET
			failures = CASE WHEN f.last_failed_at < @forget THEN 1 ELSE LEAST(f.failures + 1, 1000000) END,
			last_failed_at = GREATEST(f.last_failed_at, EXCLUDED.last_failed_at)`
	args := pgx.NamedArgs{"at": at, "account": account, "ip": ip, "forget": forgetBefore, "per_address": perAddress}
	audited := tx.audits
	if audited {
		// The failed login's audit row, in the same statement. The account
		// key, never the password.
		e := withOrigin(tx.ctx, AuditEvent{At: at, Type: audit.LoginFailed, Actor: audit.ActorSystem, IP: ip,
			Detail: map[string]any{"account": account}})
		q = `WITH audit AS (` + insertAudit + `) ` + q
		for k, v := range e.args() {
			args[k] = v
		}
	}
	b := &pgx.Batch{}
	b.Queue(`SAVEPOINT login_failure`)
	b.Queue(q, args)
	b.Queue(`RELEASE SAVEPOINT login_failure`)
	err := tx.tx.SendBatch(tx.ctx, b).Close()
	if err == nil {
		return nil
	}
	if _, rerr := tx.tx.Exec(tx.ctx, `ROLLBACK TO SAVEPOINT login_failure`); rerr != nil {
		return loginWriteErr("record login failure", errors.Join(err, rerr))
	}
	if audited && missingTable(err, "audit_events") {
		// As InTx: the audit log is never why a failure goes unrecorded.
		// (Where the statement is prepared first, the missing table fails
		// the transaction before the savepoint exists; InLoginTx then runs
		// the attempt again.)
		tx.audits = false
		return tx.RecordLoginFailure(account, ip, at, forgetBefore, perAddress)
	}
	return loginWriteErr("record login failure", err)
}

// ForgetLoginFailures forgets, in tx, the failures of account and of
// account at ip, after a right password: each row is deleted, unless an
// attempt of the release before is still in flight on it (pending claimed
// since staleBefore), whose count must stay visible. The caller runs it
// only when the claim's read found failures to forget, so a success on a
// clean account writes nothing here. Two statements in one round trip, the
// account's row first, the order every writer of these rows keeps.
func (tx *Tx) ForgetLoginFailures(account, ip string, staleBefore time.Time) error {
	const (
		account1 = `WITH gone AS (DELETE FROM login_failures
				WHERE scope = 'account' AND key = lower($1) AND (pending = 0 OR pending_at IS NULL OR pending_at < $2)
				RETURNING 1)
			UPDATE login_failures SET failures = 0
				WHERE scope = 'account' AND key = lower($1) AND failures > 0 AND pending > 0 AND pending_at >= $2`
		pair = `WITH gone AS (DELETE FROM login_failures
				WHERE scope = 'account_ip' AND key = lower($1) || '|' || $3 AND (pending = 0 OR pending_at IS NULL OR pending_at < $2)
				RETURNING 1)
			UPDATE login_failures SET failures = 0
				WHERE scope = 'account_ip' AND key = lower($1) || '|' || $3 AND failures > 0 AND pending > 0 AND pending_at >= $2`
	)
	b := &pgx.Batch{}
	b.Queue(account1, account, staleBefore)
	if account != "" {
		b.Queue(pair, account, staleBefore, ip)
	}
	if err := tx.tx.SendBatch(tx.ctx, b).Close(); err != nil {
		return fmt.Errorf("forget login failures: %w", err)
	}
	return nil
}

// InLoginTx runs a password check's transaction: bounded as a revoking
// transaction (InRevokeTx: MaxRevokeTx, with the server's statement and
// idle-in-transaction timeouts of the same length, so a stalled or dead
// process cannot hold a claim longer), since a login's session insert may
// revoke sessions beyond the cap. Its first statement should be
// ClaimLoginSlots. fn's error is returned as it is; nil commits, and that
// commit is the attempt's only durable one.
//
// As InRevokeTx, a transaction that failed because audit_events, or the
// session columns of 000007 and 000009, are gone (a rollback's migrate down,
// not yet seen by RefreshSchema) runs fn again, the second time knowing it:
// fn must be safe to run twice (nothing of a rolled-back run is left).
func (db *DB) InLoginTx(ctx context.Context, fn func(tx *Tx) error) error {
	ctx, cancel := context.WithTimeout(ctx, MaxRevokeTx)
	defer cancel()
	run := func() error {
		return runLazyTx(ctx, db.pool, revokeOpen, func(tx pgx.Tx) error {
			return fn(&Tx{ctx: ctx, tx: tx, cutoffs: db.cutoffs.Load(), audits: db.audits.Load(), sessionColumns: db.fleet.Load()})
		})
	}
	err := run()
	if err != nil && (db.noAuditTable(err) || db.noSessionColumns(err)) {
		err = run()
	}
	return err
}

// noSessionColumns reports whether err is an insert refused for want of
// sessions.client_id or the status list columns while the DB took the
// schema to have them, and if so stops taking it so until RefreshSchema.
func (db *DB) noSessionColumns(err error) bool {
	if !db.fleet.Load() || !(noClientIDColumn(err) || noStatusSchema(err)) {
		return false
	}
	db.fleet.Store(false)
	return true
}
