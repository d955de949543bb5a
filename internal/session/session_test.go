package session_test

import (
	"context"
	"errors"
	"io"
	"log/slog"
	"os"
	"reflect"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/google/uuid"
	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/seedc5a8123e/authd/internal/clock"
	"github.com/seedc5a8123e/authd/internal/keys"
	"github.com/seedc5a8123e/authd/internal/password"
	"github.com/seedc5a8123e/authd/internal/pgtest"
	"github.com/seedc5a8123e/authd/internal/postgres"
	"github.com/seedc5a8123e/authd/internal/session"
	"github.com/seedc5a8123e/authd/internal/token"
	"github.com/seedc5a8123e/authd/verifier"
)

func TestMain(m *testing.M) { os.Exit(pgtest.Main(m)) }

var ctx = context.Background()

const (
	pw         = "correct horse battery staple"
	sessionTTL = 24 * time.Hour
	accessTTL  = 10 * time.Minute
)

// publisher records what was published.
type publisher struct {
	mu      sync.Mutex
	entries []verifier.Message
}

func (p *publisher) Publish(_ context.Context, entries []verifier.Message) {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.entries = append(p.entries, entries...)
}

func (p *publisher) published() []verifier.Message {
	p.mu.Lock()
	defer p.mu.Unlock()
	return append([]verifier.Message(nil), p.entries...)
}

// observer records what the service reported.
type observer struct {
	mu      sync.Mutex
	issued  map[string]int
	revoked map[string]int
	reused  int
	raced   int
	full    int
}

func (o *observer) TokenIssued(grant string) { o.mu.Lock(); o.issued[grant]++; o.mu.Unlock() }
func (o *observer) RefreshReused()           { o.mu.Lock(); o.reused++; o.mu.Unlock() }
func (o *observer) RefreshRaced()            { o.mu.Lock(); o.raced++; o.mu.Unlock() }
func (o *observer) RefreshFullPath()         { o.mu.Lock(); o.full++; o.mu.Unlock() }

// fullPaths is how many refreshes the one-statement rotation left to the
// full transaction.
func (o *observer) fullPaths() int { o.mu.Lock(); defer o.mu.Unlock(); return o.full }
func (o *observer) Revoked(reason string, n int) {
	o.mu.Lock()
	o.revoked[reason] += n
	o.mu.Unlock()
}

func (o *observer) counts() (issued, revoked map[string]int, reused int) {
	o.mu.Lock()
	defer o.mu.Unlock()
	issued, revoked = map[string]int{}, map[string]int{}
	for k, v := range o.issued {
		issued[k] = v
	}
	for k, v := range o.revoked {
		revoked[k] = v
	}
	return issued, revoked, o.reused
}

type testBundle struct {
	db     *postgres.DB
	clk    *clock.Manual
	hasher *password.Hasher
	signer *token.Signer
	pub    *publisher
	obs    *observer
}

// setup builds a session.Service as internal/app does, over a database of
// its own, a manual clock, cheap password parameters, a fresh signing key,
// and recorders for what is published and observed.
func setup(t *testing.T, limits session.Limits) (*session.Service, *testBundle) {
	t.Helper()
	k, err := keys.Generate(keys.EdDSA)
	if err != nil {
		t.Fatal(err)
	}
	ks, err := keys.NewSet(k)
	if err != nil {
		t.Fatal(err)
	}
	if limits.SessionTTL == 0 {
		limits.SessionTTL = sessionTTL
	}
	b := &testBundle{
		db:     pgtest.NewDB(t),
		clk:    clock.NewManual(time.Date(2030, 1, 1, 12, 0, 0, 0, time.UTC)),
		hasher: password.New(password.Params{Memory: 64, Time: 1, Threads: 1, SaltLen: 16, KeyLen: 32}),
		pub:    &publisher{},
		obs:    &observer{issued: map[string]int{}, revoked: map[string]int{}},
	}
	b.signer = token.NewSigner(ks, "http://authd.test", "authd-test", accessTTL, b.clk)
	s := session.NewService(session.Deps{
		DB: b.db, Hasher: b.hasher, Signer: b.signer, Clock: b.clk, Limits: limits,
		Publisher: b.pub, Log: slog.New(slog.NewTextHandler(io.Discard, nil)), Observer: b.obs,
	})
	return s, b
}

