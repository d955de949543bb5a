package httpapi_test

import (
	"bytes"
	"context"
	"encoding/json"
	"net/http"
	"net/url"
	"slices"
	"strings"
	"testing"

	"github.com/seedc5a8123e/authd/internal/authdtest"
	"github.com/seedc5a8123e/authd/verifier"
)

const acctPW = "correct horse battery staple"

type acctProblem struct {
	Status int    `json:"status"`
	Detail string `json:"detail"`
}

type acctUser struct {
	ID         string  `json:"id"`
	Username   string  `json:"username"`
	Role       string  `json:"role"`
	Disabled   bool    `json:"disabled"`
	DisabledAt *string `json:"disabled_at"`
	CreatedAt  string  `json:"created_at"`
	UpdatedAt  string  `json:"updated_at"`
	Password   string  `json:"password"`
	Revoked    *int    `json:"revoked"`
}

type acctSession struct {
	SID             string  `json:"sid"`
	CreatedAt       string  `json:"created_at"`
	LastRefreshedAt *string `json:"last_refreshed_at"`
	ExpiresAt       string  `json:"expires_at"`
	UserAgent       *string `json:"user_agent"`
	IP              *string `json:"ip"`
	Current         bool    `json:"current"`
	RevokedAt       *string `json:"revoked_at"`
	RevokedReason   *string `json:"revoked_reason"`
}

type acctList[T any] struct {
	Items      []T     `json:"items"`
	NextCursor *string `json:"next_cursor"`
}

type acctRevoked struct {
	Revoked int `json:"revoked"`
}

// acctDo sends body (marshalled to JSON unless nil) and decodes a 2xx answer
// into out (when non-nil), failing the test unless the status is want.
func acctDo(t *testing.T, env *authdtest.Env, method, path, bearer string, body any, want int, out any) []byte {
	t.Helper()
	var rd *bytes.Reader
	ct := ""
	if body != nil {
		b, err := json.Marshal(body)
		if err != nil {
			t.Fatal(err)
		}
		rd, ct = bytes.NewReader(b), "application/json"
	} else {
		rd = bytes.NewReader(nil)
	}
	res, got := env.Do(t, method, path, bearer, ct, rd)
	if res.StatusCode != want {
		t.Fatalf("%s %s: status %d, want %d: %s", method, path, res.StatusCode, want, got)
	}
	if out != nil {
		if err := json.Unmarshal(got, out); err != nil {
			t.Fatalf("%s %s: decode %q: %v", method, path, got, err)
		}
	}
	return got
}

// acctProblemIs checks a problem body's status and that its detail names
// the rule.
func acctProblemIs(t *testing.T, env *authdtest.Env, method, path, bearer string, body any, status int, detail string) {
	t.Helper()
	var p acctProblem
	acctDo(t, env, method, path, bearer, body, status, &p)
	if p.Status != status || !strings.Contains(p.Detail, detail) {
		t.Fatalf("%s %s: problem %+v, want status %d and detail containing %q", method, path, p, status, detail)
	}
}

func acctLoginStatus(t *testing.T, env *authdtest.Env, user, pw string) (int, string) {
	t.Helper()
	res, body := env.PostForm(t, "/token", url.Values{"grant_type": {"password"}, "username": {user}, "password": {pw}})
	return res.StatusCode, string(body)
}

// acctReason checks through the store that sid is revoked with reason by by
// (nil: NULL).
func acctReason(t *testing.T, env *authdtest.Env, sid, reason string, by *string) {
	t.Helper()
	s, err := env.DB.SessionByID(context.Background(), sid)
	if err != nil {
		t.Fatal(err)
	}
	if s.RevokedAt == nil || s.RevokedReason == nil || *s.RevokedReason != reason {
		t.Fatalf("session %s: revoked_at %v reason %v, want reason %q", sid, s.RevokedAt, s.RevokedReason, reason)
	}
	if (by == nil) != (s.RevokedByUserID == nil) || (by != nil && *by != *s.RevokedByUserID) {
		t.Fatalf("session %s: revoked_by %v, want %v", sid, s.RevokedByUserID, by)
	}
}

