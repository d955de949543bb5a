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
