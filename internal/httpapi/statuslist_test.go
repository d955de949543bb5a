package httpapi_test

import (
	"context"
	"encoding/json"
	"net/http"
	"net/url"
	"slices"
	"strings"
	"testing"

	"github.com/golang-jwt/jwt/v5"

	"github.com/seedc5a8123e/authd/internal/authdtest"
	"github.com/seedc5a8123e/authd/internal/keys"
	"github.com/seedc5a8123e/authd/internal/openapitest"
	"github.com/seedc5a8123e/authd/migrations"
	"github.com/seedc5a8123e/authd/verifier"
)

// slEnv is a server with a user and an OpenAPI-checking client.
func slEnv(t *testing.T, o authdtest.Options) (*authdtest.Env, *api) {
	t.Helper()
	env := authdtest.Start(t, o)
	env.CreateUser(t, "sally", "user", pw)
	return env, &api{t: t, base: env.URL, client: &http.Client{Transport: openapitest.Transport(t, http.DefaultTransport)}}
}

func syncLists(t *testing.T, env *authdtest.Env) {
	t.Helper()
	if err := env.App.StatusLists.Sync(context.Background()); err != nil {
		t.Fatal(err)
	}
}

// statusOf is a token's status_list member; nil without one.
func statusOf(t *testing.T, tok string) *verifier.StatusListRef {
	t.Helper()
	c := claimsOf(t, tok)
	if c.Status == nil {
		return nil
	}
	return c.Status.StatusList
}

// verifyList checks a Status List Token as a relying party must (section
// 8.3): signature by a key of authd's JWKS named by kid, typ, the claims;
// and returns the claims with the decoded bits.
func verifyList(t *testing.T, ks *keys.Set, body []byte) (verifier.StatusListClaims, []byte) {
	t.Helper()
	var c verifier.StatusListClaims
	tok, err := jwt.NewParser(jwt.WithValidMethods([]string{keys.EdDSA, keys.ES256}), jwt.WithExpirationRequired()).
		Parse(string(body), func(tk *jwt.Token) (any, error) {
			if tk.Header["typ"] != verifier.StatusListTyp {
				t.Errorf("typ %v", tk.Header["typ"])
			}
			k, ok := ks.Lookup(tk.Header["kid"].(string))
			if !ok {
				t.Fatalf("kid %v is not in the JWKS", tk.Header["kid"])
			}
			return k.Public(), nil
		})
	if err != nil {
		t.Fatalf("status list token: %v", err)
	}
	raw, _ := json.Marshal(tok.Claims)
	if err := json.Unmarshal(raw, &c); err != nil {
		t.Fatal(err)
	}
	bits, err := verifier.DecodeStatusList(c.StatusList)
	if err != nil {
		t.Fatal(err)
	}
	return c, bits
}

