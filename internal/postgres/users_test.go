package postgres_test

import (
	"errors"
	"testing"
	"time"

	"github.com/google/uuid"

	"github.com/seedc5a8123e/authd/internal/postgres"
)

func TestCreateUser(t *testing.T) {
	t.Parallel()

	t.Run("WritesTheRowAtTheFirstCredentialsVersion", func(t *testing.T) {
		t.Parallel()
		db, b := setup(t)
		u := createUser(t, db, b, "Alice", "service")
		if u.Username != "Alice" || u.Role != "service" || u.PasswordHash != "hash-of-Alice" || u.DisabledAt != nil ||
			!u.CreatedAt.Equal(t0) || !u.UpdatedAt.Equal(t0) || u.CredentialsVersion != 1 {
			t.Fatalf("user = %+v", u)
		}
		if got, err := db.UserByUsername(ctx, "aLICE"); err != nil || got.ID != u.ID {
			t.Fatalf("UserByUsername in another case = %+v, %v", got, err)
		}
	})

	t.Run("ATakenNameInAnyCaseIsAConflict", func(t *testing.T) {
		t.Parallel()
		db, b := setup(t)
		createUser(t, db, b, "alice", "user")
		err := db.CreateUser(ctx, postgres.User{ID: uuid.NewString(), Username: "ALICE", PasswordHash: "x", Role: "user", CreatedAt: t0, UpdatedAt: t0})
		if !errors.Is(err, postgres.ErrConflict) {
			t.Fatalf("CreateUser = %v, want ErrConflict", err)
		}
	})

	t.Run("ATakenIDIsAConflict", func(t *testing.T) {
		t.Parallel()
		db, b := setup(t)
		u := createUser(t, db, b, "alice", "user")
		err := db.CreateUser(ctx, postgres.User{ID: u.ID, Username: "bob", PasswordHash: "x", Role: "user", CreatedAt: t0, UpdatedAt: t0})
		if !errors.Is(err, postgres.ErrConflict) {
			t.Fatalf("CreateUser = %v, want ErrConflict", err)
		}
	})

	t.Run("UnknownUsersAreNotFound", func(t *testing.T) {
		t.Parallel()
		db, _ := setup(t)
		if _, err := db.UserByID(ctx, uuid.NewString()); !errors.Is(err, postgres.ErrNotFound) {
			t.Fatalf("UserByID = %v", err)
		}
		if _, err := db.UserByUsername(ctx, "nobody"); !errors.Is(err, postgres.ErrNotFound) {
			t.Fatalf("UserByUsername = %v", err)
		}
	})
}

func TestLockEnabledAdmins(t *testing.T) {
	t.Parallel()

	t.Run("CountsOnlyEnabledAdmins", func(t *testing.T) {
		t.Parallel()
		db, b := setup(t)
		createUser(t, db, b, "root", "admin")
		createUser(t, db, b, "root2", "admin")
		off := createUser(t, db, b, "old-root", "admin")
		if err := db.SetUserDisabled(ctx, off.ID, &t0, t0); err != nil {
			t.Fatal(err)
		}
		createUser(t, db, b, "alice", "user")
		createUser(t, db, b, "svc", "service")
		var n int
		err := db.InTx(ctx, func(tx *postgres.Tx) error {
			var err error
			n, err = tx.LockEnabledAdmins()
			return err
		})
		if err != nil || n != 2 {
			t.Fatalf("LockEnabledAdmins = %d, %v; want 2", n, err)
		}
	})

	// The last-admin rule as account.Service.Update runs it: two admins
	// disable themselves at once. The second must wait for the first's
	// lock and then count one admin, not two.
	t.Run("ConcurrentDemotionsCountWhatTheFirstCommitted", func(t *testing.T) {
		t.Parallel()
		db, b := setup(t)
		a1 := createUser(t, db, b, "root1", "admin")
		a2 := createUser(t, db, b, "root2", "admin")
		disable := func(tx *postgres.Tx, id string) (int, error) {
			n, err := tx.LockEnabledAdmins()
			if err != nil {
				return 0, err
			}
			if _, err := tx.LockUser(id); err != nil {
				return 0, err
			}
			if n <= 1 {
				return n, nil // the rule refuses
			}
			_, err = tx.UpdateUser(id, &t0, "admin", t0)
			return n, err
		}
		release := holdTx(t, db, func(tx *postgres.Tx) error {
			_, err := disable(tx, a1.ID)
			return err
		})
		finished := make(chan struct{})
		var seen int
		var secondErr error
		go func() {
			defer close(finished)
			secondErr = db.InRevokeTx(ctx, func(tx *postgres.Tx) error {
				var err error
				seen, err = disable(tx, a2.ID)
				return err
			})
		}()
		awaitBlocked(t, db, finished)
		if err := release(); err != nil {
			t.Fatal(err)
		}
		<-finished
		if secondErr != nil || seen != 1 {
			t.Fatalf("the second demotion counted %d enabled admins (%v), want 1", seen, secondErr)
		}
		if u, err := db.UserByID(ctx, a2.ID); err != nil || u.DisabledAt != nil {
			t.Fatalf("the last admin was disabled: %+v, %v", u, err)
		}
	})
}

