package main

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"os"
	"strings"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/seedc5a8123e/authd/internal/account"
	"github.com/seedc5a8123e/authd/internal/authdtest"
	"github.com/seedc5a8123e/authd/internal/pgtest"
	"github.com/seedc5a8123e/authd/internal/postgres"
	"github.com/seedc5a8123e/authd/verifier"
)

func TestMain(m *testing.M) { os.Exit(pgtest.Main(m)) }

const cliPW = "correct horse battery staple"

type cliEnv struct {
	*authdtest.Env
	vars map[string]string
}

func setupCLI(t *testing.T) cliEnv {
	t.Helper()
	u := pgtest.URL(t)
	db, err := postgres.Open(context.Background(), u, postgres.Options{})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(db.Close)
	return cliEnv{Env: authdtest.Start(t, authdtest.Options{DB: db}), vars: map[string]string{"DATABASE_URL": u}}
}

// authd runs the command line and returns its stdout.
func (c cliEnv) authd(t *testing.T, stdin string, args ...string) (string, error) {
	t.Helper()
	var out, errOut bytes.Buffer
	err := run(context.Background(), args, func(k string) string { return c.vars[k] },
		strings.NewReader(stdin), &out, &errOut)
	// The command ran on the wall clock; the test server's clock is
	// manual. Catch it up, as NTP keeps a CLI host and the servers within
	// a few seconds: a cutoff the command decided is never in the server's
	// future.
	if now := time.Now(); now.After(c.Clock.Now()) {
		c.Clock.Set(now)
	}
	if errOut.Len() > 0 {
		t.Logf("stderr: %s", errOut.String())
	}
	return out.String(), err
}

func (c cliEnv) must(t *testing.T, stdin string, args ...string) string {
	t.Helper()
	out, err := c.authd(t, stdin, args...)
	if err != nil {
		t.Fatalf("authd %v: %v", args, err)
	}
	return out
}

func (c cliEnv) revokedBy(t *testing.T, sid, reason string) {
	t.Helper()
	s, err := c.DB.SessionByID(context.Background(), sid)
	if err != nil {
		t.Fatal(err)
	}
	if s.RevokedAt == nil || *s.RevokedReason != reason || s.RevokedByUserID != nil {
		t.Fatalf("session %s: revoked_at %v reason %v by %v; want reason %q by NULL",
			sid, s.RevokedAt, s.RevokedReason, s.RevokedByUserID, reason)
	}
}

func (c cliEnv) loginStatus(t *testing.T, user, pw string) int {
	t.Helper()
	res, _ := c.PostForm(t, "/token", map[string][]string{"grant_type": {"password"}, "username": {user}, "password": {pw}})
	return res.StatusCode
}

func TestUserDisableEnable(t *testing.T) {
	c := setupCLI(t)
	c.CreateUser(t, "root", "admin", cliPW)
	c.CreateUser(t, "bob", "user", cliPW)
	s1, s2 := c.Login(t, "bob", cliPW), c.Login(t, "bob", cliPW)

	out := c.must(t, "", "user", "disable", "BOB")
	if !strings.Contains(out, "2 sessions revoked") {
		t.Fatalf("disable: %q", out)
	}
	c.revokedBy(t, s1.SID, account.ReasonUserDisabled)
	c.revokedBy(t, s2.SID, account.ReasonUserDisabled)
	if st := c.loginStatus(t, "bob", cliPW); st != 400 {
		t.Fatalf("disabled user logs in: %d", st)
	}
	c.must(t, "", "user", "enable", "bob")
	c.Login(t, "bob", cliPW)

	if _, err := c.authd(t, "", "user", "disable", "nobody"); !errors.Is(err, account.ErrUserNotFound) {
		t.Fatalf("unknown user: %v", err)
	}
	if _, err := c.authd(t, "", "user", "disable"); exitCode(err) != 2 {
		t.Fatalf("missing username: %v", err)
	}
}

func TestUserSetRole(t *testing.T) {
	c := setupCLI(t)
	c.CreateUser(t, "root", "admin", cliPW)
	c.CreateUser(t, "bob", "user", cliPW)
	s := c.Login(t, "bob", cliPW)
	if out := c.must(t, "", "user", "set-role", "bob", "service"); !strings.Contains(out, "role=service, 1 sessions revoked") {
		t.Fatalf("set-role: %q", out)
	}
	c.revokedBy(t, s.SID, account.ReasonRoleChanged)
	c.ServiceToken(t, "bob", cliPW)
	var pe *account.PolicyError
	if _, err := c.authd(t, "", "user", "set-role", "bob", "boss"); !errors.As(err, &pe) {
		t.Fatalf("bad role: %v", err)
	}
}

