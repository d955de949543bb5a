package httpapi_test

import (
	"encoding/base64"
	"net/http"
	"net/url"
	"strings"
	"testing"

	"github.com/google/uuid"

	"github.com/seedc5a8123e/authd/internal/authdtest"
)

// TestHostileQueryParametersAreClientErrors: values PostgreSQL itself would
// refuse (NUL, invalid UTF-8, out-of-range timestamps) must be answered 400,
// never reach the database as a 500.
func TestHostileQueryParametersAreClientErrors(t *testing.T) {
	env := authdtest.Start(t, authdtest.Options{})
	env.CreateUser(t, "root", "admin", pw)
	admin := env.Login(t, "root", pw)
	farPast := base64.RawURLEncoding.EncodeToString([]byte("-9000000000000000000_" + uuid.NewString()))
	farFuture := base64.RawURLEncoding.EncodeToString([]byte("9000000000000000000_" + uuid.NewString()))
	nulCursor := base64.RawURLEncoding.EncodeToString([]byte("a\x00b"))
	for _, path := range []string{
		"/users?query=" + url.QueryEscape("a\x00b"),
		"/users?query=%ff",
		"/users?cursor=" + nulCursor,
		"/sessions?cursor=" + farPast,
		"/sessions?cursor=" + farFuture,
		"/users/" + url.PathEscape("not-a-uuid") + "/sessions",
	} {
		t.Run(path, func(t *testing.T) {
			res, body := env.Do(t, http.MethodGet, path, admin.AccessToken, "", nil)
			if res.StatusCode != http.StatusBadRequest {
				t.Fatalf("%d %s, want 400", res.StatusCode, body)
			}
		})
	}
	t.Run("BasicAuthWithNUL", func(t *testing.T) {
		req, _ := http.NewRequest(http.MethodPost, env.URL+"/token", strings.NewReader("grant_type=client_credentials"))
		req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
		req.SetBasicAuth("a%00b", "secret") // form-encoded inside Basic, as RFC 6749 2.3.1 says
		res, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		res.Body.Close()
		if res.StatusCode != http.StatusUnauthorized {
			t.Fatalf("%d, want 401 invalid_client", res.StatusCode)
		}
	})
}
