package httpapi_test

import (
	"context"
	"io"
	"net/http"
	"net/url"
	"strconv"
	"testing"
	"time"

	"github.com/seedc5a8123e/authd/internal/authdtest"
	"github.com/seedc5a8123e/authd/internal/statuslist"
)

// BenchmarkRefreshGrant measures one refresh_token grant over HTTP against
// the real database: lock, rotate, sign, commit.
func BenchmarkRefreshGrant(b *testing.B) {
	env := authdtest.Start(b, authdtest.Options{})
	env.CreateUser(b, "bench", "user", pw)
	rt := env.Login(b, "bench", pw).RefreshToken
	client := env.Server.Client()
	b.ReportAllocs()
	b.ResetTimer()
	for b.Loop() {
		res, err := client.PostForm(env.URL+"/token", url.Values{"grant_type": {"refresh_token"}, "refresh_token": {rt}})
		if err != nil {
			b.Fatal(err)
		}
		body, _ := io.ReadAll(res.Body)
		res.Body.Close()
		if res.StatusCode != 200 {
			b.Fatalf("refresh: %d %s", res.StatusCode, body)
		}
		rt = decode[authdtest.TokenResponse](b, body).RefreshToken
	}
}

// BenchmarkLogout measures POST /logout over HTTP against the real
// database: the bearer check and the one-statement revoking transaction.
// Its sessions are made before the timer starts (run it with -benchtime Nx).
func BenchmarkLogout(b *testing.B) {
	env := authdtest.Start(b, authdtest.Options{})
	env.CreateUser(b, "bench", "user", pw)
	tokens := make([]string, b.N)
	for i := range tokens {
		tokens[i] = env.Login(b, "bench", pw).AccessToken
	}
	client := env.Server.Client()
	b.ReportAllocs()
	b.ResetTimer()
	for i := range b.N {
		req, _ := http.NewRequest(http.MethodPost, env.URL+"/logout", nil)
		req.Header.Set("Authorization", "Bearer "+tokens[i])
		res, err := client.Do(req)
		if err != nil {
			b.Fatal(err)
		}
		body, _ := io.ReadAll(res.Body)
		res.Body.Close()
		if res.StatusCode != 200 {
			b.Fatalf("logout: %d %s", res.StatusCode, body)
		}
	}
}

