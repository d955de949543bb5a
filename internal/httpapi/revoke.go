package httpapi

import (
	"net/http"
	"time"

	"github.com/labstack/echo/v4"
)

type logoutResponse struct {
	AlreadyRevoked bool `json:"already_revoked"`
}

func (h *handlers) logout(c echo.Context) error {
	already, err := h.Sessions.Logout(c.Request().Context(), principal(c))
	if err != nil {
		return err
	}
	return c.JSON(http.StatusOK, logoutResponse{AlreadyRevoked: already})
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

func (h *handlers) adminRevoke(c echo.Context) error {
	var req revokeRequest
	if err := readJSON(c, &req, false); err != nil {
		return err
	}
	admin := principal(c).UserID // the route admits admins only
	r, err := h.Sessions.RevokeSession(c.Request().Context(), c.Param("sid"), req.Reason, &admin)
	if err != nil {
		return err
	}
	return c.JSON(http.StatusOK, revokeResponse{
		SID: r.SID, RevokedAt: r.RevokedAt.UTC(), RevokedReason: r.RevokedReason,
		RevokedByUserID: r.RevokedByUserID, AlreadyRevoked: r.AlreadyRevoked,
	})
}