func acctLive(t *testing.T, env *authdtest.Env, sid string) {
	t.Helper()
	s, err := env.DB.SessionByID(context.Background(), sid)
	if err != nil {
		t.Fatal(err)
	}
	if s.RevokedAt != nil {
		t.Fatalf("session %s revoked (%v), want live", sid, *s.RevokedReason)
	}
}

// acctFeed returns the sids in the revocation feed, read with a service token.
func acctFeed(t *testing.T, env *authdtest.Env) []string {
	t.Helper()
	if _, err := env.Accounts.Create(context.Background(), "feed-reader", "service", acctPW); err != nil &&
		!strings.Contains(err.Error(), "taken") {
		t.Fatal(err)
	}
	tok := env.ServiceToken(t, "feed-reader", acctPW)
	res, body := env.Do(t, http.MethodGet, "/sessions/revoked", tok.AccessToken, "", nil)
	if res.StatusCode != http.StatusOK {
		t.Fatalf("feed: %d %s", res.StatusCode, body)
	}
	var entries []verifier.Revocation
	if err := json.Unmarshal(body, &entries); err != nil {
		t.Fatal(err)
	}
	var out []string
	for _, e := range entries {
		out = append(out, e.SID)
	}
	return out
}

// acctAuthOK reports whether the access token still authenticates.
func acctAuthOK(t *testing.T, env *authdtest.Env, tok string) bool {
	t.Helper()
	res, _ := env.Do(t, http.MethodGet, "/sessions", tok, "", nil)
	return res.StatusCode == http.StatusOK
}

func TestChangePassword(t *testing.T) {
	env := authdtest.Start(t, authdtest.Options{})
	alice := env.CreateUser(t, "alice", "user", acctPW)
	a, b, c := env.Login(t, "alice", acctPW), env.Login(t, "alice", acctPW), env.Login(t, "alice", acctPW)
	const next = "a brand new passphrase"

	t.Run("WrongCurrentPasswordChangesNothing", func(t *testing.T) {
		acctProblemIs(t, env, "POST", "/me/password", a.AccessToken,
			map[string]string{"current_password": "not the password", "new_password": next}, 403, "current password")
		for _, tr := range []authdtest.TokenResponse{a, b, c} {
			acctLive(t, env, tr.SID)
		}
		if st, body := acctLoginStatus(t, env, "alice", next); st != 400 {
			t.Fatalf("new password works after a refused change: %d %s", st, body)
		}
	})
	t.Run("PolicyViolationsNameTheRule", func(t *testing.T) {
		for pw, rule := range map[string]string{
			"short":                   "at least 12 characters",
			"ALICE":                   "at least 12 characters",
			strings.Repeat("x", 1025): "at most 1024 bytes",
		} {
			acctProblemIs(t, env, "POST", "/me/password", a.AccessToken,
				map[string]string{"current_password": acctPW, "new_password": pw}, 400, rule)
		}
		env.CreateUser(t, "longusername1", "user", acctPW)
		tok := env.Login(t, "longusername1", acctPW)
		acctProblemIs(t, env, "POST", "/me/password", tok.AccessToken,
			map[string]string{"current_password": acctPW, "new_password": "LongUserName1"}, 400, "must not equal the username")
		acctLive(t, env, b.SID)
	})
	t.Run("KeepsCurrentRevokesOthers", func(t *testing.T) {
		var got acctRevoked
		acctDo(t, env, "POST", "/me/password", a.AccessToken,
			map[string]string{"current_password": acctPW, "new_password": next}, 200, &got)
		if got.Revoked != 2 {
			t.Fatalf("revoked %d, want 2", got.Revoked)
		}
		acctLive(t, env, a.SID)
		acctReason(t, env, b.SID, "password_change", &alice)
		acctReason(t, env, c.SID, "password_change", &alice)
		if !acctAuthOK(t, env, a.AccessToken) || acctAuthOK(t, env, b.AccessToken) || acctAuthOK(t, env, c.AccessToken) {
			t.Fatal("want A live, B and C refused")
		}
		feed := acctFeed(t, env)
		if !slices.Contains(feed, b.SID) || !slices.Contains(feed, c.SID) || slices.Contains(feed, a.SID) {
			t.Fatalf("feed %v: want B %s and C %s, not A %s", feed, b.SID, c.SID, a.SID)
		}
		if st, body := acctLoginStatus(t, env, "alice", acctPW); st != 400 {
			t.Fatalf("old password still works: %d %s", st, body)
		}
		env.Login(t, "alice", next)
	})
}

