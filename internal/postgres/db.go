// Package postgres owns every SQL statement authd runs. Callers get typed
// methods; driver errors are translated here into ErrNotFound and ErrConflict.
package postgres

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"strings"
	"sync/atomic"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"
	"github.com/jackc/pgx/v5/pgxpool"
)

// DefaultTimeout bounds a database call whose context has no deadline.
const DefaultTimeout = 5 * time.Second

var (
	// ErrNotFound means the row asked for does not exist.
	ErrNotFound = errors.New("not found")
	// ErrConflict means a unique constraint refused the write.
	ErrConflict = errors.New("conflict")
)

// DB is the connection pool and the statements run over it.
type DB struct {
	pool *pgxpool.Pool
	// cutoffs: the schema has migration 000008 (RefreshSchema).
	cutoffs atomic.Bool
	// audits: the schema has migration 000011 (RefreshSchema).
	audits atomic.Bool
	// fleet: the schema has migration 000012 (RefreshSchema).
	fleet atomic.Bool
	// replica, when set, serves the reads that may lag (session and user
	// lists); see Options.ReadURL.
	replica *DB
}

// Pooler says what sits between authd and PostgreSQL.
type Pooler string

const (
	// PoolerNone: connections go to PostgreSQL itself, or to a pool that
	// gives each client one server session for as long as it is connected.
	PoolerNone Pooler = "none"
	// PoolerTransaction: a pool (PgBouncer pool_mode = transaction) that may
	// hand each transaction, or each statement outside one, to a different
	// server session. No session state survives: not named prepared
	// statements, not SET, not session advisory locks, not LISTEN.
	PoolerTransaction Pooler = "transaction"
)

// Options are the settings of Open besides the URL; the zero value is a
// direct connection.
type Options struct {
	// Pooler is AUTHD_DATABASE_POOLER. With PoolerTransaction, pgx stops
	// using named prepared statements (its default, cache_statement, prepares
	// each statement once per connection and reuses it, which breaks as soon
	// as PgBouncer moves the client to another server session). It uses
	// cache_describe instead: each execution is one round trip of unnamed
	// Parse/Bind/Execute/Sync, which PgBouncer keeps on one server session,
	// and only the result description is cached client-side. PgBouncer 1.21
	// can track named statements itself (max_prepared_statements), but
	// Debian 12 ships 1.18, and this works with any version. An explicit
	// default_query_exec_mode in the URL wins.
	Pooler Pooler
	// ReadURL is AUTHD_DATABASE_READ_URL: a hot standby for the reads that
	// may lag (Replica). Empty: every read goes to url.
	ReadURL string
	// MaxConns, when positive, is each pool's size (AUTHD_DB_MAX_CONNS).
	MaxConns int
	// Tracer, when set, sees every statement (tests count commits with it).
	Tracer pgx.QueryTracer
}

// Open connects to url and checks the connection, and to o.ReadURL when set.
// Errors about the read URL name AUTHD_DATABASE_READ_URL.
func Open(ctx context.Context, url string, o Options) (*DB, error) {
	db, err := open(ctx, url, o, "DATABASE_URL")
	if err != nil {
		return nil, err
	}
	if o.ReadURL != "" {
		if db.replica, err = open(ctx, o.ReadURL, o, "the URL"); err != nil {
			db.Close()
			return nil, fmt.Errorf("AUTHD_DATABASE_READ_URL: %w", err)
		}
	}
	return db, nil
}

func open(ctx context.Context, url string, o Options, name string) (*DB, error) {
	cfg, err := pgxpool.ParseConfig(url)
	if err != nil {
		// pgx's message can echo the URL, password included.
		return nil, fmt.Errorf("postgres: %s cannot be parsed", name)
	}
	if !strings.Contains(url, "connect_timeout") {
		cfg.ConnConfig.ConnectTimeout = ConnectTimeout
	}
	if o.Pooler == PoolerTransaction && !strings.Contains(url, "default_query_exec_mode") {
		cfg.ConnConfig.DefaultQueryExecMode = pgx.QueryExecModeCacheDescribe
	}
	if o.MaxConns > 0 {
		cfg.MaxConns = int32(min(o.MaxConns, 1<<16))
	}
	if o.Tracer != nil {
		cfg.ConnConfig.Tracer = o.Tracer
	}
	pool, err := pgxpool.NewWithConfig(ctx, cfg)
	if err != nil {
		return nil, fmt.Errorf("postgres: connect: %w", err)
	}
	db := &DB{pool: pool}
	if err := db.Ping(ctx); err != nil {
		pool.Close()
		return nil, err
	}
	// Unreadable before the first migration: the statements of the schema
	// before 000008 serve until a later RefreshSchema sees it.
	_ = db.RefreshSchema(ctx)
	return db, nil
}

// Replica is the hot standby of Options.ReadURL, or nil without one. It
// serves reads only; its lag is measured by ReadSource.
func (db *DB) Replica() *DB { return db.replica }

// readPool serves the reads a replica may answer: lists a person looks at,
// where a second of lag is harmless. Bearer checks, refreshes and anything a
// write depends on read the primary.
func (db *DB) readPool() *pgxpool.Pool {
	if db.replica != nil {
		return db.replica.pool
	}
	return db.pool
}

// Close closes every connection, the replica's included.
func (db *DB) Close() {
	if db.replica != nil {
		db.replica.Close()
	}
	db.pool.Close()
}

