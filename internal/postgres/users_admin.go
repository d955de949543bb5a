package postgres

import (
	"context"
	"fmt"
	"time"

	"github.com/jackc/pgx/v5"
)

// ListUsers returns up to limit users whose lower(username) contains
// lower(query) (all when query is empty) and sorts after lower(after), in
// lower(username) order, which users_username_lower_key serves.
func (db *DB) ListUsers(ctx context.Context, query, after string, limit int) ([]User, error) {
	ctx, cancel := withTimeout(ctx)
	defer cancel()
	q := `SELECT ` + userColumns + ` FROM users
		WHERE ($1 = '' OR strpos(lower(username), lower($1)) > 0) AND ($2 = '' OR lower(username) > lower($2))
		ORDER BY lower(username) LIMIT $3`
	rows, _ := db.pool.Query(ctx, q, query, after, limit)
	out, err := pgx.CollectRows(rows, pgx.RowToStructByName[User])
	if err != nil {
		return nil, fmt.Errorf("list users: %w", err)
	}
	return out, nil
}

// UserChange is the new state UpdateUser writes.
type UserChange struct {
	DisabledAt *time.Time
	Role       string
	At         time.Time
}

// UpdateUser locks every enabled admin and the user id, lets decide choose the
// new state knowing how many enabled admins exist, and writes it in the same
// transaction. Locking the admins (in id order, so two updates cannot
// deadlock) makes concurrent demotions queue up, so a rule such as "keep one
// enabled admin" holds. decide's error aborts the update and is returned.
// ErrNotFound when no user has id.
func (db *DB) UpdateUser(ctx context.Context, id string, decide func(u User, enabledAdmins int) (UserChange, error)) (User, error) {
	ctx, cancel := withTimeout(ctx)
	defer cancel()
	var out User
	err := db.inTx(ctx, func(tx pgx.Tx) error {
		rows, _ := tx.Query(ctx, `SELECT id::text FROM users WHERE role = 'admin' AND disabled_at IS NULL ORDER BY id FOR UPDATE`)
		admins, err := pgx.CollectRows(rows, pgx.RowTo[string])
		if err != nil {
			return fmt.Errorf("lock admins: %w", err)
		}
		rows, _ = tx.Query(ctx, `SELECT `+userColumns+` FROM users WHERE id = $1 FOR UPDATE`, id)
		u, err := pgx.CollectExactlyOneRow(rows, pgx.RowToStructByName[User])
		if err != nil {
			return fmt.Errorf("user %s: %w", id, translate(err))
		}
		ch, err := decide(u, len(admins))
		if err != nil {
			return err
		}
		const q = `UPDATE users SET disabled_at = @disabled_at, role = @role, updated_at = @at WHERE id = @id
			RETURNING ` + userColumns
		rows, _ = tx.Query(ctx, q, pgx.NamedArgs{"disabled_at": ch.DisabledAt, "role": ch.Role, "at": ch.At, "id": id})
		out, err = pgx.CollectExactlyOneRow(rows, pgx.RowToStructByName[User])
		if err != nil {
			return fmt.Errorf("update user %s: %w", id, translate(err))
		}
		return nil
	})
	return out, err
}

// SetPasswordHash replaces a user's hash. With expected non-nil it writes only
// if the stored hash is still *expected; changed reports whether it wrote.
// ErrNotFound when no user has id.
func (db *DB) SetPasswordHash(ctx context.Context, id string, expected *string, hash string, at time.Time) (changed bool, err error) {
	ctx, cancel := withTimeout(ctx)
	defer cancel()
	const q = `WITH u AS (
			UPDATE users SET password_hash = $3, updated_at = $4
			WHERE id = $1 AND ($2::text IS NULL OR password_hash = $2) RETURNING 1)
		SELECT EXISTS (SELECT 1 FROM u), EXISTS (SELECT 1 FROM users WHERE id = $1)`
	var exists bool
	if err := db.pool.QueryRow(ctx, q, id, expected, hash, at).Scan(&changed, &exists); err != nil {
		return false, fmt.Errorf("set password hash of %s: %w", id, err)
	}
	if !exists {
		return false, fmt.Errorf("set password hash of %s: %w", id, ErrNotFound)
	}
	return changed, nil
}
