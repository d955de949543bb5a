package postgres_test

import (
	"errors"
	"fmt"
	"slices"
	"sync"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/google/uuid"

	"github.com/seedc5a8123e/authd/internal/postgres"
	"github.com/seedc5a8123e/authd/internal/token"
)

func TestCreateSession(t *testing.T) {
	t.Parallel()

	t.Run("InsertsWhileTheUserIsAsTheGrantSawIt", func(t *testing.T) {
		t.Parallel()
		db, b := setup(t)
		u := createUser(t, db, b, "alice", "user")
		ns := newSession(u, t0, t0.Add(time.Hour), "r0")
		evicted, err := db.CreateSession(ctx, ns)
		if err != nil || len(evicted) != 0 {
			t.Fatalf("CreateSession = %v, %v; want no evictions", evicted, err)
		}
		s := sessionRow(t, db, ns.ID)
		if s.UserID != u.ID || s.LastJTI != ns.JTI || !s.AccessExp.Equal(ns.AccessExp) || !s.ExpiresAt.Equal(ns.ExpiresAt) ||
			s.RevokedAt != nil || s.IP == nil || *s.IP != "192.0.2.1" || s.UserAgent == nil || *s.UserAgent != "test" {
			t.Fatalf("row = %+v", s)
		}
	})

	// Each change a grant may race with makes the insert refuse: the grant
	// verified a user that no longer exists in that state.
	for name, change := range map[string]func(t *testing.T, db *postgres.DB, u postgres.User){
		"RefusedAfterThePasswordChanged": func(t *testing.T, db *postgres.DB, u postgres.User) {
			if _, _, err := db.SetPasswordHash(ctx, postgres.PasswordChange{UserID: u.ID, Hash: "new", At: t0}); err != nil {
				t.Fatal(err)
			}
		},
		"RefusedAfterTheRoleChanged": func(t *testing.T, db *postgres.DB, u postgres.User) {
			if err := db.InTx(ctx, func(tx *postgres.Tx) error {
				_, err := tx.UpdateUser(u.ID, nil, "admin", t0)
				return err
			}); err != nil {
				t.Fatal(err)
			}
		},
		"RefusedAfterTheUserWasDisabled": func(t *testing.T, db *postgres.DB, u postgres.User) {
			if err := db.SetUserDisabled(ctx, u.ID, &t0, t0); err != nil {
				t.Fatal(err)
			}
		},
	} {
		t.Run(name, func(t *testing.T) {
			t.Parallel()
			db, b := setup(t)
			u := createUser(t, db, b, "alice", "user")
			change(t, db, u)
			ns := newSession(u, t0, t0.Add(time.Hour), "r0")
			if _, err := db.CreateSession(ctx, ns); !errors.Is(err, postgres.ErrUserChanged) {
				t.Fatalf("CreateSession = %v, want ErrUserChanged", err)
			}
			if _, err := db.SessionByID(ctx, ns.ID); !errors.Is(err, postgres.ErrNotFound) {
				t.Fatalf("a refused session was written (err %v)", err)
			}
		})
	}

	t.Run("EvictsTheOldestBeyondMaxLive", func(t *testing.T) {
		t.Parallel()
		db, b := setup(t)
		u := createUser(t, db, b, "alice", "user")
		other := createUser(t, db, b, "bob", "user")
		var old []postgres.NewSession
		for i := range 3 {
			ns := newSession(u, t0.Add(time.Duration(i)*time.Second), t0.Add(time.Hour), fmt.Sprint("r", i))
			createSession(t, db, ns)
			old = append(old, ns)
		}
		bobs := liveSession(t, db, b, other, "")
		ns := newSession(u, t0.Add(10*time.Second), t0.Add(time.Hour), "r9")
		ns.MaxLive, ns.LimitReason = 2, "session_limit"
		evicted, err := db.CreateSession(ctx, ns)
		if err != nil {
			t.Fatal(err)
		}
		// Two oldest go: the new session and the newest old one stay.
		want := map[string]postgres.NewSession{old[0].ID: old[0], old[1].ID: old[1]}
		if len(evicted) != 2 {
			t.Fatalf("evicted %+v, want the two oldest", evicted)
		}
		for _, e := range evicted {
			w, ok := want[e.SID]
			if !ok || e.JTI != w.JTI || e.Exp != w.AccessExp.Unix() {
				t.Fatalf("evicted %+v, want the two oldest %v", evicted, want)
			}
			if s := sessionRow(t, db, e.SID); s.RevokedAt == nil || !s.RevokedAt.Equal(ns.CreatedAt) ||
				*s.RevokedReason != "session_limit" || s.RevokedByUserID != nil {
				t.Fatalf("evicted row = %+v", s)
			}
		}
		for _, sid := range []string{old[2].ID, ns.ID, bobs} {
			if s := sessionRow(t, db, sid); s.RevokedAt != nil {
				t.Fatalf("session %s was revoked: %+v", sid, s)
			}
		}
	})

	t.Run("EvictionCountsOnlyLiveSessions", func(t *testing.T) {
		t.Parallel()
		db, b := setup(t)
		u := createUser(t, db, b, "alice", "user")
		now := t0.Add(time.Hour)
		// Created newer than live, so that counting either would evict live.
		live := createSession(t, db, newSession(u, t0.Add(time.Second), now.Add(time.Hour), ""))
		revoked := createSession(t, db, newSession(u, t0.Add(3*time.Second), now.Add(time.Hour), ""))
		if _, err := db.RevokeSession(ctx, postgres.RevokeRequest{SID: revoked, Reason: "user_logout", At: t0.Add(4 * time.Second)}); err != nil {
			t.Fatal(err)
		}
		expired := createSession(t, db, newSession(u, t0.Add(5*time.Second), now.Add(-time.Second), ""))
		ns := newSession(u, now, now.Add(time.Hour), "")
		ns.MaxLive, ns.LimitReason = 2, "session_limit"
		evicted, err := db.CreateSession(ctx, ns)
		if err != nil || len(evicted) != 0 {
			t.Fatalf("CreateSession = %+v, %v; want no evictions: only two sessions are live", evicted, err)
		}
		if s := sessionRow(t, db, expired); s.RevokedAt != nil {
			t.Fatalf("expired session revoked: %+v", s)
		}
		if s := sessionRow(t, db, revoked); *s.RevokedReason != "user_logout" {
			t.Fatalf("revoked session's reason overwritten: %+v", s)
		}
		if s := sessionRow(t, db, live); s.RevokedAt != nil {
			t.Fatalf("live session revoked: %+v", s)
		}
	})
}

