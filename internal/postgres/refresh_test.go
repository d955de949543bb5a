package postgres_test

import (
	"cmp"
	"context"
	"errors"
	"reflect"
	"strings"
	"testing"
	"time"

	"github.com/google/uuid"

	"github.com/seedc5a8123e/authd/internal/pgtest"
	"github.com/seedc5a8123e/authd/internal/postgres"
	"github.com/seedc5a8123e/authd/internal/token"
)

func TestRefreshBySIDChecksTheHashAgainstThatSession(t *testing.T) {
	t.Parallel()
	db, b := setup(t)
	u := createUser(t, db, b, "alice", "user")
	alices := liveSession(t, db, b, u, "a0")
	bobs := liveSession(t, db, b, createUser(t, db, b, "bob", "user"), "b0")
	rotate(t, db, bobs, "b1", t0)
	rotate(t, db, bobs, "b2", t0)
	// Bob's current, previous and older tokens, presented as Alice's.
	for _, tok := range []string{"b2", "b1", "b0"} {
		if r, err := lockRefreshOf(db, alices, tok); !errors.Is(err, postgres.ErrNotFound) {
			t.Errorf("%s named as alice's session: %+v, %v; want ErrNotFound", tok, r, err)
		}
		if r, err := lockRefreshOf(db, bobs, tok); err != nil || r.SessionID != bobs {
			t.Errorf("%s named as bob's session: %+v, %v; want bob's", tok, r, err)
		}
	}
}

func TestRevokeTxSetsItsLimitsWithoutLeavingThem(t *testing.T) {
	t.Parallel()
	db, _ := setup(t)
	for name, in := range map[string]func(context.Context, func(*postgres.Tx) error) error{"InRevokeTx": db.InRevokeTx, "InMintTx": db.InMintTx} {
		var inside, lock, idle string
		err := in(ctx, func(tx *postgres.Tx) error {
			return tx.QueryRowForTest(`SELECT current_setting('statement_timeout'), current_setting('lock_timeout'),
				current_setting('idle_in_transaction_session_timeout')`, &inside, &lock, &idle)
		})
		if err != nil || inside != "5s" || lock != "5s" || idle != "5s" {
			t.Fatalf("inside %s: statement_timeout %q, lock_timeout %q, idle_in_transaction_session_timeout %q, %v; want 5s each",
				name, inside, lock, idle, err)
		}
	}
	// SET LOCAL dies with the transaction: no pooled connection keeps it.
	var after string
	if err := db.InTx(ctx, func(tx *postgres.Tx) error {
		return tx.QueryRowForTest(`SELECT current_setting('statement_timeout')`, &after)
	}); err != nil || after == "5s" {
		t.Fatalf("after InRevokeTx: statement_timeout %q, %v; want the server's default", after, err)
	}
}

func TestOpenSizesThePool(t *testing.T) {
	t.Parallel()
	u := pgtest.URL(t)
	for _, tc := range []struct {
		url  string
		o    postgres.Options
		want int32
	}{
		{u, postgres.Options{MaxConns: 3}, 3},
		{u + "&pool_max_conns=5", postgres.Options{}, 5}, // the zero Options leave the URL's
	} {
		db, err := postgres.Open(ctx, tc.url, tc.o)
		if err != nil {
			t.Fatal(err)
		}
		if got := db.Pool().Config().MaxConns; got != tc.want {
			t.Errorf("%+v: MaxConns %d, want %d", tc.o, got, tc.want)
		}
		db.Close()
	}
}

func TestSessionAuthByRefreshHashWithTheSessionsID(t *testing.T) {
	t.Parallel()
	db, b := setup(t)
	alices := liveSession(t, db, b, createUser(t, db, b, "alice", "user"), "a0")
	bobs := liveSession(t, db, b, createUser(t, db, b, "bob", "user"), "b0")
	for _, sid := range []string{"", alices} {
		if a, err := db.SessionAuthByRefreshHash(ctx, sid, token.HashRefresh("a0")); err != nil || a.SID != alices {
			t.Errorf("a0 naming %q: %+v, %v; want alice's session", sid, a, err)
		}
	}
	if a, err := db.SessionAuthByRefreshHash(ctx, bobs, token.HashRefresh("a0")); !errors.Is(err, postgres.ErrNotFound) {
		t.Errorf("a0 naming bob's session: %+v, %v; want ErrNotFound", a, err)
	}
}

