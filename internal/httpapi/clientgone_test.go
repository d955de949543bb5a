package httpapi_test

import (
	"context"
	"net/http"
	"net/http/httptest"
	"net/url"
	"strings"
	"testing"

	"github.com/seedc5a8123e/authd/internal/authdtest"
	"github.com/seedc5a8123e/authd/internal/httpapi"
)

// A client that hangs up mid-request cancels the request's context, so the
// refresh's database call fails. That is recorded as 499, never as a 500.
func TestClientGoneIsNotAServerError(t *testing.T) {
	t.Parallel()
	env := authdtest.Start(t, authdtest.Options{})
	env.CreateUser(t, "alice", "user", "correct horse battery")
	tok := env.Login(t, "alice", "correct horse battery")

	ctx, cancel := context.WithCancel(context.Background())
	cancel() // the client is gone before authd reaches the database
	form := url.Values{"grant_type": {"refresh_token"}, "refresh_token": {tok.RefreshToken}}
	req := httptest.NewRequest(http.MethodPost, "/token", strings.NewReader(form.Encode())).WithContext(ctx)
	req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	rec := httptest.NewRecorder()
	env.App.Handler.ServeHTTP(rec, req)
	if rec.Code != httpapi.StatusClientClosedRequest {
		t.Fatalf("status %d %s, want 499", rec.Code, rec.Body)
	}
	m := scrape(t, env)
	if got := m.get("authd_http_requests_total", "route", "/token", "code", "499"); got != 1 {
		t.Errorf("requests counted as 499: %v, want 1", got)
	}
	if got := m.get("authd_http_requests_total", "route", "/token", "code", "500"); got != 0 {
		t.Errorf("requests counted as 500: %v, want 0", got)
	}
	// The token was not rotated: the refresh's transaction never began.
	if res, body := refresh(t, env, tok.RefreshToken); res.StatusCode != http.StatusOK {
		t.Fatalf("refresh after the hang-up: %d %s, want 200", res.StatusCode, body)
	}
}
