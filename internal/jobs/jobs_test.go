package jobs_test

import (
	"context"
	"errors"
	"io"
	"log/slog"
	"os"
	"sync/atomic"
	"testing"
	"time"

	"github.com/google/uuid"

	"github.com/seedc5a8123e/authd/internal/authdtest"
	"github.com/seedc5a8123e/authd/internal/clock"
	"github.com/seedc5a8123e/authd/internal/jobs"
	"github.com/seedc5a8123e/authd/internal/pgtest"
	"github.com/seedc5a8123e/authd/internal/postgres"
)

func TestMain(m *testing.M) { os.Exit(pgtest.Main(m)) }

func TestPrunerDeletesOnlySessionsPastRetention(t *testing.T) {
	db := pgtest.NewDB(t)
	ctx := context.Background()
	now := time.Date(2026, 11, 26, 12, 0, 0, 0, time.UTC)
	uid := uuid.NewString()
	if err := db.CreateUser(ctx, postgres.User{ID: uid, Username: "u", PasswordHash: "x", Role: "user", CreatedAt: now, UpdatedAt: now}); err != nil {
		t.Fatal(err)
	}
	retention := 24 * time.Hour
	mk := func(expiresAgo time.Duration) string {
		sid := uuid.NewString()
		end := now.Add(-expiresAgo)
		_, err := db.CreateSession(ctx, postgres.NewSession{ID: sid, UserID: uid, CreatedAt: end.Add(-time.Hour),
			ExpiresAt: end, JTI: uuid.NewString(), AccessExp: end, UserCredentialsVersion: 1, UserRole: "user"})
		if err != nil {
			t.Fatal(err)
		}
		return sid
	}
	old := []string{mk(retention + time.Second), mk(retention + 48*time.Hour), mk(retention + time.Minute)}
	kept := []string{mk(retention - time.Second), mk(time.Hour), mk(-time.Hour) /* still live */}
	// A revoked session inside retention stays too.
	revoked := mk(time.Hour)
	if _, err := db.RevokeSession(ctx, postgres.RevokeRequest{SID: revoked, Reason: "user_logout", At: now.Add(-2 * time.Hour)}); err != nil {
		t.Fatal(err)
	}
	kept = append(kept, revoked)

	var runs atomic.Int64
	p := &jobs.Pruner{DB: db, Clock: clock.NewManual(now), Retention: retention,
		Log: slog.New(slog.NewTextHandler(io.Discard, nil)), OnRun: func(int64, error) { runs.Add(1) }}
	n, err := p.Run(ctx)
	if err != nil || n != int64(len(old)) {
		t.Fatalf("Run = %d, %v; want %d", n, err, len(old))
	}
	for _, sid := range old {
		if _, err := db.SessionByID(ctx, sid); !errors.Is(err, postgres.ErrNotFound) {
			t.Fatalf("session %s past retention survived (err %v)", sid, err)
		}
	}
	for _, sid := range kept {
		if _, err := db.SessionByID(ctx, sid); err != nil {
			t.Fatalf("session %s inside retention was deleted: %v", sid, err)
		}
	}
	if n, err := p.Run(ctx); err != nil || n != 0 {
		t.Fatalf("second run = %d, %v; want 0 (idempotent)", n, err)
	}
	if runs.Load() != 2 {
		t.Fatalf("OnRun called %d times", runs.Load())
	}
}

func TestPrunerBatchesLargeDeletes(t *testing.T) {
	db := pgtest.NewDB(t)
	ctx := context.Background()
	now := time.Date(2026, 11, 26, 12, 0, 0, 0, time.UTC)
	uid := uuid.NewString()
	if err := db.CreateUser(ctx, postgres.User{ID: uid, Username: "u", PasswordHash: "x", Role: "user", CreatedAt: now, UpdatedAt: now}); err != nil {
		t.Fatal(err)
	}
	if _, err := db.Pool().Exec(ctx, `INSERT INTO sessions (id, user_id, created_at, expires_at, last_jti, access_exp)
		SELECT gen_random_uuid(), $1, $2, $2, gen_random_uuid(), $2 FROM generate_series(1, 12345)`, uid, now.Add(-100*time.Hour)); err != nil {
		t.Fatal(err)
	}
	n, err := db.DeleteSessionsExpiredBefore(ctx, now, 1000)
	if err != nil || n != 12345 {
		t.Fatalf("deleted %d, %v; want 12345", n, err)
	}
}

func TestFailedRunIsReportedAndTheScheduleGoesOn(t *testing.T) {
	db := pgtest.NewDB(t)
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	var runs, failures atomic.Int64
	p := &jobs.Pruner{DB: db, Clock: clock.Real{}, Retention: time.Hour, Log: slog.New(slog.NewTextHandler(io.Discard, nil)),
		OnRun: func(_ int64, err error) {
			runs.Add(1)
			if err != nil {
				failures.Add(1)
			}
		}}
	db.Close() // every run now fails
	s, err := jobs.Start(ctx, "@every 1s", p, p.Log)
	if err != nil {
		t.Fatal(err)
	}
	authdtest.Eventually(t, 10*time.Second, func() bool { return runs.Load() >= 2 }, "two scheduled runs")
	s.Stop()
	if failures.Load() != runs.Load() {
		t.Fatalf("runs %d, failures %d: want at least two failing runs", runs.Load(), failures.Load())
	}
	if _, err := jobs.Start(ctx, "every minute", p, p.Log); err == nil {
		t.Fatal("Start accepted a bad schedule")
	}
}