// user creates an enabled user with password pw.
func (b *testBundle) user(t *testing.T, name, role string) postgres.User {
	t.Helper()
	h, err := b.hasher.Hash(pw)
	if err != nil {
		t.Fatal(err)
	}
	now := b.clk.Now()
	u := postgres.User{ID: uuid.NewString(), Username: name, PasswordHash: h, Role: role, CreatedAt: now, UpdatedAt: now}
	if err := b.db.CreateUser(ctx, u); err != nil {
		t.Fatal(err)
	}
	return u
}

func (b *testBundle) row(t *testing.T, sid string) postgres.Session {
	t.Helper()
	s, err := b.db.SessionByID(ctx, sid)
	if err != nil {
		t.Fatalf("session %s: %v", sid, err)
	}
	return s
}

// warmPool opens n connections, so that concurrent calls run at once
// instead of queueing behind connection set-up.
func warmPool(t *testing.T, db *postgres.DB, n int) {
	t.Helper()
	var conns []*pgxpool.Conn
	for range n {
		c, err := db.Pool().Acquire(ctx)
		if err != nil {
			t.Fatal(err)
		}
		conns = append(conns, c)
	}
	for _, c := range conns {
		c.Release()
	}
}

func login(t *testing.T, s *session.Service, name string) session.Grant {
	t.Helper()
	g, err := s.PasswordGrant(ctx, name, pw, session.Meta{UserAgent: "test", IP: "192.0.2.1"})
	if err != nil {
		t.Fatalf("login %s: %v", name, err)
	}
	return g
}

func refresh(t *testing.T, s *session.Service, rt string) session.Grant {
	t.Helper()
	g, err := s.RefreshGrant(ctx, rt)
	if err != nil {
		t.Fatalf("refresh: %v", err)
	}
	return g
}

func principal(t *testing.T, s *session.Service, g session.Grant, allowRevoked bool) session.Principal {
	t.Helper()
	p, err := s.Authenticate(ctx, g.AccessToken, allowRevoked)
	if err != nil {
		t.Fatalf("Authenticate: %v", err)
	}
	return p
}

