package main

import (
	"bytes"
	"context"
	"crypto/ecdsa"
	"crypto/ed25519"
	"crypto/elliptic"
	"encoding/base64"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"time"

	"github.com/golang-jwt/jwt/v5"

	"github.com/seedc5a8123e/authd/verifier"
)

// maxBody bounds what authbench reads of one answer (a full snapshot of a
// large feed is the biggest).
const maxBody = 64 << 20

// api is authd's HTTP API as authbench uses it.
type api struct {
	base string
	hc   *http.Client
}

// newAPI returns a client whose transport keeps one idle connection per
// worker, so the closed loop measures requests, not TCP handshakes.
func newAPI(base string, concurrency int, timeout time.Duration) *api {
	tr := http.DefaultTransport.(*http.Transport).Clone()
	tr.MaxIdleConns = 2*concurrency + 16
	tr.MaxIdleConnsPerHost = 2*concurrency + 16
	tr.Proxy = nil // only ever the authd named on the command line
	return &api{base: strings.TrimRight(base, "/"), hc: &http.Client{Timeout: timeout, Transport: tr}}
}

func (a *api) close() { a.hc.CloseIdleConnections() }

// do sends one request and reads the whole answer; an answer other than
// want is an *httpStatusError.
func (a *api) do(ctx context.Context, method, path string, hdr http.Header, body []byte, want int) ([]byte, http.Header, error) {
	var rd io.Reader
	if body != nil {
		rd = bytes.NewReader(body)
	}
	req, err := http.NewRequestWithContext(ctx, method, a.base+path, rd)
	if err != nil {
		return nil, nil, err
	}
	for k, vs := range hdr {
		req.Header[k] = vs
	}
	res, err := a.hc.Do(req)
	if err != nil {
		return nil, nil, err
	}
	defer res.Body.Close()
	b, err := io.ReadAll(io.LimitReader(res.Body, maxBody))
	if err != nil {
		return nil, nil, err
	}
	if res.StatusCode != want {
		return nil, nil, &httpStatusError{Code: res.StatusCode, Body: truncateString(strings.TrimSpace(string(b)), 160)}
	}
	return b, res.Header, nil
}

type tokenResponse struct {
	AccessToken  string `json:"access_token"`
	RefreshToken string `json:"refresh_token"`
	SID          string `json:"sid"`
	ExpiresIn    int64  `json:"expires_in"`
}

var formHeader = http.Header{"Content-Type": {"application/x-www-form-urlencoded"}}

// token posts a form-encoded grant to /token.
func (a *api) token(ctx context.Context, form url.Values) (tokenResponse, error) {
	b, _, err := a.do(ctx, http.MethodPost, "/token", formHeader, []byte(form.Encode()), http.StatusOK)
	if err != nil {
		return tokenResponse{}, err
	}
	var t tokenResponse
	if err := json.Unmarshal(b, &t); err != nil {
		return tokenResponse{}, &badResponseError{"token: " + err.Error()}
	}
	if t.AccessToken == "" {
		return tokenResponse{}, &badResponseError{"token: no access_token"}
	}
	return t, nil
}

func (a *api) passwordGrant(ctx context.Context, user, pw string) (tokenResponse, error) {
	t, err := a.token(ctx, url.Values{"grant_type": {"password"}, "username": {user}, "password": {pw}})
	if err == nil && t.RefreshToken == "" {
		err = &badResponseError{"password grant: no refresh_token"}
	}
	return t, err
}

func (a *api) refreshGrant(ctx context.Context, rt string) (tokenResponse, error) {
	t, err := a.token(ctx, url.Values{"grant_type": {"refresh_token"}, "refresh_token": {rt}})
	if err == nil && t.RefreshToken == "" {
		err = &badResponseError{"refresh grant: no refresh_token"}
	}
	return t, err
}

func (a *api) clientCredentials(ctx context.Context, id, secret string) (tokenResponse, error) {
	return a.token(ctx, url.Values{"grant_type": {"client_credentials"}, "client_id": {id}, "client_secret": {secret}})
}

func bearer(tok string) http.Header { return http.Header{"Authorization": {"Bearer " + tok}} }

// logout revokes the session of access; errAlreadyRevoked if it was.
func (a *api) logout(ctx context.Context, access string) error {
	b, _, err := a.do(ctx, http.MethodPost, "/logout", bearer(access), nil, http.StatusOK)
	if err != nil {
		return err
	}
	var r struct {
		AlreadyRevoked *bool `json:"already_revoked"`
	}
	if err := json.Unmarshal(b, &r); err != nil || r.AlreadyRevoked == nil {
		return &badResponseError{"logout: no already_revoked"}
	}
	if *r.AlreadyRevoked {
		return errAlreadyRevoked
	}
	return nil
}

// feedEntry is one element of the feed's answer.
type feedEntry struct {
	JTI string `json:"jti"`
	SID string `json:"sid"`
	Exp int64  `json:"exp"`
}