func acctSetup(t *testing.T) (*authdtest.Env, string, string) {
	t.Helper()
	env := authdtest.Start(t, authdtest.Options{})
	adminID := env.CreateUser(t, "root", "admin", acctPW)
	return env, adminID, env.Login(t, "root", acctPW).AccessToken
}

func TestDisableUser(t *testing.T) {
	env, adminID, admin := acctSetup(t)
	bob := env.CreateUser(t, "bob", "user", acctPW)
	s1, s2 := env.Login(t, "bob", acctPW), env.Login(t, "bob", acctPW)
	_, wrongBody := acctLoginStatus(t, env, "bob", "definitely wrong pw")

	var u acctUser
	acctDo(t, env, "PATCH", "/users/"+bob, admin, map[string]any{"disabled": true}, 200, &u)
	if !u.Disabled || u.DisabledAt == nil || u.Revoked == nil || *u.Revoked != 2 || u.ID != bob || u.Role != "user" {
		t.Fatalf("disable answer %+v", u)
	}
	acctReason(t, env, s1.SID, "user_disabled", &adminID)
	acctReason(t, env, s2.SID, "user_disabled", &adminID)
	feed := acctFeed(t, env)
	if !slices.Contains(feed, s1.SID) || !slices.Contains(feed, s2.SID) {
		t.Fatalf("feed %v lacks %s, %s", feed, s1.SID, s2.SID)
	}
	st, body := acctLoginStatus(t, env, "bob", acctPW)
	if st != 400 || body != wrongBody {
		t.Fatalf("disabled login: %d %s, want the wrong-password answer %s", st, body, wrongBody)
	}

	acctDo(t, env, "PATCH", "/users/"+bob, admin, map[string]any{"disabled": false}, 200, &u)
	if u.Disabled || u.DisabledAt != nil || *u.Revoked != 0 {
		t.Fatalf("enable answer %+v", u)
	}
	env.Login(t, "bob", acctPW)

	acctProblemIs(t, env, "PATCH", "/users/"+bob, admin, map[string]any{}, 400, "disabled, role")
	acctProblemIs(t, env, "PATCH", "/users/"+bob, admin, map[string]any{"bogus": 1}, 400, "unknown field")
}

func TestRoleChangeRevokes(t *testing.T) {
	env, adminID, admin := acctSetup(t)
	bob := env.CreateUser(t, "bob", "user", acctPW)
	s := env.Login(t, "bob", acctPW)

	var u acctUser
	acctDo(t, env, "PATCH", "/users/"+bob, admin, map[string]any{"role": "user"}, 200, &u)
	if *u.Revoked != 0 {
		t.Fatalf("unchanged role revoked %d", *u.Revoked)
	}
	acctLive(t, env, s.SID)
	acctDo(t, env, "PATCH", "/users/"+bob, admin, map[string]any{"role": "admin"}, 200, &u)
	if u.Role != "admin" || *u.Revoked != 1 {
		t.Fatalf("role change answer %+v", u)
	}
	acctReason(t, env, s.SID, "role_changed", &adminID)
	if acctAuthOK(t, env, s.AccessToken) {
		t.Fatal("token with the old role still works")
	}
	acctProblemIs(t, env, "PATCH", "/users/"+bob, admin, map[string]any{"role": "root"}, 400, "role must be one of")
}

