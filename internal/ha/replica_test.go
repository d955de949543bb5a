package ha_test

import (
	"context"
	"encoding/json"
	"net/http"
	"net/url"
	"path/filepath"
	"strconv"
	"syscall"
	"testing"
	"time"

	"github.com/seedc5a8123e/authd/internal/authdtest"
	"github.com/seedc5a8123e/authd/internal/postgres"
	"github.com/seedc5a8123e/authd/verifier"
)

const pw = "correct horse battery staple"

// replicaPair is a primary and a hot standby streaming from it.
type replicaPair struct {
	primary, standby string // URLs of database authd
}

// startReplicaPair initdb's a primary, migrates it, and clones a hot
// standby from it with pg_basebackup -R.
func startReplicaPair(t *testing.T) replicaPair {
	t.Helper()
	bin := pgBinDir(t)
	dir := workDir(t)
	pport, sport := freePort(t), freePort(t)
	pdata, sdata := filepath.Join(dir, "primary"), filepath.Join(dir, "standby")
	run(t, command(t, filepath.Join(bin, "initdb"), "-D", pdata, "-U", "postgres", "--auth=trust", "-E", "UTF8", "--no-sync"))
	server := func(data string, port int) []string {
		return []string{"-D", data, "-p", strconv.Itoa(port), "-c", "listen_addresses=127.0.0.1",
			"-c", "unix_socket_directories=" + dir, "-c", "wal_level=replica", "-c", "max_wal_senders=5",
			"-c", "hot_standby=on", "-c", "fsync=off"}
	}
	start(t, "primary", command(t, filepath.Join(bin, "postgres"), server(pdata, pport)...), syscall.SIGINT)
	waitSQL(t, pport, 30*time.Second)
	primary := migrate(t, pport)
	run(t, command(t, filepath.Join(bin, "pg_basebackup"), "-h", "127.0.0.1", "-p", strconv.Itoa(pport), "-U", "postgres",
		"-D", sdata, "-R", "-X", "stream", "-c", "fast", "--no-sync"))
	start(t, "standby", command(t, filepath.Join(bin, "postgres"), server(sdata, sport)...), syscall.SIGINT)
	waitSQL(t, sport, 30*time.Second)
	return replicaPair{primary: primary, standby: pgURL(sport, "authd")}
}

// feedEnv is authd reading its feed from the standby.
type feedEnv struct {
	*authdtest.Env
	pair replicaPair
}

func startFeedOnReplica(t *testing.T, maxLag time.Duration) feedEnv {
	t.Helper()
	pair := startReplicaPair(t)
	db, err := postgres.Open(context.Background(), pair.primary, postgres.Options{ReadURL: pair.standby})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(db.Close)
	env := authdtest.Start(t, authdtest.Options{DB: db, ReadMaxLag: maxLag})
	env.CreateUser(t, "verifier-svc", "service", "verifier service secret")
	env.CreateUser(t, "alice", "user", pw)
	return feedEnv{Env: env, pair: pair}
}

// poll is one verifier poll: the entries and the cursor.
func (f feedEnv) poll(t *testing.T, since *int64) ([]verifier.Revocation, int64) {
	t.Helper()
	svc := f.ServiceToken(t, "verifier-svc", "verifier service secret")
	q := ""
	if since != nil {
		q = "?since=" + strconv.FormatInt(*since, 10)
	}
	res, body := f.Do(t, http.MethodGet, "/sessions/revoked"+q, svc.AccessToken, "", nil)
	if res.StatusCode != http.StatusOK {
		t.Fatalf("feed%s: %d %s", q, res.StatusCode, body)
	}
	var entries []verifier.Revocation
	if err := json.Unmarshal(body, &entries); err != nil {
		t.Fatalf("feed body %q: %v", body, err)
	}
	cursor, err := strconv.ParseInt(res.Header.Get(verifier.CursorHeader), 10, 64)
	if err != nil {
		t.Fatalf("cursor header %q", res.Header.Get(verifier.CursorHeader))
	}
	return entries, cursor
}