// A revoking transaction sends BEGIN with its first statement: one whose
// first statement fails is rolled back, and no connection is left inside a
// transaction; one that sends nothing commits nothing.
func TestRevokeTxOpensWithItsFirstStatement(t *testing.T) {
	t.Parallel()
	db, _ := setup(t)
	if err := db.InRevokeTx(ctx, func(*postgres.Tx) error { return nil }); err != nil {
		t.Fatalf("an empty revoking transaction: %v", err)
	}
	for range 20 {
		var n int
		err := db.InRevokeTx(ctx, func(tx *postgres.Tx) error { return tx.QueryRowForTest(`SELECT 1/0`, &n) })
		if err == nil {
			t.Fatal("division by zero succeeded")
		}
	}
	var open int
	if err := db.Pool().QueryRow(ctx, `SELECT count(*) FROM pg_stat_activity
		WHERE datname = current_database() AND state LIKE 'idle in transaction%'`).Scan(&open); err != nil || open != 0 {
		t.Fatalf("connections left in a transaction: %d, %v", open, err)
	}
}

// rotateCurrent runs RotateCurrentRefresh in a minting transaction of its
// own, as a refresh does.
func rotateCurrent(db *postgres.DB, r postgres.CurrentRotation) (postgres.RotatedSession, error) {
	var rs postgres.RotatedSession
	err := db.InMintTx(ctx, func(tx *postgres.Tx) error {
		var err error
		rs, err = tx.RotateCurrentRefresh(r)
		return err
	})
	return rs, err
}

// appSession is a session of u from t0 for a day, issued to client "app",
// with refresh token refresh: one the one-statement refresh can rotate.
func appSession(t *testing.T, db *postgres.DB, u postgres.User, refresh string) postgres.NewSession {
	t.Helper()
	ns := newSession(u, t0, t0.Add(24*time.Hour), refresh)
	ns.ClientID = "app"
	createSession(t, db, ns)
	return ns
}

// rotateBehind runs the one-statement refresh r while a held transaction
// (holdTx) has the session locked: it waits until r is blocked on that
// lock, lets the held transaction commit, and returns r's error.
func rotateBehind(t *testing.T, db *postgres.DB, release func() error, r postgres.CurrentRotation) error {
	t.Helper()
	finished := make(chan struct{})
	var err error
	go func() {
		defer close(finished)
		_, err = rotateCurrent(db, r)
	}()
	awaitBlocked(t, db, finished)
	if err := release(); err != nil {
		t.Fatal(err)
	}
	<-finished
	return err
}

// currentRotation rotates sid from refresh to next at at, for a client
// naming none, with a ten-minute access token and no idle timeout.
func currentRotation(sid, refresh, next string, at time.Time) postgres.CurrentRotation {
	return postgres.CurrentRotation{
		SID: sid, Hash: token.HashRefresh(refresh), NewHash: token.HashRefresh(next), JTI: uuid.NewString(),
		IssuedAt: at.Unix(), AccessExp: at.Add(10 * time.Minute), At: at, ServiceRole: "service",
	}
}

// The one-statement refresh rotates exactly what RotateRefresh rotates, and
// keeps every rotated-away token findable as a reuse.
func TestRotateCurrentRefreshRotates(t *testing.T) {
	t.Parallel()
	db, b := setup(t)
	u := createUser(t, db, b, "alice", "user")
	ns := appSession(t, db, u, "a0")
	sid := ns.ID
	at := t0.Add(time.Minute)
	r := currentRotation(sid, "a0", "a1", at)
	rs, err := rotateCurrent(db, r)
	if err != nil {
		t.Fatalf("rotate the current token: %v", err)
	}
	if rs.UserID != u.ID || rs.Role != "user" || rs.ClientID != "app" || !rs.ExpiresAt.Equal(ns.ExpiresAt) {
		t.Fatalf("rotated session %+v; want alice's, client app, ending %v", rs, ns.ExpiresAt)
	}
	var jti string
	var iat int64
	var exp, refreshed time.Time
	if err := db.Pool().QueryRow(ctx, `SELECT last_jti::text, last_iat, access_exp, last_refreshed_at FROM sessions WHERE id = $1`, sid).
		Scan(&jti, &iat, &exp, &refreshed); err != nil {
		t.Fatal(err)
	}
	if jti != r.JTI || iat != r.IssuedAt || !exp.Equal(r.AccessExp) || !refreshed.Equal(at) {
		t.Fatalf("row after rotation: jti %s iat %d exp %v refreshed %v; want %s %d %v %v", jti, iat, exp, refreshed, r.JTI, r.IssuedAt, r.AccessExp, at)
	}
	// Twice more, with the client named: a0 moves to the history, a1 is the
	// previous token, and each is a reuse.
	r2 := currentRotation(sid, "a1", "a2", at.Add(time.Minute))
	r2.ClientID = "app"
	if _, err := rotateCurrent(db, r2); err != nil {
		t.Fatalf("second rotation: %v", err)
	}
	if _, err := rotateCurrent(db, currentRotation(sid, "a2", "a3", at.Add(2*time.Minute))); err != nil {
		t.Fatalf("third rotation: %v", err)
	}
	for tok, prev := range map[string]bool{"a0": false, "a1": false, "a2": true} {
		row, err := lockRefreshOf(db, sid, tok)
		if err != nil || !row.Reused || row.Previous != prev {
			t.Errorf("%s after three rotations: %+v, %v; want a reuse, previous %v", tok, row, err, prev)
		}
		if _, err := rotateCurrent(db, currentRotation(sid, tok, "x", at.Add(3*time.Minute))); !errors.Is(err, postgres.ErrNotFound) {
			t.Errorf("%s rotated again in one statement: %v; want ErrNotFound", tok, err)
		}
	}
	if row, err := lockRefreshOf(db, sid, "a3"); err != nil || row.Reused {
		t.Errorf("a3: %+v, %v; want the current token", row, err)
	}
}

