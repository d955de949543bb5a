package httpapi

import (
	"net/http"
	"time"

	"github.com/labstack/echo/v4"

	"github.com/seedc5a8123e/authd/internal/postgres"
)

type changePasswordRequest struct {
	CurrentPassword string `json:"current_password"`
	NewPassword     string `json:"new_password"`
}

type revokedCountResponse struct {
	Revoked int `json:"revoked"`
}

// changePassword is POST /me/password: every other session of the caller is
// revoked, the caller's own stays live (throttled like logins:
// account.Service.ChangePassword).
func (h *handlers) changePassword(c echo.Context) error {
	var req changePasswordRequest
	if err := readJSON(c, &req, true); err != nil {
		return err
	}
	n, err := h.Accounts.ChangePassword(c.Request().Context(), principal(c), req.CurrentPassword, req.NewPassword, c.RealIP())
	if err != nil {
		return err
	}
	return c.JSON(http.StatusOK, revokedCountResponse{Revoked: n})
}

type sessionJSON struct {
	SID             string     `json:"sid"`
	CreatedAt       time.Time  `json:"created_at"`
	LastRefreshedAt *time.Time `json:"last_refreshed_at"`
	ExpiresAt       time.Time  `json:"expires_at"`
	UserAgent       *string    `json:"user_agent"`
	IP              *string    `json:"ip"`
	Current         bool       `json:"current"`
	RevokedAt       *time.Time `json:"revoked_at"`
	RevokedReason   *string    `json:"revoked_reason"`
}

func utcPtr(t *time.Time) *time.Time {
	if t == nil {
		return nil
	}
	u := t.UTC()
	return &u
}

func toSessionJSON(s postgres.Session, currentSID string) sessionJSON {
	return sessionJSON{
		SID: s.ID, CreatedAt: s.CreatedAt.UTC(), LastRefreshedAt: utcPtr(s.LastRefreshedAt),
		ExpiresAt: s.ExpiresAt.UTC(), UserAgent: s.UserAgent, IP: s.IP, Current: s.ID == currentSID,
		RevokedAt: utcPtr(s.RevokedAt), RevokedReason: s.RevokedReason,
	}
}

// mySessions is GET /sessions: the caller's own sessions, nobody else's.
func (h *handlers) mySessions(c echo.Context) error {
	return h.listSessions(c, principal(c).UserID)
}

// listSessions writes a page of userID's sessions, marking the caller's.
func (h *handlers) listSessions(c echo.Context, userID string) error {
	all, err := includeRevoked(c)
	if err != nil {
		return err
	}
	cursor, limit, err := pageParams(c)
	if err != nil {
		return err
	}
	p, err := h.Accounts.Sessions(c.Request().Context(), userID, all, cursor, limit)
	if err != nil {
		return err
	}
	cur := principal(c).SID
	items := make([]sessionJSON, 0, len(p.Items))
	for _, s := range p.Items {
		items = append(items, toSessionJSON(s, cur))
	}
	return c.JSON(http.StatusOK, newList(items, p.NextCursor))
}