type pruneFunc func(context.Context) (int64, error)

func (f pruneFunc) Prune(ctx context.Context) (int64, error) { return f(ctx) }

func TestPrunerAlsoForgetsLoginFailures(t *testing.T) {
	db := pgtest.NewDB(t)
	calls := 0
	p := &jobs.Pruner{DB: db, Clock: clock.Real{}, Retention: time.Hour, Log: slog.New(slog.NewTextHandler(io.Discard, nil)),
		LoginFailures: pruneFunc(func(context.Context) (int64, error) { calls++; return 3, nil })}
	if _, err := p.Run(context.Background()); err != nil || calls != 1 {
		t.Fatalf("Run = %v, login-failure prunes = %d; want nil, 1", err, calls)
	}
	p.LoginFailures = pruneFunc(func(context.Context) (int64, error) { return 0, errors.New("boom") })
	if _, err := p.Run(context.Background()); err == nil {
		t.Fatal("a failing login-failure prune was not reported")
	}
}

// TestPrunerDeletesAuditEventsPastRetention: rows older than the audit
// retention go, in batches (more than one batch's worth here), and newer
// ones stay, whatever the session retention says.
func TestPrunerDeletesAuditEventsPastRetention(t *testing.T) {
	db := pgtest.NewDB(t)
	ctx := context.Background()
	now := time.Date(2026, 11, 26, 12, 0, 0, 0, time.UTC)
	retention := 90 * 24 * time.Hour
	mk := func(ago time.Duration) string {
		id, at := uuid.NewString(), now.Add(-ago)
		if err := db.CreateUser(ctx, postgres.User{ID: id, Username: id, PasswordHash: "x", Role: "user", CreatedAt: at, UpdatedAt: at}); err != nil {
			t.Fatal(err)
		}
		return id
	}
	old := []string{mk(retention + time.Second), mk(retention + 24*time.Hour)}
	kept := []string{mk(retention - time.Second), mk(time.Hour)}
	// Enough old rows for several of the job's batches.
	if _, err := db.Pool().Exec(ctx, `INSERT INTO audit_events (at, type, actor)
		SELECT $1::timestamptz - g * interval '1 second', 'login_failed', 'system' FROM generate_series(1, 12000) g`,
		now.Add(-retention)); err != nil {
		t.Fatal(err)
	}
	p := &jobs.Pruner{DB: db, Clock: clock.NewManual(now), Retention: time.Hour, AuditRetention: retention,
		Log: slog.New(slog.NewTextHandler(io.Discard, nil))}
	if _, err := p.Run(ctx); err != nil {
		t.Fatal(err)
	}
	count := func(f postgres.AuditQuery) int {
		f.Limit = 100000
		rows, err := db.AuditEvents(ctx, f)
		if err != nil {
			t.Fatal(err)
		}
		return len(rows)
	}
	for _, id := range old {
		if n := count(postgres.AuditQuery{UserID: id}); n != 0 {
			t.Errorf("user %s: %d audit rows past retention survived", id, n)
		}
	}
	for _, id := range kept {
		if n := count(postgres.AuditQuery{UserID: id}); n != 1 {
			t.Errorf("user %s: %d audit rows inside retention, want 1", id, n)
		}
	}
	if n := count(postgres.AuditQuery{Type: "login_failed"}); n != 0 {
		t.Errorf("%d bulk rows past retention survived", n)
	}
}

// TestPrunerForgetsSilentVerifiers: a verifier that has not polled for a
// session retention, or whose identity is gone, leaves the fleet table; one
// that polled inside it stays.
func TestPrunerForgetsSilentVerifiers(t *testing.T) {
	db := pgtest.NewDB(t)
	ctx := context.Background()
	if err := db.RefreshSchema(ctx); err != nil {
		t.Fatal(err)
	}
	now := time.Date(2026, 11, 26, 12, 0, 0, 0, time.UTC)
	retention := 720 * time.Hour
	svc := func(name string) string {
		id := uuid.NewString()
		if err := db.CreateUser(ctx, postgres.User{ID: id, Username: name, PasswordHash: "x", Role: "service", CreatedAt: now, UpdatedAt: now}); err != nil {
			t.Fatal(err)
		}
		return id
	}
	current, silent := svc("current-svc"), svc("silent-svc")
	gone := uuid.NewString() // polled, then its identity was deleted
	if err := db.RecordFeedPolls(ctx, []postgres.FeedPoll{
		{UserID: current, At: now.Add(-retention + time.Minute), Cursor: 1},
		{UserID: silent, At: now.Add(-retention - time.Minute), Cursor: 1},
		{UserID: gone, At: now, Cursor: 1},
	}); err != nil {
		t.Fatal(err)
	}
	p := &jobs.Pruner{DB: db, Clock: clock.NewManual(now), Retention: retention,
		Log: slog.New(slog.NewTextHandler(io.Discard, nil))}
	if _, err := p.Run(ctx); err != nil {
		t.Fatal(err)
	}
	left, err := db.FeedClients(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if len(left) != 1 || left[0].UserID != current {
		t.Fatalf("fleet after pruning: %+v, want only %s", left, current)
	}
}