// Every refresh that needs a decision is left to the full path, with
// nothing written.
func TestRotateCurrentRefreshLeavesDecisionsToTheFullPath(t *testing.T) {
	t.Parallel()
	db, b := setup(t)
	at := t0.Add(time.Hour)
	for _, tc := range []struct {
		name    string
		role    string
		setup   string // run with $1 the session's id, $2 its user's
		change  func(*postgres.CurrentRotation)
		rotates bool
	}{
		{name: "nothing to decide (the control)", rotates: true},
		{name: "an issuer cutoff it was minted after (the control)", rotates: true, setup: `INSERT INTO revocation_cutoffs (revoked_at, nbf, exp, reason)
			SELECT $4::timestamptz - interval '2 hours', $3 - 7200, $4::timestamptz + interval '1 hour', 'test' WHERE $1::uuid IS NOT NULL AND $2::uuid IS NOT NULL`},
		{name: "wrong token", change: func(r *postgres.CurrentRotation) { r.Hash = token.HashRefresh("other") }},
		{name: "another client", change: func(r *postgres.CurrentRotation) { r.ClientID = "other" }},
		{name: "no client bound", setup: `UPDATE sessions SET client_id = NULL WHERE id = $1 AND $2::uuid IS NOT NULL`},
		{name: "session ends before the token", change: func(r *postgres.CurrentRotation) { r.AccessExp = t0.Add(25 * time.Hour) }},
		{name: "idle", change: func(r *postgres.CurrentRotation) { r.IdleSince = t0.Add(time.Second) }},
		{name: "revoked", setup: `UPDATE sessions SET revoked_at = created_at, revoked_reason = 'logout' WHERE id = $1 AND $2::uuid IS NOT NULL`},
		{name: "user disabled", setup: `UPDATE users SET disabled_at = now() WHERE id = $2 AND $1::uuid IS NOT NULL`},
		{name: "service identity", role: "service"},
		{name: "user cutoff moves iat", setup: `UPDATE users SET tokens_nbf = $3 WHERE id = $2 AND $1::uuid IS NOT NULL`},
		{name: "issuer cutoff moves iat", setup: `INSERT INTO revocation_cutoffs (revoked_at, nbf, exp, reason)
			SELECT $4::timestamptz - interval '1 hour', $3, $4::timestamptz + interval '1 hour', 'test' WHERE $1::uuid IS NOT NULL AND $2::uuid IS NOT NULL`},
		{name: "minted before an issuer cutoff", setup: `INSERT INTO revocation_cutoffs (revoked_at, nbf, exp, reason)
			SELECT $4::timestamptz - interval '1 minute', $3 - 7200, $4::timestamptz + interval '1 hour', 'test' WHERE $1::uuid IS NOT NULL AND $2::uuid IS NOT NULL`},
	} {
		t.Run(tc.name, func(t *testing.T) {
			// Not parallel: the issuer-wide cases change every session.
			u := createUser(t, db, b, "u-"+uuid.NewString()[:8], cmp.Or(tc.role, "user"))
			tok := "t0-" + tc.name
			sid := appSession(t, db, u, tok).ID
			if tc.setup != "" {
				args := []any{sid, u.ID}
				if strings.Contains(tc.setup, "$3") {
					args = append(args, at.Unix()+1)
				}
				if strings.Contains(tc.setup, "$4") {
					args = append(args, at)
				}
				if _, err := db.Pool().Exec(ctx, tc.setup, args...); err != nil {
					t.Fatal(err)
				}
				t.Cleanup(func() {
					if _, err := db.Pool().Exec(ctx, `DELETE FROM revocation_cutoffs`); err != nil {
						t.Error(err)
					}
				})
			}
			r := currentRotation(sid, tok, "t1-"+tc.name, at)
			if tc.change != nil {
				tc.change(&r)
			}
			before := sessionRow(t, db, sid)
			rs, err := rotateCurrent(db, r)
			if tc.rotates {
				if err != nil || rs.UserID != u.ID {
					t.Fatalf("the control did not rotate: %+v, %v", rs, err)
				}
				return
			}
			if !errors.Is(err, postgres.ErrNotFound) {
				t.Fatalf("rotated: %+v, %v; want ErrNotFound", rs, err)
			}
			var n int
			if err := db.Pool().QueryRow(ctx, `SELECT count(*) FROM refresh_token_history WHERE session_id = $1`, sid).Scan(&n); err != nil || n != 0 {
				t.Errorf("history rows %d, %v; want none", n, err)
			}
			if after := sessionRow(t, db, sid); !reflect.DeepEqual(before, after) {
				t.Errorf("session changed:\n%+v\nto\n%+v", before, after)
			}
		})
	}
}

