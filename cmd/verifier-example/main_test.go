package main

import (
	"context"
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/seedc5a8123e/authd/verifier"
	"github.com/seedc5a8123e/authd/verifier/verifiertest"
)

// A copy of this service keeps this test: verifiertest stands in for authd.
func TestRoutes(t *testing.T) {
	authd := verifiertest.NewServer(t)
	v, err := verifier.New(context.Background(), authd.Config())
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = v.Close() })
	h := routes(v)
	get := func(path, token string) *httptest.ResponseRecorder {
		req := httptest.NewRequest(http.MethodGet, path, nil)
		if token != "" {
			req.Header.Set("Authorization", "Bearer "+token)
		}
		rec := httptest.NewRecorder()
		h.ServeHTTP(rec, req)
		return rec
	}

	const sid = "9a8b7c6d-5e4f-4a3b-9c2d-1e0f9a8b7c6d"
	user, admin := authd.Mint("alice", sid, "user"), authd.Mint("root", "1f2e3d4c-5b6a-4978-8695-a4b3c2d1e0f9", "admin")
	if rec := get("/hello", user); rec.Code != http.StatusOK || !strings.HasPrefix(rec.Body.String(), "hello alice: role user, session "+sid) {
		t.Errorf("/hello: %d %q", rec.Code, rec.Body)
	}
	if rec := get("/hello", ""); rec.Code != http.StatusUnauthorized {
		t.Errorf("/hello without a token: %d", rec.Code)
	}
	if rec := get("/admin", user); rec.Code != http.StatusForbidden {
		t.Errorf("/admin as user: %d", rec.Code)
	}
	if rec := get("/admin", admin); rec.Code != http.StatusOK {
		t.Errorf("/admin as admin: %d", rec.Code)
	}

	authd.Revoke(sid)
	deadline := time.Now().Add(5 * time.Second)
	for get("/hello", user).Code != http.StatusUnauthorized {
		if time.Now().After(deadline) {
			t.Fatal("the logged-out session is still accepted")
		}
		time.Sleep(5 * time.Millisecond)
	}

	rec := get("/healthz", "")
	var health struct {
		Stale        bool `json:"stale"`
		DenylistSize int  `json:"denylist_size"`
	}
	if err := json.NewDecoder(rec.Body).Decode(&health); err != nil || rec.Code != http.StatusOK ||
		health.Stale || health.DenylistSize != 1 {
		t.Errorf("/healthz: %d %+v %v", rec.Code, health, err)
	}
}
