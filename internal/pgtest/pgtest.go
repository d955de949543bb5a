// Package pgtest gives each test its own freshly created PostgreSQL database,
// cloned from a template migrated once per test binary, and drops both.
//
// The server is found as `make test` finds it: AUTHD_TEST_DATABASE_URL, else
// DATABASE_URL's server, else 127.0.0.1:5432. Test databases are named
// authd_test_* and never touch the authd database itself. With no server
// reachable the test is skipped, unless CI or AUTHD_REQUIRE_DB is set, when it
// fails.
//
// With AUTHD_TEST_POOLER_URL set (a PgBouncer in pool_mode = transaction
// whose [databases] forwards every name to that server, as `make test-ha`
// starts one), databases are still created and migrated directly, but NewDB
// opens its pool through the pooler with postgres.PoolerTransaction, so the
// tests prove that no statement depends on session state.
package pgtest

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"fmt"
	"net/url"
	"os"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/seedc5a8123e/authd/internal/config"
	"github.com/seedc5a8123e/authd/internal/postgres"
)

var (
	mu       sync.Mutex
	template string
	setupErr error
)

// ServerURL returns the URL of the maintenance database of the test server.
func ServerURL() string {
	for _, k := range []string{"AUTHD_TEST_DATABASE_URL", "DATABASE_URL"} {
		if v := os.Getenv(k); v != "" {
			return withDB(v, "postgres")
		}
	}
	return "postgres://postgres@127.0.0.1:5432/postgres?sslmode=disable"
}

func withDB(raw, db string) string {
	u, err := url.Parse(raw)
	if err != nil {
		return raw
	}
	u.Path = "/" + db
	return u.String()
}

// Main runs the tests and then drops the template database. Use it from
// TestMain: os.Exit(pgtest.Main(m)).
func Main(m *testing.M) int {
	code := m.Run()
	mu.Lock()
	defer mu.Unlock()
	if template != "" {
		_ = exec(context.Background(), fmt.Sprintf(`DROP DATABASE IF EXISTS %s WITH (FORCE)`, template))
	}
	return code
}

func exec(ctx context.Context, sql string) error {
	ctx, cancel := context.WithTimeout(ctx, 30*time.Second)
	defer cancel()
	conn, err := pgx.Connect(ctx, ServerURL())
	if err != nil {
		return err
	}
	defer conn.Close(ctx)
	_, err = conn.Exec(ctx, sql)
	return err
}

func randomName(prefix string) string {
	b := make([]byte, 6)
	_, _ = rand.Read(b)
	return prefix + hex.EncodeToString(b)
}

func required() bool { return os.Getenv("CI") != "" || os.Getenv("AUTHD_REQUIRE_DB") != "" }

// URL creates a new database for t, migrated to the latest version, and
// returns its URL; the database is dropped when t ends.
func URL(t testing.TB) string {
	t.Helper()
	mu.Lock()
	if template == "" && setupErr == nil {
		template = randomName("authd_tmpl_")
		setupErr = makeTemplate(template)
		if setupErr != nil {
			template = ""
		}
	}
	tmpl, err := template, setupErr
	mu.Unlock()
	if err != nil {
		if required() {
			t.Fatalf("pgtest: no usable PostgreSQL at %s: %v", redact(ServerURL()), err)
		}
		t.Skipf("pgtest: no usable PostgreSQL at %s (set AUTHD_TEST_DATABASE_URL): %v", redact(ServerURL()), err)
	}
	name := randomName("authd_test_")
	// CREATE DATABASE ... TEMPLATE fails if another clone is being made from
	// the same template at the same moment, so clones are serialised.
	mu.Lock()
	err = exec(context.Background(), fmt.Sprintf(`CREATE DATABASE %s TEMPLATE %s`, name, tmpl))
	mu.Unlock()
	if err != nil {
		t.Fatalf("pgtest: create %s: %v", name, err)
	}
	t.Cleanup(func() {
		if err := exec(context.Background(), fmt.Sprintf(`DROP DATABASE IF EXISTS %s WITH (FORCE)`, name)); err != nil {
			t.Errorf("pgtest: drop %s: %v", name, err)
		}
	})
	return withDB(ServerURL(), name)
}

// NewDB is URL plus an open pool, closed when t ends; through the pooler
// when AUTHD_TEST_POOLER_URL is set.
func NewDB(t testing.TB) *postgres.DB {
	t.Helper()
	u := URL(t)
	var o postgres.Options
	if p := os.Getenv("AUTHD_TEST_POOLER_URL"); p != "" {
		name := strings.TrimPrefix(mustParse(t, u).Path, "/")
		u, o.Pooler = withDB(p, name), postgres.PoolerTransaction
	}
	db, err := postgres.Open(context.Background(), u, o)
	if err != nil {
		t.Fatalf("pgtest: open: %v", err)
	}
	t.Cleanup(db.Close)
	return db
}

func mustParse(t testing.TB, raw string) *url.URL {
	u, err := url.Parse(raw)
	if err != nil {
		t.Fatalf("pgtest: %v", err)
	}
	return u
}

func makeTemplate(name string) error {
	if err := exec(context.Background(), fmt.Sprintf(`CREATE DATABASE %s`, name)); err != nil {
		return err
	}
	m, err := postgres.NewMigrator(withDB(ServerURL(), name))
	if err != nil {
		return err
	}
	defer m.Close()
	return m.Up()
}

func redact(s string) string { return config.RedactURL(s) }