// lockRefreshOf runs LockSessionByRefreshHash for refresh, a token naming
// session sid (empty: none), in a transaction of its own.
func lockRefreshOf(db *postgres.DB, sid, refresh string) (postgres.RefreshRow, error) {
	var r postgres.RefreshRow
	err := db.InRevokeTx(ctx, func(tx *postgres.Tx) error {
		var err error
		r, err = tx.LockSessionByRefreshHash(sid, token.HashRefresh(refresh))
		return err
	})
	return r, err
}

// rotate rotates sid's refresh token to HashRefresh(next) at at.
func rotate(t *testing.T, db *postgres.DB, sid, next string, at time.Time) postgres.Rotation {
	t.Helper()
	r := postgres.Rotation{SID: sid, NewHash: token.HashRefresh(next), JTI: uuid.NewString(), AccessExp: at.Add(10 * time.Minute), At: at}
	if err := db.InRevokeTx(ctx, func(tx *postgres.Tx) error { return tx.RotateRefresh(r) }); err != nil {
		t.Fatal(err)
	}
	return r
}

// TestRefreshRotation runs every case twice: with tokens that name their
// session (found by primary key) and with tokens of a release before
// migration 000010, which name none (found by hash).
func TestRefreshRotation(t *testing.T) {
	t.Parallel()
	for _, bySID := range []bool{true, false} {
		t.Run(map[bool]string{true: "BySID", false: "ByHash"}[bySID], func(t *testing.T) {
			t.Parallel()
			testRefreshRotation(t, bySID)
		})
	}
}