// TestStatusList: every token of a session names the session's entry; the
// list, signed and verifiable against the JWKS, has the bit of a revoked
// session set and a live one's clear, from the first sync after the
// revocation (patched) as from a fresh load; caching and negotiation work;
// bad input gets a clear 4xx.
func TestStatusList(t *testing.T) {
	env, a := slEnv(t, authdtest.Options{})
	live := env.Login(t, "sally", pw)
	gone := env.Login(t, "sally", pw)
	ls, gs := statusOf(t, live.AccessToken), statusOf(t, gone.AccessToken)
	if ls == nil || gs == nil {
		t.Fatalf("no status claim: %+v %+v", ls, gs)
	}
	if ls.URI != gs.URI || ls.Idx == gs.Idx || !strings.HasPrefix(ls.URI, authdtest.Issuer+"/statuslists/") {
		t.Fatalf("entries %+v and %+v", ls, gs)
	}
	refreshed := cidTokenOK(t, "refresh", a.form("/token", cidRefreshForm(live.RefreshToken)))
	if rs := statusOf(t, refreshed.AccessToken); rs == nil || *rs != *ls {
		t.Fatalf("refresh minted %+v, the session's entry is %+v", rs, ls)
	}
	path := strings.TrimPrefix(ls.URI, authdtest.Issuer)

	expect(t, "before the first sync", a.do("GET", path, "", "", nil), 404, "no status list")
	syncLists(t, env)
	first := a.do("GET", path, "", "", nil)
	expect(t, "list", first, 200, "")
	if _, bits := verifyList(t, env.Keys.Current(), first.body); bitOf(t, bits, gs.Idx) {
		t.Fatal("a live session's bit is set")
	}
	expect(t, "logout", a.do("POST", "/logout", gone.AccessToken, "", nil), 200, "")
	if r := a.do("GET", path, "", "", nil); string(r.body) != string(first.body) {
		t.Error("the list changed before a sync")
	}
	syncLists(t, env)
	r := a.do("GET", path, "", "", nil)
	expect(t, "list after the logout", r, 200, "")
	if ct := r.header.Get("Content-Type"); ct != verifier.StatusListJWTType {
		t.Errorf("Content-Type %q", ct)
	}
	if cc := r.header.Get("Cache-Control"); cc != "public, max-age=30" {
		t.Errorf("Cache-Control %q", cc)
	}
	c, bits := verifyList(t, env.Keys.Current(), r.body)
	if !bitOf(t, bits, gs.Idx) || bitOf(t, bits, ls.Idx) {
		t.Errorf("revoked bit %t, live bit %t", bitOf(t, bits, gs.Idx), bitOf(t, bits, ls.Idx))
	}
	if c.Subject != ls.URI || c.TTL != 30 || c.ExpiresAt-c.IssuedAt != 300 || c.StatusList.Bits != 1 ||
		c.IssuedAt != env.Clock.Now().Unix() || c.StatusList.AggregationURI != authdtest.Issuer+"/statuslists" ||
		len(bits) != (1<<20)/8 {
		t.Errorf("claims %+v, %d bytes", c, len(bits))
	}

	// A replica that loads the list whole sees the same bits.
	other := authdtest.Start(t, authdtest.Options{DB: env.DB, Keys: env.Keys, Clock: env.Clock})
	syncLists(t, other)
	o := &api{t: t, base: other.URL, client: a.client}
	if _, bits := verifyList(t, env.Keys.Current(), o.do("GET", path, "", "", nil).body); !bitOf(t, bits, gs.Idx) || bitOf(t, bits, ls.Idx) {
		t.Error("a fresh load disagrees")
	}

	// Caching: strong ETags per representation, 304 on a match.
	tag := r.header.Get("ETag")
	js := a.do("GET", path, "", "", nil, "Accept", verifier.StatusListJSONType)
	expect(t, "json", js, 200, `"status_list"`)
	var jc verifier.StatusListClaims
	js.json(t, &jc)
	if jc != c || js.header.Get("ETag") == tag || !strings.HasPrefix(tag, `"`) || js.header.Get("Vary") != "Accept" {
		t.Errorf("json form %+v, ETags %s %s", jc, tag, js.header.Get("ETag"))
	}
	for _, inm := range []string{tag, "W/" + tag, `"other", ` + tag, "*"} {
		expect(t, "If-None-Match "+inm, a.do("GET", path, "", "", nil, "If-None-Match", inm), 304, "")
	}
	expect(t, "the JWT's ETag for the JSON", a.do("GET", path, "", "", nil, "If-None-Match", tag,
		"Accept", verifier.StatusListJSONType), 200, "")
	expect(t, "another ETag", a.do("GET", path, "", "", nil, "If-None-Match", `"other"`), 200, "")
	for accept, want := range map[string]string{
		"application/statuslist+jwt, application/statuslist+json;q=0.5": verifier.StatusListJWTType,
		"application/statuslist+json, */*;q=0.1":                        verifier.StatusListJSONType,
		"application/*":                                                 verifier.StatusListJWTType,
		"*/*":                                                           verifier.StatusListJWTType,
		"application/statuslist+jwt;q=0, application/*":                 verifier.StatusListJSONType,
	} {
		if r := a.do("GET", path, "", "", nil, "Accept", accept); r.header.Get("Content-Type") != want {
			t.Errorf("Accept %q: %d %q", accept, r.status, r.header.Get("Content-Type"))
		}
	}

	// The aggregation names the list.
	var agg struct {
		Lists []string `json:"status_lists"`
	}
	ar := a.do("GET", "/statuslists", "", "", nil)
	expect(t, "aggregation", ar, 200, "")
	if ar.json(t, &agg); len(agg.Lists) != 1 || agg.Lists[0] != ls.URI {
		t.Errorf("aggregation %+v", agg)
	}

	// Bad input.
	for name, c := range map[string]struct {
		path, hdr, val string
		status         int
	}{
		"id zero":              {"/statuslists/0", "", "", 400},
		"id leading zero":      {"/statuslists/01", "", "", 400},
		"id letters":           {"/statuslists/abc", "", "", 400},
		"id negative":          {"/statuslists/-1", "", "", 400},
		"id 19 digits":         {"/statuslists/1234567890123456789", "", "", 400},
		"id overflowing":       {"/statuslists/99999999999999999999999", "", "", 400},
		"id escaped":           {"/statuslists/%31", "", "", 400},
		"unknown id":           {"/statuslists/999999", "", "", 404},
		"If-None-Match bare":   {path, "If-None-Match", "abc", 400},
		"If-None-Match huge":   {path, "If-None-Match", `"` + strings.Repeat("a", 2000) + `"`, 400},
		"If-None-Match many":   {path, "If-None-Match", strings.Repeat(`"a",`, 40) + `"a"`, 400},
		"If-None-Match binary": {path, "If-None-Match", "\"a\xff\"", 400},
		"If-None-Match * list": {path, "If-None-Match", `*, "a"`, 400},
		"If-None-Match empty":  {path, "If-None-Match", " ", 400},
		"Accept html":          {path, "Accept", "text/html", 406},
		"Accept huge":          {path, "Accept", strings.Repeat("a/b,", 400), 400},
		"historical":           {path + "?time=1686925000", "", "", 501},
		"malformed query":      {path + "?%zz", "", "", 400},
	} {
		var hdr []string
		if c.hdr != "" {
			hdr = []string{c.hdr, c.val}
		}
		r := a.do("GET", c.path, "", "", nil, hdr...)
		expect(t, name, r, c.status, "")
		if ct := r.header.Get("Content-Type"); ct != "application/problem+json" {
			t.Errorf("%s: Content-Type %q", name, ct)
		}
	}
}

