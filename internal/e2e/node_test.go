package e2e_test

import (
	"context"
	"encoding/json"
	"errors"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/golang-jwt/jwt/v5"
	"github.com/google/uuid"

	"github.com/seedc5a8123e/authd/internal/authdtest"
	"github.com/seedc5a8123e/authd/internal/keys"
	"github.com/seedc5a8123e/authd/internal/token"
)

// nodeDir is test/node, the npm project that holds the Node checks.
const nodeDir = "../../test/node"

// nodeCase is one token for validate-access-token.mjs to judge.
type nodeCase struct {
	Name     string         `json:"name"`
	Token    string         `json:"token"`
	Audience string         `json:"audience"`
	Want     string         `json:"want"`             // "valid" or "invalid"
	Claims   map[string]any `json:"claims,omitempty"` // valid: members the claims must have
	Error    string         `json:"error,omitempty"`  // invalid: what the error must mention
}

// requireNode returns the node binary, or skips the test when Node or the
// npm packages are missing (fails instead under CI, which installs both).
func requireNode(t *testing.T) string {
	t.Helper()
	missing := func(format string, args ...any) {
		t.Helper()
		if os.Getenv("CI") != "" {
			t.Fatalf(format, args...)
		}
		t.Skipf(format, args...)
	}
	node, err := exec.LookPath("node")
	if err != nil {
		missing("node is not installed (Node 20 or later runs test/node): %v", err)
	}
	if _, err := os.Stat(filepath.Join(nodeDir, "node_modules", "@sd-jwt", "jwt-status-list", "package.json")); err != nil {
		missing("test/node's packages are not installed: run npm ci --prefix test/node --no-audit --no-fund (%v)", err)
	}
	return node
}

// TestNodeResourceServer: a strict, independent RFC 9068 resource server,
// oauth4webapi's validateJwtAccessToken, accepts the access tokens the real
// /token endpoint issues by every grant, with the claims authd says, and
// refuses one for another audience, one without client_id and one whose
// signature is not authd's. For each algorithm authd signs with.
func TestNodeResourceServer(t *testing.T) {
	node := requireNode(t)
	forEachAlg(t, func(t *testing.T, env *authdtest.Env) { runNode(t, node, env, nodeCases(t, env)) })
}

// forEachAlg runs fn as a subtest per algorithm authd signs with, each
// against an authd whose one key is of that algorithm.
func forEachAlg(t *testing.T, fn func(t *testing.T, env *authdtest.Env)) {
	for _, alg := range []string{keys.EdDSA, keys.ES256} {
		t.Run(alg, func(t *testing.T) {
			k, err := keys.Generate(alg)
			if err != nil {
				t.Fatal(err)
			}
			ks, _ := keys.NewSet(k)
			fn(t, authdtest.Start(t, authdtest.Options{Keys: ks}))
		})
	}
}