func testRefreshRotation(t *testing.T, bySID bool) {
	named := func(sid string) string {
		if bySID {
			return sid
		}
		return ""
	}
	lockRefresh := func(db *postgres.DB, sid, refresh string) (postgres.RefreshRow, error) {
		return lockRefreshOf(db, named(sid), refresh)
	}

	t.Run("TheCurrentTokenFindsItsSession", func(t *testing.T) {
		t.Parallel()
		db, b := setup(t)
		u := createUser(t, db, b, "alice", "admin")
		sid := liveSession(t, db, b, u, "r0")
		r, err := lockRefresh(db, sid, "r0")
		want := postgres.RefreshRow{SessionID: sid, UserID: u.ID, Role: "admin", ExpiresAt: t0.Add(24 * time.Hour)}
		if err != nil || r.SessionID != want.SessionID || r.UserID != want.UserID || r.Role != want.Role ||
			!r.ExpiresAt.Equal(want.ExpiresAt) || r.Revoked || r.Reused || r.UserDisabled {
			t.Fatalf("lock = %+v, %v; want %+v", r, err, want)
		}
	})

	t.Run("AnUnknownTokenIsNotFound", func(t *testing.T) {
		t.Parallel()
		db, b := setup(t)
		// With the session's own id: a forged token naming a real session.
		sid := liveSession(t, db, b, createUser(t, db, b, "alice", "user"), "r0")
		if _, err := lockRefresh(db, sid, "nobody's"); !errors.Is(err, postgres.ErrNotFound) {
			t.Fatalf("lock = %v, want ErrNotFound", err)
		}
	})

	t.Run("TheLockSeesTheUserAndTheSessionState", func(t *testing.T) {
		t.Parallel()
		db, b := setup(t)
		u := createUser(t, db, b, "alice", "user")
		sid := liveSession(t, db, b, u, "r0")
		if err := db.SetUserDisabled(ctx, u.ID, &t0, t0); err != nil {
			t.Fatal(err)
		}
		if _, err := db.RevokeSession(ctx, postgres.RevokeRequest{SID: sid, Reason: "user_disabled", At: t0}); err != nil {
			t.Fatal(err)
		}
		if r, err := lockRefresh(db, sid, "r0"); err != nil || !r.UserDisabled || !r.Revoked || r.Reused {
			t.Fatalf("lock = %+v, %v; want a disabled user's revoked session", r, err)
		}
	})

	t.Run("RotationMakesTheNewTokenCurrentAndTheOldOneReused", func(t *testing.T) {
		t.Parallel()
		db, b := setup(t)
		sid := liveSession(t, db, b, createUser(t, db, b, "alice", "user"), "r0")
		rot := rotate(t, db, sid, "r1", t0.Add(time.Minute))
		if r, err := lockRefresh(db, sid, "r1"); err != nil || r.SessionID != sid || r.Reused {
			t.Fatalf("new token: %+v, %v; want current", r, err)
		}
		if r, err := lockRefresh(db, sid, "r0"); err != nil || r.SessionID != sid || !r.Reused {
			t.Fatalf("old token: %+v, %v; want reused", r, err)
		}
		s := sessionRow(t, db, sid)
		if s.LastJTI != rot.JTI || !s.AccessExp.Equal(rot.AccessExp) || s.LastRefreshedAt == nil || !s.LastRefreshedAt.Equal(rot.At) {
			t.Fatalf("row after rotation = %+v, want %+v", s, rot)
		}
	})

	t.Run("EveryRotatedAwayTokenIsFoundAsReused", func(t *testing.T) {
		t.Parallel()
		db, b := setup(t)
		sid := liveSession(t, db, b, createUser(t, db, b, "alice", "user"), "r0")
		for i := 1; i <= 4; i++ {
			rotate(t, db, sid, fmt.Sprint("r", i), t0.Add(time.Duration(i)*time.Minute))
		}
		for i := range 4 { // r0 and r1 only in refresh_token_history, r3 the previous token
			if r, err := lockRefresh(db, sid, fmt.Sprint("r", i)); err != nil || r.SessionID != sid || !r.Reused {
				t.Fatalf("r%d: %+v, %v; want reused", i, r, err)
			}
		}
		if r, err := lockRefresh(db, sid, "r4"); err != nil || r.Reused {
			t.Fatalf("r4: %+v, %v; want current", r, err)
		}
	})

	t.Run("AFailedRotationRollsTheWholeTransactionBack", func(t *testing.T) {
		t.Parallel()
		db, b := setup(t)
		if err := db.RefreshSchema(ctx); err != nil {
			t.Fatal(err)
		}
		sid := liveSession(t, db, b, createUser(t, db, b, "alice", "user"), "r0")
		// The rotation commits with the transaction's COMMIT in one
		// pipeline; when its statement fails, nothing before it commits.
		err := db.InRevokeTx(ctx, func(tx *postgres.Tx) error {
			if _, err := tx.LockSessionByRefreshHash(named(sid), token.HashRefresh("r0")); err != nil {
				return err
			}
			if err := tx.Audit(postgres.AuditEvent{At: t0, Type: "test_marker"}); err != nil {
				return err
			}
			return tx.RotateRefresh(postgres.Rotation{SID: "not a uuid", NewHash: token.HashRefresh("r1"), JTI: uuid.NewString(),
				AccessExp: t0.Add(time.Hour), At: t0})
		})
		if err == nil {
			t.Fatal("a rotation of a malformed sid succeeded")
		}
		var n int
		if err := db.Pool().QueryRow(ctx, `SELECT count(*) FROM audit_events WHERE type = 'test_marker'`).Scan(&n); err != nil {
			t.Fatal(err)
		}
		if n != 0 {
			t.Fatal("a statement before the failed rotation committed")
		}
		if r, err := lockRefresh(db, sid, "r0"); err != nil || r.Reused {
			t.Fatalf("r0: %+v, %v; want still current", r, err)
		}
	})

	t.Run("TheRotationIsTheLastStatement", func(t *testing.T) {
		t.Parallel()
		db, b := setup(t)
		sid := liveSession(t, db, b, createUser(t, db, b, "alice", "user"), "r0")
		var after error
		err := db.InRevokeTx(ctx, func(tx *postgres.Tx) error {
			if err := tx.RotateRefresh(postgres.Rotation{SID: sid, NewHash: token.HashRefresh("r1"), JTI: uuid.NewString(),
				AccessExp: t0.Add(time.Hour), At: t0}); err != nil {
				return err
			}
			_, after = tx.LockSessionByRefreshHash(named(sid), token.HashRefresh("r1"))
			return nil
		})
		if err != nil {
			t.Fatal(err)
		}
		if !errors.Is(after, pgx.ErrTxClosed) {
			t.Fatalf("a statement after the rotation: %v, want pgx.ErrTxClosed", after)
		}
		if r, err := lockRefresh(db, sid, "r1"); err != nil || r.Reused {
			t.Fatalf("r1: %+v, %v; want the committed rotation's token current", r, err)
		}
	})

	t.Run("ConcurrentRefreshesQueueAndTheSecondSeesTheRotation", func(t *testing.T) {
		t.Parallel()
		db, b := setup(t)
		sid := liveSession(t, db, b, createUser(t, db, b, "alice", "user"), "r0")
		release := holdTx(t, db, func(tx *postgres.Tx) error {
			if _, err := tx.LockSessionByRefreshHash(named(sid), token.HashRefresh("r0")); err != nil {
				return err
			}
			return tx.RotateRefresh(postgres.Rotation{SID: sid, NewHash: token.HashRefresh("r1"), JTI: uuid.NewString(),
				AccessExp: t0.Add(time.Hour), At: t0})
		})
		finished := make(chan struct{})
		var second postgres.RefreshRow
		var secondErr error
		go func() {
			defer close(finished)
			second, secondErr = lockRefresh(db, sid, "r0")
		}()
		awaitBlocked(t, db, finished)
		if err := release(); err != nil {
			t.Fatal(err)
		}
		<-finished
		if secondErr != nil || !second.Reused {
			t.Fatalf("second lookup = %+v, %v; want it to see the first one's rotation (reused)", second, secondErr)
		}
	})
}

