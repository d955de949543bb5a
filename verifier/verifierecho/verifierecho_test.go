package verifierecho_test

import (
	"context"
	"net/http"
	"net/http/httptest"
	"testing"

	"github.com/labstack/echo/v4"

	"github.com/seedc5a8123e/authd/verifier"
	"github.com/seedc5a8123e/authd/verifier/verifierecho"
	"github.com/seedc5a8123e/authd/verifier/verifiertest"
)

// The adapter answers like the net/http middleware; token checks themselves
// are covered in package verifier and internal/e2e.
func TestMiddlewareRejectsMissingToken(t *testing.T) {
	e := echo.New()
	var v *verifier.Verifier // not reached: no token means no Verify call
	e.GET("/", func(c echo.Context) error {
		_, ok := verifierecho.Claims(c)
		if !ok {
			t.Error("handler reached without claims")
		}
		return c.NoContent(http.StatusOK)
	}, verifierecho.Middleware(v))
	rec := httptest.NewRecorder()
	e.ServeHTTP(rec, httptest.NewRequest(http.MethodGet, "/", nil))
	if rec.Code != http.StatusUnauthorized || rec.Header().Get("WWW-Authenticate") != `Bearer realm="authd"` {
		t.Fatalf("got %d %q", rec.Code, rec.Header().Get("WWW-Authenticate"))
	}
}

// TestMiddlewarePassesClaims: with a Verifier behind it the adapter hands
// the claims to Echo handlers and enforces RequireRole.
func TestMiddlewarePassesClaims(t *testing.T) {
	authd := verifiertest.NewServer(t)
	v, err := verifier.New(context.Background(), authd.Config())
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = v.Close() })
	e := echo.New()
	e.GET("/admin", func(c echo.Context) error {
		claims, ok := verifierecho.Claims(c)
		if !ok {
			t.Error("handler reached without claims")
			return c.NoContent(http.StatusInternalServerError)
		}
		return c.String(http.StatusOK, claims.Subject)
	}, verifierecho.Middleware(v, verifier.RequireRole("admin")))

	const sid = "9a8b7c6d-5e4f-4a3b-9c2d-1e0f9a8b7c6d"
	for role, want := range map[string]int{"admin": http.StatusOK, "user": http.StatusForbidden} {
		req := httptest.NewRequest(http.MethodGet, "/admin", nil)
		req.Header.Set("Authorization", "Bearer "+authd.Mint("alice", sid, role))
		rec := httptest.NewRecorder()
		e.ServeHTTP(rec, req)
		if rec.Code != want || (want == http.StatusOK && rec.Body.String() != "alice") {
			t.Errorf("role %s: %d %q, want %d", role, rec.Code, rec.Body, want)
		}
	}
}
