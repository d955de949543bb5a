package httpapi

import (
	"encoding/json"
	"fmt"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/labstack/echo/v4"
	"github.com/labstack/echo/v4/middleware"

	"github.com/seedc5a8123e/authd/internal/pgtest"
)

// TestRequestTimeoutAnswers503 runs handlers that outlive the request's
// deadline behind the same ContextTimeout middleware NewServer installs
// (with a shorter timeout than RequestTimeout), answered by the real error
// handler. The middleware turns context.DeadlineExceeded into a 503
// *echo.HTTPError; the client must see that 503, not a 500.
func TestRequestTimeoutAnswers503(t *testing.T) {
	db := pgtest.NewDB(t)
	var logged strings.Builder
	h := &handlers{Deps: Deps{Log: slog.New(slog.NewTextHandler(&logged, nil))}}
	e := echo.New()
	e.HTTPErrorHandler = h.handleError
	e.Use(middleware.ContextTimeoutWithConfig(middleware.ContextTimeoutConfig{Timeout: 20 * time.Millisecond}))
	waitCtx := func(c echo.Context) error {
		<-c.Request().Context().Done()
		return fmt.Errorf("reading: %w", c.Request().Context().Err())
	}
	slowQuery := func(c echo.Context) error {
		_, err := db.Pool().Exec(c.Request().Context(), "SELECT pg_sleep(30)")
		return err
	}
	e.GET("/wait", waitCtx)
	e.GET("/query", slowQuery)
	e.POST("/token", slowQuery)

	for _, path := range []string{"/wait", "/query"} {
		t.Run(strings.TrimPrefix(path, "/"), func(t *testing.T) {
			rec := httptest.NewRecorder()
			e.ServeHTTP(rec, httptest.NewRequest(http.MethodGet, path, nil))
			var p problem
			if err := json.Unmarshal(rec.Body.Bytes(), &p); err != nil || rec.Code != http.StatusServiceUnavailable ||
				p.Status != http.StatusServiceUnavailable || rec.Header().Get(echo.HeaderContentType) != "application/problem+json" {
				t.Fatalf("%d %s %q, want a 503 problem", rec.Code, rec.Header().Get(echo.HeaderContentType), rec.Body)
			}
		})
	}
	t.Run("token", func(t *testing.T) {
		rec := httptest.NewRecorder()
		e.ServeHTTP(rec, httptest.NewRequest(http.MethodPost, "/token", nil))
		var oe oauthError
		if err := json.Unmarshal(rec.Body.Bytes(), &oe); err != nil || rec.Code != http.StatusServiceUnavailable || oe.Code == "" || oe.Code == "server_error" {
			t.Fatalf("%d %q, want a 503 with an RFC 6749 body", rec.Code, rec.Body)
		}
	})
	if strings.Contains(logged.String(), "internal error") {
		t.Errorf("a timeout was logged as an internal error: %s", logged.String())
	}
}
