package httpapi_test

import (
	"compress/gzip"
	"context"
	"encoding/json"
	"net/http"
	"sort"
	"strconv"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/seedc5a8123e/authd/internal/authdtest"
	"github.com/seedc5a8123e/authd/internal/feed"
	"github.com/seedc5a8123e/authd/internal/push"
	"github.com/seedc5a8123e/authd/verifier"
)

type feedEnv struct {
	*authdtest.Env
}

func startFeed(t *testing.T, o authdtest.Options) feedEnv {
	env := authdtest.Start(t, o)
	env.CreateUser(t, "verifier-svc", "service", "verifier service secret")
	env.CreateUser(t, "alice", "user", pw)
	env.CreateUser(t, "root", "admin", pw)
	return feedEnv{Env: env}
}

// poll gets the feed with a fresh service token (client_credentials tokens
// live 10 minutes, and tests move the clock).
func (f feedEnv) poll(t *testing.T, query string) ([]verifier.Revocation, int64, *http.Response) {
	t.Helper()
	svc := f.ServiceToken(t, "verifier-svc", "verifier service secret")
	res, body := f.Do(t, http.MethodGet, "/sessions/revoked"+query, svc.AccessToken, "", nil)
	if res.StatusCode != 200 {
		t.Fatalf("feed%s: %d %s", query, res.StatusCode, body)
	}
	var entries []verifier.Revocation
	if err := json.Unmarshal(body, &entries); err != nil || entries == nil {
		t.Fatalf("feed body %q: %v", body, err)
	}
	cursor, err := strconv.ParseInt(res.Header.Get(verifier.CursorHeader), 10, 64)
	if err != nil {
		t.Fatalf("cursor header %q", res.Header.Get(verifier.CursorHeader))
	}
	if cursor > f.Clock.Now().Unix() {
		t.Fatalf("cursor %d is later than the server clock %d", cursor, f.Clock.Now().Unix())
	}
	return entries, cursor, res
}

func sids(es []verifier.Revocation) []string {
	var out []string
	for _, e := range es {
		out = append(out, e.SID)
	}
	sort.Strings(out)
	return out
}

// AC-4: 5 sessions revoked in the last hour, 2 of whose tokens expired.
func TestFeedReturnsOnlyLiveRevocations(t *testing.T) {
	f := startFeed(t, authdtest.Options{})
	t0 := f.Clock.Now()
	early := []authdtest.TokenResponse{f.Login(t, "alice", pw), f.Login(t, "alice", pw)}
	f.Clock.Advance(time.Minute)
	for _, s := range early {
		f.Do(t, http.MethodPost, "/logout", s.AccessToken, "", nil)
	}
	f.Clock.Set(t0.Add(20 * time.Minute)) // the early tokens expired at t0+10m
	var live []authdtest.TokenResponse
	for range 3 {
		live = append(live, f.Login(t, "alice", pw))
	}
	f.Clock.Advance(time.Minute)
	for _, s := range live {
		f.Do(t, http.MethodPost, "/logout", s.AccessToken, "", nil)
	}
	f.Clock.Advance(4 * time.Minute)

	since := f.Clock.Now().Add(-time.Hour).Unix()
	entries, _, res := f.poll(t, "?since="+strconv.FormatInt(since, 10))
	if res.Header.Get("Cache-Control") != "no-cache" {
		t.Fatalf("Cache-Control = %q", res.Header.Get("Cache-Control"))
	}
	want := map[string]verifier.Revocation{}
	for _, s := range live {
		c := claimsOf(t, s.AccessToken)
		want[s.SID] = verifier.Revocation{JTI: c.ID, SID: s.SID, Exp: c.ExpiresAt.Unix()}
	}
	if len(entries) != 3 {
		t.Fatalf("feed has %d entries %+v, want the 3 live ones", len(entries), entries)
	}
	for _, e := range entries {
		if want[e.SID] != e {
			t.Fatalf("entry %+v, want %+v", e, want[e.SID])
		}
	}
	// Once their tokens expire, the live ones leave the feed too.
	f.Clock.Set(t0.Add(31 * time.Minute))
	if entries, _, _ := f.poll(t, "?since="+strconv.FormatInt(since, 10)); len(entries) != 0 {
		t.Fatalf("expired entries still served: %+v", entries)
	}
}

