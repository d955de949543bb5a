// Package httpapi is authd's HTTP surface on Echo: thin handlers that parse,
// call the domain packages, and write the answer. Statuses live in errors.go,
// routes in routes.go.
package httpapi

import (
	"log/slog"
	"net"
	"net/netip"
	"time"

	"github.com/labstack/echo/v4"
	"github.com/labstack/echo/v4/middleware"

	"github.com/seedc5a8123e/authd/internal/account"
	"github.com/seedc5a8123e/authd/internal/auditlog"
	"github.com/seedc5a8123e/authd/internal/console"
	"github.com/seedc5a8123e/authd/internal/feed"
	"github.com/seedc5a8123e/authd/internal/fleet"
	"github.com/seedc5a8123e/authd/internal/keys"
	"github.com/seedc5a8123e/authd/internal/metrics"
	"github.com/seedc5a8123e/authd/internal/postgres"
	"github.com/seedc5a8123e/authd/internal/session"
	"github.com/seedc5a8123e/authd/internal/statuslist"
)

// MaxBodyBytes is the largest request body accepted (413 above it).
const MaxBodyBytes = 64 << 10

// RequestTimeout bounds each request's context, and so its database calls.
const RequestTimeout = 10 * time.Second

// Deps is everything the HTTP layer calls.
type Deps struct {
	DB       *postgres.DB // readiness only: every other call goes through a domain service
	Sessions *session.Service
	Accounts *account.Service
	Audit    *auditlog.Service
	Feed     *feed.Service
	Fleet    *fleet.Tracker
	// StatusLists serves GET /statuslists; nil (AUTHD_STATUS_LIST=off): no
	// such route, and the metadata does not name it.
	StatusLists *statuslist.Service
	Keys        keys.Source
	Log         *slog.Logger
	// IssuerURL is the iss claim and the base of the metadata's URLs.
	IssuerURL      string
	TrustedProxies []netip.Prefix
	// Metrics counts requests, feed polls and throttled logins, and is
	// served on GET /metrics unless MetricsElsewhere (a separate listener
	// serves it, AUTHD_METRICS_ADDR). Nil: nothing is counted or served.
	Metrics          *metrics.Metrics
	MetricsElsewhere bool
	// Console, when set, serves the admin console's pages under
	// console.Prefix, behind the same middleware as the API (request ids,
	// logging, body limit, timeout); nil: AUTHD_CONSOLE=off, no such route.
	Console *console.Console
}

type handlers struct {
	Deps
}

// NewServer returns the configured Echo instance with every route.
func NewServer(d Deps) *echo.Echo {
	e := echo.New()
	e.HideBanner, e.HidePort = true, true
	e.IPExtractor = ipExtractor(d.TrustedProxies)
	h := &handlers{Deps: d}
	e.HTTPErrorHandler = h.handleError

	routes := map[string]bool{} // filled below, read-only once serving
	e.Use(rememberClient)
	e.Use(h.countRequests(routes))
	e.Use(requestID())
	e.Use(h.recoverPanics)
	e.Use(h.logRequests())
	e.Use(securityHeaders)
	e.Use(limitBody)
	e.Use(auditOrigin)
	e.Use(middleware.ContextTimeoutWithConfig(middleware.ContextTimeoutConfig{Timeout: RequestTimeout}))
	h.routes(e)
	for _, r := range e.Routes() {
		if r.Method != echo.RouteNotFound {
			routes[r.Path] = true
		}
	}
	return e
}

// ipExtractor believes X-Forwarded-For only from the configured proxies;
// with none configured the client address is the connection's.
func ipExtractor(trusted []netip.Prefix) echo.IPExtractor {
	if len(trusted) == 0 {
		return echo.ExtractIPDirect()
	}
	opts := []echo.TrustOption{echo.TrustLoopback(false), echo.TrustLinkLocal(false), echo.TrustPrivateNet(false)}
	for _, p := range trusted {
		_, n, _ := net.ParseCIDR(p.String())
		opts = append(opts, echo.TrustIPRange(n))
	}
	return echo.ExtractIPFromXFFHeader(opts...)
}
