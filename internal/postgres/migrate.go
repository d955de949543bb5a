package postgres

import (
	"context"
	"errors"
	"fmt"
	"net/url"
	"strings"

	"github.com/golang-migrate/migrate/v4"
	_ "github.com/golang-migrate/migrate/v4/database/pgx/v5" // registers pgx5://
	"github.com/golang-migrate/migrate/v4/source/iofs"
	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"

	"github.com/seedc5a8123e/authd/internal/redact"
	"github.com/seedc5a8123e/authd/migrations"
)

// Migrator applies the embedded migrations. The pgx5 driver takes an advisory
// lock, so replicas that start together migrate once.
type Migrator struct {
	m *migrate.Migrate
}

// NewMigrator opens a migrator for the database at dbURL (postgres://...).
// dbURL must give one server session throughout, for the advisory lock:
// callers pass config.Config.MigrationURL, which is AUTHD_DATABASE_DIRECT_URL
// when set and refuses a transaction-mode pooler.
func NewMigrator(dbURL string) (*Migrator, error) {
	u, err := url.Parse(dbURL)
	if err != nil {
		return nil, errors.New("migrate: DATABASE_URL cannot be parsed")
	}
	u.Scheme = "pgx5"
	src, err := iofs.New(migrations.FS, ".")
	if err != nil {
		return nil, fmt.Errorf("migrate: embedded source: %w", err)
	}
	m, err := migrate.NewWithSourceInstance("iofs", src, u.String())
	if err != nil {
		return nil, fmt.Errorf("migrate: open database: %w", redactErr(err, dbURL))
	}
	return &Migrator{m: m}, nil
}

// Up applies every pending migration; nothing pending is success.
func (m *Migrator) Up() error {
	if err := m.m.Up(); err != nil && !errors.Is(err, migrate.ErrNoChange) {
		return fmt.Errorf("migrate up: %w", err)
	}
	return nil
}

// Down reverts the newest migration.
func (m *Migrator) Down() error {
	if err := m.m.Steps(-1); err != nil {
		if errors.Is(err, migrate.ErrNilVersion) || errors.Is(err, migrate.ErrNoChange) {
			return nil
		}
		return fmt.Errorf("migrate down: %w", err)
	}
	return nil
}

// Version reports the applied version (0 when none) and whether the last
// migration failed half-way.
func (m *Migrator) Version() (uint, bool, error) {
	v, dirty, err := m.m.Version()
	if errors.Is(err, migrate.ErrNilVersion) {
		return 0, false, nil
	}
	if err != nil {
		return 0, false, fmt.Errorf("migrate version: %w", err)
	}
	return v, dirty, nil
}

// Latest is the newest version embedded in the binary.
func Latest() (uint, error) {
	src, err := iofs.New(migrations.FS, ".")
	if err != nil {
		return 0, err
	}
	defer src.Close()
	v, err := src.First()
	if err != nil {
		return 0, err
	}
	for {
		next, err := src.Next(v)
		if err != nil {
			return v, nil
		}
		v = next
	}
}

// Close releases the migrator's connections.
func (m *Migrator) Close() error {
	srcErr, dbErr := m.m.Close()
	return errors.Join(srcErr, dbErr)
}

// redactErr keeps a database password out of error text.
func redactErr(err error, dbURL string) error {
	msg := err.Error()
	for _, secret := range redact.URLSecrets(dbURL) {
		msg = strings.ReplaceAll(msg, secret, "xxxxx")
	}
	if msg == err.Error() {
		return err
	}
	return errors.New(msg)
}

// SchemaCurrent returns an error saying why unless the schema is clean and
// within one version of Latest. Migrations are expand-then-contract
// (migrations/README.md): a binary runs on the schema before its own, so a
// new replica is ready before the migration Job has run, and on the one
// after it, so old replicas stay ready once it has.
func (db *DB) SchemaCurrent(ctx context.Context) error {
	ctx, cancel := withTimeout(ctx)
	defer cancel()
	want, err := Latest()
	if err != nil {
		return err
	}
	var v int64
	var dirty bool
	if err := db.pool.QueryRow(ctx, `SELECT version, dirty FROM schema_migrations LIMIT 1`).Scan(&v, &dirty); err != nil {
		var pgErr *pgconn.PgError
		if errors.Is(err, pgx.ErrNoRows) || (errors.As(err, &pgErr) && pgErr.Code == "42P01") { // undefined_table
			return errors.New("schema version unknown: migrations not applied")
		}
		return fmt.Errorf("schema version unreadable: %w", err)
	}
	switch {
	case dirty:
		return fmt.Errorf("schema version %d is dirty: a migration failed half-way", v)
	case v < 0 || uint(v)+1 < want:
		return fmt.Errorf("schema version %d, this binary needs %d or %d: run authd migrate up", v, want-1, want)
	case uint(v) > want+1:
		return fmt.Errorf("schema version %d is more than one ahead of this binary's %d: roll out a newer image", v, want)
	}
	return nil
}