func TestRevokeSession(t *testing.T) {
	t.Parallel()
	by := func(s string) *string { return &s }

	t.Run("ReturnsTheEntryAndWhatTheRowRecords", func(t *testing.T) {
		t.Parallel()
		db, b := setup(t)
		admin := createUser(t, db, b, "root", "admin")
		ns := newSession(createUser(t, db, b, "alice", "user"), t0, t0.Add(time.Hour), "")
		createSession(t, db, ns)
		at := t0.Add(time.Minute + 123456789) // PostgreSQL keeps microseconds
		r, err := db.RevokeSession(ctx, postgres.RevokeRequest{SID: ns.ID, Reason: "admin_revoke", By: &admin.ID, At: at})
		if err != nil || r == nil {
			t.Fatalf("RevokeSession = %v, %v", r, err)
		}
		// Seq is the push sequence's next number: any positive one.
		want := postgres.RevokedSession{JTI: ns.JTI, SID: ns.ID, Exp: ns.AccessExp.Unix(), Seq: r.Entry.Seq}
		s := sessionRow(t, db, ns.ID)
		if r.Entry != want || r.Entry.Seq <= 0 || !r.RevokedAt.Equal(*s.RevokedAt) || !r.RevokedAt.Equal(at.Truncate(time.Microsecond)) ||
			r.RevokedReason != "admin_revoke" || r.RevokedByUserID == nil || *r.RevokedByUserID != admin.ID {
			t.Fatalf("RevokeSession = %+v, want entry %+v and the row %+v", r, want, s)
		}
	})

	t.Run("SecondRevocationKeepsTheFirst", func(t *testing.T) {
		t.Parallel()
		db, b := setup(t)
		admin := createUser(t, db, b, "root", "admin")
		sid := liveSession(t, db, b, createUser(t, db, b, "alice", "user"), "")
		if r, err := db.RevokeSession(ctx, postgres.RevokeRequest{SID: sid, Reason: "user_logout", At: t0}); err != nil || r == nil {
			t.Fatalf("first = %v, %v", r, err)
		}
		r, err := db.RevokeSession(ctx, postgres.RevokeRequest{SID: sid, Reason: "admin_revoke", By: by(admin.ID), At: t0.Add(time.Hour)})
		if err != nil || r != nil {
			t.Fatalf("second = %+v, %v; want nil: nothing changed", r, err)
		}
		if s := sessionRow(t, db, sid); !s.RevokedAt.Equal(t0) || *s.RevokedReason != "user_logout" || s.RevokedByUserID != nil {
			t.Fatalf("row = %+v, want the first revocation", s)
		}
	})

	t.Run("AnUnknownSessionChangesNothing", func(t *testing.T) {
		t.Parallel()
		db, _ := setup(t)
		if r, err := db.RevokeSession(ctx, postgres.RevokeRequest{SID: uuid.NewString(), Reason: "x", At: t0}); err != nil || r != nil {
			t.Fatalf("RevokeSession = %+v, %v; want nil, nil", r, err)
		}
	})

	t.Run("ConcurrentRevocationsRevokeOnce", func(t *testing.T) {
		t.Parallel()
		db, b := setup(t)
		sid := liveSession(t, db, b, createUser(t, db, b, "alice", "user"), "")
		var (
			wg      sync.WaitGroup
			mu      sync.Mutex
			changed []string
		)
		for i := range 8 {
			wg.Add(1)
			go func() {
				defer wg.Done()
				reason := fmt.Sprint("reason-", i)
				r, err := db.RevokeSession(ctx, postgres.RevokeRequest{SID: sid, Reason: reason, At: t0.Add(time.Duration(i) * time.Second)})
				if err != nil {
					t.Error(err)
				}
				if r != nil {
					mu.Lock()
					changed = append(changed, reason)
					mu.Unlock()
				}
			}()
		}
		wg.Wait()
		if len(changed) != 1 {
			t.Fatalf("%d calls revoked (%v), want exactly one", len(changed), changed)
		}
		if s := sessionRow(t, db, sid); *s.RevokedReason != changed[0] {
			t.Fatalf("row reason %q, the winner was %q", *s.RevokedReason, changed[0])
		}
	})
}

