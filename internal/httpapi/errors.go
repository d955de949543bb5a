package httpapi

import (
	"errors"
	"net/http"
	"strings"

	"github.com/labstack/echo/v4"

	"github.com/seedc5a8123e/authd/internal/account"
	"github.com/seedc5a8123e/authd/internal/feed"
	"github.com/seedc5a8123e/authd/internal/session"
	"github.com/seedc5a8123e/authd/internal/throttle"
)

// This file is the only one that knows HTTP statuses for domain errors.

// oauthError is an RFC 6749 section 5.2 error, used on /token only.
type oauthError struct {
	Status      int    `json:"-"`
	Code        string `json:"error"`
	Description string `json:"error_description,omitempty"`
}

func (e *oauthError) Error() string { return e.Code + ": " + e.Description }

func invalidRequest(desc string) *oauthError {
	return &oauthError{http.StatusBadRequest, "invalid_request", desc}
}

// problem is an RFC 9457 problem details body, used everywhere but /token.
type problem struct {
	Type   string `json:"type"`
	Title  string `json:"title"`
	Status int    `json:"status"`
	Detail string `json:"detail,omitempty"`
	// bearerError, when set, goes into WWW-Authenticate (RFC 6750 section 3).
	bearerError string
}

func (p *problem) Error() string { return p.Title + ": " + p.Detail }

func newProblem(status int, detail string) *problem {
	return &problem{Type: "about:blank", Title: http.StatusText(status), Status: status, Detail: detail}
}

var (
	errBodyTooLarge = &problem{Type: "about:blank", Title: http.StatusText(http.StatusRequestEntityTooLarge),
		Status: http.StatusRequestEntityTooLarge, Detail: "request body exceeds 64 KiB"}
	errNoToken = &problem{Type: "about:blank", Title: "Unauthorized", Status: http.StatusUnauthorized,
		Detail: "a bearer access token is required"}
	errBadToken = &problem{Type: "about:blank", Title: "Unauthorized", Status: http.StatusUnauthorized,
		Detail: "the access token is invalid, expired or revoked", bearerError: "invalid_token"}
)

// tokenError maps a domain error from a grant to its RFC 6749 error.
func tokenError(err error) error {
	var oe *oauthError
	switch {
	case errors.As(err, &oe):
		return oe
	case errors.Is(err, session.ErrInvalidCredentials):
		return &oauthError{http.StatusBadRequest, "invalid_grant", "invalid username or password"}
	case errors.Is(err, session.ErrInvalidClient):
		return &oauthError{http.StatusUnauthorized, "invalid_client", "client authentication failed"}
	case errors.Is(err, session.ErrRefreshReused):
		return &oauthError{http.StatusBadRequest, "invalid_grant", "refresh token was already used; the session has been revoked"}
	case errors.Is(err, session.ErrInvalidRefresh):
		return &oauthError{http.StatusBadRequest, "invalid_grant", "refresh token is invalid, expired or revoked"}
	case errors.As(err, new(*throttle.LimitedError)): // Retry-After: throttled, account_routes.go
		return &oauthError{http.StatusTooManyRequests, "invalid_request", "too many failed attempts; retry later"}
	}
	return err
}