func TestPasswordGrant(t *testing.T) {
	t.Parallel()

	t.Run("CreatesASessionWithARefreshToken", func(t *testing.T) {
		t.Parallel()
		s, b := setup(t, session.Limits{})
		u := b.user(t, "alice", session.RoleUser)
		g := login(t, s, "ALICE")
		if g.AccessToken == "" || g.RefreshToken == "" || g.ExpiresIn != int64(accessTTL/time.Second) {
			t.Fatalf("grant = %+v", g)
		}
		row := b.row(t, g.SID)
		if row.UserID != u.ID || row.RevokedAt != nil || !row.ExpiresAt.Equal(b.clk.Now().Add(sessionTTL)) || *row.IP != "192.0.2.1" {
			t.Fatalf("session row = %+v", row)
		}
		if p := principal(t, s, g, false); p.UserID != u.ID || p.SID != g.SID || p.Role != session.RoleUser || p.JTI != row.LastJTI {
			t.Fatalf("principal = %+v", p)
		}
		if issued, _, _ := b.obs.counts(); issued[session.GrantPassword] != 1 {
			t.Fatalf("issued = %v", issued)
		}
	})

	t.Run("WrongPasswordUnknownUserAndDisabledUserLookAlike", func(t *testing.T) {
		t.Parallel()
		s, b := setup(t, session.Limits{})
		u := b.user(t, "alice", session.RoleUser)
		b.user(t, "carol", session.RoleUser)
		if err := b.db.SetUserDisabled(ctx, u.ID, new(b.clk.Now()), b.clk.Now()); err != nil {
			t.Fatal(err)
		}
		for _, c := range [][2]string{{"carol", "wrong password"}, {"nobody", pw}, {"alice", pw}} {
			if _, err := s.PasswordGrant(ctx, c[0], c[1], session.Meta{}); !errors.Is(err, session.ErrInvalidCredentials) {
				t.Errorf("login %s: %v, want ErrInvalidCredentials", c[0], err)
			}
		}
	})

	t.Run("BeyondMaxPerUserTheOldestIsRevokedAndAnnounced", func(t *testing.T) {
		t.Parallel()
		s, b := setup(t, session.Limits{MaxPerUser: 1})
		b.user(t, "alice", session.RoleUser)
		first := login(t, s, "alice")
		b.clk.Advance(time.Second)
		second := login(t, s, "alice")
		if r := b.row(t, first.SID); r.RevokedAt == nil || *r.RevokedReason != session.ReasonSessionLimit {
			t.Fatalf("first session = %+v, want revoked for the limit", r)
		}
		if r := b.row(t, second.SID); r.RevokedAt != nil {
			t.Fatalf("second session revoked: %+v", r)
		}
		if got := b.pub.published(); len(got) != 1 || got[0].SID != first.SID {
			t.Fatalf("published %+v, want the first session", got)
		}
		if _, revoked, _ := b.obs.counts(); revoked[session.ReasonSessionLimit] != 1 {
			t.Fatalf("revoked = %v", revoked)
		}
	})
}

func TestClientCredentialsGrant(t *testing.T) {
	t.Parallel()

	t.Run("AServiceUserGetsOneTokenAndNoRefresh", func(t *testing.T) {
		t.Parallel()
		s, b := setup(t, session.Limits{})
		b.user(t, "svc", session.RoleService)
		g, err := s.ClientCredentialsGrant(ctx, "svc", pw, session.Meta{})
		if err != nil || g.RefreshToken != "" || g.AccessToken == "" {
			t.Fatalf("grant = %+v, %v", g, err)
		}
		if r := b.row(t, g.SID); !r.ExpiresAt.Equal(r.AccessExp) {
			t.Fatalf("session %+v outlives its token", r)
		}
	})

	t.Run("AnyOtherRoleIsAnInvalidClient", func(t *testing.T) {
		t.Parallel()
		s, b := setup(t, session.Limits{})
		b.user(t, "alice", session.RoleUser)
		if _, err := s.ClientCredentialsGrant(ctx, "alice", pw, session.Meta{}); !errors.Is(err, session.ErrInvalidClient) {
			t.Fatalf("grant = %v, want ErrInvalidClient", err)
		}
	})
}