func TestFeedEntryFollowsTheNewestToken(t *testing.T) {
	f := startFeed(t, authdtest.Options{})
	s := f.Login(t, "alice", pw)
	f.Clock.Advance(5 * time.Minute)
	res, body := refresh(t, f.Env, s.RefreshToken)
	if res.StatusCode != 200 {
		t.Fatalf("refresh: %s", body)
	}
	newest := decode[authdtest.TokenResponse](t, body)
	f.Do(t, http.MethodPost, "/logout", newest.AccessToken, "", nil)
	entries, _, _ := f.poll(t, "")
	c := claimsOf(t, newest.AccessToken)
	if len(entries) != 1 || entries[0].JTI != c.ID || entries[0].Exp != c.ExpiresAt.Unix() {
		t.Fatalf("entries = %+v, want the newest token's jti and exp", entries)
	}
}

func TestFeedSinceParameter(t *testing.T) {
	f := startFeed(t, authdtest.Options{})
	s := f.Login(t, "alice", pw)
	f.Do(t, http.MethodPost, "/logout", s.AccessToken, "", nil)
	now := f.Clock.Now().Unix()

	if e, _, _ := f.poll(t, ""); len(e) != 1 {
		t.Fatalf("full snapshot = %+v", e)
	}
	if e, _, _ := f.poll(t, "?since="+strconv.FormatInt(now, 10)); len(e) != 1 {
		t.Fatalf("since=revocation second = %+v (since is inclusive)", e)
	}
	if e, _, _ := f.poll(t, "?since="+strconv.FormatInt(now+1, 10)); len(e) != 0 {
		t.Fatalf("since after the revocation = %+v", e)
	}
	if e, _, _ := f.poll(t, "?since=99999999999"); len(e) != 0 {
		t.Fatalf("future since = %+v", e)
	}
	svc := f.ServiceToken(t, "verifier-svc", "verifier service secret")
	for _, q := range []string{"?since=", "?since=-1", "?since=1.5", "?since=0x10", "?since=1e9", "?since=abc",
		"?since=%201", "?since=1&since=2", "?since=99999999999999999999"} {
		res, body := f.Do(t, http.MethodGet, "/sessions/revoked"+q, svc.AccessToken, "", nil)
		if res.StatusCode != 400 || res.Header.Get("Content-Type") != "application/problem+json" {
			t.Errorf("%s: %d %s, want 400 problem", q, res.StatusCode, body)
		}
	}
	t.Run("AdminMayPoll", func(t *testing.T) {
		admin := f.Login(t, "root", pw)
		if res, _ := f.Do(t, http.MethodGet, "/sessions/revoked", admin.AccessToken, "", nil); res.StatusCode != 200 {
			t.Fatalf("admin poll: %d", res.StatusCode)
		}
	})
}

func TestFeedGzip(t *testing.T) {
	f := startFeed(t, authdtest.Options{})
	for range 20 {
		s := f.Login(t, "alice", pw)
		f.Do(t, http.MethodPost, "/logout", s.AccessToken, "", nil)
	}
	svc := f.ServiceToken(t, "verifier-svc", "verifier service secret")
	req, _ := http.NewRequest(http.MethodGet, f.URL+"/sessions/revoked", nil)
	req.Header.Set("Authorization", "Bearer "+svc.AccessToken)
	req.Header.Set("Accept-Encoding", "gzip")
	res, err := (&http.Transport{DisableCompression: true}).RoundTrip(req)
	if err != nil {
		t.Fatal(err)
	}
	defer res.Body.Close()
	if res.Header.Get("Content-Encoding") != "gzip" || res.Header.Get(verifier.CursorHeader) == "" {
		t.Fatalf("headers = %v", res.Header)
	}
	zr, err := gzip.NewReader(res.Body)
	if err != nil {
		t.Fatal(err)
	}
	var entries []verifier.Revocation
	if err := json.NewDecoder(zr).Decode(&entries); err != nil || len(entries) != 20 {
		t.Fatalf("gzip body: %d entries, %v", len(entries), err)
	}
}