// Two refreshes with one token: the second, waiting for the first's lock,
// finds the token rotated away once it is granted and rotates nothing.
func TestRotateCurrentRefreshRechecksAfterTheLock(t *testing.T) {
	t.Parallel()
	db, b := setup(t)
	sid := appSession(t, db, createUser(t, db, b, "alice", "user"), "a0").ID
	release := holdTx(t, db, func(tx *postgres.Tx) error {
		if _, err := tx.LockSessionByRefreshHash(sid, token.HashRefresh("a0")); err != nil {
			return err
		}
		return tx.RotateRefresh(postgres.Rotation{SID: sid, NewHash: token.HashRefresh("won"), JTI: uuid.NewString(),
			AccessExp: t0.Add(10 * time.Minute), At: t0})
	})
	err := rotateBehind(t, db, release, currentRotation(sid, "a0", "lost", t0))
	if !errors.Is(err, postgres.ErrNotFound) {
		t.Fatalf("the second refresh with a0: %v; want ErrNotFound", err)
	}
	if row, err := lockRefreshOf(db, sid, "won"); err != nil || row.Reused {
		t.Fatalf("the first refresh's token: %+v, %v; want it current", row, err)
	}
}

// A revocation, or a cutoff of the user, that holds the session while the
// one-statement refresh waits for it: once it commits, the refresh finds
// the session revoked on the row it locked and rotates nothing.
func TestRotateCurrentRefreshYieldsToARevocationItWaitedFor(t *testing.T) {
	t.Parallel()
	for name, revoke := range map[string]func(tx *postgres.Tx, sid, uid string) error{
		"RevokeSession": func(tx *postgres.Tx, sid, _ string) error {
			_, err := tx.RevokeSession(postgres.RevokeRequest{SID: sid, Reason: "admin_revoke", At: t0})
			return err
		},
		"CutOffUser": func(tx *postgres.Tx, _, uid string) error {
			_, err := tx.CutOffUser(postgres.UserCutoff{UserID: uid, Reason: "user_logout_all", Now: func() time.Time { return t0 }})
			return err
		},
	} {
		t.Run(name, func(t *testing.T) {
			t.Parallel()
			db, b := setup(t)
			u := createUser(t, db, b, "alice", "user")
			sid := appSession(t, db, u, "a0").ID
			release := holdTx(t, db, func(tx *postgres.Tx) error { return revoke(tx, sid, u.ID) })
			err := rotateBehind(t, db, release, currentRotation(sid, "a0", "a1", t0.Add(time.Minute)))
			if !errors.Is(err, postgres.ErrNotFound) {
				t.Fatalf("the refresh that waited for the revocation: %v; want ErrNotFound", err)
			}
			row, err := lockRefreshOf(db, sid, "a0")
			if err != nil || !row.Revoked || row.Reused {
				t.Fatalf("after the revocation: %+v, %v; want a0 still current, the session revoked", row, err)
			}
		})
	}
}