// source is where the last poll read, by authd_feed_read_source.
func (f feedEnv) source(t *testing.T) string {
	t.Helper()
	mfs, err := f.Registry.Gather()
	if err != nil {
		t.Fatal(err)
	}
	for _, mf := range mfs {
		if mf.GetName() != "authd_feed_read_source" {
			continue
		}
		for _, m := range mf.GetMetric() {
			if m.GetGauge().GetValue() == 1 {
				return m.GetLabel()[0].GetValue()
			}
		}
	}
	return ""
}

// lag is authd_feed_read_lag_seconds.
func (f feedEnv) lag(t *testing.T) float64 {
	t.Helper()
	mfs, err := f.Registry.Gather()
	if err != nil {
		t.Fatal(err)
	}
	for _, mf := range mfs {
		if mf.GetName() == "authd_feed_read_lag_seconds" {
			return mf.GetMetric()[0].GetGauge().GetValue()
		}
	}
	return 0
}

// onReplica polls, moving the clock a little each time, until a poll is
// served by the caught-up standby, and returns that poll's cursor.
func (f feedEnv) onReplica(t *testing.T, since *int64) int64 {
	t.Helper()
	var cursor int64
	authdtest.Eventually(t, 30*time.Second, func() bool {
		f.Clock.Advance(300 * time.Millisecond)
		_, cursor = f.poll(t, since)
		return f.source(t) == postgres.SourceReplica
	}, "a feed poll served by the standby")
	return cursor
}

func (f feedEnv) setReplay(t *testing.T, paused bool) {
	t.Helper()
	fn := "pg_wal_replay_resume()"
	if paused {
		fn = "pg_wal_replay_pause()"
	}
	execSQL(t, f.pair.standby, "SELECT "+fn)
}

func (f feedEnv) logout(t *testing.T, tr authdtest.TokenResponse) {
	t.Helper()
	res, body := f.Do(t, http.MethodPost, "/logout", tr.AccessToken, "", nil)
	if res.StatusCode/100 != 2 {
		t.Fatalf("logout: %d %s", res.StatusCode, body)
	}
}

// TestHAReplicaFeedNeverMissesWhileReplayIsPaused is the late-commit test
// of internal/httpapi with the feed read from a standby whose replay is
// paused across polls for longer than the feed's 15 s hold-back: a cursor
// that ignored the replica's lag would pass both revocations before the
// standby had them, and no later poll would return them.
func TestHAReplicaFeedNeverMissesWhileReplayIsPaused(t *testing.T) {
	requireHA(t)
	f := startFeedOnReplica(t, time.Minute)
	ctx := context.Background()
	late, acked := f.Login(t, "alice", pw), f.Login(t, "alice", pw)
	cursor := f.onReplica(t, nil)

	f.setReplay(t, true)
	stamp := f.Clock.Now()
	// A revoking transaction stamps revoked_at and stays open across a poll.
	tx, err := f.DB.Pool().Begin(ctx)
	if err != nil {
		t.Fatal(err)
	}
	defer tx.Rollback(ctx)
	if _, err := tx.Exec(ctx, `UPDATE sessions SET revoked_at = $1, revoked_reason = 'user_logout' WHERE id = $2`,
		stamp, late.SID); err != nil {
		t.Fatal(err)
	}
	f.Clock.Advance(4 * time.Second)
	seen := map[string]bool{}
	poll := func() {
		entries, next := f.poll(t, &cursor)
		for _, e := range entries {
			seen[e.SID] = true
		}
		cursor = next
	}
	poll()
	if err := tx.Commit(ctx); err != nil {
		t.Fatal(err)
	}
	f.logout(t, acked) // acknowledged on the primary, not replayed

	// 30 s of polls while replay stays paused, all served by the standby.
	for range 6 {
		f.Clock.Advance(5 * time.Second)
		poll()
		if got := f.source(t); got != postgres.SourceReplica {
			t.Fatalf("poll %s after the pause read %s, want the replica (lag %.1fs within 1m)",
				f.Clock.Now().Sub(stamp), got, f.lag(t))
		}
		if cursor > stamp.Unix() {
			t.Fatalf("cursor %d passed the unreplayed revocation stamped %d (lag %.1fs not held back)", cursor, stamp.Unix(), f.lag(t))
		}
	}
	// The gauge is the follower's last read's (internal/feed reads about
	// once a second, not once per poll): wait for a read at this time.
	authdtest.Eventually(t, 5*time.Second, func() bool { return f.lag(t) >= 30 },
		"authd_feed_read_lag_seconds to reach 30 after a 34 s pause (now %.1f)", f.lag(t))
	if seen[late.SID] || seen[acked.SID] {
		t.Fatalf("the paused standby returned revocations it has not replayed: %v", seen)
	}

	f.setReplay(t, false)
	authdtest.Eventually(t, 30*time.Second, func() bool {
		f.Clock.Advance(time.Second)
		poll()
		return seen[late.SID] && seen[acked.SID]
	}, "both revocations in the feed once replay resumes (seen %v)", seen)
	if got := f.source(t); got != postgres.SourceReplica {
		t.Errorf("the caught-up poll read %s, want the replica", got)
	}
}