func TestRevokeUserSessions(t *testing.T) {
	t.Parallel()

	t.Run("RevokesEveryLiveSessionButTheExceptedOne", func(t *testing.T) {
		t.Parallel()
		db, b := setup(t)
		u := createUser(t, db, b, "alice", "user")
		bob := createUser(t, db, b, "bob", "user")
		now := t0.Add(time.Hour)
		s1 := createSession(t, db, newSession(u, t0, now.Add(time.Hour), ""))
		keep := createSession(t, db, newSession(u, t0, now.Add(time.Hour), ""))
		s3 := createSession(t, db, newSession(u, t0, now.Add(time.Hour), ""))
		expired := createSession(t, db, newSession(u, t0, now.Add(-time.Second), ""))
		earlier := createSession(t, db, newSession(u, t0, now.Add(time.Hour), ""))
		if _, err := db.RevokeSession(ctx, postgres.RevokeRequest{SID: earlier, Reason: "user_logout", At: t0}); err != nil {
			t.Fatal(err)
		}
		bobs := createSession(t, db, newSession(bob, t0, now.Add(time.Hour), ""))

		got, err := db.RevokeUserSessions(ctx, u.ID, keep, postgres.RevokeRequest{Reason: "password_change", By: &u.ID, At: now})
		if err != nil {
			t.Fatal(err)
		}
		if s := sids(got); len(got) != 2 || !s[s1] || !s[s3] {
			t.Fatalf("revoked %+v, want %s and %s", got, s1, s3)
		}
		for _, e := range got {
			if r := sessionRow(t, db, e.SID); e.JTI != r.LastJTI || e.Exp != r.AccessExp.Unix() ||
				!r.RevokedAt.Equal(now) || *r.RevokedReason != "password_change" || *r.RevokedByUserID != u.ID {
				t.Fatalf("entry %+v, row %+v", e, r)
			}
		}
		for _, sid := range []string{keep, expired, bobs} {
			if r := sessionRow(t, db, sid); r.RevokedAt != nil {
				t.Fatalf("session %s revoked: %+v", sid, r)
			}
		}
		if r := sessionRow(t, db, earlier); !r.RevokedAt.Equal(t0) || *r.RevokedReason != "user_logout" {
			t.Fatalf("an earlier revocation was overwritten: %+v", r)
		}
	})

	t.Run("NoExceptionRevokesThemAll", func(t *testing.T) {
		t.Parallel()
		db, b := setup(t)
		u := createUser(t, db, b, "alice", "user")
		a, c := liveSession(t, db, b, u, ""), liveSession(t, db, b, u, "")
		got, err := db.RevokeUserSessions(ctx, u.ID, "", postgres.RevokeRequest{Reason: "user_logout_all", At: t0})
		if s := sids(got); err != nil || len(got) != 2 || !s[a] || !s[c] {
			t.Fatalf("revoked %+v, %v; want both", got, err)
		}
		if again, err := db.RevokeUserSessions(ctx, u.ID, "", postgres.RevokeRequest{Reason: "again", At: t0}); err != nil || len(again) != 0 {
			t.Fatalf("second call revoked %+v, %v; want nothing", again, err)
		}
	})
}

