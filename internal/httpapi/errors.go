package httpapi

import (
	"context"
	"errors"
	"net/http"
	"strconv"
	"strings"

	"github.com/labstack/echo/v4"

	"github.com/seedc5a8123e/authd/internal/account"
	"github.com/seedc5a8123e/authd/internal/auditlog"
	"github.com/seedc5a8123e/authd/internal/feed"
	"github.com/seedc5a8123e/authd/internal/postgres"
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
	errTimeout      = newProblem(http.StatusServiceUnavailable, "the request took too long; retry later")
	errBodyTooLarge = &problem{Type: "about:blank", Title: http.StatusText(http.StatusRequestEntityTooLarge),
		Status: http.StatusRequestEntityTooLarge, Detail: "request body exceeds 64 KiB"}
	errNoToken = &problem{Type: "about:blank", Title: "Unauthorized", Status: http.StatusUnauthorized,
		Detail: "a bearer access token is required"}
	errBadToken = &problem{Type: "about:blank", Title: "Unauthorized", Status: http.StatusUnauthorized,
		Detail: "the access token is invalid, expired or revoked", bearerError: "invalid_token"}
)

// errInvalidClient is every failed client authentication on /token.
var errInvalidClient = &oauthError{http.StatusUnauthorized, "invalid_client", session.ErrInvalidClient.Error()}

// errThrottled is both tables' answer to a *throttle.LimitedError; the
// Retry-After header comes from the error itself (handleError).
const (
	errThrottled = "too many failed attempts; retry later"
	errBusy      = "too many logins in progress from this address; retry shortly"
)

// throttledText is the description of a *throttle.LimitedError.
func throttledText(le *throttle.LimitedError) string {
	if le.Reason == throttle.ReasonInFlight {
		return errBusy
	}
	return errThrottled
}

// errUnavailable answers a database that cannot be reached or does not
// answer in time: 503 with Retry-After (unavailableRetry seconds), never a
// 500, so clients and load balancers retry instead of giving up.
const (
	errUnavailable   = "the database is unavailable; retry shortly"
	unavailableRetry = "2"
)

// tokenErrors maps domain errors from the grants to RFC 6749 errors. An
// empty description is the sentinel's own text.
var tokenErrors = []struct {
	err    error
	status int
	code   string
	desc   string
}{
	{session.ErrInvalidCredentials, http.StatusBadRequest, "invalid_grant", ""},
	{session.ErrInvalidClient, http.StatusUnauthorized, "invalid_client", ""},
	{session.ErrRefreshReused, http.StatusBadRequest, "invalid_grant", ""},
	{session.ErrInvalidRefresh, http.StatusBadRequest, "invalid_grant", ""},
	{session.ErrRefreshRaced, http.StatusBadRequest, "invalid_grant", ""},
	{session.ErrUnauthorizedClient, http.StatusBadRequest, "unauthorized_client", ""},
	{session.ErrClientMismatch, http.StatusBadRequest, "invalid_grant", ""},
	{session.ErrBadClientID, http.StatusBadRequest, "invalid_request", ""},
}

// problems maps domain errors to problem bodies everywhere but /token. An
// empty detail is the sentinel's own text; bearer, when set, is the RFC 6750
// error code of the WWW-Authenticate challenge.
var problems = []struct {
	err    error
	status int
	detail string
	bearer string
}{
	// The token is live but its role is not enough (RFC 6750 section 3.1):
	// the role check of a route, or a non-admin revoking a session not its
	// own. authd's roles are what the error calls scope.
	{session.ErrForbidden, http.StatusForbidden, "", "insufficient_scope"},
	{session.ErrNotFound, http.StatusNotFound, "no session has this id", ""},
	{session.ErrMalformedSID, http.StatusBadRequest, "the session id must be a UUID", ""},
	{session.ErrBadReason, http.StatusBadRequest, "", ""},
	{feed.ErrBadSince, http.StatusBadRequest, "", ""},
	{postgres.ErrNoCutoffSchema, http.StatusServiceUnavailable, "", ""},
	{account.ErrUsernameTaken, http.StatusConflict, "the username is taken", ""},
	{account.ErrUserNotFound, http.StatusNotFound, "no user has this id", ""},
	{account.ErrMalformedUserID, http.StatusBadRequest, "the user id must be a UUID", ""},
	{account.ErrLastAdmin, http.StatusConflict, "", ""},
	{account.ErrWrongPassword, http.StatusForbidden, "", ""},
	{account.ErrBadCursor, http.StatusBadRequest, "the cursor is malformed; use next_cursor from the previous page", ""},
	{account.ErrBadLimit, http.StatusBadRequest, "", ""},
	{auditlog.ErrBadCursor, http.StatusBadRequest, "", ""},
	{account.ErrSecretNotFound, http.StatusNotFound, "", ""},
	{postgres.ErrTooManySecrets, http.StatusConflict, "", ""},
	{postgres.ErrLastSecret, http.StatusConflict, "", ""},
	{postgres.ErrNotService, http.StatusConflict, "", ""},
	{postgres.ErrNoSecretSchema, http.StatusServiceUnavailable, "", ""},
	{auditlog.ErrBadLimit, http.StatusBadRequest, "", ""},
}

func orText(s string, err error) string {
	if s == "" {
		return err.Error()
	}
	return s
}

