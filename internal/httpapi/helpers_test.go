package httpapi_test

import (
	"context"
	"encoding/json"
	"net/http"
	"net/url"
	"testing"

	"github.com/golang-jwt/jwt/v5"

	"github.com/seedc5a8123e/authd/internal/authdtest"
	"github.com/seedc5a8123e/authd/internal/postgres"
	"github.com/seedc5a8123e/authd/internal/token"
)

const pw = "correct horse battery"

type oauthErr struct {
	Error       string `json:"error"`
	Description string `json:"error_description"`
}

func decode[T any](t testing.TB, body []byte) T {
	t.Helper()
	var v T
	if err := json.Unmarshal(body, &v); err != nil {
		t.Fatalf("decode %T from %q: %v", v, body, err)
	}
	return v
}

func refresh(t testing.TB, env *authdtest.Env, rt string) (*http.Response, []byte) {
	t.Helper()
	return env.PostForm(t, "/token", url.Values{"grant_type": {"refresh_token"}, "refresh_token": {rt}})
}

func wantOAuthError(t testing.TB, res *http.Response, body []byte, status int, code string) {
	t.Helper()
	if res.StatusCode != status {
		t.Fatalf("status = %d, want %d; body %s", res.StatusCode, status, body)
	}
	if e := decode[oauthErr](t, body); e.Error != code {
		t.Fatalf("error = %q, want %q (%s)", e.Error, code, body)
	}
	if cc := res.Header.Get("Cache-Control"); cc != "no-store" {
		t.Fatalf("Cache-Control = %q, want no-store", cc)
	}
}

func session(t testing.TB, env *authdtest.Env, sid string) postgres.Session {
	t.Helper()
	s, err := env.DB.SessionByID(context.Background(), sid)
	if err != nil {
		t.Fatalf("session %s: %v", sid, err)
	}
	return s
}

// claimsOf reads a token's claims without verifying it.
func claimsOf(t testing.TB, tok string) token.Claims {
	t.Helper()
	var c token.Claims
	if _, _, err := jwt.NewParser().ParseUnverified(tok, &c); err != nil {
		t.Fatal(err)
	}
	return c
}
