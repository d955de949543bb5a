package postgres

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/seedc5a8123e/authd/internal/audit"
)

// PrimarySecret is the id of a service identity's password
// (users.password_hash) among its secrets.
const PrimarySecret = "primary"

var (
	// ErrNoSecretSchema: secrets were to be added on a schema without
	// service_secrets (before migration 000012).
	ErrNoSecretSchema = errors.New("the database schema has no service secrets yet: run authd migrate up")
	// ErrTooManySecrets: the identity already holds two secrets.
	ErrTooManySecrets = errors.New("the service identity already holds two secrets; remove one first")
	// ErrLastSecret: removing the identity's only secret.
	ErrLastSecret = errors.New("the service identity's only secret cannot be removed; reset its password instead")
	// ErrNoSuchSecret: the identity holds no secret with the id.
	ErrNoSuchSecret = errors.New("no such service secret")
	// ErrNotService: the user is not a service identity.
	ErrNotService = errors.New("only service identities hold secrets")
)

// ServiceSecret is one of a service identity's secrets beyond its password.
type ServiceSecret struct {
	ID        string
	UserID    string
	Hash      string
	CreatedAt time.Time
}

// ServiceSecretHashes returns the hashes of userID's added secrets (none on
// a schema without them).
func (db *DB) ServiceSecretHashes(ctx context.Context, userID string) ([]string, error) {
	if !db.Fleet() {
		return nil, nil
	}
	ctx, cancel := withTimeout(ctx)
	defer cancel()
	rows, _ := db.pool.Query(ctx, `SELECT hash FROM service_secrets WHERE user_id = $1 ORDER BY created_at, id`, userID)
	out, err := pgx.CollectRows(rows, pgx.RowTo[string])
	if missingTable(err, "service_secrets") {
		return nil, nil // migrated down since RefreshSchema: no added secrets
	}
	if err != nil {
		return nil, fmt.Errorf("service secrets of %s: %w", userID, err)
	}
	return out, nil
}

// lockService locks the service identity userID and counts its added
// secrets.
func (tx *Tx) lockService(userID string) (int, error) {
	var role string
	var n int
	err := tx.tx.QueryRow(tx.ctx, `SELECT u.role, (SELECT count(*) FROM service_secrets WHERE user_id = u.id)
		FROM users u WHERE u.id = $1 FOR UPDATE OF u`, userID).Scan(&role, &n)
	if err != nil {
		return 0, fmt.Errorf("service %s: %w", userID, translate(err))
	}
	if role != "service" {
		return 0, ErrNotService
	}
	return n, nil
}

// AddServiceSecret adds s to its identity, which may hold its password and
// one more: ErrTooManySecrets beyond. No session is touched.
func (db *DB) AddServiceSecret(ctx context.Context, s ServiceSecret) error {
	if !db.Fleet() {
		return ErrNoSecretSchema
	}
	return db.InTx(ctx, func(tx *Tx) error {
		n, err := tx.lockService(s.UserID)
		if err != nil {
			return err
		}
		if n >= 1 {
			return ErrTooManySecrets
		}
		if _, err := tx.tx.Exec(tx.ctx, `INSERT INTO service_secrets (id, user_id, hash, created_at) VALUES ($1, $2, $3, $4)`,
			s.ID, s.UserID, s.Hash, s.CreatedAt); err != nil {
			return fmt.Errorf("add secret to %s: %w", s.UserID, err)
		}
		return tx.Audit(AuditEvent{At: s.CreatedAt, Type: audit.SecretAdded, SubjectUserID: s.UserID,
			Detail: map[string]any{"secret_id": s.ID}})
	})
}

// RemoveServiceSecret removes secret id of userID. Removing PrimarySecret
// makes the added secret the password (the row goes); removing the only
// secret is ErrLastSecret. Either way credentials_version moves on, so a
// login that checked the removed secret cannot still insert its session
// (CreateSession); no session is revoked. ErrNoSuchSecret for an unknown
// id, ErrNotFound for an unknown user.
func (db *DB) RemoveServiceSecret(ctx context.Context, userID, id string, at time.Time) error {
	if !db.Fleet() {
		if id == PrimarySecret {
			return ErrLastSecret
		}
		return fmt.Errorf("secret %s: %w", id, ErrNoSuchSecret)
	}
	return db.InTx(ctx, func(tx *Tx) error {
		if _, err := tx.lockService(userID); err != nil {
			return err
		}
		var q string
		if id == PrimarySecret {
			q = `WITH s AS (
					DELETE FROM service_secrets WHERE id = (
						SELECT id FROM service_secrets WHERE user_id = $1 ORDER BY created_at, id LIMIT 1)
					RETURNING hash)
				UPDATE users SET password_hash = s.hash, credentials_version = credentials_version + 1, updated_at = $2
				FROM s WHERE users.id = $1`
		} else {
			q = `WITH s AS (DELETE FROM service_secrets WHERE id = $3::uuid AND user_id = $1 RETURNING 1)
				UPDATE users SET credentials_version = credentials_version + 1, updated_at = $2
				FROM (SELECT count(*) AS n FROM s) c WHERE users.id = $1 AND c.n > 0`
		}
		args := []any{userID, at}
		if id != PrimarySecret {
			args = append(args, id)
		}
		tag, err := tx.tx.Exec(tx.ctx, q, args...)
		if err != nil {
			return fmt.Errorf("remove secret %s of %s: %w", id, userID, err)
		}
		if tag.RowsAffected() == 0 {
			if id == PrimarySecret {
				return ErrLastSecret
			}
			return fmt.Errorf("secret %s: %w", id, ErrNoSuchSecret)
		}
		return tx.Audit(AuditEvent{At: at, Type: audit.SecretRemoved, SubjectUserID: userID,
			Detail: map[string]any{"secret_id": id}})
	})
}
