package postgres

import (
	"context"
	"fmt"
	"time"

	"github.com/jackc/pgx/v5"
)

// User is a row of users.
type User struct {
	ID           string     `db:"id"`
	Username     string     `db:"username"`
	PasswordHash string     `db:"password_hash"`
	Role         string     `db:"role"`
	DisabledAt   *time.Time `db:"disabled_at"`
	CreatedAt    time.Time  `db:"created_at"`
	UpdatedAt    time.Time  `db:"updated_at"`
	// CredentialsVersion changes whenever the password is set or reset.
	CredentialsVersion int64 `db:"credentials_version"`
}

const userColumns = `id::text, username, password_hash, role, disabled_at, created_at, updated_at, credentials_version`

// CreateUser inserts u. A username taken in any letter case is ErrConflict.
func (db *DB) CreateUser(ctx context.Context, u User) error {
	ctx, cancel := withTimeout(ctx)
	defer cancel()
	const q = `INSERT INTO users (id, username, password_hash, role, disabled_at, created_at, updated_at)
		VALUES (@id, @username, @hash, @role, @disabled_at, @created_at, @updated_at)`
	_, err := db.pool.Exec(ctx, q, pgx.NamedArgs{
		"id": u.ID, "username": u.Username, "hash": u.PasswordHash, "role": u.Role,
		"disabled_at": u.DisabledAt, "created_at": u.CreatedAt, "updated_at": u.UpdatedAt,
	})
	if err != nil {
		return fmt.Errorf("create user %s: %w", u.ID, translate(err))
	}
	return nil
}

// UserByUsername finds a user ignoring letter case (users_username_lower_key).
func (db *DB) UserByUsername(ctx context.Context, username string) (User, error) {
	ctx, cancel := withTimeout(ctx)
	defer cancel()
	q := `SELECT ` + userColumns + ` FROM users WHERE lower(username) = lower($1)`
	rows, _ := db.pool.Query(ctx, q, username)
	u, err := pgx.CollectExactlyOneRow(rows, pgx.RowToStructByName[User])
	if err != nil {
		return User{}, fmt.Errorf("user by name: %w", translate(err))
	}
	return u, nil
}

// UserByID finds a user by id.
func (db *DB) UserByID(ctx context.Context, id string) (User, error) {
	ctx, cancel := withTimeout(ctx)
	defer cancel()
	q := `SELECT ` + userColumns + ` FROM users WHERE id = $1`
	rows, _ := db.pool.Query(ctx, q, id)
	u, err := pgx.CollectExactlyOneRow(rows, pgx.RowToStructByName[User])
	if err != nil {
		return User{}, fmt.Errorf("user %s: %w", id, translate(err))
	}
	return u, nil
}

// UpdatePasswordHash replaces a user's hash only if it is still expected,
// so a login-time rehash never overwrites a password changed meanwhile.
func (db *DB) UpdatePasswordHash(ctx context.Context, id, expected, hash string, at time.Time) error {
	ctx, cancel := withTimeout(ctx)
	defer cancel()
	const q = `UPDATE users SET password_hash = $3, updated_at = $4 WHERE id = $1 AND password_hash = $2`
	if _, err := db.pool.Exec(ctx, q, id, expected, hash, at); err != nil {
		return fmt.Errorf("update password hash of %s: %w", id, err)
	}
	return nil
}

// HasAdmin reports whether any enabled admin exists.
func (db *DB) HasAdmin(ctx context.Context) (bool, error) {
	ctx, cancel := withTimeout(ctx)
	defer cancel()
	var ok bool
	const q = `SELECT EXISTS (SELECT 1 FROM users WHERE role = 'admin' AND disabled_at IS NULL)`
	if err := db.pool.QueryRow(ctx, q).Scan(&ok); err != nil {
		return false, fmt.Errorf("has admin: %w", err)
	}
	return ok, nil
}

// SetUserDisabled sets or clears disabled_at. Revoking the user's sessions is
// the caller's job, in the same request.
func (db *DB) SetUserDisabled(ctx context.Context, id string, disabledAt *time.Time, at time.Time) error {
	ctx, cancel := withTimeout(ctx)
	defer cancel()
	const q = `UPDATE users SET disabled_at = $2, updated_at = $3 WHERE id = $1`
	tag, err := db.pool.Exec(ctx, q, id, disabledAt, at)
	if err != nil {
		return fmt.Errorf("set disabled of %s: %w", id, err)
	}
	if tag.RowsAffected() == 0 {
		return fmt.Errorf("set disabled of %s: %w", id, ErrNotFound)
	}
	return nil
}