func TestResetPassword(t *testing.T) {
	env, adminID, admin := acctSetup(t)
	bob := env.CreateUser(t, "bob", "user", acctPW)
	s1, s2 := env.Login(t, "bob", acctPW), env.Login(t, "bob", acctPW)
	acctProblemIs(t, env, "PUT", "/users/"+bob+"/password", admin, map[string]string{"password": "short"}, 400, "at least 12 characters")
	acctProblemIs(t, env, "PUT", "/users/"+bob+"/password", admin, map[string]string{}, 400, "at least 12 characters")
	acctLive(t, env, s1.SID)

	var got acctRevoked
	acctDo(t, env, "PUT", "/users/"+bob+"/password", admin, map[string]string{"password": "reset by the admin"}, 200, &got)
	if got.Revoked != 2 {
		t.Fatalf("revoked %d, want 2", got.Revoked)
	}
	acctReason(t, env, s1.SID, "password_reset", &adminID)
	acctReason(t, env, s2.SID, "password_reset", &adminID)
	env.Login(t, "bob", "reset by the admin")
	if st, _ := acctLoginStatus(t, env, "bob", acctPW); st != 400 {
		t.Fatalf("old password: %d", st)
	}
	acctProblemIs(t, env, "PUT", "/users/00000000-0000-0000-0000-000000000000/password", admin,
		map[string]string{"password": "reset by the admin"}, 404, "no user")
}

func TestLastAdminGuard(t *testing.T) {
	env, adminID, admin := acctSetup(t)
	acctProblemIs(t, env, "PATCH", "/users/"+adminID, admin, map[string]any{"disabled": true}, 409, "last enabled admin")
	acctProblemIs(t, env, "PATCH", "/users/"+adminID, admin, map[string]any{"role": "user"}, 409, "last enabled admin")
	acctProblemIs(t, env, "PATCH", "/users/"+adminID, admin, map[string]any{"role": "service", "disabled": true}, 409, "last enabled admin")
	if !acctAuthOK(t, env, admin) {
		t.Fatal("a refused change revoked the admin's session")
	}

	// A disabled admin does not count.
	other := env.CreateUser(t, "other-admin", "admin", acctPW)
	acctDo(t, env, "PATCH", "/users/"+other, admin, map[string]any{"disabled": true}, 200, nil)
	acctProblemIs(t, env, "PATCH", "/users/"+adminID, admin, map[string]any{"role": "user"}, 409, "last enabled admin")

	// With a second enabled admin the first may step down.
	acctDo(t, env, "PATCH", "/users/"+other, admin, map[string]any{"disabled": false}, 200, nil)
	otherTok := env.Login(t, "other-admin", acctPW).AccessToken
	var u acctUser
	acctDo(t, env, "PATCH", "/users/"+adminID, admin, map[string]any{"role": "user"}, 200, &u)
	if u.Role != "user" || *u.Revoked != 1 {
		t.Fatalf("demotion answer %+v", u)
	}
	acctProblemIs(t, env, "PATCH", "/users/"+other, otherTok, map[string]any{"disabled": true}, 409, "last enabled admin")
}

