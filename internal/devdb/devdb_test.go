package devdb

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"net/url"
	"os"
	"strings"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/seedc5a8123e/authd/internal/pgtest"
)

// server returns the test server's maintenance URL, skipping the test when
// no server answers (failing it under CI, as pgtest does).
func server(t *testing.T) string {
	t.Helper()
	u := pgtest.ServerURL()
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	conn, err := pgx.Connect(ctx, u)
	if err != nil {
		if os.Getenv("CI") != "" || os.Getenv("AUTHD_REQUIRE_DB") != "" {
			t.Fatalf("PostgreSQL: %v", err)
		}
		t.Skipf("no PostgreSQL: %v", err)
	}
	conn.Close(ctx)
	return u
}

func drop(t *testing.T, serverURL, name string) {
	t.Helper()
	ctx := context.Background()
	conn, err := pgx.Connect(ctx, serverURL)
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close(ctx)
	if _, err := conn.Exec(ctx, "DROP DATABASE IF EXISTS "+pgx.Identifier{name}.Sanitize()+" WITH (FORCE)"); err != nil {
		t.Errorf("dropping %q: %v", name, err)
	}
}

// TestEnsure creates a uniquely named database, whose name needs quoting,
// finds it the second time, and connects to the URL it returns.
func TestEnsure(t *testing.T) {
	srv := server(t)
	b := make([]byte, 6)
	rand.Read(b)
	// Upper case, a space, a double quote and a semicolon: every one breaks
	// an unquoted or naively quoted CREATE DATABASE.
	name := `authd_devdb_Test "x"; ` + hex.EncodeToString(b)
	t.Cleanup(func() { drop(t, srv, name) })
	ctx := context.Background()

	dbURL, created, err := Ensure(ctx, srv, name)
	if err != nil || !created {
		t.Fatalf("first Ensure: created %t, %v", created, err)
	}
	again, created, err := Ensure(ctx, srv, name)
	if err != nil || created || again != dbURL {
		t.Fatalf("second Ensure: %q, created %t, %v; want %q, false", again, created, err, dbURL)
	}
	if !strings.Contains(dbURL, "sslmode=disable") && strings.Contains(srv, "sslmode=disable") {
		t.Errorf("URL %q lost the server URL's query", dbURL)
	}

	conn, err := pgx.Connect(ctx, dbURL)
	if err != nil {
		t.Fatalf("connect to %s: %v", dbURL, err)
	}
	defer conn.Close(ctx)
	var got string
	if err := conn.QueryRow(ctx, "SELECT current_database()").Scan(&got); err != nil || got != name {
		t.Fatalf("current_database() = %q, %v; want %q", got, err, name)
	}
}

func TestEnsureErrors(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	for _, tc := range []struct{ url, name, want string }{
		{"mysql://x@127.0.0.1/x", "authd", "not a postgres:// URL"},
		{"postgres://postgres:hunter2hunter2@127.0.0.1:1/postgres?sslmode=disable&connect_timeout=2", "authd", "connect to"},
		{"postgres://postgres@127.0.0.1/postgres", "", "no database name"},
	} {
		_, _, err := Ensure(ctx, tc.url, tc.name)
		if err == nil || !strings.Contains(err.Error(), tc.want) || strings.Contains(err.Error(), "hunter2") {
			t.Errorf("Ensure(%q, %q) = %v, want an error mentioning %q and no password", tc.url, tc.name, err, tc.want)
		}
	}
}

// TestEnsureWithoutCreateDB: a user who may not create databases gets an
// error saying so.
func TestEnsureWithoutCreateDB(t *testing.T) {
	srv := server(t)
	ctx := context.Background()
	b := make([]byte, 6)
	rand.Read(b)
	role := "authd_devdb_nocreate_" + hex.EncodeToString(b)
	admin, err := pgx.Connect(ctx, srv)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { admin.Close(ctx) }) // after the role's drop below
	if _, err := admin.Exec(ctx, "CREATE ROLE "+pgx.Identifier{role}.Sanitize()+" LOGIN NOCREATEDB"); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		if _, err := admin.Exec(ctx, "DROP ROLE IF EXISTS "+pgx.Identifier{role}.Sanitize()); err != nil {
			t.Error(err)
		}
	})
	cfg, err := pgx.ParseConfig(srv)
	if err != nil {
		t.Fatal(err)
	}
	if cfg.Password != "" {
		t.Skip("the test server needs a password; a new role has none")
	}
	u, _ := url.Parse(srv)
	u.User = url.User(role)
	name := "authd_devdb_refused_" + hex.EncodeToString(b)
	_, _, err = Ensure(ctx, u.String(), name)
	if err != nil && strings.Contains(err.Error(), "password authentication failed") {
		t.Skipf("the test server does not trust the new role: %v", err)
	}
	if err == nil || !strings.Contains(err.Error(), "CREATEDB") {
		drop(t, srv, name)
		t.Fatalf("Ensure as a role without CREATEDB: %v, want an error naming CREATEDB", err)
	}
}
