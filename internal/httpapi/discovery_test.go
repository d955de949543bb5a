package httpapi_test

import (
	"encoding/json"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"reflect"
	"testing"

	"github.com/seedc5a8123e/authd/internal/authdtest"
	"github.com/seedc5a8123e/authd/internal/httpapi"
	"github.com/seedc5a8123e/authd/internal/keys"
	"github.com/seedc5a8123e/authd/internal/openapitest"
)

// metadataDoc is the discovery document as a client reads it; decoding into
// a map first also catches members the server should not send.
type metadataDoc struct {
	Issuer                            string   `json:"issuer"`
	TokenEndpoint                     string   `json:"token_endpoint"`
	JWKSURI                           string   `json:"jwks_uri"`
	ResponseTypesSupported            []string `json:"response_types_supported"`
	GrantTypesSupported               []string `json:"grant_types_supported"`
	TokenEndpointAuthMethodsSupported []string `json:"token_endpoint_auth_methods_supported"`
	AccessTokenSigningAlgsSupported   []string `json:"access_token_signing_alg_values_supported"`
	RevokedSessionsEndpoint           string   `json:"revoked_sessions_endpoint"`
	RevocationEndpoint                string   `json:"revocation_endpoint"`
	RevocationAuthMethods             []string `json:"revocation_endpoint_auth_methods_supported"`
	IntrospectionEndpoint             string   `json:"introspection_endpoint"`
	IntrospectionAuthMethods          []string `json:"introspection_endpoint_auth_methods_supported"`
	StatusListAggregation             string   `json:"status_list_aggregation_endpoint"`
}

// getMetadata fetches the discovery document from base through the
// OpenAPI-checking transport and checks the status and caching header.
func getMetadata(t *testing.T, base string) (metadataDoc, map[string]json.RawMessage) {
	t.Helper()
	client := &http.Client{Transport: openapitest.Transport(t, http.DefaultTransport)}
	res, err := client.Get(base + "/.well-known/oauth-authorization-server")
	if err != nil {
		t.Fatal(err)
	}
	defer res.Body.Close()
	body, err := io.ReadAll(res.Body)
	if err != nil {
		t.Fatal(err)
	}
	if res.StatusCode != http.StatusOK {
		t.Fatalf("status %d, body %s", res.StatusCode, body)
	}
	if ct := res.Header.Get("Content-Type"); ct != "application/json" {
		t.Errorf("Content-Type = %q, want application/json", ct)
	}
	if cc := res.Header.Get("Cache-Control"); cc != "public, max-age=300" {
		t.Errorf("Cache-Control = %q, want public, max-age=300", cc)
	}
	var raw map[string]json.RawMessage
	if err := json.Unmarshal(body, &raw); err != nil {
		t.Fatalf("decode %s: %v", body, err)
	}
	return decode[metadataDoc](t, body), raw
}

func TestDiscoveryDocument(t *testing.T) {
	env := authdtest.Start(t, authdtest.Options{})
	md, raw := getMetadata(t, env.URL)
	want := metadataDoc{
		Issuer:                            authdtest.Issuer,
		TokenEndpoint:                     authdtest.Issuer + "/token",
		JWKSURI:                           authdtest.Issuer + "/.well-known/jwks.json",
		ResponseTypesSupported:            []string{},
		GrantTypesSupported:               []string{"password", "refresh_token", "client_credentials"},
		TokenEndpointAuthMethodsSupported: []string{"client_secret_basic", "client_secret_post"},
		AccessTokenSigningAlgsSupported:   []string{"EdDSA"},
		RevokedSessionsEndpoint:           authdtest.Issuer + "/sessions/revoked",
		RevocationEndpoint:                authdtest.Issuer + "/revoke",
		RevocationAuthMethods:             []string{"none", "client_secret_basic", "client_secret_post"},
		IntrospectionEndpoint:             authdtest.Issuer + "/introspect",
		IntrospectionAuthMethods:          []string{"client_secret_basic"},
		StatusListAggregation:             authdtest.Issuer + "/statuslists",
	}
	if !reflect.DeepEqual(md, want) {
		t.Errorf("metadata =\n%+v\nwant\n%+v", md, want)
	}
	// RFC 8414 section 2: response_types_supported is REQUIRED, so it is
	// sent as [] rather than left out.
	if string(raw["response_types_supported"]) != "[]" {
		t.Errorf("response_types_supported = %s, want []", raw["response_types_supported"])
	}
	if len(raw) != 13 {
		t.Errorf("document has %d members, want 13: %v", len(raw), raw)
	}

	// The issuer is the iss of the tokens this server mints (section 3.3).
	env.CreateUser(t, "alice", "user", pw)
	if iss := claimsOf(t, env.Login(t, "alice", pw).AccessToken).Issuer; iss != md.Issuer {
		t.Errorf("token iss %q, metadata issuer %q", iss, md.Issuer)
	}
}

// TestDiscoveryAlgorithms: the algorithms are those of the published keys,
// the signing key's first, each once.
func TestDiscoveryAlgorithms(t *testing.T) {
	gen := func(alg string) *keys.Key {
		k, err := keys.Generate(alg)
		if err != nil {
			t.Fatal(err)
		}
		return k
	}
	set, err := keys.NewSet(gen(keys.ES256), gen(keys.EdDSA), gen(keys.ES256), gen(keys.EdDSA))
	if err != nil {
		t.Fatal(err)
	}
	env := authdtest.Start(t, authdtest.Options{Keys: set})
	md, _ := getMetadata(t, env.URL)
	if want := []string{"ES256", "EdDSA"}; !reflect.DeepEqual(md.AccessTokenSigningAlgsSupported, want) {
		t.Errorf("access_token_signing_alg_values_supported = %q, want %q", md.AccessTokenSigningAlgsSupported, want)
	}
}

// TestDiscoveryIssuerTrailingSlash: the issuer is served as configured (it
// must equal the iss claim), the endpoint URLs without a double slash.
func TestDiscoveryIssuerTrailingSlash(t *testing.T) {
	k, err := keys.Generate(keys.EdDSA)
	if err != nil {
		t.Fatal(err)
	}
	set, _ := keys.NewSet(k)
	srv := httptest.NewServer(httpapi.NewServer(httpapi.Deps{
		Keys: set, IssuerURL: "https://auth.example.com/", Log: slog.New(slog.DiscardHandler),
	}))
	t.Cleanup(srv.Close)
	md, _ := getMetadata(t, srv.URL)
	if md.Issuer != "https://auth.example.com/" {
		t.Errorf("issuer = %q", md.Issuer)
	}
	for _, e := range [][2]string{
		{md.TokenEndpoint, "https://auth.example.com/token"},
		{md.JWKSURI, "https://auth.example.com/.well-known/jwks.json"},
		{md.RevokedSessionsEndpoint, "https://auth.example.com/sessions/revoked"},
	} {
		if e[0] != e[1] {
			t.Errorf("endpoint %q, want %q", e[0], e[1])
		}
	}
}
