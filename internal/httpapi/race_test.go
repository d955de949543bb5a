package httpapi_test

import (
	"context"
	"net/http"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/seedc5a8123e/authd/internal/account"
	"github.com/seedc5a8123e/authd/internal/authdtest"
	"github.com/seedc5a8123e/authd/internal/password"
	sess "github.com/seedc5a8123e/authd/internal/session"
	"github.com/seedc5a8123e/authd/internal/throttle"
)

// loginStorm runs password grants for username from 8 goroutines until
// change has been applied, and returns every grant that succeeded. It calls
// change once at least a few logins have gone through, so logins are in
// flight on both sides of it.
func loginStorm(t *testing.T, env *authdtest.Env, username string, change func()) []sess.Grant {
	t.Helper()
	var (
		mu     sync.Mutex
		grants []sess.Grant
		stop   atomic.Bool
		wg     sync.WaitGroup
	)
	for range 8 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for !stop.Load() {
				if g, err := env.Sessions.PasswordGrant(context.Background(), username, pw, sess.Meta{}); err == nil {
					mu.Lock()
					grants = append(grants, g)
					mu.Unlock()
				}
			}
		}()
	}
	defer func() { stop.Store(true); wg.Wait() }() // also when the wait below fails
	authdtest.Eventually(t, 10*time.Second, func() bool {
		mu.Lock()
		defer mu.Unlock()
		return len(grants) >= 8
	}, "8 logins before the change")
	change()
	stop.Store(true)
	wg.Wait()
	if len(grants) == 0 {
		t.Fatal("no login went through before the change")
	}
	return grants
}

// TestLoginRacingAUserChangeNeverOutlivesIt: a login that verified the
// password before a reset, a disabling or a role change must not end with a
// live session carrying the old state. The session insert is conditional on
// the user row as the login saw it, so a racing login either lands before
// the change (and is revoked by it) or fails.
func TestLoginRacingAUserChangeNeverOutlivesIt(t *testing.T) {
	ctx := context.Background()
	t.Run("PasswordReset", func(t *testing.T) {
		env := authdtest.Start(t, authdtest.Options{})
		uid := env.CreateUser(t, "victim", "user", pw)
		grants := loginStorm(t, env, "victim", func() {
			if _, err := env.Accounts.ResetPassword(ctx, uid, "a brand new password 123", nil); err != nil {
				t.Error(err)
			}
		})
		for _, g := range grants {
			if _, err := env.Sessions.RefreshGrant(ctx, g.RefreshToken); err == nil {
				t.Fatalf("a session opened with the old password survived the reset (%d logins)", len(grants))
			}
		}
	})
	t.Run("DisableThenEnable", func(t *testing.T) {
		env := authdtest.Start(t, authdtest.Options{})
		uid := env.CreateUser(t, "victim", "user", pw)
		yes, no := true, false
		grants := loginStorm(t, env, "victim", func() {
			if _, _, err := env.Accounts.Update(ctx, uid, account.Change{Disabled: &yes}, nil); err != nil {
				t.Error(err)
			}
		})
		if _, _, err := env.Accounts.Update(ctx, uid, account.Change{Disabled: &no}, nil); err != nil {
			t.Fatal(err)
		}
		for _, g := range grants {
			if _, err := env.Sessions.RefreshGrant(ctx, g.RefreshToken); err == nil {
				t.Fatalf("a session opened before the disabling is live after re-enabling (%d logins)", len(grants))
			}
		}
	})
	t.Run("RoleChange", func(t *testing.T) {
		env := authdtest.Start(t, authdtest.Options{})
		env.CreateUser(t, "root", "admin", pw)
		uid := env.CreateUser(t, "boss", "admin", pw)
		demote := "user"
		grants := loginStorm(t, env, "boss", func() {
			if _, _, err := env.Accounts.Update(ctx, uid, account.Change{Role: &demote}, nil); err != nil {
				t.Error(err)
			}
		})
		for _, g := range grants {
			if _, err := env.Sessions.RefreshGrant(ctx, g.RefreshToken); err == nil && claimsOf(t, g.AccessToken).Role != "user" {
				t.Fatalf("a session minted with role admin survived the demotion (%d logins)", len(grants))
			}
		}
	})
}

