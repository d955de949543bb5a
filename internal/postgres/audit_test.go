package postgres_test

import (
	"testing"
	"time"

	"github.com/google/uuid"

	"github.com/seedc5a8123e/authd/internal/pgtest"
	"github.com/seedc5a8123e/authd/internal/postgres"
)

// TestAuditOnTheSchemaBefore000011: a replica that still believes in
// audit_events after a rollback's migrate down (RefreshSchema has not run)
// keeps making changes: the transaction that finds the table gone runs
// again without its audit row, and auditing stays off until RefreshSchema
// sees the table again.
func TestAuditOnTheSchemaBefore000011(t *testing.T) {
	t.Parallel()
	url := pgtest.URL(t)
	db, err := postgres.Open(ctx, url, postgres.Options{})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(db.Close)
	if !db.Audits() {
		t.Fatal("a migrated database without audits")
	}
	m, err := postgres.NewMigrator(url)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = m.Close() })
	for {
		v, _, err := m.Version()
		if err != nil {
			t.Fatal(err)
		}
		if v < postgres.AuditSchema {
			break
		}
		if err := m.Down(); err != nil {
			t.Fatal(err)
		}
	}
	now := time.Now()
	if err := db.CreateUser(ctx, postgres.User{ID: uuid.NewString(), Username: "u", PasswordHash: "x", Role: "user",
		CreatedAt: now, UpdatedAt: now}); err != nil {
		t.Fatalf("create user with audit_events gone: %v", err)
	}
	if db.Audits() {
		t.Fatal("still auditing after finding the table gone")
	}
	if err := db.SettleLoginFailure(ctx, "v", "192.0.2.1", now, now.Add(-time.Hour), false); err != nil {
		t.Fatalf("login failure with audit_events gone: %v", err)
	}
	if err := m.Up(); err != nil {
		t.Fatal(err)
	}
	if err := db.RefreshSchema(ctx); err != nil || !db.Audits() {
		t.Fatalf("after migrate up: audits %v, %v", db.Audits(), err)
	}
}
