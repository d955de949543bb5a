package httpapi_test

import (
	"context"
	"encoding/json"
	"io"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/seedc5a8123e/authd/internal/authdtest"
	"github.com/seedc5a8123e/authd/migrations"
	"github.com/seedc5a8123e/authd/verifier"
)

func (f feedEnv) pollV2(t *testing.T, query string) (verifier.FeedV2, *http.Response) {
	t.Helper()
	svc := f.ServiceToken(t, "verifier-svc", "verifier service secret")
	res, body := f.Do(t, http.MethodGet, "/sessions/revoked?format=2"+query, svc.AccessToken, "", nil)
	if res.StatusCode != 200 {
		t.Fatalf("feed v2%s: %d %s", query, res.StatusCode, body)
	}
	dec := json.NewDecoder(strings.NewReader(string(body)))
	dec.DisallowUnknownFields()
	var v verifier.FeedV2
	if err := dec.Decode(&v); err != nil || v.Format != 2 || v.Sessions == nil || v.Users == nil {
		t.Fatalf("feed v2 body %s: %v", body, err)
	}
	if v.Cursor != res.Header.Get(verifier.CursorHeader) {
		t.Fatalf("body cursor %q, header %q", v.Cursor, res.Header.Get(verifier.CursorHeader))
	}
	return v, res
}

// TestFeedV2LogoutAllIsOneEntry: a user with 1,000 sessions logs out
// everywhere; v2 carries one user cutoff and none of the sessions, v1 still
// lists all 1,000, and the cutoff denies every token the sessions had.
func TestFeedV2LogoutAllIsOneEntry(t *testing.T) {
	f := startFeed(t, authdtest.Options{})
	ctx := context.Background()
	first := f.Login(t, "alice", pw)
	var uid string
	if err := f.DB.Pool().QueryRow(ctx, `SELECT user_id::text FROM sessions WHERE id = $1`, first.SID).Scan(&uid); err != nil {
		t.Fatal(err)
	}
	// 999 more sessions, written as a login writes them (faster than 999 logins).
	now := f.Clock.Now()
	if _, err := f.DB.Pool().Exec(ctx, `INSERT INTO sessions (id, user_id, created_at, expires_at, refresh_token_hash, last_jti, access_exp, last_iat)
		SELECT gen_random_uuid(), $1, $2, $3, decode(md5(i::text || $5) || md5(i::text), 'hex'), gen_random_uuid(), $4, $6
		FROM generate_series(1, 999) i`, uid, now, now.Add(time.Hour), now.Add(10*time.Minute), uid, now.Unix()); err != nil {
		t.Fatal(err)
	}
	before, _ := f.pollV2(t, "")
	f.Clock.Advance(time.Second)
	res, body := f.Do(t, http.MethodPost, "/logout/all", first.AccessToken, "", nil)
	if res.StatusCode != 200 || !strings.Contains(string(body), `"revoked":1000`) {
		t.Fatalf("logout all: %d %s", res.StatusCode, body)
	}
	after, _ := f.pollV2(t, "")
	if len(after.Sessions) != len(before.Sessions) || len(after.Users) != 1 || after.Users[0].Sub != uid || after.Issuer != nil {
		t.Fatalf("v2 after a 1,000-session logout-all: %d sessions, users %+v, issuer %+v; want one user entry added",
			len(after.Sessions), after.Users, after.Issuer)
	}
	c := after.Users[0]
	if c.NBF != now.Add(time.Second).Unix()+1 || c.Exp != now.Add(10*time.Minute).Unix() {
		t.Fatalf("cutoff = %+v, want nbf %d (the second after it) and exp %d (the newest token's)", c,
			now.Add(time.Second).Unix()+1, now.Add(10*time.Minute).Unix())
	}
	v1, _, _ := f.poll(t, "")
	if len(v1) != 1000 {
		t.Fatalf("v1 lists %d sessions, want all 1000", len(v1))
	}
	// A delta from before the logout has the entry too; one from after it
	// (past the hold-back) does not.
	delta, _ := f.pollV2(t, "&since="+before.Cursor)
	if len(delta.Users) != 1 {
		t.Fatalf("delta since %s: users %+v", before.Cursor, delta.Users)
	}
	// A login right after is accepted, by authd and in its claims.
	next := f.Login(t, "alice", pw)
	if res, body := f.Do(t, http.MethodGet, "/sessions", next.AccessToken, "", nil); res.StatusCode != 200 {
		t.Fatalf("a login after the cutoff: /sessions %d %s", res.StatusCode, body)
	}
	if iat := claimsOf(t, next.AccessToken).IssuedAt.Unix(); iat != c.NBF {
		t.Fatalf("iat of the token minted in the cutoff's second = %d, want nbf %d", iat, c.NBF)
	}
}