// BenchmarkFeed seeds 1,000,000 sessions, 10,000 of them revoked with live
// tokens (and 50,000 more revoked long ago, their tokens expired), then
// measures an empty delta poll and the full snapshot, plain and gzip.
// Seeding takes about a minute; run it with -bench Feed -benchtime 200x.
func BenchmarkFeed(b *testing.B) {
	env := authdtest.Start(b, authdtest.Options{})
	env.CreateUser(b, "verifier-svc", "service", "verifier service secret")
	uid := env.CreateUser(b, "bulk", "user", pw)
	now := env.Clock.Now()
	ctx := context.Background()
	seed := []struct {
		q    string
		args []any
	}{
		{`INSERT INTO sessions (id, user_id, created_at, expires_at, refresh_token_hash, last_jti, access_exp)
			SELECT gen_random_uuid(), $1, $2, $3, decode(md5(i::text) || md5((i + 1)::text), 'hex'), gen_random_uuid(), $4
			FROM generate_series(1, 1000000) i`,
			[]any{uid, now.Add(-time.Hour), now.Add(719 * time.Hour), now.Add(5 * time.Minute)}},
		// 10,000 revoked in the last 10 minutes, tokens alive.
		{`UPDATE sessions SET revoked_at = $1::timestamptz - (random() * interval '10 minutes'), revoked_reason = 'user_logout'
			WHERE id IN (SELECT id FROM sessions ORDER BY id LIMIT 10000)`, []any{now.Add(-20 * time.Second)}},
		// 50,000 revoked a day ago, tokens long expired: the feed must skip them cheaply.
		{`UPDATE sessions SET revoked_at = $1, revoked_reason = 'user_logout', access_exp = $1
			WHERE id IN (SELECT id FROM sessions WHERE revoked_at IS NULL ORDER BY id LIMIT 50000)`, []any{now.Add(-24 * time.Hour)}},
		{`ANALYZE sessions`, nil},
	}
	for _, s := range seed {
		if _, err := env.DB.Pool().Exec(ctx, s.q, s.args...); err != nil {
			b.Fatal(err)
		}
	}
	svc := env.ServiceToken(b, "verifier-svc", "verifier service secret").AccessToken
	tr := &http.Transport{DisableCompression: true}
	defer tr.CloseIdleConnections()
	get := func(b *testing.B, query string, gzip bool) (int, string) {
		req, _ := http.NewRequest(http.MethodGet, env.URL+"/sessions/revoked"+query, nil)
		req.Header.Set("Authorization", "Bearer "+svc)
		if gzip {
			req.Header.Set("Accept-Encoding", "gzip")
		}
		res, err := tr.RoundTrip(req)
		if err != nil {
			b.Fatal(err)
		}
		n, _ := io.Copy(io.Discard, res.Body)
		res.Body.Close()
		if res.StatusCode != 200 {
			b.Fatalf("feed: %d", res.StatusCode)
		}
		return int(n), res.Header.Get("X-Revocation-Cursor")
	}
	b.Run("EmptyDelta", func(b *testing.B) {
		// A verifier's steady state: nothing revoked since its last cursor
		// except what the hold-back repeats. Asking from now shows the cost
		// of the query and the auth check alone.
		q := "?since=" + strconv.FormatInt(now.Unix(), 10)
		var n int
		b.ReportAllocs()
		for b.Loop() {
			n, _ = get(b, q, false)
		}
		b.ReportMetric(float64(n), "resp-bytes")
	})
	// The query each poll ran before the feed was served from memory, on the
	// same rows: the figure the memory snapshot is compared with.
	b.Run("BareSnapshotQuery10k", func(b *testing.B) {
		var n int
		for b.Loop() {
			es, err := env.DB.RevokedSince(ctx, time.Unix(0, 0), env.Clock.Now())
			if err != nil {
				b.Fatal(err)
			}
			n = len(es)
		}
		b.ReportMetric(float64(n), "entries")
	})
	b.Run("EmptyDeltaFeedReads", func(b *testing.B) {
		q := "?format=2&since=" + strconv.FormatInt(now.Unix(), 10)
		get(b, q, false)
		reads := env.App.Feed.Reads()
		for b.Loop() {
			get(b, q, false)
		}
		// The follower's own ticks (one a second) are all that may read.
		b.ReportMetric(float64(env.App.Feed.Reads()-reads)/float64(b.N), "feed-reads/poll")
	})
	b.Run("FullSnapshot10k/v2", func(b *testing.B) {
		var n int
		for b.Loop() {
			n, _ = get(b, "?format=2", false)
		}
		b.ReportMetric(float64(n), "resp-bytes")
	})
	for _, gz := range []bool{false, true} {
		name := "FullSnapshot10k/plain"
		if gz {
			name = "FullSnapshot10k/gzip"
		}
		b.Run(name, func(b *testing.B) {
			var n int
			b.ReportAllocs()
			for b.Loop() {
				n, _ = get(b, "", gz)
			}
			b.ReportMetric(float64(n), "resp-bytes")
		})
	}
}

