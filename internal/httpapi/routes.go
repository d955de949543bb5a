package httpapi

import (
	"compress/gzip"

	"github.com/labstack/echo/v4"
	"github.com/labstack/echo/v4/middleware"

	"github.com/seedc5a8123e/authd/internal/console"
	"github.com/seedc5a8123e/authd/internal/session"
	"github.com/seedc5a8123e/authd/internal/statuslist"
)

// routes registers every route authd serves.
func (h *handlers) routes(e *echo.Echo) {
	bearer := h.authenticate(false)
	admin := h.authenticate(false, session.RoleAdmin)

	e.GET("/healthz", h.healthz)
	e.GET("/readyz", h.readyz)
	e.GET("/.well-known/jwks.json", h.jwks)
	e.GET("/.well-known/oauth-authorization-server", h.metadata)

	e.POST("/token", h.token)
	e.POST("/revoke", h.revokeToken)
	e.POST("/introspect", h.introspect) // authenticates its caller itself: Basic or bearer

	// Only /logout accepts an already revoked session, for its idempotent answer.
	e.POST("/logout", h.logout, h.authenticate(true))
	e.POST("/logout/all", h.logoutAll, bearer)
	e.POST("/logout/others", h.logoutOthers, bearer)
	e.POST("/me/password", h.changePassword, bearer)
	e.GET("/sessions", h.mySessions, bearer)

	e.POST("/sessions/:sid/revoke", h.revokeSession, bearer) // its owner or an admin
	e.POST("/users", h.createUser, admin)
	e.GET("/users", h.listUsers, admin)
	e.GET("/users/:id", h.getUser, admin)
	e.PATCH("/users/:id", h.updateUser, admin)
	e.PUT("/users/:id/password", h.resetPassword, admin)
	e.GET("/users/:id/sessions", h.userSessions, admin)
	e.POST("/users/:id/secrets", h.addSecret, admin)
	e.DELETE("/users/:id/secrets/:secret", h.removeSecret, admin)
	e.POST("/users/:id/sessions/revoke", h.revokeUserSessions, admin)
	e.POST("/sessions/revoke-all", h.revokeAll, admin)
	e.GET("/audit", h.listAudit, admin)
	e.GET("/verifiers", h.listVerifiers, admin)
	e.GET("/sessions/revoked", h.revokedFeed, h.authenticate(false, session.RoleService, session.RoleAdmin),
		// BestSpeed: the snapshot is mostly random UUIDs, so higher levels
		// cost several times the CPU for a few percent of bytes.
		middleware.GzipWithConfig(middleware.GzipConfig{Level: gzip.BestSpeed, Skipper: fullSnapshot}))

	if h.StatusLists != nil { // public, as the draft has it: verifiers and caches read them unauthenticated
		e.GET(statuslist.Path, h.statusListAggregation)
		e.GET(statuslist.Path+"/:id", h.statusList)
	}

	if h.Console != nil { // HTML for browsers, not the API: README's Console section, not openapi.yaml
		h.Console.Register(e.Group(console.Prefix))
	}

	if h.Metrics != nil && !h.MetricsElsewhere {
		e.GET("/metrics", echo.WrapHandler(h.Metrics.Handler()))
	}
}