// TestCutoffBoundary: with a manual clock, at the second boundary: a token
// minted before the cutoff (even within its second) is denied, one minted
// after it (even within the same second) is not, by authd's bearer check.
func TestCutoffBoundary(t *testing.T) {
	start := time.Unix(1_900_000_000, 200_000_000) // T = x.2 s
	f := startFeed(t, authdtest.Options{Start: start})
	admin := f.Login(t, "root", pw)
	early := f.Login(t, "alice", pw) // iat x, minted at x.2
	f.Clock.Advance(300 * time.Millisecond)
	res, body := f.Do(t, http.MethodPost, "/sessions/revoke-all", admin.AccessToken, "application/json", strings.NewReader(`{"reason":"incident 42"}`))
	if res.StatusCode != 200 {
		t.Fatalf("revoke-all: %d %s", res.StatusCode, body)
	}
	cut := decode[struct{ NBF, Exp int64 }](t, body)
	if cut.NBF != start.Unix()+1 {
		t.Fatalf("nbf = %d, want %d: the second after the cutoff at %s", cut.NBF, start.Unix()+1, f.Clock.Now())
	}
	f.Clock.Advance(100 * time.Millisecond) // x.6: the same second as the cutoff
	late := f.Login(t, "alice", pw)
	for name, tc := range map[string]struct {
		tok  string
		want int
	}{"MintedBefore": {early.AccessToken, 401}, "MintedAfterSameSecond": {late.AccessToken, 200}, "AdminBefore": {admin.AccessToken, 401}} {
		if res, body := f.Do(t, http.MethodGet, "/sessions", tc.tok, "", nil); res.StatusCode != tc.want {
			t.Errorf("%s: /sessions %d %s, want %d", name, res.StatusCode, body, tc.want)
		}
	}
	if iat := claimsOf(t, late.AccessToken).IssuedAt.Unix(); iat != cut.NBF {
		t.Fatalf("late token iat %d, want nbf %d", iat, cut.NBF)
	}
	// The early session's refresh token is cut off too; the late one's is not.
	if res, body := refresh(t, f.Env, early.RefreshToken); res.StatusCode != 400 {
		t.Fatalf("refresh of a session minted before: %d %s", res.StatusCode, body)
	}
	f.Clock.Advance(time.Second)
	if res, body := refresh(t, f.Env, late.RefreshToken); res.StatusCode != 200 {
		t.Fatalf("refresh of a session minted after: %d %s", res.StatusCode, body)
	}
	// v2 serves the issuer entry; the sweep then marks the early sessions
	// revoked, and v1 lists them, while v2 does not list them again.
	v, _ := f.pollV2(t, "")
	if v.Issuer == nil || v.Issuer.NBF != cut.NBF || v.Issuer.Exp != cut.Exp {
		t.Fatalf("v2 issuer = %+v, want %+v", v.Issuer, cut)
	}
	n, err := f.Sessions.SweepCutoffs(context.Background())
	if err != nil || n != 2 {
		t.Fatalf("sweep = %d, %v; want the 2 sessions minted before", n, err)
	}
	if s := session(t, f.Env, early.SID); s.RevokedAt == nil || *s.RevokedReason != "incident 42" {
		t.Fatalf("early session after the sweep: %+v", s)
	}
	if s := session(t, f.Env, late.SID); s.RevokedAt != nil {
		t.Fatalf("late session revoked by the sweep: %+v", s)
	}
	v1, _, _ := f.poll(t, "")
	if got := sids(v1); len(got) != 2 {
		t.Fatalf("v1 after the sweep lists %v, want the 2 swept sessions", got)
	}
	if v, _ := f.pollV2(t, ""); len(v.Sessions) != 0 {
		t.Fatalf("v2 lists swept sessions again: %+v", v.Sessions)
	}
	// Once every token it denies has expired, the cutoff is served no more.
	f.Clock.Set(time.Unix(cut.Exp, 0))
	if v, _ := f.pollV2(t, ""); v.Issuer != nil {
		t.Fatalf("issuer cutoff served at its exp: %+v", v.Issuer)
	}
}

