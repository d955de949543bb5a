// Package devdb makes sure a development database exists, so that `make run`
// and `make test` need no psql: deploy/dev/devdb.sh runs its command,
// `go run ./internal/devdb/cmd`, which is not part of the product.
package devdb

import (
	"context"
	"errors"
	"fmt"
	"net/url"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"

	"github.com/seedc5a8123e/authd/internal/redact"
)

// SQLSTATE codes (PostgreSQL, Appendix A).
const (
	duplicateDatabase     = "42P04"
	insufficientPrivilege = "42501"
)

// Ensure connects to the server of serverURL (a postgres:// URL; the
// database it names is the one connected to, usually postgres), creates the
// database name there unless it exists, and returns name's URL: serverURL
// with its database replaced. created reports whether it was created now.
func Ensure(ctx context.Context, serverURL, name string) (dbURL string, created bool, err error) {
	if name == "" {
		return "", false, errors.New("devdb: no database name")
	}
	u, err := url.Parse(serverURL)
	if err != nil || (u.Scheme != "postgres" && u.Scheme != "postgresql") {
		return "", false, fmt.Errorf("devdb: %s is not a postgres:// URL", redact.URL(serverURL))
	}
	conn, err := pgx.Connect(ctx, serverURL)
	if err != nil {
		return "", false, fmt.Errorf("devdb: connect to %s: %w", redact.URL(serverURL), err)
	}
	defer conn.Close(context.WithoutCancel(ctx))

	var exists bool
	if err := conn.QueryRow(ctx, `SELECT EXISTS (SELECT 1 FROM pg_database WHERE datname = $1)`, name).Scan(&exists); err != nil {
		return "", false, fmt.Errorf("devdb: look up database %q: %w", name, err)
	}
	if !exists {
		// CREATE DATABASE takes no parameters: the name is quoted as an identifier.
		_, err := conn.Exec(ctx, "CREATE DATABASE "+pgx.Identifier{name}.Sanitize())
		var pe *pgconn.PgError
		switch {
		case errors.As(err, &pe) && pe.Code == duplicateDatabase:
			// Created concurrently (two `make` targets at once): it exists.
		case errors.As(err, &pe) && pe.Code == insufficientPrivilege:
			return "", false, fmt.Errorf("devdb: create database %q: %w (the user needs CREATEDB, or create the database yourself)", name, err)
		case err != nil:
			return "", false, fmt.Errorf("devdb: create database %q: %w", name, err)
		default:
			created = true
		}
	}
	u.Path, u.RawPath = "/"+name, ""
	return u.String(), created, nil
}
