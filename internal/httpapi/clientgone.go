package httpapi

import (
	"context"
	"errors"

	"github.com/labstack/echo/v4"
)

// StatusClientClosedRequest is what a request whose client went away
// before its answer is recorded as, in the request log and the metrics
// (nginx's 499). Nobody receives it. Without it such requests counted as
// 500s and logged at ERROR (issue 14): a database call cut short by the
// cancelled request context looks like a failure of the server.
const StatusClientClosedRequest = 499

// clientCtxKey holds the request's context as net/http made it.
const clientCtxKey = "authd.client_ctx"

// rememberClient keeps the request's own context before any middleware
// derives another: the timeout middleware cancels its derived context when
// the handler returns, before the error handler runs, so only the
// original tells a hang-up from a request that merely ended.
func rememberClient(next echo.HandlerFunc) echo.HandlerFunc {
	return func(c echo.Context) error {
		c.Set(clientCtxKey, c.Request().Context())
		return next(c)
	}
}

// clientGone reports whether c's client has gone: the request's own
// context was cancelled, which net/http does when the connection closes.
// Then the handler's error, whatever it is, is a consequence of that. A
// deadline (the timeout middleware, a database bound) is not this: that is
// the server's own slowness and stays a 503.
func clientGone(c echo.Context) bool {
	ctx, ok := c.Get(clientCtxKey).(context.Context)
	return ok && errors.Is(ctx.Err(), context.Canceled)
}

// answerClientGone records a request whose client went away: 499, no body,
// logged at INFO (levelFor) with the error, so a burst of hang-ups is
// visible without paging anyone.
func (h *handlers) answerClientGone(c echo.Context, err error) {
	h.Log.InfoContext(c.Request().Context(), "client went away before the answer",
		"request_id", c.Response().Header().Get(echo.HeaderXRequestID), "path", c.Request().URL.Path, "err", err)
	c.Response().WriteHeader(StatusClientClosedRequest)
}