func TestUpdateUser(t *testing.T) {
	t.Parallel()

	t.Run("WritesTheStateAndReturnsTheRow", func(t *testing.T) {
		t.Parallel()
		db, b := setup(t)
		u := createUser(t, db, b, "alice", "user")
		at := t0.Add(time.Hour)
		var got postgres.User
		err := db.InTx(ctx, func(tx *postgres.Tx) error {
			cur, err := tx.LockUser(u.ID)
			if err != nil || cur.ID != u.ID || cur.Role != "user" {
				t.Errorf("LockUser = %+v, %v", cur, err)
			}
			got, err = tx.UpdateUser(u.ID, &at, "admin", at)
			return err
		})
		if err != nil || got.Role != "admin" || got.DisabledAt == nil || !got.DisabledAt.Equal(at) || !got.UpdatedAt.Equal(at) ||
			got.CredentialsVersion != u.CredentialsVersion || got.PasswordHash != u.PasswordHash {
			t.Fatalf("UpdateUser = %+v, %v", got, err)
		}
		if back, _ := db.UserByID(ctx, u.ID); back.Role != got.Role || back.DisabledAt == nil || !back.DisabledAt.Equal(*got.DisabledAt) ||
			!back.UpdatedAt.Equal(got.UpdatedAt) {
			t.Fatalf("stored %+v, returned %+v", back, got)
		}
	})

	t.Run("AnUnknownUserIsNotFound", func(t *testing.T) {
		t.Parallel()
		db, _ := setup(t)
		err := db.InTx(ctx, func(tx *postgres.Tx) error {
			if _, err := tx.LockUser(uuid.NewString()); !errors.Is(err, postgres.ErrNotFound) {
				t.Errorf("LockUser = %v, want ErrNotFound", err)
			}
			return nil
		})
		if err != nil {
			t.Fatal(err)
		}
		err = db.InTx(ctx, func(tx *postgres.Tx) error {
			_, err := tx.UpdateUser(uuid.NewString(), nil, "user", t0)
			return err
		})
		if !errors.Is(err, postgres.ErrNotFound) {
			t.Fatalf("UpdateUser = %v, want ErrNotFound", err)
		}
	})

	t.Run("TheChangeAndItsRevocationsCommitTogether", func(t *testing.T) {
		t.Parallel()
		db, b := setup(t)
		u := createUser(t, db, b, "alice", "user")
		sid := liveSession(t, db, b, u, "")
		refused := errors.New("refused")
		err := db.InRevokeTx(ctx, func(tx *postgres.Tx) error {
			if _, err := tx.UpdateUser(u.ID, &t0, "user", t0); err != nil {
				return err
			}
			if got, err := tx.RevokeUserSessions(u.ID, "", postgres.RevokeRequest{Reason: "user_disabled", At: t0}); err != nil || len(got) != 1 {
				t.Errorf("RevokeUserSessions = %+v, %v", got, err)
			}
			return refused
		})
		if !errors.Is(err, refused) {
			t.Fatalf("InRevokeTx = %v", err)
		}
		if back, _ := db.UserByID(ctx, u.ID); back.DisabledAt != nil {
			t.Fatalf("the change committed without its transaction: %+v", back)
		}
		if s := sessionRow(t, db, sid); s.RevokedAt != nil {
			t.Fatalf("the revocation committed without its transaction: %+v", s)
		}
	})
}

