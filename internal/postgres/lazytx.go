package postgres

import (
	"context"
	"errors"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"
	"github.com/jackc/pgx/v5/pgtype"
	"github.com/jackc/pgx/v5/pgxpool"
)

// lazyTx is a transaction whose opening statements (BEGIN and the limits of
// a revoking transaction) travel in one pipeline with its first statement,
// saving the round trip pgx's Begin spends on them alone (issue 14: each
// round trip costs PostgreSQL about 140 us of CPU here, more than the
// floor's whole UPDATE). The opening statements come first in the
// pipeline, so the limits bind that statement as they bind the rest.
//
// It implements pgx.Tx for the statements Tx's methods run: Exec, Query,
// QueryRow, SendBatch. Nested transactions, COPY and large objects are not
// supported; nothing in this package needs them.
type lazyTx struct {
	conn      *pgxpool.Conn
	open      []string // sent before the first statement
	begun     bool     // open has been sent
	done      bool     // committed or rolled back
	committed bool     // by execCommit
}

var errLazyTxUnsupported = errors.New("postgres: not supported in this transaction")

// runLazyTx runs fn in a lazyTx opened by open on a connection of pool:
// committed if fn returns nil, rolled back otherwise.
func runLazyTx(ctx context.Context, pool *pgxpool.Pool, open []string, fn func(pgx.Tx) error) (err error) {
	conn, err := pool.Acquire(ctx)
	if err != nil {
		return err
	}
	// A connection left inside a transaction (a failed rollback) is
	// destroyed by Release, never reused (pgxpool checks TxStatus).
	defer conn.Release()
	tx := &lazyTx{conn: conn, open: open}
	defer func() {
		if !tx.done {
			_ = tx.Rollback(ctx)
		}
	}()
	if err := fn(tx); err != nil {
		return err
	}
	if tx.committed {
		return nil // by its last statement (execCommit)
	}
	return tx.Commit(ctx)
}

// execCommit runs sql as the transaction's last statement, with COMMIT in
// the same pipeline (and the opening statements before it, if none was sent
// yet): one round trip fewer than Exec and Commit. If sql fails, nothing of
// the transaction commits. Any statement after it fails with
// pgx.ErrTxClosed, so a misplaced call cannot go unnoticed.
func (tx *lazyTx) execCommit(ctx context.Context, sql string, args []any) error {
	return tx.commitWith(ctx, sql, args, func(br pgx.BatchResults) error {
		_, err := br.Exec()
		return err
	})
}

// queryRowCommit is execCommit for a statement returning at most one row,
// scanned into dest; no row is pgx.ErrNoRows, and the transaction commits.
func (tx *lazyTx) queryRowCommit(ctx context.Context, sql string, args []any, dest ...any) error {
	return tx.commitWith(ctx, sql, args, func(br pgx.BatchResults) error {
		return br.QueryRow().Scan(dest...)
	})
}

// commitWith sends sql and COMMIT in one pipeline and reads sql's results
// with read.
func (tx *lazyTx) commitWith(ctx context.Context, sql string, args []any, read func(pgx.BatchResults) error) error {
	if tx.done {
		return pgx.ErrTxClosed
	}
	opened := !tx.begun
	var b *pgx.Batch
	if opened {
		b = tx.withOpen(sql, args)
	} else {
		b = &pgx.Batch{}
		b.Queue(sql, args...)
	}
	b.Queue("commit")
	tx.done = true
	br := tx.conn.SendBatch(ctx, b)
	var err, noRows error
	if opened {
		err = tx.skipOpen(br)
	}
	if err == nil {
		// No row is an answer, not a failure: the COMMIT still runs.
		if err = read(br); errors.Is(err, pgx.ErrNoRows) {
			noRows, err = err, nil
		}
	}
	var tag pgconn.CommandTag
	if err == nil {
		tag, err = br.Exec() // the COMMIT
	}
	if cerr := br.Close(); err == nil {
		err = cerr
	}
	if err == nil && tag.String() == "ROLLBACK" {
		err = pgx.ErrTxCommitRollback
	}
	if err != nil {
		// A failed statement skips the rest of the pipeline, COMMIT
		// included, and leaves the transaction aborted: end it.
		if tx.conn.Conn().PgConn().TxStatus() != 'I' {
			tx.done = false
			_ = tx.Rollback(ctx)
		}
		return err
	}
	tx.committed = true
	return noRows
}

// withOpen returns a batch of tx's opening statements followed by the
// statement; the caller reads len(tx.open) results first (skipOpen).
func (tx *lazyTx) withOpen(sql string, args []any) *pgx.Batch {
	b := &pgx.Batch{}
	for _, s := range tx.open {
		b.Queue(s)
	}
	b.Queue(sql, args...)
	tx.begun = true
	return b
}

// skipOpen reads the opening statements' results of br.
func (tx *lazyTx) skipOpen(br pgx.BatchResults) error {
	for range tx.open {
		if _, err := br.Exec(); err != nil {
			return err
		}
	}
	return nil
}

func (tx *lazyTx) Exec(ctx context.Context, sql string, args ...any) (pgconn.CommandTag, error) {
	if tx.done {
		return pgconn.CommandTag{}, pgx.ErrTxClosed
	}
	if tx.begun {
		return tx.conn.Exec(ctx, sql, args...)
	}
	br := tx.conn.SendBatch(ctx, tx.withOpen(sql, args))
	err := tx.skipOpen(br)
	var tag pgconn.CommandTag
	if err == nil {
		tag, err = br.Exec()
	}
	if cerr := br.Close(); err == nil {
		err = cerr
	}
	return tag, err
}

