package postgres

import (
	"context"
	"fmt"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/seedc5a8123e/authd/verifier"
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
	// Revoke, when set, revokes every live session of the user in the same
	// transaction.
	Revoke *RevokeRequest
}

// UpdateUser locks every enabled admin and the user id, lets decide choose the
// new state knowing how many enabled admins exist, and writes it in the same
// transaction. Locking the admins (in id order, so two updates cannot
// deadlock) makes concurrent demotions queue up, so a rule such as "keep one
// enabled admin" holds. When the change asks for it, the user's sessions are
// revoked in the same transaction, so the change never commits without its
// revocation; the revoked entries are returned for publishing. decide's
// error aborts the update and is returned. ErrNotFound when no user has id.
func (db *DB) UpdateUser(ctx context.Context, id string, decide func(u User, enabledAdmins int) (UserChange, error)) (User, []verifier.Revocation, error) {
	var (
		out     User
		revoked []verifier.Revocation
	)
	err := db.inRevokeTx(ctx, func(ctx context.Context, tx pgx.Tx) error {
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
		if ch.Revoke != nil {
			revoked, err = revokeUserSessions(ctx, tx, id, "", *ch.Revoke)
		}
		return err
	})
	return out, revoked, err
}

// PasswordChange replaces a user's password hash.
type PasswordChange struct {
	UserID string
	// Expected, when set, makes the write happen only if the stored hash is
	// still this one (a concurrent change wins).
	Expected *string
	Hash     string
	At       time.Time
	// Revoke, when set, revokes the user's sessions, except KeepSID, in the
	// same transaction.
	Revoke  *RevokeRequest
	KeepSID string
}

// SetPasswordHash applies c; changed reports whether it wrote, and revoked
// lists the sessions it revoked. ErrNotFound when no user has the id.
func (db *DB) SetPasswordHash(ctx context.Context, c PasswordChange) (changed bool, revoked []verifier.Revocation, err error) {
	err = db.inRevokeTx(ctx, func(ctx context.Context, tx pgx.Tx) error {
		const q = `WITH u AS (
				UPDATE users SET password_hash = $3, updated_at = $4, credentials_version = credentials_version + 1
				WHERE id = $1 AND ($2::text IS NULL OR password_hash = $2) RETURNING 1)
			SELECT EXISTS (SELECT 1 FROM u), EXISTS (SELECT 1 FROM users WHERE id = $1)`
		var exists bool
		if err := tx.QueryRow(ctx, q, c.UserID, c.Expected, c.Hash, c.At).Scan(&changed, &exists); err != nil {
			return fmt.Errorf("set password hash of %s: %w", c.UserID, err)
		}
		if !exists {
			return fmt.Errorf("set password hash of %s: %w", c.UserID, ErrNotFound)
		}
		if !changed || c.Revoke == nil {
			return nil
		}
		var err error
		revoked, err = revokeUserSessions(ctx, tx, c.UserID, c.KeepSID, *c.Revoke)
		return err
	})
	if err != nil {
		return false, nil, err
	}
	return changed, revoked, nil
}