func TestSessionLists(t *testing.T) {
	env, adminID, admin := acctSetup(t)
	alice := env.CreateUser(t, "alice", "user", acctPW)
	bob := env.CreateUser(t, "bob", "user", acctPW)
	a1, a2, a3 := env.Login(t, "alice", acctPW), env.Login(t, "alice", acctPW), env.Login(t, "alice", acctPW)
	b1 := env.Login(t, "bob", acctPW)
	if res, body := env.Do(t, "POST", "/logout", a3.AccessToken, "", nil); res.StatusCode != 200 {
		t.Fatalf("logout: %d %s", res.StatusCode, body)
	}

	sidsOf := func(items []acctSession) []string {
		var out []string
		for _, s := range items {
			out = append(out, s.SID)
		}
		slices.Sort(out)
		return out
	}
	want := func(sids ...string) []string { slices.Sort(sids); return sids }

	t.Run("OwnLiveSessionsOnly", func(t *testing.T) {
		var l acctList[acctSession]
		acctDo(t, env, "GET", "/sessions", a1.AccessToken, nil, 200, &l)
		if got := sidsOf(l.Items); !slices.Equal(got, want(a1.SID, a2.SID)) || l.NextCursor != nil {
			t.Fatalf("alice sees %v (next %v), want %s %s", got, l.NextCursor, a1.SID, a2.SID)
		}
		for _, s := range l.Items {
			if s.Current != (s.SID == a1.SID) || s.RevokedAt != nil || s.RevokedReason != nil || s.IP == nil ||
				s.UserAgent == nil || s.CreatedAt == "" || s.ExpiresAt == "" || s.LastRefreshedAt != nil {
				t.Fatalf("session %+v", s)
			}
		}
		acctDo(t, env, "GET", "/sessions", b1.AccessToken, nil, 200, &l)
		if got := sidsOf(l.Items); !slices.Equal(got, want(b1.SID)) {
			t.Fatalf("bob sees %v", got)
		}
	})
	t.Run("IncludeRevoked", func(t *testing.T) {
		var l acctList[acctSession]
		acctDo(t, env, "GET", "/sessions?include=revoked", a2.AccessToken, nil, 200, &l)
		if got := sidsOf(l.Items); !slices.Equal(got, want(a1.SID, a2.SID, a3.SID)) {
			t.Fatalf("alice sees %v", got)
		}
		for _, s := range l.Items {
			if s.SID == a3.SID && (s.RevokedAt == nil || *s.RevokedReason != "user_logout") {
				t.Fatalf("revoked session %+v", s)
			}
		}
		acctProblemIs(t, env, "GET", "/sessions?include=everything", a2.AccessToken, nil, 400, "include")
	})
	t.Run("Pagination", func(t *testing.T) {
		var seen []string
		path := "/sessions?include=revoked&limit=1"
		for range 5 {
			var l acctList[acctSession]
			acctDo(t, env, "GET", path, a1.AccessToken, nil, 200, &l)
			if len(l.Items) != 1 {
				t.Fatalf("page of %d", len(l.Items))
			}
			seen = append(seen, l.Items[0].SID)
			if l.NextCursor == nil {
				break
			}
			path = "/sessions?include=revoked&limit=1&cursor=" + url.QueryEscape(*l.NextCursor)
		}
		if slices.Sort(seen); !slices.Equal(seen, want(a1.SID, a2.SID, a3.SID)) {
			t.Fatalf("pages gave %v", seen)
		}
		acctProblemIs(t, env, "GET", "/sessions?cursor=garbage", a1.AccessToken, nil, 400, "cursor")
		acctProblemIs(t, env, "GET", "/sessions?limit=201", a1.AccessToken, nil, 400, "limit")
		acctProblemIs(t, env, "GET", "/sessions?limit=x", a1.AccessToken, nil, 400, "limit")
	})
	t.Run("AdminListsAndRevokesAUsersSessions", func(t *testing.T) {
		acctProblemIs(t, env, "GET", "/users/"+alice+"/sessions", b1.AccessToken, nil, 403, "role")
		var l acctList[acctSession]
		acctDo(t, env, "GET", "/users/"+alice+"/sessions", admin, nil, 200, &l)
		if got := sidsOf(l.Items); !slices.Equal(got, want(a1.SID, a2.SID)) {
			t.Fatalf("admin sees %v", got)
		}
		for _, s := range l.Items {
			if s.Current {
				t.Fatalf("alice's session marked current for the admin: %+v", s)
			}
		}
		acctProblemIs(t, env, "POST", "/users/"+bob+"/sessions/revoke", a1.AccessToken, nil, 403, "role")
		var got acctRevoked
		acctDo(t, env, "POST", "/users/"+alice+"/sessions/revoke", admin, nil, 200, &got)
		if got.Revoked != 2 {
			t.Fatalf("revoked %d", got.Revoked)
		}
		acctReason(t, env, a1.SID, "admin_revoke_all", &adminID)
		acctReason(t, env, a2.SID, "admin_revoke_all", &adminID)
		acctReason(t, env, a3.SID, "user_logout", &alice)
		acctLive(t, env, b1.SID)
		acctProblemIs(t, env, "GET", "/users/not-a-uuid/sessions", admin, nil, 400, "UUID")
		acctProblemIs(t, env, "GET", "/users/00000000-0000-0000-0000-000000000000/sessions", admin, nil, 404, "no user")
	})
}

