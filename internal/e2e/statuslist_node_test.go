package e2e_test

import (
	"context"
	"testing"

	"github.com/seedc5a8123e/authd/internal/authdtest"
)

// statusCase is one access token for check-status-list.mjs: the status the
// list must give its index.
type statusCase struct {
	Name  string `json:"name"`
	Token string `json:"token"`
	Want  string `json:"want"` // "valid" or "revoked"
}

// TestNodeStatusList: an implementation of the draft authd did not write
// (@sd-jwt/jwt-status-list, with jose verifying the Status List Token
// against authd's JWKS) reads a live session's entry as valid and a revoked
// one's as revoked, from the real endpoints. For each algorithm authd signs
// with.
func TestNodeStatusList(t *testing.T) {
	node := requireNode(t)
	forEachAlg(t, func(t *testing.T, env *authdtest.Env) {
		env.CreateUser(t, "nadia", "user", userPW)
		live := env.Login(t, "nadia", userPW)
		gone := env.Login(t, "nadia", userPW)
		if res, body := env.Do(t, "POST", "/logout", gone.AccessToken, "", nil); res.StatusCode != 200 {
			t.Fatalf("logout: %d %s", res.StatusCode, body)
		}
		if err := env.App.StatusLists.Sync(context.Background()); err != nil {
			t.Fatal(err)
		}
		cases := []statusCase{
			{Name: "a live session's token reads valid", Token: live.AccessToken, Want: "valid"},
			{Name: "a logged-out session's token reads revoked", Token: gone.AccessToken, Want: "revoked"},
		}
		runScript(t, node, env, "check-status-list.mjs", cases, len(cases))
	})
}
