package verifiertest_test

import (
	"context"
	"encoding/json"
	"errors"
	"io"
	"net/http"
	"net/url"
	"strings"
	"testing"
	"time"

	"github.com/golang-jwt/jwt/v5"
	"github.com/google/uuid"

	"github.com/seedc5a8123e/authd/verifier"
	"github.com/seedc5a8123e/authd/verifier/verifiertest"
)

// get fetches path from srv and decodes the JSON body into out (if not nil).
func get(t *testing.T, srv *verifiertest.Server, path, bearer string, out any) *http.Response {
	t.Helper()
	req, _ := http.NewRequest(http.MethodGet, srv.URL+path, nil)
	if bearer != "" {
		req.Header.Set("Authorization", "Bearer "+bearer)
	}
	res, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer res.Body.Close()
	if out != nil {
		if err := json.NewDecoder(res.Body).Decode(out); err != nil {
			t.Fatalf("GET %s: %v", path, err)
		}
	}
	return res
}

// serviceToken runs the client credentials grant with credentials sent the
// way authd accepts them (form or basic) and returns the access token.
func serviceToken(t *testing.T, srv *verifiertest.Server, basic bool, secret string) (int, string) {
	t.Helper()
	form := url.Values{"grant_type": {"client_credentials"}}
	if !basic {
		form.Set("client_id", verifiertest.ClientID)
		form.Set("client_secret", secret)
	}
	req, _ := http.NewRequest(http.MethodPost, srv.URL+"/token", strings.NewReader(form.Encode()))
	req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	if basic {
		req.SetBasicAuth(verifiertest.ClientID, secret)
	}
	res, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer res.Body.Close()
	var body struct {
		AccessToken string `json:"access_token"`
		TokenType   string `json:"token_type"`
		ExpiresIn   int    `json:"expires_in"`
		Error       string `json:"error"`
	}
	if err := json.NewDecoder(res.Body).Decode(&body); err != nil {
		t.Fatal(err)
	}
	if res.StatusCode == http.StatusOK && (body.TokenType != "Bearer" || body.ExpiresIn != 600) {
		t.Errorf("token response %+v", body)
	}
	if res.StatusCode != http.StatusOK && body.Error != "invalid_client" {
		t.Errorf("refusal %d %+v, want invalid_client", res.StatusCode, body)
	}
	return res.StatusCode, body.AccessToken
}

// TestWireFormat pins what a Server answers, endpoint by endpoint, to what
// package verifier reads from authd.
func TestWireFormat(t *testing.T) {
	srv := verifiertest.NewServer(t)

	var md map[string]any
	get(t, srv, verifier.DiscoveryPath, "", &md)
	for member, want := range map[string]string{
		"issuer":                    verifiertest.DefaultIssuer,
		"token_endpoint":            verifiertest.DefaultIssuer + "/token",
		"jwks_uri":                  verifiertest.DefaultIssuer + "/.well-known/jwks.json",
		"revoked_sessions_endpoint": verifiertest.DefaultIssuer + "/sessions/revoked",
	} {
		if md[member] != want {
			t.Errorf("metadata %s = %v, want %s", member, md[member], want)
		}
	}

	var jwks struct {
		Keys []map[string]string `json:"keys"`
	}
	get(t, srv, "/.well-known/jwks.json", "", &jwks)
	if len(jwks.Keys) != 1 || jwks.Keys[0]["kty"] != "OKP" || jwks.Keys[0]["crv"] != "Ed25519" ||
		jwks.Keys[0]["alg"] != "EdDSA" || jwks.Keys[0]["use"] != "sig" || jwks.Keys[0]["kid"] == "" || jwks.Keys[0]["x"] == "" {
		t.Errorf("JWKS %v", jwks.Keys)
	}

	if code, _ := serviceToken(t, srv, true, "wrong"); code != http.StatusUnauthorized {
		t.Errorf("wrong secret: %d", code)
	}
	_, viaForm := serviceToken(t, srv, false, verifiertest.ClientSecret)
	code, bearer := serviceToken(t, srv, true, verifiertest.ClientSecret)
	if code != http.StatusOK || bearer == "" || bearer != viaForm {
		t.Fatalf("service token: %d %q (form: %q)", code, bearer, viaForm)
	}

	res := get(t, srv, "/sessions/revoked", "", nil)
	if res.StatusCode != http.StatusUnauthorized || !strings.Contains(res.Header.Get("WWW-Authenticate"), "invalid_token") {
		t.Errorf("feed without a token: %d %q", res.StatusCode, res.Header.Get("WWW-Authenticate"))
	}
	var entries []verifier.Revocation
	res = get(t, srv, "/sessions/revoked", bearer, &entries)
	if res.StatusCode != http.StatusOK || res.Header.Get(verifier.CursorHeader) != "0" || len(entries) != 0 {
		t.Errorf("empty feed: %d, cursor %q, %v", res.StatusCode, res.Header.Get(verifier.CursorHeader), entries)
	}

	sid := uuid.NewString()
	srv.Mint("u", sid, "user", verifiertest.ExpiresIn(time.Hour))
	last := srv.Mint("u", sid, "user")
	srv.Revoke(sid)
	res = get(t, srv, "/sessions/revoked", bearer, &entries)
	if cur := res.Header.Get(verifier.CursorHeader); cur != "1" || len(entries) != 1 {
		t.Fatalf("feed after Revoke: cursor %q, %v", cur, entries)
	}
	claims := jwt.MapClaims{}
	if _, _, err := jwt.NewParser().ParseUnverified(last, claims); err != nil {
		t.Fatal(err)
	}
	// The entry names the newest token and outlives every token.
	if e := entries[0]; e.SID != sid || e.JTI != claims["jti"] || e.Exp < time.Now().Add(59*time.Minute).Unix() {
		t.Errorf("entry %+v; newest jti %v", e, claims["jti"])
	}
	get(t, srv, "/sessions/revoked?since=1", bearer, &entries)
	if len(entries) != 0 {
		t.Errorf("since=1: %v", entries)
	}

	srv.SetFeedDown(true)
	if res := get(t, srv, "/sessions/revoked", bearer, nil); res.StatusCode != http.StatusServiceUnavailable {
		t.Errorf("feed down: %d", res.StatusCode)
	}
	srv.SetFeedDown(false)
	srv.RenewServiceToken()
	if res := get(t, srv, "/sessions/revoked", bearer, nil); res.StatusCode != http.StatusUnauthorized {
		t.Errorf("old service token after RenewServiceToken: %d", res.StatusCode)
	}
	if _, renewed := serviceToken(t, srv, true, verifiertest.ClientSecret); renewed == bearer {
		t.Error("RenewServiceToken issued the same token")
	}

	want := verifiertest.Requests{Discovery: 1, JWKS: 1, Token: 4, Feed: 6}
	if got := srv.Requests(); got != want {
		t.Errorf("Requests() = %+v, want %+v", got, want)
	}

	plain := verifiertest.NewServer(t, verifiertest.WithoutDiscovery())
	if res := get(t, plain, verifier.DiscoveryPath, "", nil); res.StatusCode != http.StatusNotFound {
		t.Errorf("WithoutDiscovery: metadata answered %d", res.StatusCode)
	}
}

