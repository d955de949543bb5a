package postgres

import (
	"context"
	"fmt"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/seedc5a8123e/authd/internal/audit"
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
// Its audit row commits with it.
func (db *DB) CreateUser(ctx context.Context, u User) error {
	return db.InTx(ctx, func(tx *Tx) error {
		const q = `INSERT INTO users (id, username, password_hash, role, disabled_at, created_at, updated_at)
			VALUES (@id, @username, @hash, @role, @disabled_at, @created_at, @updated_at)`
		_, err := tx.tx.Exec(tx.ctx, q, pgx.NamedArgs{
			"id": u.ID, "username": u.Username, "hash": u.PasswordHash, "role": u.Role,
			"disabled_at": u.DisabledAt, "created_at": u.CreatedAt, "updated_at": u.UpdatedAt,
		})
		if err != nil {
			return fmt.Errorf("create user %s: %w", u.ID, translate(err))
		}
		return tx.Audit(AuditEvent{At: u.CreatedAt, Type: audit.UserCreated, SubjectUserID: u.ID,
			Detail: map[string]any{"username": u.Username, "role": u.Role}})
	})
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

// UserByUsername is DB.UserByUsername in tx, on the connection the
// transaction already holds (a login's check, InLoginTx).
func (tx *Tx) UserByUsername(username string) (User, error) {
	q := `SELECT ` + userColumns + ` FROM users WHERE lower(username) = lower($1)`
	rows, _ := tx.tx.Query(tx.ctx, q, username)
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

// ListUsers returns up to limit users whose lower(username) contains
// lower(query) (all when query is empty) and sorts after lower(after), in
// lower(username) order, which users_username_lower_key serves.
func (db *DB) ListUsers(ctx context.Context, query, after string, limit int) ([]User, error) {
	ctx, cancel := withTimeout(ctx)
	defer cancel()
	q := `SELECT ` + userColumns + ` FROM users
		WHERE ($1 = '' OR strpos(lower(username), lower($1)) > 0) AND ($2 = '' OR lower(username) > lower($2))
		ORDER BY lower(username) LIMIT $3`
	rows, _ := db.readPool().Query(ctx, q, query, after, limit)
	out, err := pgx.CollectRows(rows, pgx.RowToStructByName[User])
	if err != nil {
		return nil, fmt.Errorf("list users: %w", err)
	}
	return out, nil
}

// LockEnabledAdmins locks every enabled admin for the rest of the
// transaction and returns how many there are. Taken before a change that
// could disable or demote an admin, it makes such changes queue up, so a
// rule such as "keep one enabled admin" is checked against a count no
// concurrent change can invalidate before the commit. The rows are locked in
// id order, so two such transactions cannot deadlock.
func (tx *Tx) LockEnabledAdmins() (int, error) {
	rows, _ := tx.tx.Query(tx.ctx, `SELECT id::text FROM users WHERE role = 'admin' AND disabled_at IS NULL ORDER BY id FOR UPDATE`)
	admins, err := pgx.CollectRows(rows, pgx.RowTo[string])
	if err != nil {
		return 0, fmt.Errorf("lock admins: %w", err)
	}
	return len(admins), nil
}

// LockUser loads user id and locks its row for the rest of the transaction.
// ErrNotFound when no user has id.
func (tx *Tx) LockUser(id string) (User, error) {
	rows, _ := tx.tx.Query(tx.ctx, `SELECT `+userColumns+` FROM users WHERE id = $1 FOR UPDATE`, id)
	u, err := pgx.CollectExactlyOneRow(rows, pgx.RowToStructByName[User])
	if err != nil {
		return User{}, fmt.Errorf("user %s: %w", id, translate(err))
	}
	return u, nil
}

// UpdateUser sets the user's disabled_at and role and returns the row as
// written. Revocations the change implies belong in the same transaction
// (Tx.RevokeUserSessions), so the change never commits without them.
// ErrNotFound when no user has id.
func (tx *Tx) UpdateUser(id string, disabledAt *time.Time, role string, at time.Time) (User, error) {
	const q = `UPDATE users SET disabled_at = @disabled_at, role = @role, updated_at = @at WHERE id = @id
		RETURNING ` + userColumns
	rows, _ := tx.tx.Query(tx.ctx, q, pgx.NamedArgs{"disabled_at": disabledAt, "role": role, "at": at, "id": id})
	u, err := pgx.CollectExactlyOneRow(rows, pgx.RowToStructByName[User])
	if err != nil {
		return User{}, fmt.Errorf("update user %s: %w", id, translate(err))
	}
	return u, nil
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
	// Event is the audit type written when the hash changes
	// (audit.PasswordChanged or audit.PasswordReset); empty writes none.
	Event string
}

// SetPasswordHash applies c; changed reports whether it wrote, and revoked
// what it revoked: without KeepSID, all of the user's sessions under a user
// cutoff (Tx.CutOffUser, its time read from c.Revoke.Now, or c.Revoke.At
// when that is nil). ErrNotFound when no user has the id.
func (db *DB) SetPasswordHash(ctx context.Context, c PasswordChange) (changed bool, revoked Revocations, err error) {
	err = db.InRevokeTx(ctx, func(tx *Tx) error {
		const q = `WITH u AS (
				UPDATE users SET password_hash = $3, updated_at = $4, credentials_version = credentials_version + 1
				WHERE id = $1 AND ($2::text IS NULL OR password_hash = $2) RETURNING 1)
			SELECT EXISTS (SELECT 1 FROM u), EXISTS (SELECT 1 FROM users WHERE id = $1)`
		var exists bool
		if err := tx.tx.QueryRow(tx.ctx, q, c.UserID, c.Expected, c.Hash, c.At).Scan(&changed, &exists); err != nil {
			return fmt.Errorf("set password hash of %s: %w", c.UserID, err)
		}
		if !exists {
			return fmt.Errorf("set password hash of %s: %w", c.UserID, ErrNotFound)
		}
		if !changed {
			return nil
		}
		if c.Event != "" {
			if err := tx.Audit(AuditEvent{At: c.At, Type: c.Event, SubjectUserID: c.UserID}); err != nil {
				return err
			}
		}
		if c.Revoke == nil {
			return nil
		}
		var err error
		if c.KeepSID == "" {
			revoked, err = tx.CutOffUser(UserCutoff{UserID: c.UserID, Reason: c.Revoke.Reason, By: c.Revoke.By, Now: c.Revoke.now()})
			return err
		}
		revoked.Sessions, err = tx.RevokeUserSessions(c.UserID, c.KeepSID, *c.Revoke)
		return err
	})
	if err != nil {
		return false, Revocations{}, err
	}
	return changed, revoked, nil
}
