package postgres

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"
)

// ErrNoStatusLists means the schema predates migration 000009: there is no
// status_lists table and sessions have no status index. A binary runs on the
// schema before its own (migrations/README.md), so callers treat it as "the
// status list is not available yet", not as a failure.
var ErrNoStatusLists = errors.New("the schema has no status lists (before migration 000009)")

// noStatusSchema reports whether err is a statement refused because the
// schema has no status_lists table or no sessions.status_* column.
func noStatusSchema(err error) bool {
	var pgErr *pgconn.PgError
	if !errors.As(err, &pgErr) {
		return false
	}
	switch pgErr.Code {
	case "42P01": // undefined_table
		return strings.Contains(pgErr.Message, "status_lists")
	case "42703": // undefined_column
		return strings.Contains(pgErr.Message, "status_")
	}
	return false
}

// LeaseStatusList records a new list of size indexes, leased by the caller
// alone, whose sessions all expire before retireAfter, and returns its id.
// ErrNoStatusLists on a schema without the table.
func (db *DB) LeaseStatusList(ctx context.Context, size int, at, retireAfter time.Time) (int64, error) {
	ctx, cancel := withTimeout(ctx)
	defer cancel()
	const q = `INSERT INTO status_lists (size, created_at, retire_after) VALUES ($1, $2, $3) RETURNING id`
	var id int64
	if err := db.pool.QueryRow(ctx, q, size, at, retireAfter).Scan(&id); err != nil {
		if noStatusSchema(err) {
			return 0, ErrNoStatusLists
		}
		return 0, fmt.Errorf("lease status list: %w", err)
	}
	return id, nil
}

// StatusList is a list's row: its id, its size in indexes and when the last
// of its sessions has expired.
type StatusList struct {
	ID          int64     `db:"id"`
	Size        int       `db:"size"`
	RetireAfter time.Time `db:"retire_after"`
}

// LiveStatusLists lists the lists some session of which may still be live
// at now, by id. The table holds one row per list size logins, so this reads
// few rows. ErrNoStatusLists on a schema without the table.
func (db *DB) LiveStatusLists(ctx context.Context, now time.Time) ([]StatusList, error) {
	ctx, cancel := withTimeout(ctx)
	defer cancel()
	rows, _ := db.pool.Query(ctx, `SELECT id, size, retire_after FROM status_lists WHERE retire_after > $1 ORDER BY id`, now)
	out, err := pgx.CollectRows(rows, pgx.RowToStructByName[StatusList])
	if err != nil {
		if noStatusSchema(err) {
			return nil, ErrNoStatusLists
		}
		return nil, fmt.Errorf("live status lists: %w", err)
	}
	return out, nil
}

// StatusEntry is one set bit: index Idx of list List.
type StatusEntry struct {
	List int64
	Idx  int
}

// RevokedStatusSince returns the status entries of the sessions of lists
// revoked at or after since: the bits to set. Served by
// sessions_revoked_at_idx (since = the zero time reads every revoked session,
// which the pruning job bounds to those expired within the retention).
//
// This is the one query that says which bits are set. The issuer-wide cutoff
// (every session whose newest token was minted before T is revoked) becomes
// a second SELECT here, UNION ALL: COALESCE(last_refreshed_at, created_at) < T
// over the same lists.
func (db *DB) RevokedStatusSince(ctx context.Context, since time.Time, lists []int64) ([]StatusEntry, error) {
	if len(lists) == 0 {
		return nil, nil
	}
	ctx, cancel := withTimeout(ctx)
	defer cancel()
	const q = `SELECT status_list_id, status_idx FROM sessions
		WHERE revoked_at IS NOT NULL AND revoked_at >= $1 AND status_list_id = ANY($2)`
	rows, _ := db.pool.Query(ctx, q, since, lists)
	var e StatusEntry
	out, err := pgx.AppendRows(make([]StatusEntry, 0, 64), rows, func(r pgx.CollectableRow) (StatusEntry, error) {
		err := r.Scan(&e.List, &e.Idx)
		return e, err
	})
	if err != nil {
		if noStatusSchema(err) {
			return nil, ErrNoStatusLists
		}
		return nil, fmt.Errorf("revoked status entries since %s: %w", since.UTC().Format(time.RFC3339), err)
	}
	return out, nil
}
