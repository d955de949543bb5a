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
// schedule. SupersededAt is zero while no newer key is scheduled to sign.
type SigningKey struct {
	KID          string
	Alg          string
	Sealed       []byte
	KEKID        string
	CreatedAt    time.Time
	PublishAt    time.Time
	SignAt       time.Time
	SupersededAt time.Time
}

const (
	selectSigningKeys = `SELECT kid, alg, sealed, kek_id, created_at, publish_at, sign_at, superseded_at
		FROM signing_keys ORDER BY created_at, kid`
	insertSigningKey = `INSERT INTO signing_keys (kid, alg, sealed, kek_id, created_at, publish_at, sign_at, superseded_at)
		VALUES (@kid, @alg, @sealed, @kek_id, @created_at, @publish_at, @sign_at, @superseded_at)`
	supersedeSigningKeys = `UPDATE signing_keys SET superseded_at = $1 WHERE superseded_at IS NULL`
	deleteSigningKeys    = `DELETE FROM signing_keys WHERE kid = ANY($1::text[])`
)

func scanSigningKeys(rows pgx.Rows) ([]SigningKey, error) {
	out, err := pgx.CollectRows(rows, func(r pgx.CollectableRow) (SigningKey, error) {
		var k SigningKey
		var superseded *time.Time
		err := r.Scan(&k.KID, &k.Alg, &k.Sealed, &k.KEKID, &k.CreatedAt, &k.PublishAt, &k.SignAt, &superseded)
		if superseded != nil {
			k.SupersededAt = *superseded
		}
		return k, err
	})
	if missingTable(err, "signing_keys") {
		return nil, ErrNoSigningKeySchema
	}
	if err != nil {
		return nil, fmt.Errorf("signing keys: %w", err)
	}
	return out, nil
}

// SigningKeys returns every stored signing key, oldest first.
func (db *DB) SigningKeys(ctx context.Context) ([]SigningKey, error) {
	ctx, cancel := withTimeout(ctx)
	defer cancel()
	rows, _ := db.pool.Query(ctx, selectSigningKeys)
	return scanSigningKeys(rows)
}

// LockSigningKeys takes the fleet-wide key lock for the transaction and
// returns the stored keys, oldest first, and the database's clock: a key
// change is decided on them, so two replicas never both add a key for one
// rotation, and a host whose clock is off can be refused.
func (tx *Tx) LockSigningKeys() ([]SigningKey, time.Time, error) {
	var now time.Time
	if err := tx.tx.QueryRow(tx.ctx, `SELECT clock_timestamp() FROM (SELECT pg_advisory_xact_lock($1)) l`, signingKeyLock).Scan(&now); err != nil {
		return nil, time.Time{}, fmt.Errorf("signing keys: lock: %w", err)
	}
	rows, _ := tx.tx.Query(tx.ctx, selectSigningKeys)
	keys, err := scanSigningKeys(rows)
	return keys, now, err
}

// AddSigningKey stores k.
func (tx *Tx) AddSigningKey(k SigningKey) error {
	var superseded *time.Time
	if !k.SupersededAt.IsZero() {
		superseded = &k.SupersededAt
	}
	if _, err := tx.tx.Exec(tx.ctx, insertSigningKey, pgx.NamedArgs{
		"kid": k.KID, "alg": k.Alg, "sealed": k.Sealed, "kek_id": k.KEKID, "created_at": k.CreatedAt,
		"publish_at": k.PublishAt, "sign_at": k.SignAt, "superseded_at": superseded,
	}); err != nil {
		return fmt.Errorf("signing keys: add %s: %w", k.KID, err)
	}
	return nil
}

// SupersedeSigningKeys records at as the end of signing for every key not
// yet superseded: a newer key signs from then on.
func (tx *Tx) SupersedeSigningKeys(at time.Time) error {
	if _, err := tx.tx.Exec(tx.ctx, supersedeSigningKeys, at); err != nil {
		return fmt.Errorf("signing keys: supersede: %w", err)
	}
	return nil
}

// DeleteSigningKeys deletes the keys named kids, private keys included.
func (tx *Tx) DeleteSigningKeys(kids []string) error {
	if _, err := tx.tx.Exec(tx.ctx, deleteSigningKeys, kids); err != nil {
		return fmt.Errorf("signing keys: delete: %w", err)
	}
	return nil
}