// TestUserChangeCommitsWithItsRevocations: when the revocation cannot be
// written, the role change must not be written either, so that a retry still
// sees the change to make and revokes.
func TestUserChangeCommitsWithItsRevocations(t *testing.T) {
	env := authdtest.Start(t, authdtest.Options{})
	env.CreateUser(t, "root", "admin", pw)
	bossID := env.CreateUser(t, "boss", "admin", pw)
	admin := env.Login(t, "root", pw).AccessToken
	boss := env.Login(t, "boss", pw)
	ctx := context.Background()

	// Something holds the boss's session row past the revoke time limit.
	tx, err := env.DB.Pool().Begin(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := tx.Exec(ctx, `SELECT 1 FROM sessions WHERE id = $1 FOR UPDATE`, boss.SID); err != nil {
		t.Fatal(err)
	}
	patch := func() int {
		res, _ := env.Do(t, http.MethodPatch, "/users/"+bossID, admin, "application/json", strings.NewReader(`{"role":"user"}`))
		return res.StatusCode
	}
	if st := patch(); st == http.StatusOK {
		t.Fatal("PATCH succeeded while the revocation could not be written")
	}
	if u, _ := env.Accounts.User(ctx, bossID); u.Role != "admin" {
		t.Fatalf("role is %q after a failed PATCH: the change committed without its revocation", u.Role)
	}
	_ = tx.Rollback(ctx)
	if st := patch(); st != http.StatusOK {
		t.Fatalf("retried PATCH: %d", st)
	}
	if s := session(t, env, boss.SID); s.RevokedAt == nil || *s.RevokedReason != "role_changed" {
		t.Fatalf("after the retried demotion the admin session is %+v", s)
	}
}

// TestConcurrentLoginsSurviveARehash: the first login with a hash made under
// older parameters rewrites it; logins that verified the old hash at the same
// moment must still succeed, since the password did not change.
func TestConcurrentLoginsSurviveARehash(t *testing.T) {
	// PasswordGrant runs under the login throttle, whose in-flight bound
	// would refuse some of 8 parallel logins of one account by itself.
	env := authdtest.Start(t, authdtest.Options{Throttle: throttle.Config{MaxFailuresAccount: 100}})
	ctx := context.Background()
	uid := env.CreateUser(t, "old-hash", "user", pw)
	older := password.New(password.Params{Memory: 32, Time: 1, Threads: 1, SaltLen: 16, KeyLen: 32})
	for round := range 10 {
		u, err := env.DB.UserByID(ctx, uid)
		if err != nil {
			t.Fatal(err)
		}
		old, err := older.Hash(pw)
		if err != nil {
			t.Fatal(err)
		}
		if err := env.DB.UpdatePasswordHash(ctx, uid, u.PasswordHash, old, env.Clock.Now()); err != nil {
			t.Fatal(err)
		}
		var wg sync.WaitGroup
		var failed atomic.Int64
		for range 8 {
			wg.Add(1)
			go func() {
				defer wg.Done()
				if _, err := env.Sessions.PasswordGrant(ctx, "old-hash", pw, sess.Meta{}); err != nil {
					failed.Add(1)
				}
			}()
		}
		wg.Wait()
		if failed.Load() != 0 {
			t.Fatalf("round %d: %d of 8 correct logins failed while the hash was upgraded", round, failed.Load())
		}
		if after, _ := env.DB.UserByID(ctx, uid); after.PasswordHash == old {
			t.Fatalf("round %d: the old hash was not upgraded", round)
		}
	}
}