// toProblem maps any other error to a problem body; ok is false for errors
// nobody mapped, which become a generic 500.
func toProblem(err error) (*problem, bool) {
	var p *problem
	var pe *account.PolicyError
	var he *echo.HTTPError
	var mbe *http.MaxBytesError
	switch {
	case errors.As(err, &p):
		return p, true
	case errors.As(err, &mbe):
		return errBodyTooLarge, true
	case errors.Is(err, session.ErrInvalidToken):
		return errBadToken, true
	case errors.As(err, new(*throttle.LimitedError)): // Retry-After: throttledCall, account_routes.go
		return newProblem(http.StatusTooManyRequests, "too many failed attempts; retry later"), true
	case errors.Is(err, session.ErrForbidden):
		return newProblem(http.StatusForbidden, "the caller's role does not allow this operation"), true
	case errors.Is(err, session.ErrNotFound):
		return newProblem(http.StatusNotFound, "no session has this id"), true
	case errors.Is(err, session.ErrMalformedSID):
		return newProblem(http.StatusBadRequest, "the session id must be a UUID"), true
	case errors.Is(err, session.ErrBadReason):
		return newProblem(http.StatusBadRequest, session.ErrBadReason.Error()), true
	case errors.Is(err, feed.ErrBadSince):
		return newProblem(http.StatusBadRequest, "since must be Unix seconds as decimal digits"), true
	case errors.Is(err, account.ErrUsernameTaken):
		return newProblem(http.StatusConflict, "the username is taken"), true
	case errors.Is(err, account.ErrUserNotFound):
		return newProblem(http.StatusNotFound, "no user has this id"), true
	case errors.As(err, &pe):
		return newProblem(http.StatusBadRequest, pe.Rule), true
	// Account lifecycle.
	case errors.Is(err, account.ErrMalformedUserID):
		return newProblem(http.StatusBadRequest, "the user id must be a UUID"), true
	case errors.Is(err, account.ErrLastAdmin):
		return newProblem(http.StatusConflict, "cannot disable or demote the last enabled admin"), true
	case errors.Is(err, account.ErrWrongPassword):
		return newProblem(http.StatusForbidden, "the current password is wrong"), true
	case errors.Is(err, account.ErrBadCursor):
		return newProblem(http.StatusBadRequest, "the cursor is malformed; use next_cursor from the previous page"), true
	case errors.Is(err, account.ErrBadLimit):
		return newProblem(http.StatusBadRequest, account.ErrBadLimit.Error()), true
	case errors.As(err, &he):
		msg := http.StatusText(he.Code)
		if he.Code == http.StatusRequestEntityTooLarge {
			return errBodyTooLarge, true
		}
		return newProblem(he.Code, strings.ToLower(msg)), he.Code < 500
	}
	return nil, false
}

// handleError writes every error a handler or middleware returns. Unmapped
// errors are logged once, with the request id, and answered generically.
func (h *handlers) handleError(err error, c echo.Context) {
	if c.Response().Committed {
		return
	}
	if c.Path() == "/token" || c.Request().URL.Path == "/token" {
		h.writeTokenError(c, err)
		return
	}
	p, ok := toProblem(err)
	if !ok {
		h.logInternal(c, err)
		p = newProblem(http.StatusInternalServerError, "")
	}
	if p.Status == http.StatusUnauthorized {
		challenge := `Bearer realm="authd"`
		if p.bearerError != "" {
			challenge += `, error="` + p.bearerError + `"`
		}
		c.Response().Header().Set(echo.HeaderWWWAuthenticate, challenge)
	}
	c.Response().Header().Set(echo.HeaderContentType, "application/problem+json")
	c.Response().WriteHeader(p.Status)
	_ = jsonEncode(c.Response(), p)
}

func (h *handlers) writeTokenError(c echo.Context, err error) {
	var oe *oauthError
	if !errors.As(tokenError(err), &oe) {
		// Body limit and content type problems keep their status, with an
		// RFC 6749 body so OAuth clients can still read them.
		if p, ok := toProblem(err); ok {
			oe = &oauthError{p.Status, "invalid_request", p.Detail}
		} else {
			h.logInternal(c, err)
			oe = &oauthError{http.StatusInternalServerError, "server_error", "internal error"}
		}
	}
	hd := c.Response().Header()
	hd.Set("Cache-Control", "no-store")
	hd.Set("Pragma", "no-cache")
	if oe.Status == http.StatusUnauthorized {
		hd.Set(echo.HeaderWWWAuthenticate, `Basic realm="authd"`)
	}
	_ = c.JSON(oe.Status, oe)
}

func (h *handlers) logInternal(c echo.Context, err error) {
	h.Log.ErrorContext(c.Request().Context(), "internal error",
		"request_id", c.Response().Header().Get(echo.HeaderXRequestID),
		"path", c.Request().URL.Path, "err", err)
}