// TestFeedNeverMissesALateCommit holds a revocation's transaction open
// across a poll, commits it, and checks that the next poll, made with the
// first poll's cursor, returns it.
func TestFeedNeverMissesALateCommit(t *testing.T) {
	f := startFeed(t, authdtest.Options{})
	ctx := context.Background()
	s := f.Login(t, "alice", pw)
	_, cursor0, _ := f.poll(t, "")

	// A revoking transaction stamps revoked_at now and stays open.
	tx, err := f.DB.Pool().Begin(ctx)
	if err != nil {
		t.Fatal(err)
	}
	defer tx.Rollback(ctx)
	if _, err := tx.Exec(ctx, `UPDATE sessions SET revoked_at = $1, revoked_reason = 'user_logout' WHERE id = $2`,
		f.Clock.Now(), s.SID); err != nil {
		t.Fatal(err)
	}
	// Time passes while it is open, within the bound on revoking transactions.
	f.Clock.Advance(4 * time.Second)
	entries, cursor1, _ := f.poll(t, "?since="+strconv.FormatInt(cursor0, 10))
	if len(entries) != 0 {
		t.Fatalf("uncommitted revocation visible: %+v", entries)
	}
	if err := tx.Commit(ctx); err != nil {
		t.Fatal(err)
	}
	f.Clock.Advance(time.Second)
	// The replica serves what its follower has read, so the entry arrives
	// with some later poll; polls chained by their cursors, as a verifier
	// makes them, must reach it.
	cursor := cursor1
	authdtest.Eventually(t, 5*time.Second, func() bool {
		entries, next, _ := f.poll(t, "?since="+strconv.FormatInt(cursor, 10))
		cursor = next
		got := sids(entries)
		return len(got) == 1 && got[0] == s.SID
	}, "a poll chained from the first poll's cursor to return the late commit %s", s.SID)
	if cursor1 > f.Clock.Now().Add(-feed.Holdback).Unix()+1 {
		t.Fatalf("cursor %d is not held back", cursor1)
	}
}

func TestPushPublishesEachRevocation(t *testing.T) {
	u := authdtest.RedisURL(t)
	pub, err := push.NewRedis(u, authdtest.Start(t, authdtest.Options{}).Log, nil)
	if err != nil {
		t.Fatal(err)
	}
	defer pub.Close()
	f := startFeed(t, authdtest.Options{Publisher: pub})

	opt, _ := redis.ParseURL(u)
	sub := redis.NewClient(opt)
	defer sub.Close()
	ps := sub.Subscribe(context.Background(), verifier.PushChannel)
	defer ps.Close()
	if _, err := ps.Receive(context.Background()); err != nil { // the subscription confirmation
		t.Fatal(err)
	}
	// Other test packages publish on the same channel at the same time, so
	// messages about sessions this test does not know are skipped.
	mine := map[string]bool{}
	next := func() verifier.Revocation {
		t.Helper()
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		for {
			msg, err := ps.ReceiveMessage(ctx)
			if err != nil {
				t.Fatalf("no push message: %v", err)
			}
			var e verifier.Revocation
			if err := json.Unmarshal([]byte(msg.Payload), &e); err != nil {
				t.Fatalf("payload %q: %v", msg.Payload, err)
			}
			if mine[e.SID] {
				return e
			}
		}
	}

	s := f.Login(t, "alice", pw)
	mine[s.SID] = true
	f.Do(t, http.MethodPost, "/logout", s.AccessToken, "", nil)
	c := claimsOf(t, s.AccessToken)
	if got, want := next(), (verifier.Revocation{JTI: c.ID, SID: s.SID, Exp: c.ExpiresAt.Unix()}); got != want {
		t.Fatalf("push = %+v, want %+v", got, want)
	}
	a, b := f.Login(t, "alice", pw), f.Login(t, "alice", pw)
	mine[a.SID], mine[b.SID] = true, true
	f.Do(t, http.MethodPost, "/logout/all", a.AccessToken, "", nil)
	if got := sids([]verifier.Revocation{next(), next()}); strings.Join(got, ",") != strings.Join(sids([]verifier.Revocation{{SID: a.SID}, {SID: b.SID}}), ",") {
		t.Fatalf("logout/all pushed %v, want one message per session", got)
	}
}