func TestRevokedSince(t *testing.T) {
	t.Parallel()

	// revokedAt creates a session of u whose access token expires at exp and
	// revokes it at at.
	revokedAt := func(t *testing.T, db *postgres.DB, u postgres.User, at, exp time.Time) postgres.RevokedSession {
		t.Helper()
		ns := newSession(u, t0.Add(-time.Hour), exp.Add(time.Hour), "")
		ns.AccessExp = exp
		createSession(t, db, ns)
		if _, err := db.RevokeSession(ctx, postgres.RevokeRequest{SID: ns.ID, Reason: "user_logout", At: at}); err != nil {
			t.Fatal(err)
		}
		return postgres.RevokedSession{JTI: ns.JTI, SID: ns.ID, Exp: exp.Unix()}
	}

	t.Run("OldestRevocationFirst", func(t *testing.T) {
		t.Parallel()
		db, b := setup(t)
		u := createUser(t, db, b, "alice", "user")
		exp := t0.Add(time.Hour)
		second := revokedAt(t, db, u, t0.Add(2*time.Second), exp)
		first := revokedAt(t, db, u, t0.Add(time.Second), exp)
		third := revokedAt(t, db, u, t0.Add(3*time.Second), exp)
		liveSession(t, db, b, u, "") // never listed
		got, err := db.RevokedSince(ctx, t0, t0)
		if err != nil {
			t.Fatal(err)
		}
		want := []postgres.RevokedSession{first, second, third}
		if !slices.Equal(got, want) {
			t.Fatalf("RevokedSince = %+v, want %+v", got, want)
		}
	})

	t.Run("SinceIsInclusive", func(t *testing.T) {
		t.Parallel()
		db, b := setup(t)
		u := createUser(t, db, b, "alice", "user")
		exp := t0.Add(time.Hour)
		revokedAt(t, db, u, t0.Add(time.Second), exp)
		at := revokedAt(t, db, u, t0.Add(2*time.Second), exp)
		later := revokedAt(t, db, u, t0.Add(3*time.Second), exp)
		got, err := db.RevokedSince(ctx, t0.Add(2*time.Second), t0)
		if want := []postgres.RevokedSession{at, later}; err != nil || !slices.Equal(got, want) {
			t.Fatalf("RevokedSince = %+v, %v; want %+v", got, err, want)
		}
	})

	t.Run("EntriesWhoseTokenExpiredAreLeftOut", func(t *testing.T) {
		t.Parallel()
		db, b := setup(t)
		u := createUser(t, db, b, "alice", "user")
		now := t0.Add(time.Hour)
		revokedAt(t, db, u, t0, now.Add(-time.Second))
		revokedAt(t, db, u, t0, now) // expires at now: no token of it is valid any more
		alive := revokedAt(t, db, u, t0, now.Add(time.Second))
		got, err := db.RevokedSince(ctx, t0.Add(-time.Hour), now)
		if want := []postgres.RevokedSession{alive}; err != nil || !slices.Equal(got, want) {
			t.Fatalf("RevokedSince = %+v, %v; want %+v", got, err, want)
		}
	})

	t.Run("NothingRevokedIsAnEmptyList", func(t *testing.T) {
		t.Parallel()
		db, b := setup(t)
		liveSession(t, db, b, createUser(t, db, b, "alice", "user"), "")
		if got, err := db.RevokedSince(ctx, t0.Add(-time.Hour), t0); err != nil || len(got) != 0 {
			t.Fatalf("RevokedSince = %+v, %v", got, err)
		}
	})
}