func TestRefreshGrant(t *testing.T) {
	t.Parallel()

	t.Run("RotatesTheRefreshToken", func(t *testing.T) {
		t.Parallel()
		s, b := setup(t, session.Limits{})
		b.user(t, "alice", session.RoleUser)
		g0 := login(t, s, "alice")
		b.clk.Advance(time.Minute)
		g1 := refresh(t, s, g0.RefreshToken)
		if g1.SID != g0.SID || g1.RefreshToken == g0.RefreshToken || g1.AccessToken == g0.AccessToken {
			t.Fatalf("refresh = %+v after %+v", g1, g0)
		}
		row := b.row(t, g0.SID)
		if p := principal(t, s, g1, false); p.JTI != row.LastJTI || row.LastRefreshedAt == nil || !row.LastRefreshedAt.Equal(b.clk.Now()) {
			t.Fatalf("row %+v does not record the new token %+v", row, p)
		}
		g2 := refresh(t, s, g1.RefreshToken)
		if g2.RefreshToken == g1.RefreshToken {
			t.Fatal("the new token did not rotate")
		}
		if issued, _, _ := b.obs.counts(); issued[session.GrantRefreshToken] != 2 {
			t.Fatalf("issued = %v", issued)
		}
	})

	t.Run("ReuseOfAnyRotatedTokenRevokesTheSessionOnce", func(t *testing.T) {
		t.Parallel()
		s, b := setup(t, session.Limits{})
		b.user(t, "alice", session.RoleUser)
		tokens := []string{login(t, s, "alice").RefreshToken}
		var sid string
		for range 3 {
			g := refresh(t, s, tokens[len(tokens)-1])
			tokens, sid = append(tokens, g.RefreshToken), g.SID
		}
		// tokens[1] is neither the current token nor the previous one.
		if _, err := s.RefreshGrant(ctx, tokens[1]); !errors.Is(err, session.ErrRefreshReused) {
			t.Fatalf("reuse of a rotated token: %v, want ErrRefreshReused", err)
		}
		row := b.row(t, sid)
		if row.RevokedAt == nil || *row.RevokedReason != session.ReasonRefreshReuse || row.RevokedByUserID != nil {
			t.Fatalf("session after reuse = %+v, want revoked for refresh_token_reuse", row)
		}
		if got := b.pub.published(); len(got) != 1 || got[0].Seq == 0 ||
			!reflect.DeepEqual(got[0], verifier.Message{JTI: row.LastJTI, SID: sid, Exp: row.AccessExp.Unix(), Seq: got[0].Seq}) {
			t.Fatalf("published %+v", got)
		}
		// The current token no longer works, and further reuse revokes nothing more.
		if _, err := s.RefreshGrant(ctx, tokens[3]); !errors.Is(err, session.ErrInvalidRefresh) {
			t.Fatalf("the current token after the reuse: %v, want ErrInvalidRefresh", err)
		}
		if _, err := s.RefreshGrant(ctx, tokens[0]); !errors.Is(err, session.ErrRefreshReused) {
			t.Fatalf("second reuse: %v, want ErrRefreshReused", err)
		}
		if again := b.row(t, sid); !again.RevokedAt.Equal(*row.RevokedAt) {
			t.Fatalf("the revocation was rewritten: %+v", again)
		}
		_, revoked, reused := b.obs.counts()
		if got := b.pub.published(); len(got) != 1 || revoked[session.ReasonRefreshReuse] != 1 || reused != 2 {
			t.Fatalf("published %d, revoked %v, reuses %d; want one revocation and two reuses", len(got), revoked, reused)
		}
	})

	t.Run("ConcurrentRefreshesWithOneTokenRotateOnce", func(t *testing.T) {
		t.Parallel()
		s, b := setup(t, session.Limits{})
		b.user(t, "alice", session.RoleUser)
		const n = 4 // within the pool's smallest default size
		warmPool(t, b.db, n)
		for range 5 {
			g := login(t, s, "alice")
			var (
				wg                sync.WaitGroup
				mu                sync.Mutex
				ok, reused, other int
			)
			start := make(chan struct{})
			for range n {
				wg.Add(1)
				go func() {
					defer wg.Done()
					<-start
					_, err := s.RefreshGrant(ctx, g.RefreshToken)
					mu.Lock()
					defer mu.Unlock()
					switch {
					case err == nil:
						ok++
					case errors.Is(err, session.ErrRefreshReused):
						reused++
					default:
						other++
						t.Errorf("refresh: %v", err)
					}
				}()
			}
			close(start)
			wg.Wait()
			if ok != 1 || reused != n-1 {
				t.Fatalf("%d refreshes succeeded, %d were reuses (%d other); want 1 and %d", ok, reused, other, n-1)
			}
		}
	})

	t.Run("AnExpiredSessionIsInvalidAndNotRotated", func(t *testing.T) {
		t.Parallel()
		s, b := setup(t, session.Limits{})
		b.user(t, "alice", session.RoleUser)
		g := login(t, s, "alice")
		b.clk.Advance(sessionTTL)
		for range 2 { // still the current token the second time: nothing rotated
			if _, err := s.RefreshGrant(ctx, g.RefreshToken); !errors.Is(err, session.ErrInvalidRefresh) {
				t.Fatalf("refresh at the session's end: %v, want ErrInvalidRefresh", err)
			}
		}
		if r := b.row(t, g.SID); r.LastRefreshedAt != nil || r.RevokedAt != nil {
			t.Fatalf("row = %+v, want untouched", r)
		}
	})

	t.Run("ADisabledUserCannotRefresh", func(t *testing.T) {
		t.Parallel()
		s, b := setup(t, session.Limits{})
		u := b.user(t, "alice", session.RoleUser)
		g := login(t, s, "alice")
		if err := b.db.SetUserDisabled(ctx, u.ID, new(b.clk.Now()), b.clk.Now()); err != nil {
			t.Fatal(err)
		}
		if _, err := s.RefreshGrant(ctx, g.RefreshToken); !errors.Is(err, session.ErrInvalidRefresh) {
			t.Fatalf("refresh: %v, want ErrInvalidRefresh", err)
		}
	})

	t.Run("ARevokedSessionOrAnUnknownTokenIsInvalid", func(t *testing.T) {
		t.Parallel()
		s, b := setup(t, session.Limits{})
		b.user(t, "alice", session.RoleUser)
		g := login(t, s, "alice")
		if _, err := s.Logout(ctx, principal(t, s, g, false)); err != nil {
			t.Fatal(err)
		}
		for _, rt := range []string{g.RefreshToken, "never issued"} {
			if _, err := s.RefreshGrant(ctx, rt); !errors.Is(err, session.ErrInvalidRefresh) {
				t.Fatalf("refresh: %v, want ErrInvalidRefresh", err)
			}
		}
	})
}

