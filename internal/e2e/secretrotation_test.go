package e2e_test

import (
	"context"
	"encoding/json"
	"errors"
	"log/slog"
	"net/http"
	"testing"
	"time"

	"github.com/seedc5a8123e/authd/internal/authdtest"
	"github.com/seedc5a8123e/authd/verifier"
)

// TestServiceSecretRotationAcrossReplicas rotates the secret of running
// verifiers, the way a deployment does, with the two steps on different
// replicas and the manual clock carrying both verifiers' service tokens past
// their expiry at each step (so each must authenticate again with the
// secret it holds): the old deployment (secret 1, via replica A) runs; an
// admin adds secret 2 on B; the new deployment (secret 2, via B) starts;
// the old one is replaced; the admin removes secret 1 on A. No verifier is
// ever stale or sees a failed poll, and the last one still hears of a
// logout.
func TestServiceSecretRotationAcrossReplicas(t *testing.T) {
	a, b := replicas(t)
	a.CreateUser(t, "root", "admin", userPW)
	a.CreateUser(t, "alice", "user", userPW)
	admin := func(env *authdtest.Env) string { return env.Login(t, "root", userPW).AccessToken }

	start := func(env *authdtest.Env, secret string) *verifier.Verifier {
		t.Helper()
		v, err := verifier.New(context.Background(), verifier.Config{
			IssuerURL: env.URL, Audience: authdtest.Audience, ClientID: svcUser, ClientSecret: secret,
			PollInterval: 20 * time.Millisecond, Clock: env.Clock, InitialTimeout: 10 * time.Second,
			HTTPClient: clientVia(hostOf(env.Server)),
			Logger:     slog.New(slog.NewTextHandler(testWriter{t}, &slog.HandlerOptions{Level: slog.LevelWarn})),
		})
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { _ = v.Close() })
		return v
	}
	// caughtUp moves the clock past every service token's expiry (10m),
	// 3 minutes at a time as time passes for a running verifier (a single
	// jump longer than a token's life could expire a token between its
	// grant and its use), waiting after each until every running verifier
	// has polled since, and checks that none failed or went stale.
	caughtUp := func(step string, vs ...*verifier.Verifier) {
		t.Helper()
		for range 4 {
			a.Clock.Advance(3 * time.Minute)
			now := a.Clock.Now()
			deadline := time.Now().Add(5 * time.Second)
			for _, v := range vs {
				for v.Stats().LastSync.Before(now) {
					if time.Now().After(deadline) {
						t.Fatalf("%s: a verifier has not polled since %s (%+v)", step, now, v.Stats())
					}
					time.Sleep(5 * time.Millisecond)
				}
				if s := v.Stats(); s.PollErrors != 0 || s.Stale {
					t.Fatalf("%s: a verifier failed to poll or went stale: %+v", step, s)
				}
			}
		}
	}

	old := start(a, svcSecret)
	caughtUp("before the rotation", old)

	res, body := b.Do(t, http.MethodPost, "/users/"+userID(t, a, svcUser)+"/secrets", admin(b), "", nil)
	if res.StatusCode != http.StatusCreated {
		t.Fatalf("add a secret on B: %d %s", res.StatusCode, body)
	}
	var added struct{ Secret string }
	if err := json.Unmarshal(body, &added); err != nil || added.Secret == "" {
		t.Fatalf("added secret: %v %s", err, body)
	}
	caughtUp("secret 2 added", old)

	next := start(b, added.Secret)
	caughtUp("both deployments running", old, next)
	if err := old.Close(); err != nil { // the old deployment is replaced
		t.Fatal(err)
	}

	res, body = a.Do(t, http.MethodDelete, "/users/"+userID(t, a, svcUser)+"/secrets/primary", admin(a), "", nil)
	if res.StatusCode != http.StatusNoContent {
		t.Fatalf("remove secret 1 on A: %d %s", res.StatusCode, body)
	}
	caughtUp("secret 1 removed", next)
	caughtUp("a token lifetime later", next)

	// Neither step revoked a session of the identity: a revocation would
	// have been an outage for any verifier not yet re-authenticated.
	var revoked int
	if err := a.DB.Pool().QueryRow(context.Background(),
		`SELECT count(*) FROM sessions WHERE user_id = $1 AND revoked_at IS NOT NULL`, userID(t, a, svcUser)).Scan(&revoked); err != nil {
		t.Fatal(err)
	}
	if revoked != 0 {
		t.Fatalf("the rotation revoked %d sessions of the service identity", revoked)
	}

	tr := a.Login(t, "alice", userPW)
	if _, err := next.Verify(context.Background(), tr.AccessToken); err != nil {
		t.Fatalf("a fresh token: %v", err)
	}
	if res, body := a.Do(t, http.MethodPost, "/logout", tr.AccessToken, "", nil); res.StatusCode != http.StatusOK {
		t.Fatalf("logout: %d %s", res.StatusCode, body)
	}
	deadline := time.Now().Add(5 * time.Second)
	for {
		_, err := next.Verify(context.Background(), tr.AccessToken)
		if errors.Is(err, verifier.ErrRevoked) {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("the logout did not reach the rotated verifier: %v", err)
		}
		time.Sleep(5 * time.Millisecond)
	}
}

func userID(t *testing.T, env *authdtest.Env, name string) string {
	t.Helper()
	u, err := env.Accounts.UserByName(context.Background(), name)
	if err != nil {
		t.Fatal(err)
	}
	return u.ID
}