// TestMint: Mint's tokens carry authd's claims, and a Verifier on the
// Server accepts them, also after RotateKey.
func TestMint(t *testing.T) {
	clk := verifiertest.NewClock(time.Date(2030, 1, 1, 0, 0, 0, 500, time.UTC))
	srv := verifiertest.NewServer(t, verifiertest.WithClock(clk), verifiertest.WithIssuer("https://auth.example"),
		verifiertest.WithAudience("billing"))
	v, err := verifier.New(context.Background(), srv.Config())
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = v.Close() })
	ctx := context.Background()

	sid := uuid.NewString()
	c, err := v.Verify(ctx, srv.Mint("alice", sid, "admin"))
	if err != nil {
		t.Fatal(err)
	}
	now := clk.Now().Truncate(time.Second)
	if c.Subject != "alice" || c.SessionID != sid || c.Role != "admin" || c.Issuer != "https://auth.example" ||
		len(c.Audience) != 1 || c.Audience[0] != "billing" || c.ID == "" || !c.IssuedAt.Equal(now) ||
		!c.NotBefore.Equal(now) || !c.ExpiresAt.Equal(now.Add(verifiertest.DefaultTokenLifetime)) {
		t.Errorf("claims %+v", c)
	}

	if _, err := v.Verify(ctx, srv.Mint("alice", sid, "user", verifiertest.ExpiresIn(-time.Minute))); !errors.Is(err, verifier.ErrExpired) {
		t.Errorf("ExpiresIn(-1m): %v, want ErrExpired", err)
	}

	kid := srv.RotateKey()
	tok := srv.Mint("alice", sid, "user")
	tt, _, err := jwt.NewParser().ParseUnverified(tok, jwt.MapClaims{})
	if err != nil || tt.Header["kid"] != kid || tt.Header["typ"] != verifier.Type || tt.Header["alg"] != "EdDSA" {
		t.Fatalf("header after RotateKey: %v, %v", tt.Header, err)
	}
	if _, err := v.Verify(ctx, tok); err != nil {
		t.Errorf("token of the rotated key: %v", err)
	}
}

func TestPublishKeyRefusesOtherKeys(t *testing.T) {
	srv := verifiertest.NewServer(t)
	if err := srv.PublishKey("rsa", []byte("not a key")); err == nil {
		t.Error("PublishKey accepted a []byte")
	}
}

func TestClose(t *testing.T) {
	srv := verifiertest.Start()
	srv.Close()
	srv.Close()
	if res, err := http.Get(srv.URL + "/.well-known/jwks.json"); err == nil {
		_, _ = io.Copy(io.Discard, res.Body)
		res.Body.Close()
		t.Error("a closed Server answered")
	}
}