func TestAuthenticate(t *testing.T) {
	t.Parallel()

	t.Run("ARevokedSessionIsRefusedUnlessAllowed", func(t *testing.T) {
		t.Parallel()
		s, b := setup(t, session.Limits{})
		b.user(t, "alice", session.RoleUser)
		g := login(t, s, "alice")
		if _, err := s.RevokeSession(ctx, g.SID, "", nil); err != nil {
			t.Fatal(err)
		}
		if _, err := s.Authenticate(ctx, g.AccessToken, false); !errors.Is(err, session.ErrInvalidToken) {
			t.Fatalf("Authenticate = %v, want ErrInvalidToken", err)
		}
		if p := principal(t, s, g, true); !p.Revoked || p.SID != g.SID {
			t.Fatalf("principal = %+v, want marked revoked", p)
		}
	})

	t.Run("AnUnknownSessionIsRefused", func(t *testing.T) {
		t.Parallel()
		s, b := setup(t, session.Limits{})
		u := b.user(t, "alice", session.RoleUser)
		m, err := b.signer.Mint(u.ID, uuid.NewString(), u.Role, b.clk.Now().Add(time.Hour))
		if err != nil {
			t.Fatal(err)
		}
		if _, err := s.Authenticate(ctx, m.Token, true); !errors.Is(err, session.ErrInvalidToken) {
			t.Fatalf("Authenticate = %v, want ErrInvalidToken", err)
		}
	})

	t.Run("AnotherUsersSessionOrAForgedTokenIsRefused", func(t *testing.T) {
		t.Parallel()
		s, b := setup(t, session.Limits{})
		b.user(t, "alice", session.RoleUser)
		bob := b.user(t, "bob", session.RoleUser)
		g := login(t, s, "alice")
		m, err := b.signer.Mint(bob.ID, g.SID, bob.Role, b.clk.Now().Add(time.Hour))
		if err != nil {
			t.Fatal(err)
		}
		for _, tok := range []string{m.Token, g.AccessToken + "x", "not a token"} {
			if _, err := s.Authenticate(ctx, tok, false); !errors.Is(err, session.ErrInvalidToken) {
				t.Fatalf("Authenticate = %v, want ErrInvalidToken", err)
			}
		}
	})

	t.Run("ADisabledUserIsRefused", func(t *testing.T) {
		t.Parallel()
		s, b := setup(t, session.Limits{})
		u := b.user(t, "alice", session.RoleUser)
		g := login(t, s, "alice")
		if err := b.db.SetUserDisabled(ctx, u.ID, new(b.clk.Now()), b.clk.Now()); err != nil {
			t.Fatal(err)
		}
		if _, err := s.Authenticate(ctx, g.AccessToken, true); !errors.Is(err, session.ErrInvalidToken) {
			t.Fatalf("Authenticate = %v, want ErrInvalidToken", err)
		}
	})
}

