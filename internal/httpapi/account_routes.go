package httpapi

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"strconv"

	"github.com/labstack/echo/v4"

	"github.com/seedc5a8123e/authd/internal/session"
	"github.com/seedc5a8123e/authd/internal/throttle"
)

// accountRoutes registers the account lifecycle endpoints (users, password
// changes, session lists).
func (h *handlers) accountRoutes(e *echo.Echo) {
	admin := h.authenticate(false, session.RoleAdmin)
	e.POST("/me/password", h.changePassword, h.authenticate(false))
	e.GET("/sessions", h.mySessions, h.authenticate(false))

	e.POST("/users", h.createUser, admin)
	e.GET("/users", h.listUsers, admin)
	e.GET("/users/:id", h.getUser, admin)
	e.PATCH("/users/:id", h.updateUser, admin)
	e.PUT("/users/:id/password", h.resetPassword, admin)
	e.GET("/users/:id/sessions", h.userSessions, admin)
	e.POST("/users/:id/sessions/revoke", h.revokeUserSessions, admin)
}

// throttled runs a password-checking grant under the brute-force throttle.
// Login keys live under "login:", apart from other throttled checks, so no
// client-chosen username can fill another check's count. The name is taken
// as given, so unknown and known usernames count alike.
func (h *handlers) throttled(c echo.Context, username string, grant func() (session.Grant, error)) (session.Grant, error) {
	return throttledCall(h, c, "login:"+username, grant, func(err error) bool {
		return errors.Is(err, session.ErrInvalidCredentials) || errors.Is(err, session.ErrInvalidClient)
	})
}

// throttledCall runs fn, which checks a password, under the throttle:
// refused at once while a delay lasts for key or the client IP, or while as
// many checks of either are in flight as the threshold still allows;
// otherwise claimed before fn runs and settled after it, as a failure if
// wrong tells fn's error is a wrong password, else as a success. Settling
// does not follow the request's cancellation: a client that hangs up must
// not leave its guess unrecorded.
func throttledCall[T any](h *handlers, c echo.Context, key string, fn func() (T, error), wrong func(error) bool) (T, error) {
	var zero T
	ctx, ip := c.Request().Context(), c.RealIP()
	if err := h.Throttle.Begin(ctx, key, ip); err != nil {
		if le := (*throttle.LimitedError)(nil); errors.As(err, &le) {
			c.Response().Header().Set("Retry-After", strconv.FormatInt(le.RetryAfterSeconds(), 10))
			h.Metrics.LoginThrottled()
		}
		return zero, err
	}
	v, err := fn()
	settle := context.WithoutCancel(ctx)
	if err != nil && wrong(err) {
		if ferr := h.Throttle.Fail(settle, key, ip); ferr != nil {
			// An unrecorded wrong guess must not be answered as one: the
			// caller gets a 500 (the claim stays in flight until it expires).
			return zero, fmt.Errorf("throttle: recording a wrong password: %w", ferr)
		}
		return v, err
	}
	if serr := h.Throttle.Succeed(settle, key, ip); serr != nil {
		// The call stands; the claim only lingers until it expires.
		h.Log.WarnContext(ctx, "throttle: settling an attempt failed", "err", serr)
	}
	return v, err
}

// listResponse is every paginated list: next_cursor is null on the last page.
type listResponse[T any] struct {
	Items      []T     `json:"items"`
	NextCursor *string `json:"next_cursor"`
}

func newList[T any](items []T, next string) listResponse[T] {
	l := listResponse[T]{Items: items}
	if l.Items == nil {
		l.Items = []T{}
	}
	if next != "" {
		l.NextCursor = &next
	}
	return l
}

// pageParams reads ?cursor= and ?limit=; an absent limit is 0 (the default).
func pageParams(c echo.Context) (cursor string, limit int, err error) {
	if raw := c.QueryParam("limit"); raw != "" {
		if limit, err = strconv.Atoi(raw); err != nil || limit < 1 {
			return "", 0, newProblem(http.StatusBadRequest, "limit must be an integer from 1 to 200")
		}
	}
	return c.QueryParam("cursor"), limit, nil
}

// includeRevoked reads ?include=, whose one value is "revoked".
func includeRevoked(c echo.Context) (bool, error) {
	switch c.QueryParam("include") {
	case "":
		return false, nil
	case "revoked":
		return true, nil
	}
	return false, newProblem(http.StatusBadRequest, "include must be \"revoked\" or absent")
}
