package httpapi_test

import (
	"encoding/json"
	"net/http"
	"strings"
	"testing"

	"github.com/seedc5a8123e/authd/internal/account"
	"github.com/seedc5a8123e/authd/internal/authdtest"
)

// TestRevokeAllOfAUserReadsItsBody: POST /users/{id}/sessions/revoke takes
// the single-session revoke's optional {"reason"}, validated the same way;
// a body it cannot read is a 400 and revokes nothing.
func TestRevokeAllOfAUserReadsItsBody(t *testing.T) {
	env := authdtest.Start(t, authdtest.Options{})
	env.CreateUser(t, "chief", "admin", pw)
	uid := env.CreateUser(t, "many", "user", pw)
	admin := env.Login(t, "chief", pw)
	s := env.Login(t, "many", pw)
	path := "/users/" + uid + "/sessions/revoke"
	for name, body := range map[string]string{
		"InvalidJSON":   `{"reason":`,
		"UnknownMember": `{"why":"x"}`,
		"LongReason":    `{"reason":"` + strings.Repeat("r", 201) + `"}`,
		"NotAnObject":   `["x"]`,
	} {
		res, b := env.Do(t, http.MethodPost, path, admin.AccessToken, "application/json", strings.NewReader(body))
		if res.StatusCode != http.StatusBadRequest {
			t.Errorf("%s: %d %s, want 400", name, res.StatusCode, b)
		}
	}
	if got := session(t, env, s.SID); got.RevokedAt != nil {
		t.Fatal("a refused request revoked sessions")
	}
	res, b := env.Do(t, http.MethodPost, path, admin.AccessToken, "application/json", strings.NewReader(`{"reason":"offboarding"}`))
	if res.StatusCode != http.StatusOK || !strings.Contains(string(b), `"revoked":1`) {
		t.Fatalf("%d %s", res.StatusCode, b)
	}
	if got := session(t, env, s.SID); got.RevokedReason == nil || *got.RevokedReason != "offboarding" {
		t.Fatalf("session %+v, want reason offboarding", got)
	}
	s2 := env.Login(t, "many", pw)
	if res, _ := env.Do(t, http.MethodPost, path, admin.AccessToken, "", nil); res.StatusCode != http.StatusOK {
		t.Fatalf("without a body: %d", res.StatusCode)
	}
	if got := session(t, env, s2.SID); got.RevokedReason == nil || *got.RevokedReason != "admin_revoke_all" {
		t.Fatalf("session %+v, want admin_revoke_all", got)
	}
}

// TestUsernamesFollowRFC8265: usernames are mapped with the PRECIS
// UsernameCaseMapped profile at creation and at login, so look-alikes and
// invisible characters are refused or mapped, and uniqueness holds after
// mapping; passwords follow OpaqueString, and one no login could ever match
// is refused when it is set.
func TestUsernamesFollowRFC8265(t *testing.T) {
	env := authdtest.Start(t, authdtest.Options{})
	env.CreateUser(t, "root", "admin", pw)
	admin := env.Login(t, "root", pw)
	create := func(name, password string) (*http.Response, []byte) {
		t.Helper()
		body, _ := json.Marshal(map[string]string{"username": name, "role": "user", "password": password})
		return env.Do(t, http.MethodPost, "/users", admin.AccessToken, "application/json", strings.NewReader(string(body)))
	}
	for name, u := range map[string]string{
		"RightToLeftOverride": "\u202eadmin",
		"ZeroWidthSpace":      "ad\u200bmin",
		"SoftHyphen":          "ad\u00admin",
		"Space":               "ad min",
	} {
		if res, b := create(u, pw); res.StatusCode != http.StatusBadRequest || !strings.Contains(string(b), "RFC 8265") {
			t.Errorf("%s: %d %s, want 400 naming the profile", name, res.StatusCode, b)
		}
	}
	res, b := create("ＯＳＣＡＲ", pw) // full-width letters
	if res.StatusCode != http.StatusCreated || !strings.Contains(string(b), `"username":"oscar"`) {
		t.Fatalf("full-width name: %d %s, want 201 stored as oscar", res.StatusCode, b)
	}
	if res, _ := create("Oscar", pw); res.StatusCode != http.StatusConflict {
		t.Errorf("a second spelling of oscar: %d, want 409", res.StatusCode)
	}
	for _, login := range []string{"oscar", "OSCAR", "ＯＳＣＡＲ"} {
		env.Login(t, login, pw)
	}
	// NUL is refused by the JSON reader already; the policy refuses the rest
	// of what OpaqueString refuses (and NUL too, for the CLI's stdin).
	for name, p := range map[string]string{"NUL": "correct horse\x00battery", "Escape": "correct horse\x1bbattery"} {
		if res, b := create("nul-"+strings.ToLower(name), p); res.StatusCode != http.StatusBadRequest {
			t.Errorf("password with %s: %d %s, want 400", name, res.StatusCode, b)
		}
	}
	if err := account.CheckPassword("someone", "correct horse\x00battery"); err == nil || !strings.Contains(err.Error(), "control characters") {
		t.Errorf("policy on a NUL password: %v", err)
	}
	// The same password typed composed and decomposed is one password.
	if res, b := create("ecole", "\u00e9cole normale sup"); res.StatusCode != http.StatusCreated {
		t.Fatalf("%d %s", res.StatusCode, b)
	}
	env.Login(t, "ecole", "e\u0301cole normale sup")
}
