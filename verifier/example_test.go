package verifier_test

import (
	"context"
	"errors"
	"fmt"
	"log"
	"net/http"
	"net/http/httptest"
	"strings"
	"time"

	"github.com/seedc5a8123e/authd/verifier"
	"github.com/seedc5a8123e/authd/verifier/verifiertest"
)

// A session id as authd issues them; Verify insists on a UUID.
const exampleSID = "9a8b7c6d-5e4f-4a3b-9c2d-1e0f9a8b7c6d"

// A service protects its API with authd tokens. Here verifiertest stands in
// for authd, as it can in the service's own tests; in production the Config
// names authd and a service user:
//
//	verifier.Config{
//		IssuerURL:    "http://authd:8080",
//		ClientID:     "billing-svc",
//		ClientSecret: os.Getenv("AUTHD_CLIENT_SECRET"),
//		RedisURL:     "redis://redis:6379/0", // optional: revocations in milliseconds
//	}
//
// New blocks until the keys and the full revocation snapshot are loaded.
func Example() {
	authd := verifiertest.Start()
	defer authd.Close()
	v, err := verifier.New(context.Background(), authd.Config())
	if err != nil {
		log.Fatal(err)
	}
	defer v.Close()

	mux := http.NewServeMux()
	mux.HandleFunc("GET /hello", func(w http.ResponseWriter, r *http.Request) {
		c, _ := verifier.ClaimsFromContext(r.Context())
		fmt.Fprintf(w, "hello %s (role %s)\n", c.Subject, c.Role)
	})
	api := verifier.Middleware(v)(mux)

	for _, auth := range []string{"Bearer " + authd.Mint("alice", exampleSID, "user"), ""} {
		req := httptest.NewRequest(http.MethodGet, "/hello", nil)
		if auth != "" {
			req.Header.Set("Authorization", auth)
		}
		rec := httptest.NewRecorder()
		api.ServeHTTP(rec, req)
		fmt.Print(rec.Code, " ", rec.Body)
	}
	// Output:
	// 200 hello alice (role user)
	// 401 Unauthorized
}

// Errors are sentinels: tell a revoked session from an outage of the feed.
func ExampleVerifier_Verify() {
	authd := verifiertest.Start()
	defer authd.Close()
	v, err := verifier.New(context.Background(), authd.Config())
	if err != nil {
		log.Fatal(err)
	}
	defer v.Close()

	verdict := func(c *verifier.Claims, err error) string {
		switch {
		case err == nil:
			return "ok: " + c.Subject
		case errors.Is(err, verifier.ErrRevoked):
			return "logged out"
		case errors.Is(err, verifier.ErrStale):
			return "cannot check revocation now; retry later"
		default:
			return "invalid token"
		}
	}
	ctx := context.Background()
	tok := authd.Mint("alice", exampleSID, "user")
	fmt.Println(verdict(v.Verify(ctx, tok)))
	fmt.Println(verdict(v.Verify(ctx, tok[:len(tok)-2])))

	authd.Revoke(exampleSID)
	// The Verifier learns of the logout with its next poll of the feed.
	var c *verifier.Claims
	for deadline := time.Now().Add(5 * time.Second); time.Now().Before(deadline); time.Sleep(10 * time.Millisecond) {
		if c, err = v.Verify(ctx, tok); errors.Is(err, verifier.ErrRevoked) {
			break
		}
	}
	fmt.Println(verdict(c, err))
	// Output:
	// ok: alice
	// invalid token
	// logged out
}

// RequireRole answers 403 to tokens of other roles.
func ExampleRequireRole() {
	authd := verifiertest.Start()
	defer authd.Close()
	v, err := verifier.New(context.Background(), authd.Config())
	if err != nil {
		log.Fatal(err)
	}
	defer v.Close()

	admin := verifier.Middleware(v, verifier.RequireRole("admin"))(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		fmt.Fprintln(w, "welcome, admin")
	}))
	for _, role := range []string{"admin", "user"} {
		req := httptest.NewRequest(http.MethodGet, "/admin/", nil)
		req.Header.Set("Authorization", "Bearer "+authd.Mint("alice", exampleSID, role))
		rec := httptest.NewRecorder()
		admin.ServeHTTP(rec, req)
		fmt.Printf("%s: %d %s\n", role, rec.Code, strings.TrimSpace(rec.Body.String()))
	}
	// Output:
	// admin: 200 welcome, admin
	// user: 403 Forbidden
}

// Stats serves a health check: Stale is what makes Verify fail closed.
func ExampleVerifier_Stats() {
	authd := verifiertest.Start()
	defer authd.Close()
	v, err := verifier.New(context.Background(), authd.Config())
	if err != nil {
		log.Fatal(err)
	}
	defer v.Close()

	healthz := http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		st := v.Stats()
		if st.Stale {
			w.WriteHeader(http.StatusServiceUnavailable)
		}
		fmt.Fprintf(w, "stale=%v revoked_sessions=%d\n", st.Stale, st.DenylistSize)
	})
	rec := httptest.NewRecorder()
	healthz.ServeHTTP(rec, httptest.NewRequest(http.MethodGet, "/healthz", nil))
	fmt.Print(rec.Code, " ", rec.Body)
	// Output:
	// 200 stale=false revoked_sessions=0
}
