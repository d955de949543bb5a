package postgres_test

import (
	"encoding/json"
	"strings"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/seedc5a8123e/authd/internal/postgres"
)

// planNode is the part of EXPLAIN (FORMAT JSON) the test reads.
type planNode struct {
	NodeType  string     `json:"Node Type"`
	IndexName string     `json:"Index Name"`
	Hit       int        `json:"Shared Hit Blocks"`
	Read      int        `json:"Shared Read Blocks"`
	Plans     []planNode `json:"Plans"`
}

func (p planNode) walk(f func(planNode)) {
	f(p)
	for _, c := range p.Plans {
		c.walk(f)
	}
}

// TestEvictionIsBounded: the cap check of a login reads a bounded number
// of rows however many sessions the user has had. A user with thousands of
// revoked and expired sessions and a few live ones: the check walks
// sessions_user_live_idx over the live ones only, a handful of buffers, and
// the cap still holds, the oldest live session revoked first.
func TestEvictionIsBounded(t *testing.T) {
	t.Parallel()
	db, b := setup(t)
	u := createUser(t, db, b, "many", "user")
	now := t0.Add(48 * time.Hour)
	// 4,000 revoked (evicted or logged out) and 3,000 expired, never revoked
	// (client_credentials-like short sessions), interleaved in time.
	if _, err := db.Pool().Exec(ctx, `INSERT INTO sessions (id, user_id, created_at, expires_at, last_jti, access_exp, revoked_at, revoked_reason)
		SELECT gen_random_uuid(), $1, $2::timestamptz + i * interval '1 second', $2::timestamptz + i * interval '1 second' + interval '1 hour',
			gen_random_uuid(), $2::timestamptz + i * interval '1 second' + interval '10 minutes',
			CASE WHEN i % 7 < 4 THEN $2::timestamptz + i * interval '1 second' + interval '1 minute' END,
			CASE WHEN i % 7 < 4 THEN 'session_limit' END
		FROM generate_series(1, 7000) i`, u.ID, t0); err != nil {
		t.Fatal(err)
	}
	// Everyone else's live sessions, as on any real server: expires_at alone
	// is no way to the user's.
	for i := range 20 {
		o := createUser(t, db, b, "other"+strings.Repeat("x", i), "user")
		if _, err := db.Pool().Exec(ctx, `INSERT INTO sessions (id, user_id, created_at, expires_at, last_jti, access_exp)
			SELECT gen_random_uuid(), $1, $2::timestamptz - i * interval '1 second', $2::timestamptz + interval '1 day',
				gen_random_uuid(), $2::timestamptz + interval '10 minutes'
			FROM generate_series(1, 500) i`, o.ID, now); err != nil {
			t.Fatal(err)
		}
	}
	var live []string
	for i := range 4 {
		live = append(live, createSession(t, db, newSession(u, now.Add(time.Duration(i)*time.Second), now.Add(24*time.Hour), "")))
	}
	if _, err := db.Pool().Exec(ctx, `ANALYZE sessions`); err != nil {
		t.Fatal(err)
	}

	var raw string
	args := pgx.NamedArgs{"at": now.Add(time.Minute), "reason": "session_limit", "user_id": u.ID, "max": 5}
	tx, err := db.Pool().Begin(ctx)
	if err != nil {
		t.Fatal(err)
	}
	defer tx.Rollback(ctx)
	if err := tx.QueryRow(ctx, `EXPLAIN (ANALYZE, BUFFERS, FORMAT JSON) `+postgres.EvictSQLForTest+`id`, args).Scan(&raw); err != nil {
		t.Fatal(err)
	}
	_ = tx.Rollback(ctx)
	var plans []struct {
		Plan planNode `json:"Plan"`
	}
	if err := json.Unmarshal([]byte(raw), &plans); err != nil || len(plans) != 1 {
		t.Fatalf("plan %s: %v", raw, err)
	}
	usesLive, buffers := false, 0
	var nodes []string
	plans[0].Plan.walk(func(p planNode) {
		nodes = append(nodes, p.NodeType+" "+p.IndexName)
		if p.IndexName == "sessions_user_live_idx" {
			usesLive = true
		}
		if strings.Contains(p.NodeType, "Scan") {
			buffers += p.Hit + p.Read
		}
	})
	if !usesLive {
		t.Fatalf("the cap check does not use sessions_user_live_idx: %v", nodes)
	}
	// 7,004 sessions of the user span well over a hundred heap pages; the live ones a few.
	if buffers > 30 {
		t.Fatalf("the cap check's scans touched %d buffers (%v), want a handful", buffers, nodes)
	}
	t.Logf("cap check at 7,004 sessions, 4 live: %d buffers, plan %v", buffers, nodes)

	// The cap itself: 4 live + 1 is within 5; one more evicts the oldest live.
	ns := newSession(u, now.Add(10*time.Second), now.Add(24*time.Hour), "")
	ns.MaxLive, ns.LimitReason = 5, "session_limit"
	if evicted, err := db.CreateSession(ctx, ns); err != nil || len(evicted) != 0 {
		t.Fatalf("fifth live session: evicted %+v, %v; want none", evicted, err)
	}
	ns = newSession(u, now.Add(11*time.Second), now.Add(24*time.Hour), "")
	ns.MaxLive, ns.LimitReason = 5, "session_limit"
	evicted, err := db.CreateSession(ctx, ns)
	if err != nil || len(evicted) != 1 || evicted[0].SID != live[0] {
		t.Fatalf("sixth live session: evicted %+v, %v; want the oldest live one, %s", evicted, err, live[0])
	}
	if s := sessionRow(t, db, live[0]); s.RevokedReason == nil || *s.RevokedReason != "session_limit" {
		t.Fatalf("evicted row %+v", s)
	}
	var n int
	if err := db.Pool().QueryRow(ctx, `SELECT count(*) FROM sessions WHERE user_id = $1 AND revoked_at IS NULL AND expires_at > $2`,
		u.ID, ns.CreatedAt).Scan(&n); err != nil || n != 5 {
		t.Fatalf("%d live sessions, %v; want the cap, 5", n, err)
	}
}