func TestSetPasswordHash(t *testing.T) {
	t.Parallel()

	t.Run("WritesBumpsTheVersionAndRevokesAllButKeepSID", func(t *testing.T) {
		t.Parallel()
		db, b := setup(t)
		u := createUser(t, db, b, "alice", "user")
		keep, other := liveSession(t, db, b, u, ""), liveSession(t, db, b, u, "")
		at := t0.Add(time.Minute)
		changed, revoked, err := db.SetPasswordHash(ctx, postgres.PasswordChange{UserID: u.ID, Expected: &u.PasswordHash, Hash: "new", At: at,
			Revoke: &postgres.RevokeRequest{Reason: "password_change", By: &u.ID, At: at}, KeepSID: keep})
		if err != nil || !changed || revoked.Len() != 1 || revoked.Sessions[0].SID != other || revoked.Cutoff != nil {
			t.Fatalf("SetPasswordHash = %v, %+v, %v; want %s revoked", changed, revoked, err, other)
		}
		back, _ := db.UserByID(ctx, u.ID)
		if back.PasswordHash != "new" || back.CredentialsVersion != u.CredentialsVersion+1 || !back.UpdatedAt.Equal(at) {
			t.Fatalf("user = %+v", back)
		}
		if s := sessionRow(t, db, keep); s.RevokedAt != nil {
			t.Fatalf("KeepSID revoked: %+v", s)
		}
	})

	t.Run("AStaleExpectedHashChangesNothing", func(t *testing.T) {
		t.Parallel()
		db, b := setup(t)
		u := createUser(t, db, b, "alice", "user")
		sid := liveSession(t, db, b, u, "")
		stale := "an older hash"
		changed, revoked, err := db.SetPasswordHash(ctx, postgres.PasswordChange{UserID: u.ID, Expected: &stale, Hash: "new", At: t0,
			Revoke: &postgres.RevokeRequest{Reason: "password_change", At: t0}})
		if err != nil || changed || revoked.Len() != 0 {
			t.Fatalf("SetPasswordHash = %v, %+v, %v; want nothing written", changed, revoked, err)
		}
		if back, _ := db.UserByID(ctx, u.ID); back != u {
			t.Fatalf("user = %+v, want %+v", back, u)
		}
		if s := sessionRow(t, db, sid); s.RevokedAt != nil {
			t.Fatalf("session revoked: %+v", s)
		}
	})

	t.Run("WithoutExpectedItAlwaysWrites", func(t *testing.T) {
		t.Parallel()
		db, b := setup(t)
		u := createUser(t, db, b, "alice", "user")
		if changed, _, err := db.SetPasswordHash(ctx, postgres.PasswordChange{UserID: u.ID, Hash: "reset", At: t0}); err != nil || !changed {
			t.Fatalf("SetPasswordHash = %v, %v", changed, err)
		}
		if back, _ := db.UserByID(ctx, u.ID); back.PasswordHash != "reset" {
			t.Fatalf("user = %+v", back)
		}
	})

	t.Run("AnUnknownUserIsNotFound", func(t *testing.T) {
		t.Parallel()
		db, _ := setup(t)
		if _, _, err := db.SetPasswordHash(ctx, postgres.PasswordChange{UserID: uuid.NewString(), Hash: "x", At: t0}); !errors.Is(err, postgres.ErrNotFound) {
			t.Fatalf("SetPasswordHash = %v, want ErrNotFound", err)
		}
	})

	t.Run("ARehashOnlyReplacesTheExpectedHashAndKeepsTheVersion", func(t *testing.T) {
		t.Parallel()
		db, b := setup(t)
		u := createUser(t, db, b, "alice", "user")
		if err := db.UpdatePasswordHash(ctx, u.ID, "not the stored one", "rehashed", t0); err != nil {
			t.Fatal(err)
		}
		if back, _ := db.UserByID(ctx, u.ID); back.PasswordHash != u.PasswordHash {
			t.Fatalf("a rehash over a changed hash wrote: %+v", back)
		}
		if err := db.UpdatePasswordHash(ctx, u.ID, u.PasswordHash, "rehashed", t0); err != nil {
			t.Fatal(err)
		}
		if back, _ := db.UserByID(ctx, u.ID); back.PasswordHash != "rehashed" || back.CredentialsVersion != u.CredentialsVersion {
			t.Fatalf("user after rehash = %+v", back)
		}
	})
}
