package httpapi_test

import (
	"net/http"
	"net/url"
	"testing"

	"github.com/seedc5a8123e/authd/internal/audit"
	"github.com/seedc5a8123e/authd/internal/auditlog"
	"github.com/seedc5a8123e/authd/internal/authdtest"
)

// TestServiceSecretRotationWithoutOutage rotates a running verifier's
// secret: add a second one, move to it, remove the old one. At no step is
// the verifier's session revoked or its old token refused, so it never
// fails closed; each secret authenticates exactly while it is held.
func TestServiceSecretRotationWithoutOutage(t *testing.T) {
	env := authdtest.Start(t, authdtest.Options{})
	env.CreateUser(t, "root", "admin", pw)
	const old = "the old service secret"
	svc := env.CreateUser(t, "svc", "service", old)
	alice := env.CreateUser(t, "alice", "user", pw)
	admin := env.Login(t, "root", pw).AccessToken

	tr := env.ServiceToken(t, "svc", old) // the running verifier's token
	running := tr.AccessToken
	polls := func() {
		t.Helper()
		feedPoll(t, env, running) // fails the test on anything but 200
	}
	grant := func(secret string) int {
		t.Helper()
		res, _ := env.PostForm(t, "/token", url.Values{"grant_type": {"client_credentials"}, "client_id": {"svc"}, "client_secret": {secret}})
		return res.StatusCode
	}
	polls()

	res, body := env.Do(t, "POST", "/users/"+svc+"/secrets", admin, "", nil)
	wantStatus(t, res, body, http.StatusCreated)
	added := decode[struct{ ID, Secret string }](t, body)
	if added.ID == "" || len(added.Secret) < 20 || res.Header.Get("Cache-Control") != "no-store" {
		t.Fatalf("added secret: %s", body)
	}
	polls()
	if grant(old) != 200 || grant(added.Secret) != 200 {
		t.Fatal("both secrets must authenticate during the rotation")
	}
	// A third is refused until one goes.
	res, body = env.Do(t, "POST", "/users/"+svc+"/secrets", admin, "", nil)
	wantStatus(t, res, body, http.StatusConflict)

	// The new deployment takes the new secret; the old one goes.
	next := env.ServiceToken(t, "svc", added.Secret).AccessToken
	res, body = env.Do(t, "DELETE", "/users/"+svc+"/secrets/primary", admin, "", nil)
	wantStatus(t, res, body, http.StatusNoContent)
	polls() // the old deployment still runs, on its token
	feedPoll(t, env, next)
	if grant(old) != 401 || grant(added.Secret) != 200 {
		t.Fatal("after the removal only the new secret may authenticate")
	}
	if s := session(t, env, claimsOf(t, running).SID); s.RevokedAt != nil {
		t.Fatalf("the rotation revoked the running verifier's session: %+v", s)
	}

	// The only secret stays; bad ids, non-services and unknown users are refused.
	for _, c := range []struct {
		method, path string
		status       int
	}{
		{"DELETE", "/users/" + svc + "/secrets/primary", http.StatusConflict},
		{"DELETE", "/users/" + svc + "/secrets/" + added.ID, http.StatusNotFound}, // promoted: now the primary
		{"DELETE", "/users/" + svc + "/secrets/nope", http.StatusNotFound},
		{"POST", "/users/" + alice + "/secrets", http.StatusConflict},
		{"POST", "/users/00000000-0000-4000-8000-000000000000/secrets", http.StatusNotFound},
		{"POST", "/users/nope/secrets", http.StatusBadRequest},
	} {
		res, body := env.Do(t, c.method, c.path, admin, "", nil)
		if res.StatusCode != c.status {
			t.Errorf("%s %s: %d, want %d: %s", c.method, c.path, res.StatusCode, c.status, body)
		}
	}

	// Removing an added secret (not the primary) works too.
	res, body = env.Do(t, "POST", "/users/"+svc+"/secrets", admin, "", nil)
	wantStatus(t, res, body, http.StatusCreated)
	third := decode[struct{ ID, Secret string }](t, body)
	res, body = env.Do(t, "DELETE", "/users/"+svc+"/secrets/"+third.ID, admin, "", nil)
	wantStatus(t, res, body, http.StatusNoContent)
	if grant(third.Secret) != 401 || grant(added.Secret) != 200 {
		t.Fatal("a removed added secret must stop authenticating")
	}

	if n := len(auditRows(t, env, auditlog.Filter{UserID: svc, Type: audit.SecretAdded})); n != 2 {
		t.Fatalf("%d service_secret_added rows, want 2", n)
	}
	if n := len(auditRows(t, env, auditlog.Filter{UserID: svc, Type: audit.SecretRemoved})); n != 2 {
		t.Fatalf("%d service_secret_removed rows, want 2", n)
	}
}
