package httpapi

import (
	"net/http"
	"time"

	"github.com/labstack/echo/v4"
)

type secretResponse struct {
	ID string `json:"id"`
	// Secret is shown only this once.
	Secret    string    `json:"secret"`
	CreatedAt time.Time `json:"created_at"`
}

// addSecret is POST /users/{id}/secrets: a second secret for a service
// identity, returned once. No session is revoked.
func (h *handlers) addSecret(c echo.Context) error {
	s, err := h.Accounts.AddSecret(c.Request().Context(), c.Param("id"))
	if err != nil {
		return err
	}
	c.Response().Header().Set("Cache-Control", "no-store")
	return c.JSON(http.StatusCreated, secretResponse{ID: s.ID, Secret: s.Secret, CreatedAt: s.CreatedAt.UTC()})
}

// removeSecret is DELETE /users/{id}/secrets/{secret}: "primary" (the
// password) or an added secret's id. No session is revoked.
func (h *handlers) removeSecret(c echo.Context) error {
	if err := h.Accounts.RemoveSecret(c.Request().Context(), c.Param("id"), c.Param("secret")); err != nil {
		return err
	}
	return c.NoContent(http.StatusNoContent)
}
