package httpapi_test

import (
	"context"
	"net/http"
	"testing"
	"time"

	"golang.org/x/oauth2"
	"golang.org/x/oauth2/clientcredentials"

	"github.com/seedc5a8123e/authd/internal/authdtest"
)

// TestGolangOAuth2Client drives the token endpoint with golang.org/x/oauth2,
// unmodified, as integrators will.
func TestGolangOAuth2Client(t *testing.T) {
	env := authdtest.Start(t, authdtest.Options{})
	env.CreateUser(t, "oscar", "user", pw)
	env.CreateUser(t, "search-svc", "service", "search service secret")
	ctx := context.WithValue(context.Background(), oauth2.HTTPClient, env.Server.Client())

	t.Run("PasswordAndRefreshingTokenSource", func(t *testing.T) {
		cfg := &oauth2.Config{ClientID: "cli", Endpoint: oauth2.Endpoint{TokenURL: env.URL + "/token"}}
		tok, err := cfg.PasswordCredentialsToken(ctx, "oscar", pw)
		if err != nil {
			t.Fatal(err)
		}
		sid, _ := tok.Extra("sid").(string)
		if tok.TokenType != "Bearer" || tok.RefreshToken == "" || sid == "" || tok.Expiry.IsZero() {
			t.Fatalf("token = %+v", tok)
		}
		// x/oauth2 measures expiry on the wall clock; mark the token expired
		// so the TokenSource must refresh it.
		stale := *tok
		stale.Expiry = time.Now().Add(-time.Minute)
		src := cfg.TokenSource(ctx, &stale)
		fresh, err := src.Token()
		if err != nil {
			t.Fatalf("TokenSource refresh: %v", err)
		}
		if fresh.AccessToken == tok.AccessToken || fresh.RefreshToken == tok.RefreshToken || fresh.Extra("sid") != sid {
			t.Fatalf("refresh did not rotate: %+v", fresh)
		}
		// An authenticated call with the refreshed token works.
		client := oauth2.NewClient(ctx, src)
		res, err := client.Post(env.URL+"/logout", "", nil)
		if err != nil {
			t.Fatal(err)
		}
		res.Body.Close()
		if res.StatusCode != http.StatusOK {
			t.Fatalf("logout with the refreshed token: %d", res.StatusCode)
		}
		// After logout the refresh token is dead too.
		dead := *fresh
		dead.Expiry = time.Now().Add(-time.Minute)
		if _, err := cfg.TokenSource(ctx, &dead).Token(); err == nil {
			t.Fatal("refresh after logout succeeded")
		} else if re, ok := err.(*oauth2.RetrieveError); !ok || re.ErrorCode != "invalid_grant" {
			t.Fatalf("refresh after logout: %v, want invalid_grant", err)
		}
	})

	for name, style := range map[string]oauth2.AuthStyle{
		"ClientCredentialsHeader": oauth2.AuthStyleInHeader,
		"ClientCredentialsParams": oauth2.AuthStyleInParams,
		"ClientCredentialsAuto":   oauth2.AuthStyleAutoDetect,
	} {
		t.Run(name, func(t *testing.T) {
			cc := clientcredentials.Config{ClientID: "search-svc", ClientSecret: "search service secret",
				TokenURL: env.URL + "/token", AuthStyle: style}
			tok, err := cc.Token(ctx)
			if err != nil {
				t.Fatal(err)
			}
			if tok.AccessToken == "" || tok.RefreshToken != "" {
				t.Fatalf("token = %+v", tok)
			}
			bad := cc
			bad.ClientSecret = "nope"
			_, err = bad.Token(ctx)
			if re, ok := err.(*oauth2.RetrieveError); !ok || re.ErrorCode != "invalid_client" {
				t.Fatalf("bad secret: %v, want invalid_client", err)
			}
		})
	}
}