// TestTwoIssuerCutoffsInOneSecond: two issuer-wide cutoffs decided in the same
// second share their nbf; a session minted between them is cut off by the
// second one all the same: its refresh is refused and the sweep revokes it.
// (By nbf alone the checks and the sweep took the first cutoff of the two.)
func TestTwoIssuerCutoffsInOneSecond(t *testing.T) {
	start := time.Unix(1_900_000_000, 200_000_000) // x.2 s
	f := startFeed(t, authdtest.Options{Start: start})
	admin := f.Login(t, "root", pw)
	revokeAll := func() struct{ NBF, Exp int64 } {
		t.Helper()
		res, body := f.Do(t, http.MethodPost, "/sessions/revoke-all", admin.AccessToken, "application/json", strings.NewReader(`{"reason":"incident 43"}`))
		if res.StatusCode != 200 {
			t.Fatalf("revoke-all: %d %s", res.StatusCode, body)
		}
		return decode[struct{ NBF, Exp int64 }](t, body)
	}
	f.Clock.Advance(100 * time.Millisecond) // x.3
	first := revokeAll()
	admin = f.Login(t, "root", pw)
	f.Clock.Advance(200 * time.Millisecond) // x.5
	mid := f.Login(t, "alice", pw)
	f.Clock.Advance(300 * time.Millisecond) // x.8
	second := revokeAll()
	if first.NBF != second.NBF {
		t.Fatalf("nbf %d and %d: the test needs two cutoffs in one second", first.NBF, second.NBF)
	}
	f.Clock.Advance(time.Second)
	if res, body := refresh(t, f.Env, mid.RefreshToken); res.StatusCode != 400 {
		t.Fatalf("refresh of the session minted between the two cutoffs: %d %s; want 400", res.StatusCode, body)
	}
	if _, err := f.Sessions.SweepCutoffs(context.Background()); err != nil {
		t.Fatal(err)
	}
	if s := session(t, f.Env, mid.SID); s.RevokedAt == nil {
		t.Fatalf("the session minted between the two cutoffs after the sweep: %+v; want revoked", s)
	}
}

// TestRevokeAllNeedsAdmin: a user gets 403, a bad reason 400.
func TestRevokeAllNeedsAdmin(t *testing.T) {
	f := startFeed(t, authdtest.Options{})
	u := f.Login(t, "alice", pw)
	if res, body := f.Do(t, http.MethodPost, "/sessions/revoke-all", u.AccessToken, "", nil); res.StatusCode != 403 {
		t.Fatalf("revoke-all as a user: %d %s", res.StatusCode, body)
	}
	admin := f.Login(t, "root", pw)
	long := `{"reason":"` + strings.Repeat("x", 201) + `"}`
	if res, body := f.Do(t, http.MethodPost, "/sessions/revoke-all", admin.AccessToken, "application/json", strings.NewReader(long)); res.StatusCode != 400 {
		t.Fatalf("revoke-all with a 201-character reason: %d %s", res.StatusCode, body)
	}
	if res, body := f.Do(t, http.MethodGet, "/sessions", u.AccessToken, "", nil); res.StatusCode != 200 {
		t.Fatalf("a refused revoke-all cut something off: %d %s", res.StatusCode, body)
	}
}

