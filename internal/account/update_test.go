package account_test

import (
	"context"
	"errors"
	"io"
	"log/slog"
	"os"
	"sync"
	"testing"
	"time"

	"github.com/google/uuid"

	"github.com/seedc5a8123e/authd/internal/account"
	"github.com/seedc5a8123e/authd/internal/clock"
	"github.com/seedc5a8123e/authd/internal/keys"
	"github.com/seedc5a8123e/authd/internal/password"
	"github.com/seedc5a8123e/authd/internal/pgtest"
	"github.com/seedc5a8123e/authd/internal/postgres"
	"github.com/seedc5a8123e/authd/internal/session"
	"github.com/seedc5a8123e/authd/internal/token"
)

func TestMain(m *testing.M) { os.Exit(pgtest.Main(m)) }

const pw = "correct horse battery staple"

type testBundle struct {
	db       *postgres.DB
	clk      *clock.Manual
	sessions *session.Service
}

// setup builds an account.Service as internal/app does, over a database of
// its own and a manual clock, with cheap password parameters.
func setup(t *testing.T) (*account.Service, *testBundle) {
	t.Helper()
	k, err := keys.Generate(keys.EdDSA)
	if err != nil {
		t.Fatal(err)
	}
	ks, err := keys.NewSet(k)
	if err != nil {
		t.Fatal(err)
	}
	db := pgtest.NewDB(t)
	clk := clock.NewManual(time.Date(2030, 1, 1, 12, 0, 0, 0, time.UTC))
	hasher := password.New(password.Params{Memory: 64, Time: 1, Threads: 1, SaltLen: 16, KeyLen: 32})
	sessions := session.NewService(session.Deps{
		DB: db, Hasher: hasher, Signer: token.NewSigner(ks, "http://authd.test", "authd-test", 10*time.Minute, clk),
		Clock: clk, Limits: session.Limits{SessionTTL: 24 * time.Hour}, Log: slog.New(slog.NewTextHandler(io.Discard, nil)),
	})
	a := account.NewService(account.Deps{DB: db, Hasher: hasher, Clock: clk, Sessions: sessions})
	return a, &testBundle{db: db, clk: clk, sessions: sessions}
}

func (b *testBundle) user(t *testing.T, a *account.Service, name, role string) (postgres.User, session.Grant) {
	t.Helper()
	u, err := a.Create(context.Background(), name, role, pw)
	if err != nil {
		t.Fatal(err)
	}
	if role == session.RoleService {
		return u, session.Grant{}
	}
	g, err := b.sessions.PasswordGrant(context.Background(), name, pw, session.Meta{})
	if err != nil {
		t.Fatal(err)
	}
	return u, g
}

func (b *testBundle) revokedReason(t *testing.T, sid string) string {
	t.Helper()
	s, err := b.db.SessionByID(context.Background(), sid)
	if err != nil {
		t.Fatal(err)
	}
	if s.RevokedReason == nil {
		return ""
	}
	return *s.RevokedReason
}

