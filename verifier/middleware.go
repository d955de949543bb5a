package verifier

import (
	"context"
	"errors"
	"net/http"
	"slices"
	"strings"
)

type ctxKey struct{}

// staleRetryAfter is the Retry-After (seconds) of the 503 for ErrStale and
// ErrClosed: long enough not to hammer a service whose feed is down, short
// enough that clients return soon after a poll succeeds again.
const staleRetryAfter = "5"

// ClaimsFromContext returns the claims Middleware stored for the request, or
// nil and false when the request did not pass through it.
func ClaimsFromContext(ctx context.Context) (*Claims, bool) {
	c, ok := ctx.Value(ctxKey{}).(*Claims)
	return c, ok
}

// ContextWithClaims returns ctx carrying c, as Middleware does; adapters
// and tests use it.
func ContextWithClaims(ctx context.Context, c *Claims) context.Context {
	return context.WithValue(ctx, ctxKey{}, c)
}

// MiddlewareOption adjusts Middleware.
type MiddlewareOption func(*middlewareConfig)

type middlewareConfig struct {
	roles []string
}

// RequireRole admits only tokens whose role claim is one of roles; others
// get 403 with error="insufficient_scope". Default: any role.
func RequireRole(roles ...string) MiddlewareOption {
	return func(c *middlewareConfig) { c.roles = append(c.roles, roles...) }
}

// Middleware protects next with v. It reads "Authorization: Bearer <token>"
// (scheme case-insensitive), verifies the token and stores its Claims in the
// request context (see ClaimsFromContext). It answers, per RFC 6750:
//   - 401 with `WWW-Authenticate: Bearer realm="authd"` when no token is sent;
//   - 401 with `WWW-Authenticate: Bearer realm="authd", error="invalid_token"`
//     for a token that does not verify, revoked ones included;
//   - 403 with error="insufficient_scope" when RequireRole is not met;
//   - 503 with "Retry-After: 5" when Verify returns ErrStale or ErrClosed
//     (the token may be fine, but revocation cannot be checked; a 401 would
//     make clients discard good tokens).
func Middleware(v *Verifier, opts ...MiddlewareOption) func(http.Handler) http.Handler {
	var mc middlewareConfig
	for _, o := range opts {
		o(&mc)
	}
	return func(next http.Handler) http.Handler {
		return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			raw, ok := bearer(r.Header.Get("Authorization"))
			if !ok {
				challenge(w, http.StatusUnauthorized, "", "")
				return
			}
			c, err := v.Verify(r.Context(), raw)
			switch {
			case errors.Is(err, ErrStale) || errors.Is(err, ErrClosed):
				w.Header().Set("Retry-After", staleRetryAfter)
				http.Error(w, "token revocation status unavailable", http.StatusServiceUnavailable)
				return
			case err != nil:
				challenge(w, http.StatusUnauthorized, "invalid_token", "the access token is invalid, expired or revoked")
				return
			}
			if len(mc.roles) > 0 && !slices.Contains(mc.roles, c.Role) {
				challenge(w, http.StatusForbidden, "insufficient_scope", "the token's role may not access this resource")
				return
			}
			next.ServeHTTP(w, r.WithContext(ContextWithClaims(r.Context(), c)))
		})
	}
}

func challenge(w http.ResponseWriter, status int, code, desc string) {
	h := `Bearer realm="authd"`
	if code != "" {
		h += `, error="` + code + `", error_description="` + desc + `"`
	}
	w.Header().Set("WWW-Authenticate", h)
	http.Error(w, http.StatusText(status), status)
}

func bearer(h string) (string, bool) {
	scheme, tok, ok := strings.Cut(h, " ")
	if !ok || !strings.EqualFold(scheme, "Bearer") {
		return "", false
	}
	tok = strings.TrimSpace(tok)
	return tok, tok != ""
}
