package httpapi

import (
	"net/http"
	"time"

	"github.com/labstack/echo/v4"

	"github.com/seedc5a8123e/authd/internal/session"
)

type logoutResponse struct {
	AlreadyRevoked bool `json:"already_revoked"`
}

// logout is POST /logout?scope=local|global|others: the caller's session
// (the default), all of the caller's sessions (as /logout/all), or all but
// the caller's (as /logout/others). Only local accepts an already revoked
// session, for its idempotent answer; the route admits revoked sessions, so
// the wider scopes refuse them here.
func (h *handlers) logout(c echo.Context) error {
	q, err := parseQuery(c.Request().URL.RawQuery)
	if err != nil {
		return err
	}
	scope := q.Get("scope")
	switch scope {
	case "", "local":
	case "global", "others":
		if principal(c).Revoked {
			return session.ErrInvalidToken
		}
		if scope == "global" {
			return h.logoutAll(c)
		}
		return h.logoutOthers(c)
	default:
		return errBadScope
	}
	already, err := h.Sessions.Logout(c.Request().Context(), principal(c))
	if err != nil {
		return err
	}
	return c.JSON(http.StatusOK, logoutResponse{AlreadyRevoked: already})
}

var errBadScope = newProblem(http.StatusBadRequest, "scope must be local, global or others")

// logoutOthers is POST /logout/others: every live session of the caller but
// the current one, for instance after losing a phone.
func (h *handlers) logoutOthers(c echo.Context) error {
	n, err := h.Sessions.LogoutOthers(c.Request().Context(), principal(c))
	if err != nil {
		return err
	}
	return c.JSON(http.StatusOK, logoutAllResponse{Revoked: n})
}

type logoutAllResponse struct {
	Revoked int `json:"revoked"`
}

func (h *handlers) logoutAll(c echo.Context) error {
	n, err := h.Sessions.LogoutAll(c.Request().Context(), principal(c))
	if err != nil {
		return err
	}
	return c.JSON(http.StatusOK, logoutAllResponse{Revoked: n})
}

type revokeRequest struct {
	Reason string `json:"reason"`
}

type revokeResponse struct {
	SID             string    `json:"sid"`
	RevokedAt       time.Time `json:"revoked_at"`
	RevokedReason   string    `json:"revoked_reason"`
	RevokedByUserID *string   `json:"revoked_by_user_id"`
	AlreadyRevoked  bool      `json:"already_revoked"`
}

// revokeSession is POST /sessions/{sid}/revoke: an admin revokes any
// session, a user their own (session.Service.RevokeAs).
func (h *handlers) revokeSession(c echo.Context) error {
	var req revokeRequest
	if err := readJSON(c, &req, false); err != nil {
		return err
	}
	r, err := h.Sessions.RevokeAs(c.Request().Context(), principal(c), c.Param("sid"), req.Reason)
	if err != nil {
		return err
	}
	return c.JSON(http.StatusOK, revokeResponse{
		SID: r.SID, RevokedAt: r.RevokedAt.UTC(), RevokedReason: r.RevokedReason,
		RevokedByUserID: r.RevokedByUserID, AlreadyRevoked: r.AlreadyRevoked,
	})
}

type revokeAllResponse struct {
	NBF int64 `json:"nbf"`
	Exp int64 `json:"exp"`
}

// revokeAll is POST /sessions/revoke-all (admin): the issuer-wide cutoff,
// for incident response. Every token minted before nbf, of every user, the
// caller's own included, is denied from now on.
func (h *handlers) revokeAll(c echo.Context) error {
	var req revokeRequest
	if err := readJSON(c, &req, false); err != nil {
		return err
	}
	p := principal(c)
	cut, err := h.Sessions.RevokeAll(c.Request().Context(), req.Reason, &p.UserID)
	if err != nil {
		return err
	}
	return c.JSON(http.StatusOK, revokeAllResponse{NBF: cut.NBF, Exp: cut.Exp})
}
