package httpapi_test

import (
	"net/http"
	"strings"
	"testing"

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