func bitOf(t *testing.T, bits []byte, idx int64) bool {
	t.Helper()
	set, ok := verifier.StatusBit(bits, idx)
	if !ok {
		t.Fatalf("index %d is out of the list's %d entries", idx, len(bits)*8)
	}
	return set
}

// TestStatusListOff: AUTHD_STATUS_LIST=off drops the claim, the endpoints
// and the metadata member.
func TestStatusListOff(t *testing.T) {
	env, a := slEnv(t, authdtest.Options{StatusListOff: true})
	if s := statusOf(t, env.Login(t, "sally", pw).AccessToken); s != nil {
		t.Errorf("status claim %+v", s)
	}
	for _, p := range []string{"/statuslists", "/statuslists/1"} {
		if r := a.do("GET", p, "", "", nil); r.status != 404 {
			t.Errorf("%s: %d", p, r.status)
		}
	}
	if md, _ := getMetadata(t, env.URL); md.StatusListAggregation != "" {
		t.Errorf("metadata names %q", md.StatusListAggregation)
	}
}

// TestStatusListSizes: a full list leads to a new one, and a change of size
// applies to lists leased after it: no two sessions share an entry.
func TestStatusListSizes(t *testing.T) {
	env, _ := slEnv(t, authdtest.Options{StatusListSize: 8})
	seen := map[verifier.StatusListRef]bool{}
	login := func(e *authdtest.Env) verifier.StatusListRef {
		s := statusOf(t, e.Login(t, "sally", pw).AccessToken)
		if seen[*s] {
			t.Fatalf("entry %+v handed out twice", *s)
		}
		seen[*s] = true
		return *s
	}
	var refs []verifier.StatusListRef
	for range 10 {
		refs = append(refs, login(env))
	}
	if refs[7].URI != refs[0].URI || refs[8].URI == refs[0].URI || refs[8].Idx != 0 {
		t.Errorf("entries %+v", refs)
	}
	// Another replica, configured for lists of 16, on the same database.
	big := authdtest.Start(t, authdtest.Options{DB: env.DB, Keys: env.Keys, Clock: env.Clock, StatusListSize: 16})
	for range 10 {
		login(big)
		login(env)
	}
	syncLists(t, env)
	var sizes []int
	for u := range seen {
		if sv, ok := env.App.StatusLists.Lookup(listID(t, u.URI)); ok {
			_, bits := verifyList(t, env.Keys.Current(), sv.JWT)
			sizes = append(sizes, len(bits)*8)
		}
	}
	if len(sizes) != len(seen) || !slices.Contains(sizes, 8) || !slices.Contains(sizes, 16) {
		t.Fatalf("entries %d, their lists' sizes %v", len(seen), sizes)
	}
}

