package httpapi_test

import (
	"context"
	"encoding/base64"
	"net/http"
	"net/url"
	"strings"
	"testing"

	"github.com/google/uuid"

	"github.com/seedc5a8123e/authd/internal/authdtest"
)

// TestHostileQueryParametersAreClientErrors: values PostgreSQL itself would
// refuse (NUL, invalid UTF-8, out-of-range timestamps) must be answered 400,
// never reach the database as a 500.
func TestHostileQueryParametersAreClientErrors(t *testing.T) {
	env := authdtest.Start(t, authdtest.Options{})
	env.CreateUser(t, "root", "admin", pw)
	admin := env.Login(t, "root", pw)
	farPast := base64.RawURLEncoding.EncodeToString([]byte("-9000000000000000000_" + uuid.NewString()))
	farFuture := base64.RawURLEncoding.EncodeToString([]byte("9000000000000000000_" + uuid.NewString()))
	nulCursor := base64.RawURLEncoding.EncodeToString([]byte("a\x00b"))
	for _, path := range []string{
		"/users?query=" + url.QueryEscape("a\x00b"),
		"/users?query=%ff",
		"/users?cursor=" + nulCursor,
		"/sessions?cursor=" + farPast,
		"/sessions?cursor=" + farFuture,
		"/users/" + url.PathEscape("not-a-uuid") + "/sessions",
	} {
		t.Run(path, func(t *testing.T) {
			res, body := env.Do(t, http.MethodGet, path, admin.AccessToken, "", nil)
			if res.StatusCode != http.StatusBadRequest {
				t.Fatalf("%d %s, want 400", res.StatusCode, body)
			}
		})
	}
	t.Run("BasicAuthWithNUL", func(t *testing.T) {
		req, _ := http.NewRequest(http.MethodPost, env.URL+"/token", strings.NewReader("grant_type=client_credentials"))
		req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
		req.SetBasicAuth("a%00b", "secret") // form-encoded inside Basic, as RFC 6749 2.3.1 says
		res, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		res.Body.Close()
		if res.StatusCode != http.StatusUnauthorized {
			t.Fatalf("%d, want 401 invalid_client", res.StatusCode)
		}
	})
}

// rowCounts is how many users and sessions exist.
func rowCounts(t *testing.T, env *authdtest.Env) (users, sessions int) {
	t.Helper()
	if err := env.DB.Pool().QueryRow(context.Background(),
		`SELECT (SELECT count(*) FROM users), (SELECT count(*) FROM sessions)`).Scan(&users, &sessions); err != nil {
		t.Fatal(err)
	}
	return users, sessions
}