// TestFeedFromMemory: polls read no feed rows once the follower is current
// (an empty delta issues no query), a full snapshot has a strong ETag and
// If-None-Match answers 304, and a revocation on this replica is served by
// its very next poll.
func TestFeedFromMemory(t *testing.T) {
	f := startFeed(t, authdtest.Options{})
	s := f.Login(t, "alice", pw)
	svc := f.ServiceToken(t, "verifier-svc", "verifier service secret").AccessToken
	get := func(query string, hdr ...string) (*http.Response, []byte) {
		req, _ := http.NewRequest(http.MethodGet, f.URL+"/sessions/revoked"+query, nil)
		req.Header.Set("Authorization", "Bearer "+svc)
		for i := 0; i+1 < len(hdr); i += 2 {
			req.Header.Add(hdr[i], hdr[i+1])
		}
		res, err := f.Server.Client().Do(req)
		if err != nil {
			t.Fatal(err)
		}
		defer res.Body.Close()
		b, err := io.ReadAll(res.Body)
		if err != nil {
			t.Fatal(err)
		}
		return res, b
	}
	res, _ := get("")
	etag := res.Header.Get("ETag")
	if res.StatusCode != 200 || len(etag) < 3 || etag[0] != '"' {
		t.Fatalf("full snapshot: %d, ETag %q", res.StatusCode, etag)
	}
	reads := f.App.Feed.Reads()
	for i := 0; i < 5; i++ {
		if res, body := get("?since=" + res.Header.Get(verifier.CursorHeader)); res.StatusCode != 200 || string(body) != "[]\n" {
			t.Fatalf("empty delta: %d %s", res.StatusCode, body)
		}
		if res, _ := get("?format=2&since=1"); res.StatusCode != 200 {
			t.Fatalf("v2 delta: %d", res.StatusCode)
		}
	}
	if got := f.App.Feed.Reads(); got != reads {
		// Only the follower's own ticks may read; at most one per second.
		if got > reads+1 {
			t.Fatalf("10 polls made %d feed reads, want none beyond the follower's tick", got-reads)
		}
	}
	for _, inm := range []string{etag, `W/` + etag, `"nope", ` + etag, "*"} {
		if res, body := get("", "If-None-Match", inm); res.StatusCode != 304 || len(body) != 0 || res.Header.Get("ETag") != etag {
			t.Fatalf("If-None-Match %s: %d %q", inm, res.StatusCode, body)
		}
	}
	if res, _ := get("", "If-None-Match", `"other"`); res.StatusCode != 200 {
		t.Fatalf("If-None-Match of another snapshot: %d", res.StatusCode)
	}
	for name, inm := range map[string]string{"Unquoted": "abc", "Huge": `"` + strings.Repeat("a", 2000) + `"`, "Control": "\"a\tb\""} {
		if res, body := get("", "If-None-Match", inm); res.StatusCode != 400 {
			t.Fatalf("If-None-Match %s: %d %s", name, res.StatusCode, body)
		}
	}
	// Revoked on this replica: the next poll reads and serves it, and the
	// snapshot's ETag changes with it.
	f.Do(t, http.MethodPost, "/logout", s.AccessToken, "", nil)
	res, body := get("")
	if res.StatusCode != 200 || !strings.Contains(string(body), s.SID) || res.Header.Get("ETag") == etag {
		t.Fatalf("after a logout here: %d %s ETag %s", res.StatusCode, body, res.Header.Get("ETag"))
	}
	if res, _ := get("?format=3"); res.StatusCode != 400 {
		t.Fatalf("format=3: %d", res.StatusCode)
	}
}

