package httpapi_test

import (
	"testing"

	"github.com/seedc5a8123e/authd/internal/authdtest"
)

func TestSmokeLoginLogout(t *testing.T) {
	env := authdtest.Start(t, authdtest.Options{})
	env.CreateUser(t, "alice", "user", "correct horse battery")
	tr := env.Login(t, "ALICE", "correct horse battery")
	res, body := env.Do(t, "POST", "/logout", tr.AccessToken, "", nil)
	if res.StatusCode != 200 || string(body) != "{\"already_revoked\":false}\n" {
		t.Fatalf("logout: %d %s", res.StatusCode, body)
	}
}
