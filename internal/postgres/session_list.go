package postgres

import (
	"context"
	"fmt"
	"time"

	"github.com/jackc/pgx/v5"
)

// SessionQuery selects a page of one user's sessions, newest first.
type SessionQuery struct {
	UserID         string
	IncludeRevoked bool      // false: only sessions neither revoked nor expired at Now
	Now            time.Time // what "expired" is measured against
	// AfterCreatedAt and AfterID, both set or both zero, resume after the
	// last session of the previous page.
	AfterCreatedAt time.Time
	AfterID        string
	Limit          int
}

// UserSessions lists sessions by (created_at, id) descending, which
// sessions_user_id_created_at_idx serves.
func (db *DB) UserSessions(ctx context.Context, sq SessionQuery) ([]Session, error) {
	ctx, cancel := withTimeout(ctx)
	defer cancel()
	var after *time.Time
	var afterID *string
	if sq.AfterID != "" {
		after, afterID = &sq.AfterCreatedAt, &sq.AfterID
	}
	q := `SELECT ` + sessionColumns + ` FROM sessions
		WHERE user_id = @uid
		  AND (@all OR (revoked_at IS NULL AND expires_at > @now))
		  AND (@after::timestamptz IS NULL OR (created_at, id) < (@after::timestamptz, @after_id::uuid))
		ORDER BY created_at DESC, id DESC
		LIMIT @limit`
	rows, _ := db.pool.Query(ctx, q, pgx.NamedArgs{
		"uid": sq.UserID, "all": sq.IncludeRevoked, "now": sq.Now, "after": after, "after_id": afterID, "limit": sq.Limit,
	})
	out, err := pgx.CollectRows(rows, pgx.RowToStructByName[Session])
	if err != nil {
		return nil, fmt.Errorf("sessions of user %s: %w", sq.UserID, err)
	}
	return out, nil
}
