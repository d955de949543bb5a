package verifier

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
)

// DiscoveryPath is where authd publishes its RFC 8414 authorization server
// metadata, relative to Config.IssuerURL.
const DiscoveryPath = "/.well-known/oauth-authorization-server"

// maxMetadataBytes bounds the discovery document; authd's is about 500 bytes.
const maxMetadataBytes = 1 << 20

// endpoints are the URLs a Verifier talks to.
type endpoints struct {
	token, jwks, feed string
}

// fixedEndpoints are authd's paths under base, used when it publishes no
// discovery document.
func fixedEndpoints(base string) endpoints {
	return endpoints{
		token: base + "/token",
		jwks:  base + "/.well-known/jwks.json",
		feed:  base + "/sessions/revoked",
	}
}

// metadata is the part of the discovery document a Verifier reads.
type metadata struct {
	Issuer                  string `json:"issuer"`
	TokenEndpoint           string `json:"token_endpoint"`
	JWKSURI                 string `json:"jwks_uri"`
	RevokedSessionsEndpoint string `json:"revoked_sessions_endpoint"`
}

// errBadDocument marks a discovery document that cannot be used: it names
// another issuer than Config.Issuer, or an endpoint that is not an absolute
// http(s) URL. Both are configuration errors, so New does not retry them.
var errBadDocument = errors.New("discovery: unusable document")

// discover reads IssuerURL + DiscoveryPath. It returns found=false for a 404
// (the fixed paths apply), the endpoints and issuer it names otherwise, the
// endpoints' paths taken on IssuerURL's origin (sameOrigin). An
// endpoint the document leaves out keeps its fixed path. A document whose
// issuer differs from wantIssuer (when set) is refused with errBadDocument
// (RFC 8414 section 3.3: its contents must not be used).
func discover(ctx context.Context, client *http.Client, issuerURL, wantIssuer string) (ep endpoints, issuer string, found bool, err error) {
	u := issuerURL + DiscoveryPath
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, u, nil)
	if err != nil {
		return endpoints{}, "", false, fmt.Errorf("discovery: %w", err)
	}
	req.Header.Set("Accept", "application/json")
	res, err := client.Do(req)
	if err != nil {
		return endpoints{}, "", false, fmt.Errorf("discovery: %w", err)
	}
	defer res.Body.Close()
	switch res.StatusCode {
	case http.StatusOK:
	case http.StatusNotFound:
		_, _ = io.Copy(io.Discard, io.LimitReader(res.Body, 4096))
		return fixedEndpoints(issuerURL), "", false, nil
	default:
		return endpoints{}, "", false, fmt.Errorf("discovery: GET %s: status %d", u, res.StatusCode)
	}
	body, err := io.ReadAll(io.LimitReader(res.Body, maxMetadataBytes+1))
	if err != nil {
		return endpoints{}, "", false, fmt.Errorf("discovery: read: %w", err)
	}
	if len(body) > maxMetadataBytes {
		return endpoints{}, "", false, errors.New("discovery: document too large")
	}
	var md metadata
	if err := json.Unmarshal(body, &md); err != nil {
		return endpoints{}, "", false, fmt.Errorf("discovery: decode %s: %w", u, err)
	}
	if md.Issuer == "" {
		return endpoints{}, "", false, fmt.Errorf("discovery: %s has no issuer", u)
	}
	if wantIssuer != "" && md.Issuer != wantIssuer {
		return endpoints{}, "", false, fmt.Errorf("%w: %s names issuer %q, Config.Issuer is %q",
			errBadDocument, u, md.Issuer, wantIssuer)
	}
	ep = fixedEndpoints(issuerURL)
	for _, f := range []struct {
		name, value string
		dst         *string
	}{
		{"token_endpoint", md.TokenEndpoint, &ep.token},
		{"jwks_uri", md.JWKSURI, &ep.jwks},
		{"revoked_sessions_endpoint", md.RevokedSessionsEndpoint, &ep.feed},
	} {
		if f.value == "" {
			continue
		}
		if err := checkEndpoint(issuerURL, f.value); err != nil {
			return endpoints{}, "", false, fmt.Errorf("%w: %s %q: %w", errBadDocument, f.name, f.value, err)
		}
		*f.dst = sameOrigin(issuerURL, f.value)
	}
	return ep, md.Issuer, true, nil
}

// sameOrigin keeps the path and query of a discovered endpoint but puts it on
// IssuerURL's scheme and host. The document's URLs are built from authd's
// public issuer, which a service inside the same network often does not use
// (or cannot reach); and taking only paths means a document can never send
// the client secret, or pick the keys, from another origin.
func sameOrigin(issuerURL, endpoint string) string {
	base, err1 := url.Parse(issuerURL)
	u, err2 := url.Parse(endpoint)
	if err1 != nil || err2 != nil {
		return endpoint // checkEndpoint has already parsed both
	}
	return (&url.URL{Scheme: base.Scheme, User: base.User, Host: base.Host, Path: u.Path, RawQuery: u.RawQuery}).String()
}

// checkEndpoint accepts an absolute http(s) URL, and only https when
// IssuerURL is https: the document must not downgrade where the client
// secret and tokens are sent.
func checkEndpoint(issuerURL, endpoint string) error {
	u, err := url.Parse(endpoint)
	if err != nil {
		return err
	}
	if (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" || u.Fragment != "" {
		return errors.New("not an absolute http(s) URL")
	}
	if base, _ := url.Parse(issuerURL); base != nil && base.Scheme == "https" && u.Scheme != "https" {
		return errors.New("plain http while IssuerURL is https")
	}
	return nil
}