func (tx *lazyTx) Query(ctx context.Context, sql string, args ...any) (pgx.Rows, error) {
	if tx.done {
		return &failedRows{err: pgx.ErrTxClosed}, pgx.ErrTxClosed
	}
	if tx.begun {
		return tx.conn.Query(ctx, sql, args...)
	}
	br := tx.conn.SendBatch(ctx, tx.withOpen(sql, args))
	if err := tx.skipOpen(br); err != nil {
		_ = br.Close()
		return &failedRows{err: err}, err
	}
	rows, err := br.Query()
	return &batchRows{Rows: rows, br: br}, err
}

func (tx *lazyTx) QueryRow(ctx context.Context, sql string, args ...any) pgx.Row {
	rows, _ := tx.Query(ctx, sql, args...)
	return lazyRow{rows}
}

// SendBatch sends b, preceded by the opening statements when it is the
// transaction's first round trip (a login's claim is such a batch: the
// limits then bind its locks and its read alike).
func (tx *lazyTx) SendBatch(ctx context.Context, b *pgx.Batch) pgx.BatchResults {
	if tx.done {
		return pgx.FailedBatchResults(b, pgx.ErrTxClosed)
	}
	if tx.begun {
		return tx.conn.SendBatch(ctx, b)
	}
	withOpen := &pgx.Batch{}
	for _, s := range tx.open {
		withOpen.Queue(s)
	}
	withOpen.QueuedQueries = append(withOpen.QueuedQueries, b.QueuedQueries...)
	tx.begun = true
	br := tx.conn.SendBatch(ctx, withOpen)
	if err := tx.skipOpen(br); err != nil {
		_ = br.Close()
		return pgx.FailedBatchResults(b, err)
	}
	return br
}

// Commit commits; a transaction that sent nothing has nothing to commit.
func (tx *lazyTx) Commit(ctx context.Context) error {
	if tx.done {
		return pgx.ErrTxClosed
	}
	tx.done = true
	if !tx.begun {
		return nil
	}
	tag, err := tx.conn.Exec(ctx, "commit")
	if err != nil {
		if tx.conn.Conn().PgConn().TxStatus() != 'I' {
			_ = tx.conn.Conn().Close(ctx)
		}
		return err
	}
	if tag.String() == "ROLLBACK" {
		return pgx.ErrTxCommitRollback
	}
	return nil
}

func (tx *lazyTx) Rollback(ctx context.Context) error {
	if tx.done {
		return pgx.ErrTxClosed
	}
	tx.done = true
	if !tx.begun {
		return nil
	}
	// As pgx does: a rollback that cannot be sent closes the connection, so
	// the transaction dies with it. Not ctx, which may be what ended fn.
	rctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), DefaultTimeout)
	defer cancel()
	if _, err := tx.conn.Exec(rctx, "rollback"); err != nil {
		_ = tx.conn.Conn().Close(rctx)
		return err
	}
	return nil
}

func (tx *lazyTx) Begin(context.Context) (pgx.Tx, error) { return nil, errLazyTxUnsupported }

func (tx *lazyTx) CopyFrom(context.Context, pgx.Identifier, []string, pgx.CopyFromSource) (int64, error) {
	return 0, errLazyTxUnsupported
}

func (tx *lazyTx) LargeObjects() pgx.LargeObjects { return pgx.LargeObjects{} }

func (tx *lazyTx) Prepare(ctx context.Context, name, sql string) (*pgconn.StatementDescription, error) {
	return tx.conn.Conn().Prepare(ctx, name, sql)
}

func (tx *lazyTx) Conn() *pgx.Conn { return tx.conn.Conn() }

// batchRows are the rows of a batch's last statement; closing them closes
// the batch, whose error they then report.
type batchRows struct {
	pgx.Rows
	br  pgx.BatchResults
	err error
}

func (r *batchRows) Close() {
	if r.br == nil {
		return
	}
	r.Rows.Close()
	r.err = r.br.Close()
	r.br = nil
}

func (r *batchRows) Err() error {
	if err := r.Rows.Err(); err != nil {
		return err
	}
	return r.err
}

func (r *batchRows) Next() bool {
	if r.Rows.Next() {
		return true
	}
	r.Close()
	return false
}

// lazyRow is QueryRow's row over Query's rows, as pgx's own.
type lazyRow struct{ rows pgx.Rows }

func (r lazyRow) Scan(dest ...any) error {
	defer r.rows.Close()
	if err := r.rows.Err(); err != nil {
		return err
	}
	if !r.rows.Next() {
		if err := r.rows.Err(); err != nil {
			return err
		}
		return pgx.ErrNoRows
	}
	if err := r.rows.Scan(dest...); err != nil {
		return err
	}
	r.rows.Close()
	return r.rows.Err()
}

// failedRows report err and hold nothing.
type failedRows struct {
	pgx.Rows
	err error
}

func (r *failedRows) Close()                                       {}
func (r *failedRows) Err() error                                   { return r.err }
func (r *failedRows) Next() bool                                   { return false }
func (r *failedRows) Scan(...any) error                            { return r.err }
func (r *failedRows) CommandTag() pgconn.CommandTag                { return pgconn.CommandTag{} }
func (r *failedRows) FieldDescriptions() []pgconn.FieldDescription { return nil }
func (r *failedRows) Values() ([]any, error)                       { return nil, r.err }
func (r *failedRows) RawValues() [][]byte                          { return nil }
func (r *failedRows) Conn() *pgx.Conn                              { return nil }
func (r *failedRows) TypeMap() *pgtype.Map                         { return nil }
