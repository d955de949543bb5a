package postgres

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/jackc/pgx/v5"
)

// ErrNoSigningKeySchema: database signing keys were asked for on a schema
// without signing_keys (before migration 000013).
var ErrNoSigningKeySchema = errors.New("the database schema has no signing keys yet: run authd migrate up")

// signingKeyLock serialises every change of signing_keys across replicas:
// the first key, a rotation, the deletion of retired keys. Each of them
// decides on the rows it reads, so two at once would each add a key.
const signingKeyLock int64 = 0x61757468645f736b // "authd_sk"

// SigningKey is a row of signing_keys: a sealed private key and its
// schedule (keys.Timed). RetireAt is zero until a successor is scheduled.
type SigningKey struct {
	KID       string
	Alg       string
	Sealed    []byte
	KEKID     string
	CreatedAt time.Time
	PublishAt time.Time
	SignAt    time.Time
	RetireAt  time.Time
}

const signingKeyColumns = `kid, alg, sealed, kek_id, created_at, publish_at, sign_at, retire_at`

func scanSigningKeys(rows pgx.Rows) ([]SigningKey, error) {
	return pgx.CollectRows(rows, func(r pgx.CollectableRow) (SigningKey, error) {
		var k SigningKey
		var retire *time.Time
		err := r.Scan(&k.KID, &k.Alg, &k.Sealed, &k.KEKID, &k.CreatedAt, &k.PublishAt, &k.SignAt, &retire)
		if retire != nil {
			k.RetireAt = *retire
		}
		return k, err
	})
}

// SigningKeys returns every stored signing key, oldest first.
func (db *DB) SigningKeys(ctx context.Context) ([]SigningKey, error) {
	ctx, cancel := withTimeout(ctx)
	defer cancel()
	rows, _ := db.pool.Query(ctx, `SELECT `+signingKeyColumns+` FROM signing_keys ORDER BY created_at, kid`)
	out, err := scanSigningKeys(rows)
	if missingTable(err, "signing_keys") {
		return nil, ErrNoSigningKeySchema
	}
	if err != nil {
		return nil, fmt.Errorf("signing keys: %w", err)
	}
	return out, nil
}

// KeyChange is what a key change writes: the keys to add (each with its
// own RetireAt, zero for none), a
// retire time for every key still without one (zero: none), the retired
// keys to delete (those whose RetireAt is not after DeleteBefore; zero:
// none) and the audit row (Type empty: none).
type KeyChange struct {
	Add          []SigningKey
	RetireAt     time.Time
	DeleteBefore time.Time
	Audit        AuditEvent
}

// ChangeSigningKeys runs decide on the stored keys under the fleet-wide key
// lock and writes the change it returns, with its audit row, in the same
// transaction; decide returning a zero KeyChange writes nothing. It returns
// the keys as they are after the change.
func (db *DB) ChangeSigningKeys(ctx context.Context, decide func([]SigningKey) (KeyChange, error)) ([]SigningKey, error) {
	var after []SigningKey
	err := db.InTx(ctx, func(tx *Tx) error {
		if _, err := tx.tx.Exec(tx.ctx, `SELECT pg_advisory_xact_lock($1)`, signingKeyLock); err != nil {
			return fmt.Errorf("signing keys: lock: %w", err)
		}
		rows, _ := tx.tx.Query(tx.ctx, `SELECT `+signingKeyColumns+` FROM signing_keys ORDER BY created_at, kid`)
		before, err := scanSigningKeys(rows)
		if missingTable(err, "signing_keys") {
			return ErrNoSigningKeySchema
		}
		if err != nil {
			return fmt.Errorf("signing keys: %w", err)
		}
		c, err := decide(before)
		if err != nil {
			return err
		}
		if !c.RetireAt.IsZero() {
			if _, err := tx.tx.Exec(tx.ctx, `UPDATE signing_keys SET retire_at = $1 WHERE retire_at IS NULL`, c.RetireAt); err != nil {
				return fmt.Errorf("signing keys: schedule retirement: %w", err)
			}
		}
		for _, k := range c.Add {
			var retire *time.Time
			if !k.RetireAt.IsZero() {
				retire = &k.RetireAt
			}
			if _, err := tx.tx.Exec(tx.ctx, `INSERT INTO signing_keys (kid, alg, sealed, kek_id, created_at, publish_at, sign_at, retire_at)
				VALUES ($1, $2, $3, $4, $5, $6, $7, $8)`, k.KID, k.Alg, k.Sealed, k.KEKID, k.CreatedAt, k.PublishAt, k.SignAt, retire); err != nil {
				return fmt.Errorf("signing keys: add %s: %w", k.KID, err)
			}
		}
		if !c.DeleteBefore.IsZero() {
			if _, err := tx.tx.Exec(tx.ctx, `DELETE FROM signing_keys WHERE retire_at <= $1`, c.DeleteBefore); err != nil {
				return fmt.Errorf("signing keys: delete retired: %w", err)
			}
		}
		if c.Audit.Type != "" {
			if err := tx.Audit(c.Audit); err != nil {
				return err
			}
		}
		rows, _ = tx.tx.Query(tx.ctx, `SELECT `+signingKeyColumns+` FROM signing_keys ORDER BY created_at, kid`)
		after, err = scanSigningKeys(rows)
		if err != nil {
			return fmt.Errorf("signing keys: %w", err)
		}
		return nil
	})
	return after, err
}