func TestUsersAdmin(t *testing.T) {
	env, _, admin := acctSetup(t)

	t.Run("CreateWithGeneratedPassword", func(t *testing.T) {
		var u acctUser
		acctDo(t, env, "POST", "/users", admin, map[string]string{"username": "Carol", "role": "user"}, 201, &u)
		// Stored as RFC 8265 UsernameCaseMapped maps it, case folded.
		if u.Password == "" || u.Username != "carol" || u.Role != "user" || u.Disabled || u.DisabledAt != nil || u.ID == "" {
			t.Fatalf("created %+v", u)
		}
		env.Login(t, "carol", u.Password)
		var got acctUser
		acctDo(t, env, "GET", "/users/"+u.ID, admin, nil, 200, &got)
		if got.Password != "" || got.ID != u.ID || got.Username != "carol" {
			t.Fatalf("get %+v", got)
		}
		acctProblemIs(t, env, "POST", "/users", admin, map[string]string{"username": "CAROL", "role": "user"}, 409, "taken")
	})
	t.Run("CreateWithPassword", func(t *testing.T) {
		var u acctUser
		acctDo(t, env, "POST", "/users", admin, map[string]string{"username": "dave", "role": "service", "password": acctPW}, 201, &u)
		if u.Password != "" || u.Role != "service" {
			t.Fatalf("created %+v", u)
		}
		env.ServiceToken(t, "dave", acctPW)
	})
	t.Run("PolicyViolationsNameTheRule", func(t *testing.T) {
		for _, c := range []struct {
			body map[string]string
			rule string
		}{
			{map[string]string{"username": "erin", "role": "user", "password": "short"}, "at least 12 characters"},
			{map[string]string{"username": "erinerinerin", "role": "user", "password": "ERINERINERIN"}, "must not equal the username"},
			{map[string]string{"username": "erin", "role": "user", "password": strings.Repeat("é", 600)}, "at most 1024 bytes"},
			{map[string]string{"username": "erin", "role": "boss", "password": acctPW}, "role must be one of"},
			{map[string]string{"username": "", "role": "user", "password": acctPW}, "username must not be empty"},
			{map[string]string{"username": "e rin", "role": "user", "password": acctPW}, "no spaces"},
		} {
			acctProblemIs(t, env, "POST", "/users", admin, c.body, 400, c.rule)
		}
	})
	t.Run("GetErrors", func(t *testing.T) {
		acctProblemIs(t, env, "GET", "/users/00000000-0000-0000-0000-000000000000", admin, nil, 404, "no user")
		acctProblemIs(t, env, "GET", "/users/12345", admin, nil, 400, "UUID")
		acctProblemIs(t, env, "PATCH", "/users/12345", admin, map[string]any{"disabled": true}, 400, "UUID")
	})
	t.Run("ListSearchAndPages", func(t *testing.T) {
		for _, n := range []string{"Alpha", "alphabet", "beta", "ALPHONSE"} {
			env.CreateUser(t, n, "user", acctPW)
		}
		var l acctList[acctUser]
		acctDo(t, env, "GET", "/users?query=ALPH", admin, nil, 200, &l)
		var names []string
		for _, u := range l.Items {
			names = append(names, u.Username)
		}
		if !slices.Equal(names, []string{"alpha", "alphabet", "alphonse"}) || l.NextCursor != nil {
			t.Fatalf("query=ALPH gave %v next %v", names, l.NextCursor)
		}
		names = nil
		path := "/users?query=alph&limit=2"
		for range 3 {
			var l acctList[acctUser]
			acctDo(t, env, "GET", path, admin, nil, 200, &l)
			for _, u := range l.Items {
				names = append(names, u.Username)
			}
			if l.NextCursor == nil {
				break
			}
			path = "/users?query=alph&limit=2&cursor=" + url.QueryEscape(*l.NextCursor)
		}
		if !slices.Equal(names, []string{"alpha", "alphabet", "alphonse"}) {
			t.Fatalf("pages gave %v", names)
		}
		acctDo(t, env, "GET", "/users?query=nobody-has-this", admin, nil, 200, &l)
		if l.Items == nil || len(l.Items) != 0 {
			t.Fatalf("empty list %+v", l)
		}
		acctProblemIs(t, env, "GET", "/users?limit=500", admin, nil, 400, "limit")
	})
	t.Run("AdminOnly", func(t *testing.T) {
		env.CreateUser(t, "mallory", "user", acctPW)
		tok := env.Login(t, "mallory", acctPW).AccessToken
		acctProblemIs(t, env, "GET", "/users", tok, nil, 403, "role")
		acctProblemIs(t, env, "POST", "/users", tok, map[string]string{"username": "x", "role": "admin"}, 403, "role")
		acctProblemIs(t, env, "GET", "/users", "", nil, 401, "bearer")
	})
}
