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

// BenchmarkAuditCost measures what the audit rows add to a login (the
// session insert, whose audit row rides in the same statement) and to a
// revocation (one more statement in its transaction): the same calls on
// the current schema and on the schema before 000011, which audits nothing.
func BenchmarkAuditCost(b *testing.B) {
	for _, audited := range []bool{true, false} {
		name := "audited"
		if !audited {
			name = "unaudited"
		}
		b.Run(name, func(b *testing.B) {
			url := pgtest.URL(b)
			db, err := postgres.Open(ctx, url, postgres.Options{})
			if err != nil {
				b.Fatal(err)
			}
			b.Cleanup(db.Close)
			if !audited {
				m, err := postgres.NewMigrator(url)
				if err != nil {
					b.Fatal(err)
				}
				for v, _, _ := m.Version(); v >= postgres.AuditSchema; v, _, _ = m.Version() {
					if err := m.Down(); err != nil {
						b.Fatal(err)
					}
				}
				_ = m.Close()
				if err := db.RefreshSchema(ctx); err != nil || db.Audits() {
					b.Fatalf("audits %v, %v", db.Audits(), err)
				}
			}
			now := time.Now()
			uid := uuid.NewString()
			if err := db.CreateUser(ctx, postgres.User{ID: uid, Username: "u", PasswordHash: "x", Role: "user", CreatedAt: now, UpdatedAt: now}); err != nil {
				b.Fatal(err)
			}
			u, err := db.UserByID(ctx, uid)
			if err != nil {
				b.Fatal(err)
			}
			b.Run("login", func(b *testing.B) {
				for b.Loop() {
					if _, err := db.CreateSession(ctx, postgres.NewSession{ID: uuid.NewString(), UserID: uid, CreatedAt: now,
						ExpiresAt: now.Add(time.Hour), JTI: uuid.NewString(), AccessExp: now.Add(time.Minute), IP: "192.0.2.1",
						UserAgent: "bench", UserCredentialsVersion: u.CredentialsVersion, UserRole: "user", Grant: "password"}); err != nil {
						b.Fatal(err)
					}
				}
			})
			b.Run("revoke", func(b *testing.B) {
				sids := make([]string, b.N)
				for i := range sids {
					sids[i] = uuid.NewString()
					if _, err := db.CreateSession(ctx, postgres.NewSession{ID: sids[i], UserID: uid, CreatedAt: now,
						ExpiresAt: now.Add(time.Hour), JTI: uuid.NewString(), AccessExp: now.Add(time.Minute),
						UserCredentialsVersion: u.CredentialsVersion, UserRole: "user"}); err != nil {
						b.Fatal(err)
					}
				}
				b.ResetTimer()
				for i := range b.N {
					if _, err := db.RevokeSession(ctx, postgres.RevokeRequest{SID: sids[i], Reason: "bench", At: now}); err != nil {
						b.Fatal(err)
					}
				}
			})
		})
	}
}