// Pool exposes the pool for stats and for tests that must hold a transaction
// open; application code goes through DB's methods.
func (db *DB) Pool() *pgxpool.Pool { return db.pool }

// Ping checks that the database answers.
func (db *DB) Ping(ctx context.Context) error {
	ctx, cancel := withTimeout(ctx)
	defer cancel()
	if err := db.pool.Ping(ctx); err != nil {
		return fmt.Errorf("postgres: ping: %w", err)
	}
	return nil
}

// withTimeout bounds a call by DefaultTimeout, or by ctx's deadline when that
// is sooner. A request's own deadline (10 s) is not enough: a database that
// accepts connections but never answers would hold every request that long.
func withTimeout(ctx context.Context) (context.Context, context.CancelFunc) {
	return context.WithTimeout(ctx, DefaultTimeout)
}

// ConnectTimeout bounds opening one connection, unless DATABASE_URL sets
// connect_timeout: a database that refuses or drops connections is reported
// within it instead of holding requests.
const ConnectTimeout = 2 * time.Second

// ErrUnavailable marks errors that mean the database could not be reached
// or did not answer in time, as opposed to refusing a statement: callers
// answer them with 503 and Retry-After. Test with Unavailable.
var ErrUnavailable = errors.New("database unavailable")

// Unavailable reports whether err means the database could not be reached
// or did not answer in time (a connect failure, a network error, a timeout
// or a connection lost mid-statement), not that it refused the statement.
func Unavailable(err error) bool {
	if err == nil {
		return false
	}
	if errors.Is(err, ErrUnavailable) {
		return true
	}
	var pgErr *pgconn.PgError
	if errors.As(err, &pgErr) {
		// The server answered. Only its "cannot serve you now" classes count:
		// 08 connection exceptions, 57P0x shutdowns, 53300 too many clients.
		return strings.HasPrefix(pgErr.Code, "08") || strings.HasPrefix(pgErr.Code, "57P0") || pgErr.Code == "53300"
	}
	var connErr *pgconn.ConnectError
	var netErr net.Error
	return errors.As(err, &connErr) || errors.As(err, &netErr) || pgconn.Timeout(err) ||
		errors.Is(err, pgconn.ErrConnClosed) || pgconn.SafeToRetry(err) ||
		errors.Is(err, io.ErrUnexpectedEOF) || errors.Is(err, io.EOF) || errors.Is(err, context.DeadlineExceeded)
}

// Tx is one open transaction. Its methods each run one statement (or one
// round trip) inside it, so the rules that read, decide and write keep the
// transaction in their own code: they call InTx or InRevokeTx and then the
// statements in the order the rule needs.
//
// A Tx carries the context its transaction runs under (for InRevokeTx, the
// MaxRevokeTx bound), so that no statement of it can run under a looser one;
// it is valid only until fn returns.
type Tx struct {
	ctx context.Context
	tx  pgx.Tx
	// cutoffs: the schema has migration 000008, as the DB knew it when the
	// transaction began.
	cutoffs bool
	// audits: the schema has audit_events (migration 000011).
	audits bool
	// sessionColumns: the schema has sessions.client_id and the status list
	// columns (migrations 000007 and 000009; known from 000012 on), so a
	// session insert needs no savepoint to fall back without them.
	sessionColumns bool
	// mintLocked: issuerCutoffLock is held shared (InMintTx took it as the
	// transaction opened, or lockMintFloor did).
	mintLocked bool
}

// InTx runs fn in one transaction, committed if fn returns nil and rolled
// back otherwise; fn's error is returned as it is. The transaction gets the
// default deadline unless ctx has one.
//
// A transaction that failed because audit_events is gone (a rollback's
// migrate down, not yet seen by RefreshSchema) is run once more without
// audit rows: the audit log must never be why a change fails.
func (db *DB) InTx(ctx context.Context, fn func(tx *Tx) error) error {
	return db.inTx(ctx, pgx.TxOptions{}, fn)
}

// inTx is InTx beginning with opts.
func (db *DB) inTx(ctx context.Context, opts pgx.TxOptions, fn func(tx *Tx) error) error {
	ctx, cancel := withTimeout(ctx)
	defer cancel()
	run := func() error {
		return pgx.BeginTxFunc(ctx, db.pool, opts, func(tx pgx.Tx) error {
			return fn(&Tx{ctx: ctx, tx: tx, cutoffs: db.cutoffs.Load(), audits: db.audits.Load(), sessionColumns: db.fleet.Load()})
		})
	}
	err := run()
	if err != nil && db.noAuditTable(err) {
		err = run()
	}
	return err
}

// missingTable reports whether err is PostgreSQL's undefined_table for
// table.
func missingTable(err error, table string) bool {
	var pgErr *pgconn.PgError
	return errors.As(err, &pgErr) && pgErr.Code == "42P01" && strings.Contains(pgErr.Message, `"`+table+`"`)
}

// noAuditTable reports whether err is audit_events missing, and if so
// stops auditing until RefreshSchema sees the table again.
func (db *DB) noAuditTable(err error) bool {
	if !missingTable(err, "audit_events") {
		return false
	}
	db.audits.Store(false)
	return true
}

// translate maps driver errors to this package's sentinels.
func translate(err error) error {
	if errors.Is(err, pgx.ErrNoRows) {
		return ErrNotFound
	}
	var pgErr *pgconn.PgError
	if errors.As(err, &pgErr) && pgErr.Code == "23505" {
		return fmt.Errorf("%w: %s", ErrConflict, pgErr.ConstraintName)
	}
	return err
}
