package httpapi

import (
	"compress/gzip"

	"github.com/labstack/echo/v4"
	"github.com/labstack/echo/v4/middleware"

	"github.com/seedc5a8123e/authd/internal/session"
)

func (h *handlers) routes(e *echo.Echo) {
	e.GET("/healthz", h.healthz)
	e.GET("/readyz", h.readyz)
	e.GET("/.well-known/jwks.json", h.jwks)
	e.GET("/.well-known/oauth-authorization-server", h.metadata)

	e.POST("/token", h.token)
	h.accountRoutes(e)

	// Only /logout accepts an already revoked session, for its idempotent answer.
	e.POST("/logout", h.logout, h.authenticate(true))
	e.POST("/logout/all", h.logoutAll, h.authenticate(false))
	e.POST("/sessions/:sid/revoke", h.adminRevoke, h.authenticate(false, session.RoleAdmin))
	e.GET("/sessions/revoked", h.revokedFeed, h.authenticate(false, session.RoleService, session.RoleAdmin),
		// BestSpeed: the snapshot is mostly random UUIDs, so higher levels
		// cost several times the CPU for a few percent of bytes.
		middleware.GzipWithConfig(middleware.GzipConfig{Level: gzip.BestSpeed}))

	if h.Metrics != nil && !h.MetricsElsewhere {
		e.GET("/metrics", echo.WrapHandler(h.Metrics.Handler()))
	}
}