func TestDeadRedisNeverFailsALogout(t *testing.T) {
	// Nothing listens on port 1: the revocation waits in the publisher's
	// queue, the logout does not wait for it, and Close gives up on it and
	// counts it.
	var drops atomic.Int64
	pub, err := push.New(push.Config{URL: "redis://127.0.0.1:1/0", Log: authdtest.Start(t, authdtest.Options{}).Log,
		CloseTimeout: 50 * time.Millisecond, OnDrop: func() { drops.Add(1) }})
	if err != nil {
		t.Fatal(err)
	}
	defer pub.Close()
	f := startFeed(t, authdtest.Options{Publisher: pub})
	s := f.Login(t, "alice", pw)
	res, body := f.Do(t, http.MethodPost, "/logout", s.AccessToken, "", nil)
	if res.StatusCode != 200 || strings.TrimSpace(string(body)) != `{"already_revoked":false}` {
		t.Fatalf("logout with a dead Redis: %d %s", res.StatusCode, body)
	}
	if e, _, _ := f.poll(t, ""); len(e) != 1 {
		t.Fatal("the revocation is not in the feed")
	}
	if q := pub.Stats().Queued; q != 1 {
		t.Fatalf("queued = %d, want the revocation waiting for Redis", q)
	}
	if err := pub.Close(); err != nil {
		t.Fatal(err)
	}
	if drops.Load() != 1 {
		t.Fatalf("undelivered revocations counted = %d, want 1", drops.Load())
	}
}

// Item 12: a query string that does not parse is a 400, never an absent
// since (which would widen the answer to the full snapshot); so is a
// repeated since, even with equal values.
func TestFeedRefusesMalformedQueries(t *testing.T) {
	f := startFeed(t, authdtest.Options{})
	s := f.Login(t, "alice", pw)
	f.Do(t, http.MethodPost, "/logout", s.AccessToken, "", nil)
	svc := f.ServiceToken(t, "verifier-svc", "verifier service secret")
	for _, q := range []string{
		"?since=1;x=2", "?since=%zz", "?x=%zz&since=99999999999", "?since=99999999999&x=%", "?since=99999999999;",
		"?;since=99999999999", "?since=1&since=1", "?since=99999999999&since=", "?since=%", "?since=1%3", "?%zz",
		"?since=%2B1", "?since=%EF%BC%91", "?since=%00", "?since=1%00",
	} {
		res, body := f.Do(t, http.MethodGet, "/sessions/revoked"+q, svc.AccessToken, "", nil)
		if res.StatusCode != 400 || res.Header.Get("Content-Type") != "application/problem+json" {
			t.Errorf("%s: %d %s, want 400 problem", q, res.StatusCode, body)
			continue
		}
		if p := decode[struct{ Status int }](t, body); p.Status != 400 {
			t.Errorf("%s: problem %s", q, body)
		}
	}
	// Parameters the feed does not know are ignored, as before.
	if e, _, _ := f.poll(t, "?x=1&since=0"); len(e) != 1 {
		t.Fatalf("unknown parameter: %+v", e)
	}
	if e, _, _ := f.poll(t, "?since=99999999999&cachebust=1"); len(e) != 0 {
		t.Fatalf("since was lost next to another parameter: %+v", e)
	}
}