func TestLogout(t *testing.T) {
	t.Parallel()

	t.Run("RevokesTheSessionAndAnnouncesIt", func(t *testing.T) {
		t.Parallel()
		s, b := setup(t, session.Limits{})
		u := b.user(t, "alice", session.RoleUser)
		g := login(t, s, "alice")
		other := login(t, s, "alice")
		already, err := s.Logout(ctx, principal(t, s, g, false))
		if err != nil || already {
			t.Fatalf("Logout = %v, %v", already, err)
		}
		if r := b.row(t, g.SID); r.RevokedAt == nil || *r.RevokedReason != session.ReasonUserLogout || *r.RevokedByUserID != u.ID {
			t.Fatalf("row = %+v", r)
		}
		if r := b.row(t, other.SID); r.RevokedAt != nil {
			t.Fatalf("the other session was revoked: %+v", r)
		}
		if got := b.pub.published(); len(got) != 1 || got[0].SID != g.SID {
			t.Fatalf("published %+v", got)
		}
	})

	t.Run("IsIdempotent", func(t *testing.T) {
		t.Parallel()
		s, b := setup(t, session.Limits{})
		b.user(t, "alice", session.RoleUser)
		g := login(t, s, "alice")
		before := principal(t, s, g, false) // taken before an admin revokes
		if _, err := s.RevokeSession(ctx, g.SID, "", nil); err != nil {
			t.Fatal(err)
		}
		for _, p := range []session.Principal{before, principal(t, s, g, true)} {
			if already, err := s.Logout(ctx, p); err != nil || !already {
				t.Fatalf("Logout of a revoked session = %v, %v; want already", already, err)
			}
		}
		if r := b.row(t, g.SID); *r.RevokedReason != session.ReasonAdminRevoke {
			t.Fatalf("the first revocation was overwritten: %+v", r)
		}
		if got := b.pub.published(); len(got) != 1 {
			t.Fatalf("published %+v, want only the admin's revocation", got)
		}
	})
}

func TestRevokeUser(t *testing.T) {
	t.Parallel()
	s, b := setup(t, session.Limits{})
	u := b.user(t, "alice", session.RoleUser)
	b.user(t, "bob", session.RoleUser)
	keep, a, c, bobs := login(t, s, "alice"), login(t, s, "alice"), login(t, s, "alice"), login(t, s, "bob")
	n, err := s.RevokeUser(ctx, u.ID, keep.SID, session.ReasonUserLogoutAll, &u.ID)
	if err != nil || n != 2 {
		t.Fatalf("RevokeUser = %d, %v; want 2", n, err)
	}
	for sid, revoked := range map[string]bool{keep.SID: false, a.SID: true, c.SID: true, bobs.SID: false} {
		if r := b.row(t, sid); (r.RevokedAt != nil) != revoked {
			t.Errorf("session %s: revoked %v, want %v", sid, r.RevokedAt != nil, revoked)
		}
	}
	if got := b.pub.published(); len(got) != 2 {
		t.Fatalf("published %+v", got)
	}
	if _, revoked, _ := b.obs.counts(); revoked[session.ReasonUserLogoutAll] != 2 {
		t.Fatalf("revoked = %v", revoked)
	}
}

