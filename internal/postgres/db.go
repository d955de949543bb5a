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
}

// Options tune the pool beyond what DATABASE_URL says. The zero value
// leaves everything to the URL and pgx's defaults.
type Options struct {
	// MaxConns, when positive, is the pool's size (AUTHD_DB_MAX_CONNS).
	MaxConns int
}

// Open connects to url and checks the connection.
func Open(ctx context.Context, url string) (*DB, error) { return OpenWith(ctx, url, Options{}) }

// OpenWith is Open with o applied.
func OpenWith(ctx context.Context, url string, o Options) (*DB, error) {
	cfg, err := pgxpool.ParseConfig(url)
	if err != nil {
		// pgx's message can echo the URL, password included.
		return nil, errors.New("postgres: DATABASE_URL cannot be parsed")
	}
	if !strings.Contains(url, "connect_timeout") {
		cfg.ConnConfig.ConnectTimeout = ConnectTimeout
	}
	if o.MaxConns > 0 {
		cfg.MaxConns = int32(min(o.MaxConns, 1<<16))
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
	return db, nil
}

// Close closes every connection.
func (db *DB) Close() { db.pool.Close() }

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
}

// InTx runs fn in one transaction, committed if fn returns nil and rolled
// back otherwise; fn's error is returned as it is. The transaction gets the
// default deadline unless ctx has one.
func (db *DB) InTx(ctx context.Context, fn func(tx *Tx) error) error {
	return db.inTx(ctx, pgx.TxOptions{}, fn)
}

// inTx is InTx beginning with opts.
func (db *DB) inTx(ctx context.Context, opts pgx.TxOptions, fn func(tx *Tx) error) error {
	ctx, cancel := withTimeout(ctx)
	defer cancel()
	return pgx.BeginTxFunc(ctx, db.pool, opts, func(tx pgx.Tx) error {
		return fn(&Tx{ctx: ctx, tx: tx})
	})
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