func TestUpdate(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	yes, no, admin, user := true, false, session.RoleAdmin, session.RoleUser

	t.Run("DisablingRevokesEverySessionOfTheUser", func(t *testing.T) {
		t.Parallel()
		a, b := setup(t)
		root, _ := b.user(t, a, "root", admin)
		u, g := b.user(t, a, "alice", user)
		got, n, err := a.Update(ctx, u.ID, account.Change{Disabled: &yes}, &root.ID)
		if err != nil || n != 1 || got.DisabledAt == nil || !got.DisabledAt.Equal(b.clk.Now()) {
			t.Fatalf("Update = %+v, %d, %v", got, n, err)
		}
		if r := b.revokedReason(t, g.SID); r != account.ReasonUserDisabled {
			t.Fatalf("session reason %q", r)
		}
		if got, n, err := a.Update(ctx, u.ID, account.Change{Disabled: &no}, &root.ID); err != nil || n != 0 || got.DisabledAt != nil {
			t.Fatalf("enable = %+v, %d, %v", got, n, err)
		}
	})

	t.Run("ARoleChangeRevokesEverySessionOfTheUser", func(t *testing.T) {
		t.Parallel()
		a, b := setup(t)
		root, _ := b.user(t, a, "root", admin)
		u, g := b.user(t, a, "alice", user)
		got, n, err := a.Update(ctx, u.ID, account.Change{Role: &admin}, &root.ID)
		if err != nil || n != 1 || got.Role != admin {
			t.Fatalf("Update = %+v, %d, %v", got, n, err)
		}
		if r := b.revokedReason(t, g.SID); r != account.ReasonRoleChanged {
			t.Fatalf("session reason %q", r)
		}
	})

	t.Run("AChangeToTheSameStateRevokesNothing", func(t *testing.T) {
		t.Parallel()
		a, b := setup(t)
		u, g := b.user(t, a, "alice", user)
		if _, n, err := a.Update(ctx, u.ID, account.Change{Role: &user, Disabled: &no}, nil); err != nil || n != 0 {
			t.Fatalf("Update = %d, %v", n, err)
		}
		if r := b.revokedReason(t, g.SID); r != "" {
			t.Fatalf("session revoked: %q", r)
		}
	})

	t.Run("TheLastEnabledAdminCannotBeDisabledOrDemoted", func(t *testing.T) {
		t.Parallel()
		a, b := setup(t)
		root, g := b.user(t, a, "root", admin)
		old, _ := b.user(t, a, "old-root", admin)
		if _, _, err := a.Update(ctx, old.ID, account.Change{Disabled: &yes}, nil); err != nil {
			t.Fatal(err)
		}
		for _, ch := range []account.Change{{Disabled: &yes}, {Role: &user}} {
			if _, _, err := a.Update(ctx, root.ID, ch, nil); !errors.Is(err, account.ErrLastAdmin) {
				t.Fatalf("Update = %v, want ErrLastAdmin", err)
			}
		}
		if u, err := a.User(ctx, root.ID); err != nil || u.Role != admin || u.DisabledAt != nil {
			t.Fatalf("the last admin changed: %+v, %v", u, err)
		}
		if r := b.revokedReason(t, g.SID); r != "" {
			t.Fatalf("the refused change revoked: %q", r)
		}
	})

	t.Run("ConcurrentDemotionsLeaveOneEnabledAdmin", func(t *testing.T) {
		t.Parallel()
		a, b := setup(t)
		for round := range 3 {
			var ids []string
			for i := range 2 {
				u, _ := b.user(t, a, "root"+string(rune('a'+round))+string(rune('0'+i)), admin)
				ids = append(ids, u.ID)
			}
			// Older admins from the earlier rounds are disabled already.
			var (
				wg         sync.WaitGroup
				mu         sync.Mutex
				ok, refuse int
			)
			start := make(chan struct{})
			for _, id := range ids {
				wg.Add(1)
				go func() {
					defer wg.Done()
					<-start
					_, _, err := a.Update(ctx, id, account.Change{Disabled: &yes}, nil)
					mu.Lock()
					defer mu.Unlock()
					switch {
					case err == nil:
						ok++
					case errors.Is(err, account.ErrLastAdmin):
						refuse++
					default:
						t.Error(err)
					}
				}()
			}
			close(start)
			wg.Wait()
			if ok != 1 || refuse != 1 {
				t.Fatalf("round %d: %d demotions went through, %d refused; want 1 and 1", round, ok, refuse)
			}
			// The survivor is disabled by hand, leaving none, so the next
			// round starts from its own two.
			for _, id := range ids {
				if _, err := b.db.Pool().Exec(ctx, `UPDATE users SET disabled_at = now() WHERE id = $1`, id); err != nil {
					t.Fatal(err)
				}
			}
		}
	})

	t.Run("BadInputIsRefused", func(t *testing.T) {
		t.Parallel()
		a, b := setup(t)
		u, _ := b.user(t, a, "alice", user)
		bad := "superuser"
		if _, _, err := a.Update(ctx, "not-a-uuid", account.Change{}, nil); !errors.Is(err, account.ErrMalformedUserID) {
			t.Errorf("malformed id: %v", err)
		}
		if _, _, err := a.Update(ctx, uuid.NewString(), account.Change{}, nil); !errors.Is(err, account.ErrUserNotFound) {
			t.Errorf("unknown id: %v", err)
		}
		var pe *account.PolicyError
		if _, _, err := a.Update(ctx, u.ID, account.Change{Role: &bad}, nil); !errors.As(err, &pe) {
			t.Errorf("bad role: %v", err)
		}
	})
}
