package verifierecho_test

import (
	"net/http"
	"net/http/httptest"
	"testing"

	"github.com/labstack/echo/v4"

	"github.com/seedc5a8123e/authd/verifier"
	"github.com/seedc5a8123e/authd/verifier/verifierecho"
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
