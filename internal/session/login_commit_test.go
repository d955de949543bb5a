package session_test

import (
	"context"
	"errors"
	"io"
	"log/slog"
	"regexp"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/seedc5a8123e/authd/internal/clock"
	"github.com/seedc5a8123e/authd/internal/keys"
	"github.com/seedc5a8123e/authd/internal/password"
	"github.com/seedc5a8123e/authd/internal/pgtest"
	"github.com/seedc5a8123e/authd/internal/postgres"
	"github.com/seedc5a8123e/authd/internal/session"
	"github.com/seedc5a8123e/authd/internal/throttle"
	"github.com/seedc5a8123e/authd/internal/token"
)

// commitCounter is a pgx tracer that counts durable commits: COMMITs of
// transactions that wrote (an INSERT, UPDATE or DELETE, a row lock), and
// writes outside a transaction, which commit on their own. A transaction
// that only read or took advisory locks has no transaction id, so its
// COMMIT writes no commit record and waits for no disk.
type commitCounter struct {
	mu      sync.Mutex
	inTx    map[*pgx.Conn]bool
	wrote   map[*pgx.Conn]bool
	durable int
	commits int
}

type sqlKey struct{}

var writes = regexp.MustCompile(`(?i)\b(insert|update|delete)\b|\bfor\s+(share|update)\b`)

func (c *commitCounter) saw(conn *pgx.Conn, sql string, err error) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.inTx == nil {
		c.inTx, c.wrote = map[*pgx.Conn]bool{}, map[*pgx.Conn]bool{}
	}
	switch strings.ToLower(strings.TrimSpace(sql)) {
	case "begin":
		c.inTx[conn], c.wrote[conn] = true, false
		return
	case "commit":
		c.commits++
		if c.wrote[conn] && err == nil {
			c.durable++
		}
		c.inTx[conn], c.wrote[conn] = false, false
		return
	case "rollback":
		c.inTx[conn], c.wrote[conn] = false, false
		return
	}
	if !writes.MatchString(sql) || err != nil {
		return
	}
	if c.inTx[conn] {
		c.wrote[conn] = true
	} else {
		c.durable++
	}
}

func (c *commitCounter) counts() (durable, commits int) {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.durable, c.commits
}

func (c *commitCounter) TraceQueryStart(ctx context.Context, _ *pgx.Conn, d pgx.TraceQueryStartData) context.Context {
	return context.WithValue(ctx, sqlKey{}, d.SQL)
}

func (c *commitCounter) TraceQueryEnd(ctx context.Context, conn *pgx.Conn, d pgx.TraceQueryEndData) {
	sql, _ := ctx.Value(sqlKey{}).(string)
	c.saw(conn, sql, d.Err)
}

func (c *commitCounter) TraceBatchStart(ctx context.Context, _ *pgx.Conn, _ pgx.TraceBatchStartData) context.Context {
	return ctx
}

func (c *commitCounter) TraceBatchQuery(_ context.Context, conn *pgx.Conn, d pgx.TraceBatchQueryData) {
	c.saw(conn, d.SQL, d.Err)
}

func (c *commitCounter) TraceBatchEnd(context.Context, *pgx.Conn, pgx.TraceBatchEndData) {}

// TestPasswordLoginIsOneDurableCommit: a successful password login under the
// throttle (claim, check, session insert with its audit row, cap check)
// commits once; a wrong password commits once too (its failure). A
// success after failures forgets them in that same commit.
func TestPasswordLoginIsOneDurableCommit(t *testing.T) {
	cc := &commitCounter{}
	db, err := postgres.Open(ctx, pgtest.URL(t), postgres.Options{Tracer: cc})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(db.Close)
	k, err := keys.Generate(keys.EdDSA)
	if err != nil {
		t.Fatal(err)
	}
	ks, err := keys.NewSet(k)
	if err != nil {
		t.Fatal(err)
	}
	clk := clock.NewManual(time.Date(2030, 1, 1, 12, 0, 0, 0, time.UTC))
	log := slog.New(slog.NewTextHandler(io.Discard, nil))
	b := &testBundle{db: db, clk: clk, hasher: password.New(password.Params{Memory: 64, Time: 1, Threads: 1, SaltLen: 16, KeyLen: 32})}
	b.signer = token.NewSigner(ks, "http://authd.test", "authd-test", accessTTL, clk)
	th := throttle.New(db, clk, throttle.Config{}, log, nil)
	s := session.NewService(session.Deps{DB: db, Hasher: b.hasher, Signer: b.signer, Clock: clk, Throttle: th,
		Limits: session.Limits{SessionTTL: sessionTTL, MaxPerUser: 3}, Log: log})
	b.user(t, "ann", session.RoleUser)

	login := func(password string) (durable, commits int, err error) {
		d0, c0 := cc.counts()
		_, err = s.PasswordGrant(ctx, "ann", password, session.Meta{IP: "192.0.2.1"})
		d1, c1 := cc.counts()
		return d1 - d0, c1 - c0, err
	}
	for i := range 5 { // the fifth evicts the oldest session: still one commit
		if d, c, err := login(pw); err != nil || d != 1 || c != 1 {
			t.Fatalf("login %d: %d durable commits of %d, %v; want 1 of 1", i+1, d, c, err)
		}
	}
	if d, c, err := login("wrong"); !errors.Is(err, session.ErrInvalidCredentials) || d != 1 || c != 1 {
		t.Fatalf("wrong password: %d durable commits of %d, %v; want 1 of 1", d, c, err)
	}
	if d, c, err := login(pw); err != nil || d != 1 || c != 1 {
		t.Fatalf("login after a failure: %d durable commits of %d, %v; want 1 of 1", d, c, err)
	}
	var n int
	if err := db.Pool().QueryRow(ctx, `SELECT count(*) FROM login_failures`).Scan(&n); err != nil || n != 1 {
		t.Fatalf("login_failures: %d rows, %v; want the address's only", n, err)
	}
	if err := db.Pool().QueryRow(ctx, `SELECT count(*) FROM sessions WHERE revoked_at IS NULL`).Scan(&n); err != nil || n != 3 {
		t.Fatalf("%d live sessions, %v; want the cap, 3", n, err)
	}
}
