package httpapi

import (
	"net/http"
	"strings"

	"github.com/labstack/echo/v4"

	"github.com/seedc5a8123e/authd/internal/session"
)

// The RFC 7009 and RFC 7662 endpoints. Like /token they answer errors with
// RFC 6749 bodies (handleError knows them by path) and never cache.

// revokeToken is POST /revoke (RFC 7009): either kind of authd token ends
// its session. Every token, live or not, gets the same empty 200 (section
// 2.2), so the answer tells a client nothing it could act on.
func (h *handlers) revokeToken(c echo.Context) error {
	noStore(c)
	p, err := readInspectionParams(c.Request())
	if err != nil {
		return err
	}
	ctx := c.Request().Context()
	// A client that authenticates must be a service identity with the right
	// secret; a client_id alone names a public client.
	if id, secret, sent, err := optionalClientCredentials(c.Request(), p); err != nil {
		return err
	} else if sent {
		if _, err := h.Sessions.AuthenticateClient(ctx, id, secret, meta(c)); err != nil {
			return err
		}
	}
	if err := h.Sessions.RevokeToken(ctx, p["token"]); err != nil {
		return err
	}
	return c.NoContent(http.StatusOK)
}

// introspect is POST /introspect (RFC 7662), for service identities only:
// HTTP Basic with a service user's secret, or a service bearer token.
func (h *handlers) introspect(c echo.Context) error {
	noStore(c)
	ctx := c.Request().Context()
	if raw, ok := bearerToken(c.Request().Header.Get(echo.HeaderAuthorization)); ok {
		pr, err := h.Sessions.Authenticate(ctx, raw, false)
		if err != nil {
			return errIntrospectBadBearer
		}
		if pr.Role != session.RoleService {
			return errIntrospectForbidden
		}
	} else {
		id, secret, basic := c.Request().BasicAuth()
		if !basic {
			return errInvalidClient
		}
		id, secret, err := unescapeBasic(id, secret)
		if err != nil {
			return err
		}
		if err := checkClientCredentials(id, secret); err != nil {
			return err
		}
		if _, err := h.Sessions.AuthenticateClient(ctx, id, secret, meta(c)); err != nil {
			return err
		}
	}
	p, err := readInspectionParams(c.Request())
	if err != nil {
		return err
	}
	in, err := h.Sessions.Introspect(ctx, p["token"])
	if err != nil {
		return err
	}
	return c.JSON(http.StatusOK, toIntrospection(in))
}

// introspection is RFC 7662 section 2.2; an inactive token is {"active":false}
// and nothing else.
type introspection struct {
	Active    bool     `json:"active"`
	TokenType string   `json:"token_type,omitempty"`
	Sub       string   `json:"sub,omitempty"`
	SID       string   `json:"sid,omitempty"`
	JTI       string   `json:"jti,omitempty"`
	Role      string   `json:"role,omitempty"`
	ClientID  string   `json:"client_id,omitempty"`
	Iss       string   `json:"iss,omitempty"`
	Aud       []string `json:"aud,omitempty"`
	Exp       int64    `json:"exp,omitempty"`
	Iat       int64    `json:"iat,omitempty"`
	Nbf       int64    `json:"nbf,omitempty"`
}

func toIntrospection(in session.Introspection) introspection {
	if !in.Active {
		return introspection{}
	}
	out := introspection{
		Active: true, TokenType: in.TokenType, Sub: in.Subject, SID: in.SID, JTI: in.JTI, Role: in.Role,
		ClientID: in.ClientID, Iss: in.Issuer, Aud: in.Audience, Exp: in.ExpiresAt.Unix(),
	}
	if !in.IssuedAt.IsZero() {
		out.Iat = in.IssuedAt.Unix()
	}
	if !in.NotBefore.IsZero() {
		out.Nbf = in.NotBefore.Unix()
	}
	return out
}

var (
	errIntrospectBadBearer = &oauthError{http.StatusUnauthorized, "invalid_token", "the bearer token is invalid, expired or revoked"}
	errIntrospectForbidden = &oauthError{http.StatusForbidden, "insufficient_scope", "only service identities may introspect tokens"}
)

// readInspectionParams reads the form of /revoke and /introspect: token is
// required; token_type_hint is optional and an unknown value is ignored
// (RFC 7009 section 2.1). Only forms are accepted (both RFCs say so).
func readInspectionParams(r *http.Request) (tokenParams, error) {
	if ct := r.Header.Get(echo.HeaderContentType); ct != "" && mediaType(ct) != "application/x-www-form-urlencoded" {
		return nil, errFormOnly
	}
	p, err := readTokenParams(r)
	if err != nil {
		return nil, err
	}
	if _, _, err := p.require("token", ""); err != nil {
		return nil, err
	}
	return p, nil
}

var errFormOnly = &oauthError{http.StatusUnsupportedMediaType, "invalid_request", "send application/x-www-form-urlencoded"}

// optionalClientCredentials is clientCredentials for endpoints that public
// clients call without authentication: sent is false when the request
// carries no HTTP Basic and no client_secret (a client_id alone names a
// public client).
func optionalClientCredentials(r *http.Request, p tokenParams) (id, secret string, sent bool, err error) {
	_, _, basic := r.BasicAuth()
	if _, formSecret := p["client_secret"]; !basic && !formSecret {
		return "", "", false, nil
	}
	id, secret, err = clientCredentials(r, p)
	return id, secret, true, err
}

func meta(c echo.Context) session.Meta {
	// A User-Agent is recorded on the session, so it must be text
	// PostgreSQL accepts.
	ua := strings.ToValidUTF8(strings.ReplaceAll(c.Request().UserAgent(), "\x00", ""), "\uFFFD")
	return session.Meta{UserAgent: truncate(ua, 512), IP: c.RealIP()}
}

// noStore marks an answer that carries or concerns credentials as not to be
// cached (RFC 6749 section 5.1).
func noStore(c echo.Context) {
	c.Response().Header().Set("Cache-Control", "no-store")
	c.Response().Header().Set("Pragma", "no-cache")
}
