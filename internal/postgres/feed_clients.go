package postgres

import (
	"context"
	"fmt"
	"time"

	"github.com/jackc/pgx/v5"
)

// FleetSchema is the first schema version with feed_clients (migration
// 000012).
const FleetSchema = 12

// FeedPoll is a service identity's newest feed poll as one replica saw it.
type FeedPoll struct {
	UserID    string
	At        time.Time
	Cursor    int64 // the cursor the poll received, Unix seconds
	UserAgent string
}

// FeedClient is a row of feed_clients with the identity's name.
type FeedClient struct {
	FeedPoll
	Username string
}

// Fleet reports whether the schema has feed_clients, as last read by
// RefreshSchema.
func (db *DB) Fleet() bool { return db.fleet.Load() }

// RecordFeedPolls upserts polls, one row per identity, never moving a
// row's time or cursor backwards: replicas flush in any order.
func (db *DB) RecordFeedPolls(ctx context.Context, polls []FeedPoll) error {
	if len(polls) == 0 || !db.Fleet() {
		return nil
	}
	ctx, cancel := withTimeout(ctx)
	defer cancel()
	ids, ats, cursors, uas := make([]string, len(polls)), make([]time.Time, len(polls)), make([]int64, len(polls)), make([]string, len(polls))
	for i, p := range polls {
		ids[i], ats[i], cursors[i], uas[i] = p.UserID, p.At, p.Cursor, p.UserAgent
	}
	// Sorted by id, so two replicas' flushes lock rows in one order.
	const q = `INSERT INTO feed_clients AS f (user_id, last_poll_at, cursor, user_agent)
		SELECT id, at, cur, NULLIF(ua, '') FROM unnest(@ids::uuid[], @ats::timestamptz[], @cursors::bigint[], @uas::text[])
			AS p (id, at, cur, ua) ORDER BY id
		ON CONFLICT (user_id) DO UPDATE SET
			last_poll_at = GREATEST(f.last_poll_at, EXCLUDED.last_poll_at),
			cursor = GREATEST(f.cursor, EXCLUDED.cursor),
			user_agent = CASE WHEN EXCLUDED.last_poll_at >= f.last_poll_at THEN EXCLUDED.user_agent ELSE f.user_agent END`
	if _, err := db.pool.Exec(ctx, q, pgx.NamedArgs{"ids": ids, "ats": ats, "cursors": cursors, "uas": uas}); err != nil {
		return fmt.Errorf("record feed polls: %w", err)
	}
	return nil
}

// FeedClients lists every identity that ever polled, with its name, in name
// order.
func (db *DB) FeedClients(ctx context.Context) ([]FeedClient, error) {
	if !db.Fleet() {
		return nil, nil
	}
	ctx, cancel := withTimeout(ctx)
	defer cancel()
	const q = `SELECT f.user_id::text, f.last_poll_at, f.cursor, COALESCE(f.user_agent, ''), COALESCE(u.username, '')
		FROM feed_clients f LEFT JOIN users u ON u.id = f.user_id ORDER BY lower(u.username), f.user_id`
	rows, _ := db.pool.Query(ctx, q)
	out, err := pgx.CollectRows(rows, func(r pgx.CollectableRow) (FeedClient, error) {
		var c FeedClient
		err := r.Scan(&c.UserID, &c.At, &c.Cursor, &c.UserAgent, &c.Username)
		return c, err
	})
	if err != nil {
		return nil, fmt.Errorf("feed clients: %w", err)
	}
	return out, nil
}

// DeleteFeedClients forgets the identities that have not polled since
// before, or no longer exist: GET /verifiers lists the fleet, not everyone
// that ever polled. The table holds a row per service identity, so one
// statement suffices.
func (db *DB) DeleteFeedClients(ctx context.Context, before time.Time) (int64, error) {
	if !db.Fleet() {
		return 0, nil
	}
	ctx, cancel := withTimeout(ctx)
	defer cancel()
	tag, err := db.pool.Exec(ctx, `DELETE FROM feed_clients f
		WHERE f.last_poll_at < $1 OR NOT EXISTS (SELECT 1 FROM users u WHERE u.id = f.user_id)`, before)
	if err != nil {
		return 0, fmt.Errorf("delete silent feed clients: %w", err)
	}
	return tag.RowsAffected(), nil
}
