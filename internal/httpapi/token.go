package httpapi

import (
	"bytes"
	"encoding/json"
	"errors"
	"io"
	"mime"
	"net/http"
	"net/url"
	"slices"
	"strings"
	"unicode/utf8"

	"github.com/labstack/echo/v4"

	"github.com/seedc5a8123e/authd/internal/session"
)

// maxParamBytes caps any single /token parameter; passwords have their own,
// tighter, policy limit when they are set.
const maxParamBytes = 4096

type tokenResponse struct {
	AccessToken  string `json:"access_token"`
	TokenType    string `json:"token_type"`
	ExpiresIn    int64  `json:"expires_in"`
	RefreshToken string `json:"refresh_token,omitempty"`
	SID          string `json:"sid"`
}

// token is the OAuth 2.0 token endpoint (RFC 6749 section 3.2).
func (h *handlers) token(c echo.Context) error {
	noStore(c)
	p, err := readTokenParams(c.Request())
	if err != nil {
		return err
	}
	ctx, m := c.Request().Context(), meta(c)
	gt := p["grant_type"]
	if p["scope"] != "" && slices.Contains(session.Grants, gt) {
		return errInvalidScope
	}
	var g session.Grant
	switch gt {
	case session.GrantPassword:
		user, pw, err := p.require("username", "password")
		if err != nil {
			return err
		}
		if m.ClientID, err = publicClientID(c.Request(), p); err != nil {
			return err
		}
		if g, err = h.Sessions.PasswordGrant(ctx, user, pw, m); err != nil {
			return err
		}
	case session.GrantRefreshToken:
		rt, _, err := p.require("refresh_token", "")
		if err != nil {
			return err
		}
		if m.ClientID, err = publicClientID(c.Request(), p); err != nil {
			return err
		}
		if g, err = h.Sessions.RefreshGrantWith(ctx, rt, m); err != nil {
			return err
		}
	case session.GrantClientCredentials:
		id, secret, err := clientCredentials(c.Request(), p)
		if err != nil {
			return err
		}
		if g, err = h.Sessions.ClientCredentialsGrant(ctx, id, secret, m); err != nil {
			return err
		}
	case "":
		return invalidRequest("grant_type is required")
	default:
		return errUnsupportedGrant
	}
	return c.JSON(http.StatusOK, tokenResponse{
		AccessToken: g.AccessToken, TokenType: "Bearer", ExpiresIn: g.ExpiresIn,
		RefreshToken: g.RefreshToken, SID: g.SID,
	})
}

// errUnsupportedGrant names the grants there are.
var errUnsupportedGrant = &oauthError{http.StatusBadRequest, "unsupported_grant_type",
	"grant_type must be one of " + strings.Join(session.Grants, ", ")}

// errInvalidScope answers any non-empty scope (RFC 6749 sections 3.3, 5.2):
// authd's authorization model is the role claim, so it has no scope to
// grant, and a client that asked for one must not believe it got it.
var errInvalidScope = &oauthError{http.StatusBadRequest, "invalid_scope",
	"authd issues role-based access tokens and grants no OAuth scopes; send no scope parameter"}

// publicClientID is the client_id a password or refresh grant names: the
// body's client_id or, failing that, the user-id of HTTP Basic (form-encoded
// inside, RFC 6749 section 2.3.1), where golang.org/x/oauth2 puts a client
// id that has no secret. Empty when neither names one. These grants serve
// public clients: the client_id is recorded, never authenticated, and a
// secret (Basic's password, client_secret) is ignored as it always was.
// Both naming different clients is refused; session.CheckClientID judges
// the id itself.
func publicClientID(r *http.Request, p tokenParams) (string, error) {
	id := p["client_id"]
	basicID, _, basic := r.BasicAuth()
	if !basic || basicID == "" {
		return id, nil
	}
	basicID, err := url.QueryUnescape(basicID)
	if err != nil {
		return "", invalidRequest("the HTTP Basic user-id must be a form-encoded client_id")
	}
	if id != "" && id != basicID {
		return "", invalidRequest("client_id and the HTTP Basic user-id name different clients")
	}
	return basicID, nil
}

type tokenParams map[string]string

// require returns the named parameters (b may be empty to ask for one),
// refusing missing or empty ones.
func (p tokenParams) require(a, b string) (string, string, error) {
	for _, k := range []string{a, b} {
		if k != "" && p[k] == "" {
			return "", "", invalidRequest(k + " is required")
		}
	}
	return p[a], p[b], nil
}

// readTokenParams reads a form-encoded body (RFC 6749) or, as a convenience,
// a JSON object of strings. Repeated parameters, invalid UTF-8 and oversized
// values are refused, as RFC 6749 section 3.2 asks.
func readTokenParams(r *http.Request) (tokenParams, error) {
	ct, _, err := mime.ParseMediaType(r.Header.Get(echo.HeaderContentType))
	if err != nil && r.Header.Get(echo.HeaderContentType) != "" {
		return nil, unsupportedMedia()
	}
	body, err := io.ReadAll(r.Body)
	if err != nil {
		var mbe *http.MaxBytesError
		if errors.As(err, &mbe) {
			return nil, errBodyTooLarge
		}
		return nil, invalidRequest("the request body could not be read")
	}
	var p tokenParams
	switch ct {
	case "application/x-www-form-urlencoded":
		p, err = parseForm(body)
	case "application/json":
		p, err = parseJSONParams(body)
	default:
		return nil, unsupportedMedia()
	}
	if err != nil {
		return nil, err
	}
	for k, v := range p {
		if !utf8.ValidString(k) || !utf8.ValidString(v) || strings.ContainsRune(k, 0) || strings.ContainsRune(v, 0) {
			return nil, invalidRequest("parameters must be valid UTF-8 without NUL characters")
		}
		if len(v) > maxParamBytes {
			return nil, invalidRequest("parameter " + safeName(k) + " is too long")
		}
	}
	return p, nil
}