// tokenError maps a domain error from a grant to its RFC 6749 error; nil
// for errors the table does not know.
func tokenError(err error) *oauthError {
	var oe *oauthError
	if errors.As(err, &oe) {
		return oe
	}
	if le := (*throttle.LimitedError)(nil); errors.As(err, &le) {
		return &oauthError{http.StatusTooManyRequests, "invalid_request", throttledText(le)}
	}
	if postgres.Unavailable(err) {
		return &oauthError{http.StatusServiceUnavailable, "temporarily_unavailable", errUnavailable}
	}
	for _, e := range tokenErrors {
		if errors.Is(err, e.err) {
			return &oauthError{e.status, e.code, orText(e.desc, e.err)}
		}
	}
	return nil
}

// toProblem maps any other error to a problem body; ok is false for errors
// nobody mapped, which become a generic 500.
func toProblem(err error) (*problem, bool) {
	var p *problem
	var pe *account.PolicyError
	var he *echo.HTTPError
	var le *throttle.LimitedError
	switch {
	case errors.As(err, &p):
		return p, true
	case errors.Is(err, auditlog.ErrBadFilter):
		// The wrapped text says which filter: it names no secret.
		return newProblem(http.StatusBadRequest, strings.TrimPrefix(err.Error(), auditlog.ErrBadFilter.Error()+": ")), true
	case errors.Is(err, context.DeadlineExceeded):
		// The request's own deadline (the timeout middleware's 503) or a
		// database call's: either way a retry may succeed.
		return errTimeout, true
	case errors.As(err, new(*http.MaxBytesError)):
		return errBodyTooLarge, true
	case errors.Is(err, session.ErrInvalidToken):
		return errBadToken, true
	case errors.As(err, &le):
		return newProblem(http.StatusTooManyRequests, throttledText(le)), true
	case postgres.Unavailable(err) || errors.Is(err, feed.ErrStale):
		return newProblem(http.StatusServiceUnavailable, errUnavailable), true
	case errors.As(err, &pe):
		return newProblem(http.StatusBadRequest, pe.Rule), true
	case errors.As(err, &he):
		if he.Code == http.StatusRequestEntityTooLarge {
			return errBodyTooLarge, true
		}
		return newProblem(he.Code, strings.ToLower(http.StatusText(he.Code))), he.Code < 500
	}
	for _, e := range problems {
		if errors.Is(err, e.err) {
			p := newProblem(e.status, orText(e.detail, e.err))
			p.bearerError = e.bearer
			return p, true
		}
	}
	return nil, false
}

// oauthPaths answer errors with RFC 6749 bodies, everything else with
// problem details.
var oauthPaths = map[string]bool{"/token": true, "/revoke": true, "/introspect": true}

// handleError writes every error a handler or middleware returns. Unmapped
// errors are logged once, with the request id, and answered generically.
func (h *handlers) handleError(err error, c echo.Context) {
	if c.Response().Committed {
		return
	}
	if clientGone(c) {
		h.answerClientGone(c, err)
		return
	}
	if le := (*throttle.LimitedError)(nil); errors.As(err, &le) {
		c.Response().Header().Set("Retry-After", strconv.FormatInt(le.RetryAfterSeconds(), 10))
	} else if postgres.Unavailable(err) || errors.Is(err, context.DeadlineExceeded) || errors.Is(err, feed.ErrStale) {
		h.Log.WarnContext(c.Request().Context(), "database unavailable",
			"request_id", c.Response().Header().Get(echo.HeaderXRequestID), "path", c.Request().URL.Path, "err", err)
		c.Response().Header().Set("Retry-After", unavailableRetry)
	}
	if oauthPaths[c.Path()] || oauthPaths[c.Request().URL.Path] {
		h.writeTokenError(c, err)
		return
	}
	p, ok := toProblem(err)
	if !ok {
		h.logInternal(c, err)
		p = newProblem(http.StatusInternalServerError, "")
	}
	if p.Status == http.StatusUnauthorized || p.bearerError != "" {
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
	oe := tokenError(err)
	if oe == nil {
		// Body limit and content type problems keep their status, with an
		// RFC 6749 body so OAuth clients can still read them.
		if p, ok := toProblem(err); ok {
			code := "invalid_request"
			if p.Status == http.StatusServiceUnavailable {
				code = "temporarily_unavailable"
			}
			oe = &oauthError{p.Status, code, p.Detail}
		} else {
			h.logInternal(c, err)
			oe = &oauthError{http.StatusInternalServerError, "server_error", "internal error"}
		}
	}
	hd := c.Response().Header()
	hd.Set("Cache-Control", "no-store")
	hd.Set("Pragma", "no-cache")
	switch {
	case oe.Code == "invalid_token" || oe.Code == "insufficient_scope":
		hd.Set(echo.HeaderWWWAuthenticate, `Bearer realm="authd", error="`+oe.Code+`"`)
	case oe.Status == http.StatusUnauthorized:
		hd.Set(echo.HeaderWWWAuthenticate, `Basic realm="authd"`)
	}
	_ = c.JSON(oe.Status, oe)
}

func (h *handlers) logInternal(c echo.Context, err error) {
	h.Log.ErrorContext(c.Request().Context(), "internal error",
		"request_id", c.Response().Header().Get(echo.HeaderXRequestID),
		"path", c.Request().URL.Path, "err", err)
}