// TestHAReplicaFeedFallsBackToThePrimary: beyond AUTHD_READ_MAX_LAG the
// feed reads the primary, which has the revocation, and says so.
func TestHAReplicaFeedFallsBackToThePrimary(t *testing.T) {
	requireHA(t)
	f := startFeedOnReplica(t, 5*time.Second)
	s := f.Login(t, "alice", pw)
	cursor := f.onReplica(t, nil)

	f.setReplay(t, true)
	f.logout(t, s)
	f.Clock.Advance(6 * time.Second)
	entries, _ := f.poll(t, &cursor)
	if got := f.source(t); got != postgres.SourcePrimary {
		t.Fatalf("poll with the standby 6 s behind read %s, want the primary", got)
	}
	if len(entries) != 1 || entries[0].SID != s.SID {
		t.Fatalf("primary poll = %+v, want %s", entries, s.SID)
	}
	if lag := f.lag(t); lag <= 5 {
		t.Errorf("authd_feed_read_lag_seconds = %.1f, want above 5", lag)
	}

	f.setReplay(t, false)
	f.onReplica(t, &cursor)
}

// TestHAReplicaServesUserLists: the user list reads the standby (a user
// created while replay is paused is not listed until it resumes), while the
// bearer check of the same request reads the primary.
func TestHAReplicaServesUserLists(t *testing.T) {
	requireHA(t)
	f := startFeedOnReplica(t, 5*time.Second)
	f.CreateUser(t, "root", "admin", pw)
	f.setReplay(t, true)
	// Logged in after the pause: only the primary knows this session.
	tok := f.Login(t, "root", pw)
	f.CreateUser(t, "bob", "user", pw)
	list := func() int {
		res, body := f.Do(t, http.MethodGet, "/users?"+url.Values{"query": {"bob"}}.Encode(), tok.AccessToken, "", nil)
		if res.StatusCode != http.StatusOK {
			t.Fatalf("GET /users: %d %s", res.StatusCode, body)
		}
		var page struct {
			Items []json.RawMessage `json:"items"`
		}
		if err := json.Unmarshal(body, &page); err != nil {
			t.Fatalf("GET /users body %s: %v", body, err)
		}
		return len(page.Items)
	}
	if n := list(); n != 0 {
		t.Fatalf("the list shows %d users named bob with replay paused: it did not read the standby", n)
	}
	f.setReplay(t, false)
	authdtest.Eventually(t, 30*time.Second, func() bool { return list() == 1 }, "bob listed once replay resumes")
}
