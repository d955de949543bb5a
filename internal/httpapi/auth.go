package httpapi

import (
	"slices"
	"strings"

	"github.com/labstack/echo/v4"

	"github.com/seedc5a8123e/authd/internal/session"
)

const principalKey = "authd.principal"

// authenticate requires a bearer access token (RFC 6750) whose session is
// live on the database and whose user holds one of roles (any role if none
// is named). allowRevoked admits revoked, unexpired sessions; only /logout
// uses it.
func (h *handlers) authenticate(allowRevoked bool, roles ...string) echo.MiddlewareFunc {
	return func(next echo.HandlerFunc) echo.HandlerFunc {
		return func(c echo.Context) error {
			raw, ok := bearerToken(c.Request().Header.Get(echo.HeaderAuthorization))
			if !ok {
				return errNoToken
			}
			p, err := h.Sessions.Authenticate(c.Request().Context(), raw, allowRevoked)
			if err != nil {
				return err
			}
			if len(roles) > 0 && !slices.Contains(roles, p.Role) {
				return session.ErrForbidden
			}
			c.Set(principalKey, p)
			return next(c)
		}
	}
}

func principal(c echo.Context) session.Principal {
	p, _ := c.Get(principalKey).(session.Principal)
	return p
}

// bearerToken extracts the token of an "Authorization: Bearer x" header; the
// scheme is case-insensitive (RFC 7235 section 2.1).
func bearerToken(h string) (string, bool) {
	scheme, tok, ok := strings.Cut(h, " ")
	if !ok || !strings.EqualFold(scheme, "Bearer") {
		return "", false
	}
	tok = strings.TrimSpace(tok)
	return tok, tok != "" && len(tok) <= maxParamBytes
}