// feed polls the revocation feed; since < 0 asks for the full snapshot. It
// returns the number of entries and the cursor for the next poll.
func (a *api) feed(ctx context.Context, tok string, since int64) (int, int64, error) {
	path := "/sessions/revoked"
	if since >= 0 {
		path += "?since=" + strconv.FormatInt(since, 10)
	}
	b, hdr, err := a.do(ctx, http.MethodGet, path, bearer(tok), nil, http.StatusOK)
	if err != nil {
		return 0, 0, err
	}
	cursor, err := strconv.ParseInt(hdr.Get(verifier.CursorHeader), 10, 64)
	if err != nil {
		return 0, 0, &badResponseError{"feed: bad " + verifier.CursorHeader}
	}
	var entries []feedEntry
	if err := json.Unmarshal(b, &entries); err != nil || entries == nil {
		return 0, 0, &badResponseError{"feed: not a JSON array"}
	}
	return len(entries), cursor, nil
}

// createUser is POST /users; it returns the new user's id.
func (a *api) createUser(ctx context.Context, admin, username, role, pw string) (string, error) {
	body, _ := json.Marshal(map[string]string{"username": username, "role": role, "password": pw})
	h := bearer(admin)
	h.Set("Content-Type", "application/json")
	b, _, err := a.do(ctx, http.MethodPost, "/users", h, body, http.StatusCreated)
	if err != nil {
		return "", err
	}
	var u struct {
		ID string `json:"id"`
	}
	if err := json.Unmarshal(b, &u); err != nil || u.ID == "" {
		return "", &badResponseError{"POST /users: no id"}
	}
	return u.ID, nil
}

// disableUser is PATCH /users/{id} {"disabled": true}, which also revokes
// the user's sessions.
func (a *api) disableUser(ctx context.Context, admin, id string) error {
	h := bearer(admin)
	h.Set("Content-Type", "application/json")
	_, _, err := a.do(ctx, http.MethodPatch, "/users/"+url.PathEscape(id), h, []byte(`{"disabled":true}`), http.StatusOK)
	return err
}

// issuer reads the discovery document's issuer, or "" without one.
func (a *api) issuer(ctx context.Context) (string, error) {
	b, _, err := a.do(ctx, http.MethodGet, "/.well-known/oauth-authorization-server", nil, nil, http.StatusOK)
	if err != nil {
		if se, ok := err.(*httpStatusError); ok && se.Code == http.StatusNotFound {
			return "", nil
		}
		return "", err
	}
	var d struct {
		Issuer string `json:"issuer"`
	}
	if err := json.Unmarshal(b, &d); err != nil {
		return "", &badResponseError{"discovery: " + err.Error()}
	}
	return d.Issuer, nil
}

// publicKey fetches the JWKS and returns the key with the given kid and
// its algorithm.
func (a *api) publicKey(ctx context.Context, kid string) (any, string, error) {
	b, _, err := a.do(ctx, http.MethodGet, "/.well-known/jwks.json", nil, nil, http.StatusOK)
	if err != nil {
		return nil, "", err
	}
	var set struct {
		Keys []struct {
			Kty, Crv, X, Y, Kid, Alg string
		} `json:"keys"`
	}
	if err := json.Unmarshal(b, &set); err != nil {
		return nil, "", &badResponseError{"jwks: " + err.Error()}
	}
	dec := base64.RawURLEncoding.DecodeString
	for _, k := range set.Keys {
		if k.Kid != kid {
			continue
		}
		switch {
		case k.Kty == "OKP" && k.Crv == "Ed25519":
			x, err := dec(k.X)
			if err != nil || len(x) != ed25519.PublicKeySize {
				return nil, "", &badResponseError{"jwks: bad Ed25519 key"}
			}
			return ed25519.PublicKey(x), "EdDSA", nil
		case k.Kty == "EC" && k.Crv == "P-256":
			x, err1 := dec(k.X)
			y, err2 := dec(k.Y)
			if err1 != nil || err2 != nil || len(x) != 32 || len(y) != 32 {
				return nil, "", &badResponseError{"jwks: bad P-256 key"}
			}
			pub, err := ecdsa.ParseUncompressedPublicKey(elliptic.P256(), append(append([]byte{4}, x...), y...))
			if err != nil {
				return nil, "", &badResponseError{"jwks: bad P-256 key: " + err.Error()}
			}
			return pub, "ES256", nil
		default:
			return nil, "", fmt.Errorf("jwks: key %s is %s/%s, which authbench does not know", kid, k.Kty, k.Crv)
		}
	}
	return nil, "", fmt.Errorf("jwks: no key with kid %q", kid)
}

// tokenKid reads the kid of a token without verifying it.
func tokenKid(tok string) (string, error) {
	t, _, err := jwt.NewParser().ParseUnverified(tok, jwt.MapClaims{})
	if err != nil {
		return "", err
	}
	kid, _ := t.Header["kid"].(string)
	if kid == "" {
		return "", fmt.Errorf("token has no kid")
	}
	return kid, nil
}
