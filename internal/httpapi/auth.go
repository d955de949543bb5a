package httpapi

import (
	"slices"
	"strings"

	"github.com/labstack/echo/v4"

	"github.com/seedc5a8123e/authd/internal/audit"
	"github.com/seedc5a8123e/authd/internal/session"
)

const principalKey = "authd.principal"

// authenticate requires a bearer access token (RFC 6750) whose session is
// live on the database and whose user holds one of roles (any role if none
// is named). allowRevoked admits revoked, unexpired sessions; only /logout
// uses it. A live token of another role is session.ErrForbidden: 403 with
// WWW-Authenticate error="insufficient_scope" (handleError), roles being
// what authd grants instead of scopes.
func (h *handlers) authenticate(allowRevoked bool, roles ...string) echo.MiddlewareFunc {
	return func(next echo.HandlerFunc) echo.HandlerFunc {
		return func(c echo.Context) error {
			hdr := c.Request().Header.Get(echo.HeaderAuthorization)
			raw, ok := bearerToken(hdr)
			if !ok {
				if scheme, tok, _ := strings.Cut(hdr, " "); strings.EqualFold(scheme, "Bearer") && trimOWS(tok) != "" {
					return errBadToken // a token, but not one authd could have issued
				}
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
			// The caller is the actor of whatever the request changes.
			c.SetRequest(c.Request().WithContext(audit.WithActor(c.Request().Context(), p.UserID)))
			return next(c)
		}
	}
}

func principal(c echo.Context) session.Principal {
	p, _ := c.Get(principalKey).(session.Principal)
	return p
}

// bearerToken extracts the token of an "Authorization: Bearer x" header; the
// scheme is case-insensitive (RFC 7235 section 2.1) and the token must have
// RFC 6750's b64token syntax, so no NUL, non-ASCII or space reaches a parser
// or the database.
func bearerToken(h string) (string, bool) {
	scheme, tok, ok := strings.Cut(h, " ")
	if !ok || !strings.EqualFold(scheme, "Bearer") {
		return "", false
	}
	tok = trimOWS(tok)
	if tok == "" || len(tok) > maxParamBytes || !isB64Token(tok) {
		return "", false
	}
	return tok, true
}

// trimOWS trims HTTP optional whitespace (spaces and tabs) only.
func trimOWS(s string) string { return strings.Trim(s, " \t") }

// isB64Token reports whether s is RFC 6750's
// b64token = 1*( ALPHA / DIGIT / "-" / "." / "_" / "~" / "+" / "/" ) *"=".
func isB64Token(s string) bool {
	body := strings.TrimRight(s, "=")
	if body == "" {
		return false
	}
	for i := 0; i < len(body); i++ {
		switch c := body[i]; {
		case 'a' <= c && c <= 'z', 'A' <= c && c <= 'Z', '0' <= c && c <= '9':
		case c == '-', c == '.', c == '_', c == '~', c == '+', c == '/':
		default:
			return false
		}
	}
	return true
}