func unsupportedMedia() error {
	return &problem{Type: "about:blank", Title: http.StatusText(http.StatusUnsupportedMediaType),
		Status: http.StatusUnsupportedMediaType, Detail: "send application/x-www-form-urlencoded (or application/json)"}
}

func parseForm(body []byte) (tokenParams, error) {
	q, err := url.ParseQuery(string(body))
	if err != nil {
		return nil, invalidRequest("the form body is malformed")
	}
	p := make(tokenParams, len(q))
	for k, vs := range q {
		if len(vs) > 1 {
			return nil, invalidRequest("parameter " + safeName(k) + " is repeated")
		}
		p[k] = vs[0]
	}
	return p, nil
}

// parseJSONParams accepts one flat JSON object whose values are strings,
// refusing duplicate keys (encoding/json would silently keep the last).
func parseJSONParams(body []byte) (tokenParams, error) {
	bad := invalidRequest("the JSON body must be one object of string values")
	// encoding/json turns invalid bytes and lone surrogates into U+FFFD, so
	// the raw text is checked before it is decoded.
	if !jsonTextIsUTF8(body) {
		return nil, invalidRequest("parameters must be valid UTF-8 without NUL characters")
	}
	dec := json.NewDecoder(bytes.NewReader(body))
	if tok, err := dec.Token(); err != nil || tok != json.Delim('{') {
		return nil, bad
	}
	p := tokenParams{}
	for dec.More() {
		kt, err := dec.Token()
		if err != nil {
			return nil, bad
		}
		k, _ := kt.(string)
		vt, err := dec.Token()
		if err != nil {
			return nil, bad
		}
		v, ok := vt.(string)
		if !ok {
			return nil, bad
		}
		if _, dup := p[k]; dup {
			return nil, invalidRequest("parameter " + safeName(k) + " is repeated")
		}
		p[k] = v
	}
	if tok, err := dec.Token(); err != nil || tok != json.Delim('}') {
		return nil, bad
	}
	if _, err := dec.Token(); err != io.EOF {
		return nil, bad
	}
	return p, nil
}

// clientCredentials takes the client's id and secret from HTTP Basic
// (RFC 6749 section 2.3.1, form-encoded inside) or from the body, never both.
func clientCredentials(r *http.Request, p tokenParams) (string, string, error) {
	id, secret, basic := r.BasicAuth()
	_, formID := p["client_id"]
	_, formSecret := p["client_secret"]
	if basic && (formID || formSecret) {
		if formSecret || p["client_id"] != id {
			return "", "", invalidRequest("use one client authentication method, not both")
		}
	}
	if basic {
		var err error
		if id, secret, err = unescapeBasic(id, secret); err != nil {
			return "", "", err
		}
	} else {
		id, secret = p["client_id"], p["client_secret"]
	}
	if err := checkClientCredentials(id, secret); err != nil {
		return "", "", err
	}
	return id, secret, nil
}

// checkClientCredentials refuses, as a failed client authentication, an id
// or secret that is empty, not UTF-8 text without NUL, or oversized: none of
// them can belong to a client, and none may reach the database.
func checkClientCredentials(id, secret string) error {
	if id == "" || secret == "" || !utf8.ValidString(id) || !utf8.ValidString(secret) ||
		strings.ContainsRune(id+secret, 0) || len(id) > maxParamBytes || len(secret) > maxParamBytes {
		return errInvalidClient
	}
	return nil
}

// unescapeBasic undoes the form-encoding RFC 6749 section 2.3.1 puts inside
// HTTP Basic credentials.
func unescapeBasic(id, secret string) (string, string, error) {
	id, err1 := url.QueryUnescape(id)
	secret, err2 := url.QueryUnescape(secret)
	if err1 != nil || err2 != nil {
		return "", "", errInvalidClient
	}
	return id, secret, nil
}

// mediaType is a Content-Type without its parameters, lower-cased; empty
// when it does not parse.
func mediaType(ct string) string {
	mt, _, err := mime.ParseMediaType(ct)
	if err != nil {
		return ""
	}
	return mt
}

// safeName keeps a client-chosen parameter name short and printable before it
// is echoed in an error description.
func safeName(k string) string {
	k = strings.Map(func(r rune) rune {
		if r < 0x20 || r == 0x7f || r == '"' || r == '\\' {
			return -1
		}
		return r
	}, k)
	return truncate(k, 40)
}

func truncate(s string, n int) string {
	if len(s) <= n {
		return s
	}
	s = s[:n]
	for !utf8.ValidString(s) && len(s) > 0 {
		s = s[:len(s)-1]
	}
	return s
}
