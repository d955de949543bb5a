package httpapi

import (
	"net/http"
	"time"

	"github.com/labstack/echo/v4"

	"github.com/seedc5a8123e/authd/internal/account"
	"github.com/seedc5a8123e/authd/internal/postgres"
)

type userJSON struct {
	ID         string     `json:"id"`
	Username   string     `json:"username"`
	Role       string     `json:"role"`
	Disabled   bool       `json:"disabled"`
	DisabledAt *time.Time `json:"disabled_at"`
	CreatedAt  time.Time  `json:"created_at"`
	UpdatedAt  time.Time  `json:"updated_at"`
}

func toUserJSON(u postgres.User) userJSON {
	return userJSON{
		ID: u.ID, Username: u.Username, Role: u.Role, Disabled: u.DisabledAt != nil,
		DisabledAt: utcPtr(u.DisabledAt), CreatedAt: u.CreatedAt.UTC(), UpdatedAt: u.UpdatedAt.UTC(),
	}
}

type createUserRequest struct {
	Username string  `json:"username"`
	Role     string  `json:"role"`
	Password *string `json:"password"`
}

type createUserResponse struct {
	userJSON
	// Password is the generated password, shown only this once.
	Password string `json:"password,omitempty"`
}

// createUser is POST /users; without a password one is generated and
// returned once.
func (h *handlers) createUser(c echo.Context) error {
	var req createUserRequest
	if err := readJSON(c, &req, true); err != nil {
		return err
	}
	generated := ""
	pw := ""
	if req.Password != nil {
		pw = *req.Password
	} else {
		var err error
		if generated, err = account.GeneratePassword(); err != nil {
			return err
		}
		pw = generated
	}
	u, err := h.Accounts.Create(c.Request().Context(), req.Username, req.Role, pw)
	if err != nil {
		return err
	}
	return c.JSON(http.StatusCreated, createUserResponse{userJSON: toUserJSON(u), Password: generated})
}

func (h *handlers) getUser(c echo.Context) error {
	u, err := h.Accounts.User(c.Request().Context(), c.Param("id"))
	if err != nil {
		return err
	}
	return c.JSON(http.StatusOK, toUserJSON(u))
}

// listUsers is GET /users?query=&limit=&cursor=.
func (h *handlers) listUsers(c echo.Context) error {
	cursor, limit, err := pageParams(c)
	if err != nil {
		return err
	}
	p, err := h.Accounts.Users(c.Request().Context(), c.QueryParam("query"), cursor, limit)
	if err != nil {
		return err
	}
	items := make([]userJSON, 0, len(p.Items))
	for _, u := range p.Items {
		items = append(items, toUserJSON(u))
	}
	return c.JSON(http.StatusOK, newList(items, p.NextCursor))
}

type updateUserRequest struct {
	Disabled *bool   `json:"disabled"`
	Role     *string `json:"role"`
}

type updateUserResponse struct {
	userJSON
	Revoked int `json:"revoked"`
}

// updateUser is PATCH /users/{id}: disabling or a role change revokes every
// session of the user.
func (h *handlers) updateUser(c echo.Context) error {
	var req updateUserRequest
	if err := readJSON(c, &req, true); err != nil {
		return err
	}
	if req.Disabled == nil && req.Role == nil {
		return newProblem(http.StatusBadRequest, "the body must set disabled, role or both")
	}
	admin := principal(c).UserID
	u, n, err := h.Accounts.Update(c.Request().Context(), c.Param("id"),
		account.Change{Disabled: req.Disabled, Role: req.Role}, &admin)
	if err != nil {
		return err
	}
	return c.JSON(http.StatusOK, updateUserResponse{userJSON: toUserJSON(u), Revoked: n})
}

type resetPasswordRequest struct {
	Password string `json:"password"`
}

// resetPassword is PUT /users/{id}/password: every session is revoked.
func (h *handlers) resetPassword(c echo.Context) error {
	var req resetPasswordRequest
	if err := readJSON(c, &req, true); err != nil {
		return err
	}
	admin := principal(c).UserID
	n, err := h.Accounts.ResetPassword(c.Request().Context(), c.Param("id"), req.Password, &admin)
	if err != nil {
		return err
	}
	return c.JSON(http.StatusOK, revokedCountResponse{Revoked: n})
}

// userSessions is GET /users/{id}/sessions.
func (h *handlers) userSessions(c echo.Context) error {
	if _, err := h.Accounts.User(c.Request().Context(), c.Param("id")); err != nil {
		return err
	}
	return h.listSessions(c, c.Param("id"))
}

// revokeUserSessions is POST /users/{id}/sessions/revoke.
// Its optional body is the single-session revoke's: {"reason": "…"}.
func (h *handlers) revokeUserSessions(c echo.Context) error {
	var req revokeRequest
	if err := readJSON(c, &req, false); err != nil {
		return err
	}
	admin := principal(c).UserID
	n, err := h.Accounts.RevokeAll(c.Request().Context(), c.Param("id"), req.Reason, &admin)
	if err != nil {
		return err
	}
	return c.JSON(http.StatusOK, revokedCountResponse{Revoked: n})
}