func nodeCases(t *testing.T, env *authdtest.Env) []nodeCase {
	uid := env.CreateUser(t, "nadia", "user", userPW)
	svcID := env.CreateUser(t, svcUser, "service", svcSecret)
	grant := func(form url.Values) authdtest.TokenResponse {
		t.Helper()
		res, body := env.PostForm(t, "/token", form)
		if res.StatusCode != 200 {
			t.Fatalf("/token %s: %d %s", form.Get("grant_type"), res.StatusCode, body)
		}
		var tr authdtest.TokenResponse
		if err := json.Unmarshal(body, &tr); err != nil {
			t.Fatal(err)
		}
		return tr
	}
	login := grant(url.Values{"grant_type": {"password"}, "username": {"nadia"}, "password": {userPW},
		"client_id": {"web-app"}})
	refreshed := grant(url.Values{"grant_type": {"refresh_token"}, "refresh_token": {login.RefreshToken}})
	plain := grant(url.Values{"grant_type": {"password"}, "username": {"nadia"}, "password": {userPW}})
	svc := grant(url.Values{"grant_type": {"client_credentials"}, "client_id": {svcUser}, "client_secret": {svcSecret}})

	user := func(sid, client string) map[string]any {
		return map[string]any{"iss": authdtest.Issuer, "aud": []any{authdtest.Audience}, "sub": uid,
			"sid": sid, "role": "user", "client_id": client}
	}
	// Signed with authd's own key: only what the case names is wrong.
	signed := func(claims jwt.MapClaims, with *keys.Key) string {
		t.Helper()
		k := env.Keys.Current().Signing()
		if with == nil {
			with = k
		}
		tok := jwt.NewWithClaims(k.Method(), claims)
		tok.Header["kid"], tok.Header["typ"] = k.ID, token.Type
		s, err := tok.SignedString(with.Private())
		if err != nil {
			t.Fatal(err)
		}
		return s
	}
	now := env.Clock.Now()
	claims := func(drop string) jwt.MapClaims {
		c := jwt.MapClaims{"iss": authdtest.Issuer, "sub": uid, "aud": []string{authdtest.Audience},
			"iat": now.Unix(), "nbf": now.Unix(), "exp": now.Add(5 * time.Minute).Unix(), "jti": uuid.NewString(),
			"sid": login.SID, "role": "user", "client_id": "web-app"}
		delete(c, drop)
		return c
	}
	otherAPI, err := token.NewSigner(env.Keys, authdtest.Issuer, "another-api", 5*time.Minute, env.Clock).
		MintAccess(token.Access{Subject: uid, SID: login.SID, Role: "user", ClientID: "web-app", NotAfter: now.Add(time.Hour)})
	if err != nil {
		t.Fatal(err)
	}
	foreign, err := keys.Generate(env.Keys.Current().Signing().Alg)
	if err != nil {
		t.Fatal(err)
	}
	return []nodeCase{
		{Name: "password grant naming its client", Token: login.AccessToken, Audience: authdtest.Audience,
			Want: "valid", Claims: user(login.SID, "web-app")},
		{Name: "refresh keeps the client", Token: refreshed.AccessToken, Audience: authdtest.Audience,
			Want: "valid", Claims: user(login.SID, "web-app")},
		{Name: "password grant naming no client", Token: plain.AccessToken, Audience: authdtest.Audience,
			Want: "valid", Claims: user(plain.SID, "authd")},
		{Name: "client_credentials", Token: svc.AccessToken, Audience: authdtest.Audience, Want: "valid",
			Claims: map[string]any{"sub": svcID, "role": "service", "client_id": svcUser, "sid": svc.SID}},
		{Name: "a live token checked by a resource server of another audience", Token: login.AccessToken,
			Audience: "another-api", Want: "invalid", Error: `"aud"`},
		{Name: "a token of another audience", Token: otherAPI.Token, Audience: authdtest.Audience,
			Want: "invalid", Error: `"aud"`},
		{Name: "a token without client_id (authd's before RFC 9068 conformance)", Token: signed(claims("client_id"), nil),
			Audience: authdtest.Audience, Want: "invalid", Error: `"client_id"`},
		{Name: "the same claims, well formed, are accepted", Token: signed(claims(""), nil),
			Audience: authdtest.Audience, Want: "valid", Claims: map[string]any{"client_id": "web-app"}},
		{Name: "a signature by a key that is not authd's", Token: signed(claims(""), foreign),
			Audience: authdtest.Audience, Want: "invalid", Error: "signature verification failed"},
	}
}

func runNode(t *testing.T, node string, env *authdtest.Env, cases []nodeCase) {
	t.Helper()
	runScript(t, node, env, "validate-access-token.mjs", cases, len(cases))
}

// runScript runs a node:test script of test/node against env with cases
// (n of them) in AUTHD_CASES, and fails unless all of them and the script's
// one other test pass.
func runScript(t *testing.T, node string, env *authdtest.Env, script string, cases any, n int) {
	t.Helper()
	if !strings.HasPrefix(env.URL, "http://127.0.0.1:") {
		t.Fatalf("the test server is at %s, not on 127.0.0.1", env.URL)
	}
	js, err := json.Marshal(cases)
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	cmd := exec.CommandContext(ctx, node, script)
	cmd.Dir = nodeDir
	cmd.Env = append(os.Environ(), "AUTHD_URL="+env.URL, "AUTHD_ISSUER="+authdtest.Issuer,
		"AUTHD_CASES="+string(js))
	out, err := cmd.CombinedOutput()
	t.Logf("node %s:\n%s", script, out)
	var exit *exec.ExitError
	switch {
	case errors.As(err, &exit):
		t.Fatalf("%s failed (exit %d); its output is above", script, exit.ExitCode())
	case err != nil:
		t.Fatalf("running node: %v", err)
	}
	// node:test's summary: every case ran and passed.
	for _, want := range []string{"# pass " + strconv.Itoa(n+1), "# fail 0"} {
		if !strings.Contains(string(out), want) {
			t.Fatalf("the output does not say %q", want)
		}
	}
}
