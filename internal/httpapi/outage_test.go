package httpapi_test

import (
	"context"
	"fmt"
	"log/slog"
	"net/http"
	"net/url"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/seedc5a8123e/authd/internal/authdtest"
	"github.com/seedc5a8123e/authd/internal/pgtest"
	"github.com/seedc5a8123e/authd/internal/postgres"
	"github.com/seedc5a8123e/authd/internal/push"
	"github.com/seedc5a8123e/authd/internal/tcpproxy"
	"github.com/seedc5a8123e/authd/internal/throttle"
	"github.com/seedc5a8123e/authd/verifier"
)

// throughProxy opens a fresh test database through a TCP proxy the test
// controls.
func throughProxy(t *testing.T) (*postgres.DB, *tcpproxy.Proxy) {
	t.Helper()
	u, err := url.Parse(pgtest.URL(t))
	if err != nil {
		t.Fatal(err)
	}
	px := tcpproxy.Start(t, u.Host)
	u.Host = px.Addr()
	db, err := postgres.Open(context.Background(), u.String(), postgres.Options{})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(db.Close)
	return db, px
}

// TestDatabaseOutageAnswers503: with the database cut or frozen, every
// endpoint that needs it answers 503 with Retry-After (temporarily_unavailable
// on the OAuth endpoints), never a 500; when it returns, authd recovers
// without a restart and every revocation acknowledged before is in the feed.
func TestDatabaseOutageAnswers503(t *testing.T) {
	db, px := throughProxy(t)
	env := authdtest.Start(t, authdtest.Options{DB: db})
	env.CreateUser(t, "out", "user", pw)
	env.CreateUser(t, "feeder", "service", "feeder service secret")
	a := env.Login(t, "out", pw)
	gone := env.Login(t, "out", pw)
	if res, _ := env.Do(t, http.MethodPost, "/logout", gone.AccessToken, "", nil); res.StatusCode != 200 {
		t.Fatal("logout before the outage failed")
	}

	requests := []struct {
		name  string
		oauth bool
		do    func() (*http.Response, []byte)
	}{
		{"login", true, func() (*http.Response, []byte) {
			return env.PostForm(t, "/token", url.Values{"grant_type": {"password"}, "username": {"out"}, "password": {pw}})
		}},
		{"refresh", true, func() (*http.Response, []byte) { return refresh(t, env, a.RefreshToken) }},
		{"revoke", true, func() (*http.Response, []byte) {
			return env.PostForm(t, "/revoke", url.Values{"token": {a.RefreshToken}})
		}},
		{"logout", false, func() (*http.Response, []byte) { return env.Do(t, http.MethodPost, "/logout", a.AccessToken, "", nil) }},
		{"sessions", false, func() (*http.Response, []byte) { return env.Do(t, http.MethodGet, "/sessions", a.AccessToken, "", nil) }},
	}
	check := func(phase string) {
		t.Helper()
		for _, r := range requests {
			start := time.Now()
			res, body := r.do()
			t.Logf("%s %s: %d in %s", phase, r.name, res.StatusCode, time.Since(start).Round(time.Millisecond))
			if res.StatusCode != http.StatusServiceUnavailable || res.Header.Get("Retry-After") == "" {
				t.Errorf("%s %s: %d %s (Retry-After %q), want 503 with Retry-After", phase, r.name, res.StatusCode, body, res.Header.Get("Retry-After"))
				continue
			}
			if r.oauth && !strings.Contains(string(body), `"temporarily_unavailable"`) {
				t.Errorf("%s %s: %s, want temporarily_unavailable", phase, r.name, body)
			}
			if !r.oauth && res.Header.Get("Content-Type") != "application/problem+json" {
				t.Errorf("%s %s: Content-Type %q, want problem+json", phase, r.name, res.Header.Get("Content-Type"))
			}
		}
	}

	px.Cut()
	check("cut")
	if err := px.Restore(); err != nil {
		t.Fatal(err)
	}
	px.Freeze()
	check("frozen")
	if err := px.Restore(); err != nil {
		t.Fatal(err)
	}

	authdtest.Eventually(t, 10*time.Second, func() bool {
		res, _ := env.PostForm(t, "/token", url.Values{"grant_type": {"password"}, "username": {"out"}, "password": {pw}})
		return res.StatusCode == http.StatusOK
	}, "a login after the database returned")
	svc := env.ServiceToken(t, "feeder", "feeder service secret")
	_, feed := env.Do(t, http.MethodGet, "/sessions/revoked", svc.AccessToken, "", nil)
	if !strings.Contains(string(feed), gone.SID) {
		t.Fatalf("the revocation acknowledged before the outage is not in the feed: %s", feed)
	}
}