// TestCutoffsAcrossSchemas: on the schema before migration 000008 (a
// replica started before the migration Job, or after a rollback) logins,
// bearer checks, refreshes and the feed work, a bulk revocation is one entry
// per session, and revoke-all answers 503; once the schema has the step
// again, the same process makes cutoffs.
func TestCutoffsAcrossSchemas(t *testing.T) {
	f := startFeed(t, authdtest.Options{})
	ctx := context.Background()
	exec := func(sql string, args ...any) {
		t.Helper()
		if _, err := f.DB.Pool().Exec(ctx, sql, args...); err != nil {
			t.Fatalf("%.60s: %v", sql, err)
		}
	}
	file := func(name string) string {
		t.Helper()
		b, err := migrations.FS.ReadFile(name)
		if err != nil {
			t.Fatal(err)
		}
		return string(b)
	}
	var version int
	if err := f.DB.Pool().QueryRow(ctx, `SELECT version FROM schema_migrations`).Scan(&version); err != nil {
		t.Fatal(err)
	}
	// The later steps only add what 000008's down step does not touch.
	exec(file("000008_revocation_cutoffs.down.sql"))
	exec(`UPDATE schema_migrations SET version = 7`)
	if err := f.DB.RefreshSchema(ctx); err != nil || f.DB.Cutoffs() {
		t.Fatalf("RefreshSchema on schema 7: %v, cutoffs %v", err, f.DB.Cutoffs())
	}
	a, b := f.Login(t, "alice", pw), f.Login(t, "alice", pw)
	if res, body := refresh(t, f.Env, a.RefreshToken); res.StatusCode != 200 {
		t.Fatalf("refresh on schema 7: %d %s", res.StatusCode, body)
	}
	if res, body := f.Do(t, http.MethodPost, "/logout/all", b.AccessToken, "", nil); res.StatusCode != 200 || !strings.Contains(string(body), `"revoked":2`) {
		t.Fatalf("logout all on schema 7: %d %s", res.StatusCode, body)
	}
	if v, _ := f.pollV2(t, ""); len(v.Sessions) != 2 || len(v.Users) != 0 {
		t.Fatalf("v2 on schema 7: %+v; want the 2 sessions, no cutoff", v)
	}
	admin := f.Login(t, "root", pw)
	if res, body := f.Do(t, http.MethodPost, "/sessions/revoke-all", admin.AccessToken, "", nil); res.StatusCode != 503 {
		t.Fatalf("revoke-all on schema 7: %d %s", res.StatusCode, body)
	}
	// Migrated again: the next bulk revocation is a cutoff.
	exec(file("000008_revocation_cutoffs.up.sql"))
	exec(`UPDATE schema_migrations SET version = $1`, version)
	if err := f.DB.RefreshSchema(ctx); err != nil || !f.DB.Cutoffs() {
		t.Fatalf("RefreshSchema after the step: %v, cutoffs %v", err, f.DB.Cutoffs())
	}
	c := f.Login(t, "alice", pw)
	if res, body := f.Do(t, http.MethodPost, "/logout/all", c.AccessToken, "", nil); res.StatusCode != 200 {
		t.Fatalf("logout all after the step: %d %s", res.StatusCode, body)
	}
	if v, _ := f.pollV2(t, ""); len(v.Users) != 1 || len(v.Sessions) != 2 {
		t.Fatalf("v2 after the step: %+v; want the 2 earlier sessions and one cutoff", v)
	}
}

// TestTwoCutoffsInOneSecond: a second cutoff of a user within the second of
// the first keeps the same nbf, so the tokens minted between the two (whose
// iat is that nbf) are not denied by it: their sessions must be listed in v2
// one by one, and are.
func TestTwoCutoffsInOneSecond(t *testing.T) {
	f := startFeed(t, authdtest.Options{Start: time.Unix(1_900_000_000, 200_000_000)})
	first := f.Login(t, "alice", pw)
	if res, body := f.Do(t, http.MethodPost, "/logout/all", first.AccessToken, "", nil); res.StatusCode != 200 {
		t.Fatalf("first logout all: %d %s", res.StatusCode, body)
	}
	f.Clock.Advance(100 * time.Millisecond)
	between := f.Login(t, "alice", pw) // iat is the first cutoff's nbf
	f.Clock.Advance(100 * time.Millisecond)
	if res, body := f.Do(t, http.MethodPost, "/logout/all", between.AccessToken, "", nil); res.StatusCode != 200 {
		t.Fatalf("second logout all: %d %s", res.StatusCode, body)
	}
	v, _ := f.pollV2(t, "")
	if len(v.Users) != 1 || v.Users[0].NBF != claimsOf(t, between.AccessToken).IssuedAt.Unix() {
		t.Fatalf("users %+v; want one merged cutoff whose nbf is the in-between token's iat", v.Users)
	}
	if len(v.Sessions) != 1 || v.Sessions[0].SID != between.SID {
		t.Fatalf("sessions %+v; want the in-between session %s listed on its own", v.Sessions, between.SID)
	}
}
