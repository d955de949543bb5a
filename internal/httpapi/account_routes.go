package httpapi

import "github.com/labstack/echo/v4"

// accountRoutes registers the account lifecycle endpoints (users, password
// changes, session lists).
func (h *handlers) accountRoutes(e *echo.Echo) {}
