package verifier_test

import (
	"context"
	"errors"
	"fmt"
	"log"
	"net/http"
	"os"

	"github.com/seedc5a8123e/authd/verifier"
)

// A service protects its API with authd tokens. New blocks until the keys
// and the full revocation snapshot are loaded. (Not run: it needs authd.)
func Example() {
	ctx := context.Background()
	v, err := verifier.New(ctx, verifier.Config{
		IssuerURL:    "http://localhost:8080",
		Audience:     "authd",
		ClientID:     "svc",
		ClientSecret: os.Getenv("VERIFIER_CLIENT_SECRET"),
		RedisURL:     "redis://localhost:6379/0", // optional: revocations in milliseconds
	})
	if err != nil {
		log.Fatal(err)
	}
	defer v.Close()

	mux := http.NewServeMux()
	mux.HandleFunc("GET /hello", func(w http.ResponseWriter, r *http.Request) {
		c, _ := verifier.ClaimsFromContext(r.Context())
		fmt.Fprintf(w, "hello %s (session %s)\n", c.Subject, c.SessionID)
	})
	log.Fatal(http.ListenAndServe(":8081", verifier.Middleware(v)(mux)))
}

// Errors are sentinels: tell a revoked session from an outage of the feed.
func ExampleVerifier_Verify() {
	var v *verifier.Verifier // from verifier.New
	if v == nil {
		return
	}
	_, err := v.Verify(context.Background(), "eyJ...")
	switch {
	case err == nil:
		fmt.Println("ok")
	case errors.Is(err, verifier.ErrRevoked):
		fmt.Println("logged out")
	case errors.Is(err, verifier.ErrStale):
		fmt.Println("cannot check revocation now; retry later")
	default:
		fmt.Println("invalid token")
	}
}

// RequireRole answers 403 to tokens of other roles.
func ExampleRequireRole() {
	var v *verifier.Verifier // from verifier.New
	admin := verifier.Middleware(v, verifier.RequireRole("admin"))
	http.Handle("/admin/", admin(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		fmt.Fprintln(w, "welcome, admin")
	})))
	// Output:
}
