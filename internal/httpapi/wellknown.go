package httpapi

import (
	"context"
	"net/http"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/labstack/echo/v4"

	"github.com/seedc5a8123e/authd/internal/keys"
	"github.com/seedc5a8123e/authd/internal/session"
)

// jwksMaxAge lets verifiers cache the key set for keys.JWKSMaxAge. A key
// from the database is published that long before it signs
// (internal/keyring), and verifiers refetch early on an unknown kid besides;
// a retired key is removed only after its tokens have expired.
var jwksMaxAge = "public, max-age=" + strconv.Itoa(int(keys.JWKSMaxAge/time.Second))

func (h *handlers) jwks(c echo.Context) error {
	c.Response().Header().Set("Cache-Control", jwksMaxAge)
	return c.JSON(http.StatusOK, h.Keys.Current().Document())
}

// serverMetadata is the RFC 8414 authorization server metadata document.
// revoked_sessions_endpoint and access_token_signing_alg_values_supported
// are authd extensions (RFC 8414 section 2 allows additional members).
type serverMetadata struct {
	Issuer                            string   `json:"issuer"`
	TokenEndpoint                     string   `json:"token_endpoint"`
	JWKSURI                           string   `json:"jwks_uri"`
	ResponseTypesSupported            []string `json:"response_types_supported"`
	GrantTypesSupported               []string `json:"grant_types_supported"`
	TokenEndpointAuthMethodsSupported []string `json:"token_endpoint_auth_methods_supported"`
	AccessTokenSigningAlgsSupported   []string `json:"access_token_signing_alg_values_supported"`
	RevokedSessionsEndpoint           string   `json:"revoked_sessions_endpoint"`
	// RFC 7009 and RFC 7662 endpoints (RFC 8414 section 2).
	RevocationEndpoint               string   `json:"revocation_endpoint"`
	RevocationEndpointAuthMethods    []string `json:"revocation_endpoint_auth_methods_supported"`
	IntrospectionEndpoint            string   `json:"introspection_endpoint"`
	IntrospectionEndpointAuthMethods []string `json:"introspection_endpoint_auth_methods_supported"`
	// The draft-ietf-oauth-status-list aggregation (section 9.1, registered
	// in section 14.6): the URIs of every list. Absent when the status list
	// is off.
	StatusListAggregationEndpoint string `json:"status_list_aggregation_endpoint,omitempty"`
}

// metadata answers GET /.well-known/oauth-authorization-server. issuer is
// the configured issuer exactly as it appears in the "iss" claim (RFC 8414
// section 3.3 wants the two identical); the endpoint URLs are built from it
// without its trailing slash.
func (h *handlers) metadata(c echo.Context) error {
	base := strings.TrimRight(h.IssuerURL, "/")
	var algs []string
	for _, k := range h.Keys.Current().All() { // the signing key first
		if !slices.Contains(algs, k.Alg) {
			algs = append(algs, k.Alg)
		}
	}
	var aggregation string
	if h.StatusLists != nil {
		aggregation = h.StatusLists.AggregationURI()
	}
	c.Response().Header().Set("Cache-Control", jwksMaxAge)
	return c.JSON(http.StatusOK, serverMetadata{
		StatusListAggregationEndpoint: aggregation,
		Issuer:                        h.IssuerURL,
		TokenEndpoint:                 base + "/token",
		JWKSURI:                       base + "/.well-known/jwks.json",
		// REQUIRED by RFC 8414 section 2; authd has no authorization
		// endpoint, so no response type.
		ResponseTypesSupported:            []string{},
		GrantTypesSupported:               session.Grants,
		TokenEndpointAuthMethodsSupported: []string{"client_secret_basic", "client_secret_post"},
		AccessTokenSigningAlgsSupported:   algs,
		RevokedSessionsEndpoint:           base + "/sessions/revoked",
		RevocationEndpoint:                base + "/revoke",
		// "none": public clients revoke their own tokens unauthenticated.
		RevocationEndpointAuthMethods: []string{"none", "client_secret_basic", "client_secret_post"},
		IntrospectionEndpoint:         base + "/introspect",
		// A service bearer token works too; there is no registered name for it.
		IntrospectionEndpointAuthMethods: []string{"client_secret_basic"},
	})
}

func (h *handlers) healthz(c echo.Context) error {
	return c.JSON(http.StatusOK, map[string]string{"status": "ok"})
}

// readyz answers 200 only when the database answers within a second and the
// schema is at the version this binary expects.
func (h *handlers) readyz(c echo.Context) error {
	ctx, cancel := context.WithTimeout(c.Request().Context(), time.Second)
	defer cancel()
	if err := h.DB.Ping(ctx); err != nil {
		return newProblem(http.StatusServiceUnavailable, "database unreachable")
	}
	if err := h.DB.SchemaCurrent(ctx); err != nil {
		return newProblem(http.StatusServiceUnavailable, err.Error())
	}
	return c.JSON(http.StatusOK, map[string]string{"status": "ready"})
}