func TestUserResetPassword(t *testing.T) {
	c := setupCLI(t)
	c.CreateUser(t, "bob", "user", cliPW)
	s := c.Login(t, "bob", cliPW)
	_, err := c.authd(t, "short\n", "user", "reset-password", "bob")
	var pe *account.PolicyError
	if !errors.As(err, &pe) || !strings.Contains(err.Error(), "at least 12 characters") {
		t.Fatalf("short password: %v", err)
	}
	if _, err := c.DB.SessionByID(context.Background(), s.SID); err != nil {
		t.Fatal(err)
	}
	c.must(t, "a new password from stdin\n", "user", "reset-password", "bob")
	c.revokedBy(t, s.SID, account.ReasonPasswordReset)
	c.Login(t, "bob", "a new password from stdin")
	if st := c.loginStatus(t, "bob", cliPW); st != 400 {
		t.Fatalf("old password: %d", st)
	}
}

func TestLastAdminGuardCLI(t *testing.T) {
	c := setupCLI(t)
	c.CreateUser(t, "root", "admin", cliPW)
	s := c.Login(t, "root", cliPW)
	for _, args := range [][]string{{"user", "disable", "root"}, {"user", "set-role", "root", "user"}} {
		if _, err := c.authd(t, "", args...); !errors.Is(err, account.ErrLastAdmin) {
			t.Fatalf("%v: %v, want ErrLastAdmin", args, err)
		}
	}
	if got, _ := c.DB.SessionByID(context.Background(), s.SID); got.RevokedAt != nil {
		t.Fatal("a refused change revoked the admin's session")
	}
	c.CreateUser(t, "second", "admin", cliPW)
	c.must(t, "", "user", "set-role", "root", "user")
	if _, err := c.authd(t, "", "user", "disable", "second"); !errors.Is(err, account.ErrLastAdmin) {
		t.Fatalf("second admin: %v", err)
	}
}

func TestSessionListAndRevoke(t *testing.T) {
	c := setupCLI(t)
	c.CreateUser(t, "alice", "user", cliPW)
	c.CreateUser(t, "bob", "user", cliPW)
	a1, a2 := c.Login(t, "alice", cliPW), c.Login(t, "alice", cliPW)
	b := c.Login(t, "bob", cliPW)

	out := c.must(t, "", "session", "list", "--user", "alice")
	if !strings.Contains(out, a1.SID) || !strings.Contains(out, a2.SID) || strings.Contains(out, b.SID) {
		t.Fatalf("list:\n%s", out)
	}
	out = c.must(t, "", "session", "revoke", a1.SID, "--reason", "laptop stolen")
	if !strings.Contains(out, "revoked") {
		t.Fatalf("revoke: %q", out)
	}
	c.revokedBy(t, a1.SID, "laptop stolen")
	if out := c.must(t, "", "session", "revoke", a1.SID); !strings.Contains(out, "already revoked") {
		t.Fatalf("second revoke: %q", out)
	}
	c.revokedBy(t, a1.SID, "laptop stolen") // the first revocation is kept

	if out := c.must(t, "", "session", "list", "--user", "alice"); strings.Contains(out, a1.SID) || !strings.Contains(out, a2.SID) {
		t.Fatalf("live list after revoke:\n%s", out)
	}
	if out := c.must(t, "", "session", "list", "--user", "alice", "--include-revoked"); !strings.Contains(out, a1.SID) ||
		!strings.Contains(out, "laptop stolen") {
		t.Fatalf("full list:\n%s", out)
	}
	if _, err := c.authd(t, "", "session", "revoke", "not-a-uuid"); err == nil || !strings.Contains(err.Error(), "UUID") {
		t.Fatalf("malformed sid: %v", err)
	}
	if _, err := c.authd(t, "", "session", "list"); exitCode(err) != 2 {
		t.Fatalf("missing --user: %v", err)
	}
}

// TestCLIPublishesToRedis: with AUTHD_REDIS_URL set, a revocation from the
// command line is pushed like one from the HTTP API.
func TestCLIPublishesToRedis(t *testing.T) {
	url := authdtest.RedisURL(t)
	opt, err := redis.ParseURL(url)
	if err != nil {
		t.Fatal(err)
	}
	rc := redis.NewClient(opt)
	defer rc.Close()
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	sub := rc.Subscribe(ctx, verifier.PushChannel)
	defer sub.Close()
	if _, err := sub.Receive(ctx); err != nil {
		t.Fatal(err)
	}

	c := setupCLI(t)
	c.vars["AUTHD_REDIS_URL"] = url
	c.CreateUser(t, "bob", "user", cliPW)
	s := c.Login(t, "bob", cliPW)
	c.must(t, "", "user", "disable", "bob")
	for { // other test binaries may publish on the same server
		msg, err := sub.ReceiveMessage(ctx)
		if err != nil {
			t.Fatalf("no push for sid %s: %v", s.SID, err)
		}
		var e verifier.Revocation
		if json.Unmarshal([]byte(msg.Payload), &e) == nil && e.SID == s.SID {
			return
		}
	}
}
