package main

import (
	"context"
	"io"
	"os"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"
)

// testPostgres creates a scratch database on the local PostgreSQL
// (AUTHD_TEST_DATABASE_URL or 127.0.0.1:5432, trust) and returns its URL;
// it skips when PostgreSQL does not answer, unless CI is set.
func testPostgres(t *testing.T) string {
	t.Helper()
	admin := os.Getenv("AUTHD_TEST_DATABASE_URL")
	if admin == "" {
		admin = "postgres://postgres@127.0.0.1:5432/postgres?sslmode=disable"
	}
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	conn, err := pgx.Connect(ctx, admin)
	if err != nil {
		if os.Getenv("CI") != "" {
			t.Fatalf("PostgreSQL unreachable in CI: %v", err)
		}
		t.Skipf("PostgreSQL unreachable: %v", err)
	}
	conn.Close(ctx)
	name := "authbench_test_" + newRunID()
	if err := adminExec(ctx, admin, "CREATE DATABASE "+pgx.Identifier{name}.Sanitize()); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
		defer cancel()
		if err := adminExec(ctx, admin, "DROP DATABASE IF EXISTS "+pgx.Identifier{name}.Sanitize()+" WITH (FORCE)"); err != nil {
			t.Errorf("drop %s: %v", name, err)
		}
	})
	u, err := withDatabase(admin, name)
	if err != nil {
		t.Fatal(err)
	}
	return u
}

// The UPDATE floor runs its bounded number of durable updates, one row per
// worker, and leaves no scratch table behind.
func TestUpdateFloorOnPostgres(t *testing.T) {
	dbURL := testPostgres(t)
	ctx := context.Background()
	const workers, ops = 3, 60
	pool, err := openFloorPool(ctx, dbURL, workers)
	if err != nil {
		t.Fatal(err)
	}
	defer pool.Close()
	b := &bench{
		o:    options{concurrency: workers, floorDuration: time.Minute, maxOps: ops, opTimeout: 10 * time.Second},
		pool: pool, log: io.Discard, runID: newRunID(), meter: &cpuMeter{root: "/proc"},
	}
	s, err := b.updateFloor(ctx)
	if err != nil {
		t.Fatal(err)
	}
	r := b.measureSpecs(ctx, []*spec{s}, 1)[0]
	s.close()
	if r.OK != ops || r.Failed != 0 {
		t.Errorf("%d ok, %d failed (%v), want %d ok", r.OK, r.Failed, r.Errors, ops)
	}
	var left int
	if err := pool.QueryRow(ctx, `SELECT count(*) FROM pg_tables WHERE tablename LIKE 'authbench_floor_%'`).Scan(&left); err != nil {
		t.Fatal(err)
	}
	if left != 0 {
		t.Errorf("%d scratch tables left", left)
	}
	var sc string
	if err := pool.QueryRow(ctx, `SHOW synchronous_commit`).Scan(&sc); err != nil || sc != "on" {
		t.Errorf("synchronous_commit %q (%v), want on", sc, err)
	}
}
