package httpapi

import (
	"fmt"
	"log/slog"
	"net/http"
	"time"

	"github.com/labstack/echo/v4"
	"github.com/labstack/echo/v4/middleware"

	"github.com/seedc5a8123e/authd/internal/metrics"
)

// logRequests writes one line per request. It logs the route and path, never
// the query string or body, so no credential can reach the log.
func (h *handlers) logRequests() echo.MiddlewareFunc {
	return middleware.RequestLoggerWithConfig(middleware.RequestLoggerConfig{
		LogStatus: true, LogLatency: true, LogMethod: true, LogURIPath: true, LogRoutePath: true,
		LogRequestID: true, LogRemoteIP: true, LogResponseSize: true, HandleError: true,
		LogValuesFunc: func(c echo.Context, v middleware.RequestLoggerValues) error {
			h.Log.LogAttrs(c.Request().Context(), levelFor(v.Status), "request",
				slog.String("method", v.Method), slog.String("path", v.URIPath), slog.String("route", v.RoutePath),
				slog.Int("status", v.Status), slog.Duration("latency", v.Latency), slog.String("request_id", v.RequestID),
				slog.String("remote_ip", v.RemoteIP), slog.Int64("bytes_out", v.ResponseSize))
			return nil
		},
	})
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
