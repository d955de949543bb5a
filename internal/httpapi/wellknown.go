package httpapi

import (
	"context"
	"net/http"
	"time"

	"github.com/labstack/echo/v4"
)

// jwksMaxAge lets verifiers cache the key set for five minutes. They refetch
// early when a token names an unknown kid, so a new signing key needs no
// wait; a retired key is removed only after its tokens have expired.
const jwksMaxAge = "public, max-age=300"

func (h *handlers) jwks(c echo.Context) error {
	c.Response().Header().Set("Cache-Control", jwksMaxAge)
	return c.JSON(http.StatusOK, h.Keys.Document())
}

func (h *handlers) healthz(c echo.Context) error {
	return c.JSON(http.StatusOK, map[string]string{"status": "ok"})
}

// readyz answers 200 only when the database answers within a second and the
// schema is at the version this binary expects.
func (h *handlers) readyz(c echo.Context) error {
	ctx, cancel := context.WithTimeout(c.Request().Context(), time.Second)
	defer cancel()
	if err := h.DB.Ping(ctx); err != nil {
		return newProblem(http.StatusServiceUnavailable, "database unreachable")
	}
	if err := h.DB.SchemaCurrent(ctx); err != nil {
		return newProblem(http.StatusServiceUnavailable, err.Error())
	}
	return c.JSON(http.StatusOK, map[string]string{"status": "ready"})
}
