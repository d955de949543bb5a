// Package verifierecho adapts verifier.Middleware to Echo, so services built
// on plain net/http never compile Echo.
package verifierecho

import (
	"github.com/labstack/echo/v4"

	"github.com/seedc5a8123e/authd/verifier"
)

// Middleware is verifier.Middleware as an echo.MiddlewareFunc: the same
// checks, the same 401/403/503 answers (written directly, not through Echo's
// error handler), and the claims in the request context.
func Middleware(v *verifier.Verifier, opts ...verifier.MiddlewareOption) echo.MiddlewareFunc {
	return echo.WrapMiddleware(verifier.Middleware(v, opts...))
}

// Claims returns the claims Middleware stored for c's request, or nil and
// false when the request did not pass through it.
func Claims(c echo.Context) (*verifier.Claims, bool) {
	return verifier.ClaimsFromContext(c.Request().Context())
}