func TestDeleteSessionsExpiredBefore(t *testing.T) {
	t.Parallel()

	t.Run("DeletesOnlySessionsThatEndedBefore", func(t *testing.T) {
		t.Parallel()
		db, b := setup(t)
		u := createUser(t, db, b, "alice", "user")
		before := t0.Add(time.Hour)
		gone := createSession(t, db, newSession(u, t0, before.Add(-time.Microsecond), "r0"))
		rotate(t, db, gone, "r1", t0)
		rotate(t, db, gone, "r2", t0) // r0 now in refresh_token_history
		atBefore := createSession(t, db, newSession(u, t0, before, ""))
		after := createSession(t, db, newSession(u, t0, before.Add(time.Second), ""))
		n, err := db.DeleteSessionsExpiredBefore(ctx, before, 10)
		if err != nil || n != 1 {
			t.Fatalf("deleted %d, %v; want 1", n, err)
		}
		if _, err := db.SessionByID(ctx, gone); !errors.Is(err, postgres.ErrNotFound) {
			t.Fatalf("expired session survived: %v", err)
		}
		var history int
		if err := db.Pool().QueryRow(ctx, `SELECT count(*) FROM refresh_token_history`).Scan(&history); err != nil || history != 0 {
			t.Fatalf("history rows left: %d, %v", history, err)
		}
		sessionRow(t, db, atBefore)
		sessionRow(t, db, after)
	})

	for _, n := range []int{0, 7, 30, 31} {
		t.Run(fmt.Sprintf("DeletesInBatchesUntilNoneIsLeft/%d", n), func(t *testing.T) {
			t.Parallel()
			db, b := setup(t)
			u := createUser(t, db, b, "alice", "user")
			if _, err := db.Pool().Exec(ctx, `INSERT INTO sessions (id, user_id, created_at, expires_at, last_jti, access_exp)
				SELECT gen_random_uuid(), $1, $2, $2, gen_random_uuid(), $2 FROM generate_series(1, $3)`, u.ID, t0, n); err != nil {
				t.Fatal(err)
			}
			keep := createSession(t, db, newSession(u, t0, t0.Add(2*time.Hour), ""))
			got, err := db.DeleteSessionsExpiredBefore(ctx, t0.Add(time.Hour), 10)
			if err != nil || got != int64(n) {
				t.Fatalf("deleted %d, %v; want %d", got, err, n)
			}
			var left int
			if err := db.Pool().QueryRow(ctx, `SELECT count(*) FROM sessions`).Scan(&left); err != nil || left != 1 {
				t.Fatalf("%d sessions left, %v; want only %s", left, err, keep)
			}
		})
	}
}