func listID(t *testing.T, uri string) int64 {
	t.Helper()
	u, err := url.Parse(uri)
	if err != nil {
		t.Fatal(err)
	}
	var id int64
	if err := json.Unmarshal([]byte(strings.TrimPrefix(u.Path, "/statuslists/")), &id); err != nil {
		t.Fatal(err)
	}
	return id
}

// TestStatusListAcrossSchemas: on the schema before migration 000009 (a
// replica ahead of the migration Job, or a rollback while one holds a
// lease), logins work and their tokens carry no status claim, since no bit
// could be set for them, and no list is served; after the migration, new
// sessions get entries again.
func TestStatusListAcrossSchemas(t *testing.T) {
	env, a := slEnv(t, authdtest.Options{})
	run := func(file string) {
		t.Helper()
		sql, err := migrations.FS.ReadFile(file)
		if err != nil {
			t.Fatal(err)
		}
		if _, err := env.DB.Pool().Exec(context.Background(), string(sql)); err != nil {
			t.Fatalf("%s: %v", file, err)
		}
	}
	before := env.Login(t, "sally", pw)
	if statusOf(t, before.AccessToken) == nil {
		t.Fatal("no status claim")
	}
	syncLists(t, env)
	run("000009_status_lists.down.sql")
	for i := range 2 { // the first meets the held lease, the second none
		if s := statusOf(t, env.Login(t, "sally", pw).AccessToken); s != nil {
			t.Errorf("login %d on the old schema: status %+v", i, s)
		}
	}
	if s := statusOf(t, cidTokenOK(t, "refresh", a.form("/token", cidRefreshForm(before.RefreshToken))).AccessToken); s != nil {
		t.Errorf("refresh on the old schema: status %+v", s)
	}
	if err := env.App.StatusLists.Sync(context.Background()); err == nil {
		t.Error("a sync on the old schema succeeded")
	}
	expect(t, "aggregation on the old schema", a.do("GET", "/statuslists", "", "", nil), 200, `{"status_lists":[]}`)
	run("000009_status_lists.up.sql")
	env.Clock.Advance(2 * 60e9) // past the allocator's pause
	if s := statusOf(t, env.Login(t, "sally", pw).AccessToken); s == nil {
		t.Error("no status claim after the migration")
	}
}
