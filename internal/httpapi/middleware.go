package httpapi

import (
	"crypto/rand"
	"fmt"
	"log/slog"
	"net/http"
	"time"

	"github.com/labstack/echo/v4"
	"github.com/labstack/echo/v4/middleware"

	"github.com/seedc5a8123e/authd/internal/metrics"
)

// maxRequestIDLen caps a client-chosen X-Request-Id.
const maxRequestIDLen = 128

// validRequestID is the rule for a client-chosen X-Request-Id: 1 to 128
// characters of [A-Za-z0-9._-]. Anything else is replaced, never echoed or
// logged.
func validRequestID(id string) bool {
	if id == "" || len(id) > maxRequestIDLen {
		return false
	}
	for i := 0; i < len(id); i++ {
		switch c := id[i]; {
		case 'a' <= c && c <= 'z', 'A' <= c && c <= 'Z', '0' <= c && c <= '9', c == '.', c == '_', c == '-':
		default:
			return false
		}
	}
	return true
}

// newRequestID is 26 crypto-random base32 characters (130 bits).
func newRequestID() string { return rand.Text() }

// requestID is the X-Request-Id middleware: a valid client id is kept, any
// other (or none) is replaced with a fresh random one. The id is set on the
// response and on the request, so everything after it (the request log, the
// error handler) sees the same one.
func requestID() echo.MiddlewareFunc {
	return middleware.RequestIDWithConfig(middleware.RequestIDConfig{
		Generator: newRequestID,
		RequestIDHandler: func(c echo.Context, id string) {
			adoptRequestID(c, id)
		},
	})
}

// adoptRequestID settles the request's id on id, or on a fresh one when id
// breaks the rule.
func adoptRequestID(c echo.Context, id string) string {
	if !validRequestID(id) {
		id = newRequestID()
	}
	c.Response().Header().Set(echo.HeaderXRequestID, id)
	c.Request().Header.Set(echo.HeaderXRequestID, id)
	return id
}

// logRequests writes one line per request. It logs the route and path, never
// the query string or body, so no credential can reach the log. It enforces
// the request id rule itself as well (requestID), so an unchecked id set by
// an earlier middleware never reaches the log or the client.
func (h *handlers) logRequests() echo.MiddlewareFunc {
	logger := middleware.RequestLoggerWithConfig(middleware.RequestLoggerConfig{
		LogStatus: true, LogLatency: true, LogMethod: true, LogURIPath: true, LogRoutePath: true,
		LogRemoteIP: true, LogResponseSize: true, HandleError: true,
		LogValuesFunc: func(c echo.Context, v middleware.RequestLoggerValues) error {
			h.Log.LogAttrs(c.Request().Context(), levelFor(v.Status), "request",
				slog.String("method", v.Method), slog.String("path", v.URIPath), slog.String("route", v.RoutePath),
				slog.Int("status", v.Status), slog.Float64("latency_ms", float64(v.Latency)/float64(time.Millisecond)),
				slog.String("request_id", c.Response().Header().Get(echo.HeaderXRequestID)),
				slog.String("remote_ip", v.RemoteIP), slog.Int64("bytes_out", v.ResponseSize))
			return nil
		},
	})
	return func(next echo.HandlerFunc) echo.HandlerFunc {
		logged := logger(next)
		return func(c echo.Context) error {
			id := c.Response().Header().Get(echo.HeaderXRequestID)
			if id == "" {
				id = c.Request().Header.Get(echo.HeaderXRequestID)
			}
			adoptRequestID(c, id)
			return logged(c)
		}
	}
}

// countRequests records each request's route template, final status and
// duration. It runs outermost, so it sees the status the error handler
// wrote, panics included. A path that matched no registered route is
// labelled metrics.UnmatchedRoute: Echo reports a partial match's tree node
// there, and raw paths would let any client add series.
func (h *handlers) countRequests(routes map[string]bool) echo.MiddlewareFunc {
	return func(next echo.HandlerFunc) echo.HandlerFunc {
		if h.Metrics == nil {
			return next
		}
		return func(c echo.Context) error {
			start := time.Now()
			err := next(c)
			if err != nil {
				c.Error(err) // writes the answer; the handler ignores a committed response
			}
			route := c.Path()
			if !routes[route] {
				route = metrics.UnmatchedRoute
			}
			h.Metrics.HTTPRequest(route, c.Response().Status, time.Since(start))
			return err
		}
	}
}

// recoverPanics turns a panic into a logged 500 with a generic body.
func (h *handlers) recoverPanics(next echo.HandlerFunc) echo.HandlerFunc {
	return func(c echo.Context) (err error) {
		defer func() {
			if r := recover(); r != nil {
				err = fmt.Errorf("panic: %v", r)
			}
		}()
		return next(c)
	}
}

// securityHeaders sets the headers an API that hands out credentials wants
// on every answer.
func securityHeaders(next echo.HandlerFunc) echo.HandlerFunc {
	return func(c echo.Context) error {
		hd := c.Response().Header()
		hd.Set("X-Content-Type-Options", "nosniff")
		hd.Set("X-Frame-Options", "DENY")
		hd.Set("Referrer-Policy", "no-referrer")
		hd.Set("Content-Security-Policy", "default-src 'none'; frame-ancestors 'none'")
		return next(c)
	}
}

// limitBody caps every request body at MaxBodyBytes; reading past it fails
// with *http.MaxBytesError, answered as 413.
func limitBody(next echo.HandlerFunc) echo.HandlerFunc {
	return func(c echo.Context) error {
		r := c.Request()
		if r.ContentLength > MaxBodyBytes {
			return errBodyTooLarge
		}
		r.Body = http.MaxBytesReader(c.Response(), r.Body, MaxBodyBytes)
		return next(c)
	}
}

func levelFor(status int) slog.Level {
	if status >= 500 {
		return slog.LevelError
	}
	return slog.LevelInfo
}