// BenchmarkStatusList seeds 1,000,000 sessions in one status list, 10,000
// of them (1%, at random indexes) revoked, and measures what the list costs
// next to what the feed's full snapshot of the same 10,000 revocations
// costs: a sync that loads and encodes and signs the list from scratch, a
// GET of the signed list (resp-bytes is its encoded size), a revalidation
// (304), and the feed's full snapshot, plain and gzip. Seeding takes about
// a minute.
func BenchmarkStatusList(b *testing.B) {
	env := authdtest.Start(b, authdtest.Options{})
	env.CreateUser(b, "verifier-svc", "service", "verifier service secret")
	uid := env.CreateUser(b, "bulk", "user", pw)
	now := env.Clock.Now()
	ctx := context.Background()
	var list int64
	if err := env.DB.Pool().QueryRow(ctx, `INSERT INTO status_lists (size, created_at, retire_after)
		VALUES (1048576, $1, $2) RETURNING id`, now, now.Add(800*time.Hour)).Scan(&list); err != nil {
		b.Fatal(err)
	}
	seed := []struct {
		q    string
		args []any
	}{
		{`INSERT INTO sessions (id, user_id, created_at, expires_at, refresh_token_hash, last_jti, access_exp, status_list_id, status_idx)
			SELECT gen_random_uuid(), $1, $2, $3, decode(md5(i::text) || md5((i + 1)::text), 'hex'), gen_random_uuid(), $4, $5, i - 1
			FROM generate_series(1, 1000000) i`,
			[]any{uid, now.Add(-time.Hour), now.Add(719 * time.Hour), now.Add(5 * time.Minute), list}},
		// 10,000 revoked in the last 10 minutes, tokens alive; ordered by
		// the random id, so at random indexes (the worst case for DEFLATE).
		{`UPDATE sessions SET revoked_at = $1::timestamptz - (random() * interval '10 minutes'), revoked_reason = 'user_logout'
			WHERE id IN (SELECT id FROM sessions ORDER BY id LIMIT 10000)`, []any{now.Add(-20 * time.Second)}},
		{`ANALYZE sessions`, nil},
	}
	for _, s := range seed {
		if _, err := env.DB.Pool().Exec(ctx, s.q, s.args...); err != nil {
			b.Fatal(err)
		}
	}
	if err := env.App.StatusLists.Sync(ctx); err != nil {
		b.Fatal(err)
	}
	path := "/statuslists/" + strconv.FormatInt(list, 10)
	sv, ok := env.App.StatusLists.Lookup(list)
	if !ok {
		b.Fatal("the list is not served")
	}
	svc := env.ServiceToken(b, "verifier-svc", "verifier service secret").AccessToken
	tr := &http.Transport{DisableCompression: true}
	defer tr.CloseIdleConnections()
	get := func(b *testing.B, path string, hdr ...string) int {
		req, _ := http.NewRequest(http.MethodGet, env.URL+path, nil)
		for i := 0; i+1 < len(hdr); i += 2 {
			req.Header.Set(hdr[i], hdr[i+1])
		}
		res, err := tr.RoundTrip(req)
		if err != nil {
			b.Fatal(err)
		}
		n, _ := io.Copy(io.Discard, res.Body)
		res.Body.Close()
		if res.StatusCode != 200 && res.StatusCode != 304 {
			b.Fatalf("%s: %d", path, res.StatusCode)
		}
		return int(n)
	}
	b.Run("SyncFromScratch", func(b *testing.B) {
		b.ReportAllocs()
		for b.Loop() {
			s := statuslist.New(env.DB, env.Keys, env.Clock, env.Log, statuslist.Config{Issuer: authdtest.Issuer})
			if err := s.Sync(ctx); err != nil {
				b.Fatal(err)
			}
		}
	})
	b.Run("StatusList1M/jwt", func(b *testing.B) {
		var n int
		b.ReportAllocs()
		for b.Loop() {
			n = get(b, path)
		}
		b.ReportMetric(float64(n), "resp-bytes")
	})
	b.Run("StatusList1M/304", func(b *testing.B) {
		b.ReportAllocs()
		for b.Loop() {
			get(b, path, "If-None-Match", sv.JWTETag)
		}
	})
	for _, gz := range []bool{false, true} {
		name := "FeedFullSnapshot10k/plain"
		var hdr []string
		if gz {
			name, hdr = "FeedFullSnapshot10k/gzip", []string{"Accept-Encoding", "gzip"}
		}
		b.Run(name, func(b *testing.B) {
			var n int
			b.ReportAllocs()
			for b.Loop() {
				n = get(b, "/sessions/revoked", append([]string{"Authorization", "Bearer " + svc}, hdr...)...)
			}
			b.ReportMetric(float64(n), "resp-bytes")
		})
	}
}