// TestDatabaseCutUnderLoad: a steady mix of logins, refreshes, logouts and
// feed polls runs while the link to PostgreSQL is cut for 10 s. Every answer
// is a 2xx, a 4xx the request earned, or a 503 with Retry-After: never
// another 5xx. After the link returns, authd serves again without a restart,
// and every logout acknowledged with 200, before, during or after the cut,
// is in the feed.
func TestDatabaseCutUnderLoad(t *testing.T) {
	if testing.Short() {
		t.Skip("a 10 s outage")
	}
	db, px := throughProxy(t)
	env := authdtest.Start(t, authdtest.Options{DB: db, Throttle: throttleOff})
	env.CreateUser(t, "feeder", "service", "feeder service secret")
	const workers = 4
	for i := range workers {
		env.CreateUser(t, fmt.Sprintf("load%d", i), "user", pw)
	}
	var (
		mu       sync.Mutex
		acked    []string // sids whose logout answered 200
		statuses = map[int]int{}
		bad      []string
		stop     atomic.Bool
		wg       sync.WaitGroup
	)
	note := func(res *http.Response, body []byte, what string) {
		mu.Lock()
		defer mu.Unlock()
		statuses[res.StatusCode]++
		switch {
		case res.StatusCode == http.StatusServiceUnavailable && res.Header.Get("Retry-After") == "":
			bad = append(bad, what+": 503 without Retry-After")
		case res.StatusCode >= 500 && res.StatusCode != http.StatusServiceUnavailable:
			bad = append(bad, fmt.Sprintf("%s: %d %s", what, res.StatusCode, body))
		}
	}
	svc := env.ServiceToken(t, "feeder", "feeder service secret")
	for i := range workers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			user := fmt.Sprintf("load%d", i)
			for !stop.Load() {
				res, body := env.PostForm(t, "/token", url.Values{"grant_type": {"password"}, "username": {user}, "password": {pw}})
				note(res, body, "login")
				if res.StatusCode != http.StatusOK {
					time.Sleep(20 * time.Millisecond) // pacing the retry, not a wait for a condition
					continue
				}
				tr := decode[authdtest.TokenResponse](t, body)
				res, body = refresh(t, env, tr.RefreshToken)
				note(res, body, "refresh")
				if res.StatusCode == http.StatusOK {
					tr = decode[authdtest.TokenResponse](t, body)
				}
				res, body = env.Do(t, http.MethodGet, "/sessions/revoked", svc.AccessToken, "", nil)
				note(res, body, "feed")
				res, body = env.Do(t, http.MethodPost, "/logout", tr.AccessToken, "", nil)
				note(res, body, "logout")
				if res.StatusCode == http.StatusOK && strings.Contains(string(body), `"already_revoked":false`) {
					mu.Lock()
					acked = append(acked, tr.SID)
					mu.Unlock()
				}
			}
		}()
	}
	count := func() int { mu.Lock(); defer mu.Unlock(); return len(acked) }
	authdtest.Eventually(t, 10*time.Second, func() bool { return count() >= workers }, "logouts before the cut")
	px.Cut()
	cutAt := time.Now()
	time.Sleep(10 * time.Second) // the outage itself
	if err := px.Restore(); err != nil {
		t.Fatal(err)
	}
	before := count()
	restored := time.Now()
	authdtest.Eventually(t, 5*time.Second, func() bool { return count() > before }, "a logout within 5 s of the link's return")
	t.Logf("cut for %s; first acknowledged logout %s after the link returned", restored.Sub(cutAt).Round(time.Millisecond),
		time.Since(restored).Round(time.Millisecond))
	stop.Store(true)
	wg.Wait()

	mu.Lock()
	defer mu.Unlock()
	t.Logf("answers by status: %v; %d logouts acknowledged", statuses, len(acked))
	for _, b := range bad {
		t.Error(b)
	}
	if statuses[http.StatusServiceUnavailable] == 0 {
		t.Error("no request saw the outage: the cut did not take")
	}
	svc = env.ServiceToken(t, "feeder", "feeder service secret")
	_, feed := env.Do(t, http.MethodGet, "/sessions/revoked", svc.AccessToken, "", nil)
	for _, sid := range acked {
		if !strings.Contains(string(feed), sid) {
			t.Errorf("acknowledged logout of %s is not in the feed", sid)
		}
	}
}

// throttleOff keeps the load's own logins from tripping the throttle.
var throttleOff = throttle.Config{MaxFailuresAccount: 1000, MaxFailuresIP: 100000}

// TestRedisCutKeepsLogoutsFast: with the link to Redis cut, logouts still
// succeed (the push is queued, never awaited); once it returns, pushes
// resume and reach a subscriber.
func TestRedisCutKeepsLogoutsFast(t *testing.T) {
	ru, err := url.Parse(authdtest.RedisURL(t))
	if err != nil {
		t.Fatal(err)
	}
	px := tcpproxy.Start(t, ru.Host)
	viaProxy := *ru
	viaProxy.Host = px.Addr()
	pub, err := push.NewRedis(viaProxy.String(), slog.New(slog.DiscardHandler), nil)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = pub.Close() })
	env := authdtest.Start(t, authdtest.Options{Publisher: pub})
	env.CreateUser(t, "redisless", "user", pw)

	sub := redis.NewClient(&redis.Options{Addr: ru.Host})
	t.Cleanup(func() { _ = sub.Close() })
	ps := sub.Subscribe(context.Background(), verifier.PushChannel)
	t.Cleanup(func() { _ = ps.Close() })
	if _, err := ps.Receive(context.Background()); err != nil {
		t.Fatal(err)
	}

	px.Cut()
	var slowest time.Duration
	var sids []string
	for range 5 {
		tr := env.Login(t, "redisless", pw)
		start := time.Now()
		res, body := env.Do(t, http.MethodPost, "/logout", tr.AccessToken, "", nil)
		slowest = max(slowest, time.Since(start))
		if res.StatusCode != http.StatusOK {
			t.Fatalf("logout with Redis cut: %d %s", res.StatusCode, body)
		}
		sids = append(sids, tr.SID)
	}
	t.Logf("slowest logout with Redis cut: %s", slowest)
	if err := px.Restore(); err != nil {
		t.Fatal(err)
	}
	seen := map[string]bool{}
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	for len(seen) < len(sids) {
		msg, err := ps.ReceiveMessage(ctx)
		if err != nil {
			t.Fatalf("pushes after Redis returned: %d of %d seen: %v", len(seen), len(sids), err)
		}
		for _, sid := range sids {
			if strings.Contains(msg.Payload, sid) {
				seen[sid] = true
			}
		}
	}
}