// Item 13: the JSON reader refuses, as 400 problems and before anything is
// written, what encoding/json would silently alter (bytes that are not UTF-8,
// unpaired surrogate escapes: both become U+FFFD), strings holding U+0000
// (PostgreSQL refuses them: a 500 before) and repeated keys (the decoder keeps
// the last).
func TestJSONBodiesAreCheckedBeforeDecoding(t *testing.T) {
	env := authdtest.Start(t, authdtest.Options{})
	env.CreateUser(t, "root", "admin", pw)
	uid := env.CreateUser(t, "bob", "user", pw)
	admin := env.Login(t, "root", pw)
	victim := env.Login(t, "bob", pw)
	cases := []struct{ name, method, path, body string }{
		{"CreateInvalidUTF8", "POST", "/users", "{\"username\":\"\xff\xfe\",\"role\":\"user\"}"},
		{"CreateInvalidUTF8InKey", "POST", "/users", "{\"user\xffname\":\"x\",\"role\":\"user\"}"},
		{"CreateOverlong", "POST", "/users", "{\"username\":\"\xc0\xaf\",\"role\":\"user\"}"},
		{"CreateEncodedSurrogate", "POST", "/users", "{\"username\":\"\xed\xa0\x80\",\"role\":\"user\"}"},
		{"CreateLoneHighSurrogate", "POST", "/users", `{"username":"\ud800","role":"user"}`},
		{"CreateLoneLowSurrogate", "POST", "/users", `{"username":"a\udc00b","role":"user"}`},
		{"CreateReversedPair", "POST", "/users", `{"username":"\udc00\ud800","role":"user"}`},
		{"CreateHighThenText", "POST", "/users", `{"username":"\ud800abcdef","role":"user"}`},
		{"CreateNUL", "POST", "/users", `{"username":"a\u0000b","role":"user"}`},
		{"CreateNULInPassword", "POST", "/users", `{"username":"carol","role":"user","password":"correct horse\u0000battery"}`},
		{"CreateRepeatedRole", "POST", "/users", `{"username":"dave","role":"user","role":"admin"}`},
		{"CreateTrailingBracket", "POST", "/users", `{"username":"eve","role":"user"}]`},
		{"CreateTrailingBrace", "POST", "/users", `{"username":"eve","role":"user"}}`},
		{"RevokeNULReason", "POST", "/sessions/" + victim.SID + "/revoke", `{"reason":"a\u0000b"}`},
		{"RevokeInvalidUTF8Reason", "POST", "/sessions/" + victim.SID + "/revoke", "{\"reason\":\"\xff\"}"},
		{"RevokeSurrogateReason", "POST", "/sessions/" + victim.SID + "/revoke", `{"reason":"\udfff"}`},
		{"PatchRepeated", "PATCH", "/users/" + uid, `{"disabled":false,"disabled":true}`},
		{"PatchNULRole", "PATCH", "/users/" + uid, `{"role":"admin\u0000"}`},
		{"ResetNULPassword", "PUT", "/users/" + uid + "/password", `{"password":"correct horse\u0000battery staple"}`},
		{"ResetInvalidUTF8", "PUT", "/users/" + uid + "/password", "{\"password\":\"correct horse \xff battery\"}"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			u0, s0 := rowCounts(t, env)
			res, body := env.Do(t, tc.method, tc.path, admin.AccessToken, "application/json", strings.NewReader(tc.body))
			if res.StatusCode != 400 || res.Header.Get("Content-Type") != "application/problem+json" {
				t.Fatalf("%d %s, want a 400 problem", res.StatusCode, body)
			}
			if u, s := rowCounts(t, env); u != u0 || s != s0 {
				t.Fatalf("rows written: users %d->%d, sessions %d->%d", u0, u, s0, s)
			}
		})
	}
	if s := session(t, env, victim.SID); s.RevokedAt != nil {
		t.Fatal("a refused revoke revoked the session")
	}
	if res, _ := env.Do(t, http.MethodGet, "/sessions", victim.AccessToken, "", nil); res.StatusCode != 200 {
		t.Fatal("the victim's session no longer works: a refused request changed it")
	}
	// What the checks must not refuse: escaped pairs, U+FFFD itself, and
	// escapes a naive scanner would misread.
	for _, name := range []string{`"\ud83d\ude00-smile"`, `"\ufffd-replacement"`, `"back\\u0000slash"`, `"quote\"\u00e9"`} {
		res, body := env.Do(t, http.MethodPost, "/users", admin.AccessToken, "application/json",
			strings.NewReader(`{"username":`+name+`,"role":"user"}`))
		// The reader must pass them on: created, or refused by the username
		// profile (RFC 8265 allows no emoji or U+FFFD), never by the reader.
		if res.StatusCode != 201 && !(res.StatusCode == 400 && strings.Contains(string(body), "RFC 8265")) {
			t.Errorf("username %s: %d %s, want 201 or the username profile's 400", name, res.StatusCode, body)
		}
	}
}

// Item 12 beyond the feed: the list endpoints read their query strictly too.
func TestListQueriesAreParsedStrictly(t *testing.T) {
	env := authdtest.Start(t, authdtest.Options{})
	uid := env.CreateUser(t, "root", "admin", pw)
	admin := env.Login(t, "root", pw)
	for _, path := range []string{
		"/users?limit=1;x", "/users?limit=%zz", "/users?query=%zz", "/users?query=a&query=b", "/users?limit=1&limit=200",
		"/sessions?include=revoked;", "/sessions?include=revoked&include=revoked", "/sessions?cursor=%",
		"/users/" + uid + "/sessions?limit=1;", "/users/" + uid + "/sessions?include=%zz",
	} {
		res, body := env.Do(t, http.MethodGet, path, admin.AccessToken, "", nil)
		if res.StatusCode != 400 || res.Header.Get("Content-Type") != "application/problem+json" {
			t.Errorf("%s: %d %s, want a 400 problem", path, res.StatusCode, body)
		}
	}
}
