package httpapi

import (
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"

	"github.com/labstack/echo/v4"
)

// TestRequestIDMiddleware checks requestID() on its own, as server.go is to
// install it in place of middleware.RequestID(): the id the handler sees on
// the request is the one the response carries.
func TestRequestIDMiddleware(t *testing.T) {
	e := echo.New()
	e.Use(requestID())
	var seen string
	e.GET("/", func(c echo.Context) error {
		seen = c.Request().Header.Get(echo.HeaderXRequestID)
		return c.NoContent(http.StatusNoContent)
	})
	for _, tc := range []struct {
		id   string
		keep bool
	}{
		{"abc-1.2_3", true}, {strings.Repeat("a", 128), true}, {"", false}, {strings.Repeat("a", 129), false},
		{"a b", false}, {"a\x00b", false}, {"é", false}, {"a/b", false},
	} {
		req := httptest.NewRequest(http.MethodGet, "/", nil)
		if tc.id != "" {
			req.Header.Set(echo.HeaderXRequestID, tc.id)
		}
		rec := httptest.NewRecorder()
		e.ServeHTTP(rec, req)
		got := rec.Header().Get(echo.HeaderXRequestID)
		if got != seen || !validRequestID(got) || (got == tc.id) != tc.keep {
			t.Errorf("id %.20q: answered %.20q, handler saw %.20q", tc.id, got, seen)
		}
	}
}