func TestRevokeSession(t *testing.T) {
	t.Parallel()

	t.Run("MalformedInputIsRefusedBeforeTheDatabase", func(t *testing.T) {
		t.Parallel()
		s, _ := setup(t, session.Limits{})
		sid := uuid.NewString()
		for _, c := range []struct {
			sid, reason string
			want        error
		}{
			{"not-a-uuid", "", session.ErrMalformedSID},
			{strings.ReplaceAll(sid, "-", ""), "", session.ErrMalformedSID},
			{"{" + sid + "}", "", session.ErrMalformedSID},
			{sid, strings.Repeat("é", session.MaxReasonLen+1), session.ErrBadReason},
			{sid, "bad \xff utf-8", session.ErrBadReason},
		} {
			if _, err := s.RevokeSession(ctx, c.sid, c.reason, nil); !errors.Is(err, c.want) {
				t.Errorf("RevokeSession(%q, %d-byte reason) = %v, want %v", c.sid, len(c.reason), err, c.want)
			}
		}
	})

	t.Run("AnUnknownSessionIsNotFound", func(t *testing.T) {
		t.Parallel()
		s, _ := setup(t, session.Limits{})
		if _, err := s.RevokeSession(ctx, uuid.NewString(), "", nil); !errors.Is(err, session.ErrNotFound) {
			t.Fatalf("RevokeSession = %v, want ErrNotFound", err)
		}
	})

	t.Run("ReturnsWhatTheRowRecords", func(t *testing.T) {
		t.Parallel()
		s, b := setup(t, session.Limits{})
		b.user(t, "alice", session.RoleUser)
		admin := b.user(t, "root", session.RoleAdmin)
		g := login(t, s, "alice")
		b.clk.Advance(1234567 * time.Nanosecond) // finer than PostgreSQL keeps
		reason := strings.Repeat("é", session.MaxReasonLen)
		r, err := s.RevokeSession(ctx, g.SID, reason, &admin.ID)
		row := b.row(t, g.SID)
		if err != nil || r.AlreadyRevoked || r.SID != g.SID || !r.RevokedAt.Equal(*row.RevokedAt) || r.RevokedAt.Nanosecond()%1000 != 0 ||
			r.RevokedReason != reason || r.RevokedByUserID == nil || *r.RevokedByUserID != admin.ID {
			t.Fatalf("RevokeSession = %+v, %v; row %+v", r, err, row)
		}
		if _, revoked, _ := b.obs.counts(); revoked[session.ReasonAdminRevoke] != 1 {
			t.Fatalf("revoked = %v, want the admin's text counted as admin_revoke", revoked)
		}
	})

	t.Run("SecondRevocationKeepsTheFirst", func(t *testing.T) {
		t.Parallel()
		s, b := setup(t, session.Limits{})
		b.user(t, "alice", session.RoleUser)
		admin := b.user(t, "root", session.RoleAdmin)
		g := login(t, s, "alice")
		first, err := s.RevokeSession(ctx, g.SID, "", nil)
		if err != nil || first.RevokedReason != session.ReasonAdminRevoke || first.RevokedByUserID != nil {
			t.Fatalf("first = %+v, %v", first, err)
		}
		b.clk.Advance(time.Hour)
		second, err := s.RevokeSession(ctx, g.SID, "again", &admin.ID)
		if err != nil || !second.AlreadyRevoked || !second.RevokedAt.Equal(first.RevokedAt) ||
			second.RevokedReason != first.RevokedReason || second.RevokedByUserID != nil {
			t.Fatalf("second = %+v, %v; want the first %+v", second, err, first)
		}
		if got := b.pub.published(); len(got) != 1 {
			t.Fatalf("published %+v, want one entry", got)
		}
	})
}
