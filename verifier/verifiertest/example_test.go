package verifiertest_test

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

const sessionID = "9a8b7c6d-5e4f-4a3b-9c2d-1e0f9a8b7c6d"

// newVerifier is what a service's test helper does. A test would use
// NewServer(t) and t.Cleanup; an Example has no *testing.T.
func newVerifier(opts ...verifiertest.Option) (*verifiertest.Server, *verifier.Verifier) {
	authd := verifiertest.Start(opts...)
	v, err := verifier.New(context.Background(), authd.Config())
	if err != nil {
		log.Fatal(err)
	}
	return authd, v
}

// await polls Verify until it fails with want: the Verifier learns of a
// change on the Server with its next poll.
func await(v *verifier.Verifier, tok string, want error) error {
	var err error
	for deadline := time.Now().Add(5 * time.Second); time.Now().Before(deadline); time.Sleep(5 * time.Millisecond) {
		if _, err = v.Verify(context.Background(), tok); errors.Is(err, want) {
			break
		}
	}
	return err
}

// A handler protected by verifier.Middleware, tested without authd.
func Example() {
	authd, v := newVerifier()
	defer authd.Close()
	defer v.Close()

	h := verifier.Middleware(v)(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		c, _ := verifier.ClaimsFromContext(r.Context())
		fmt.Fprintf(w, "hello %s", c.Subject)
	}))
	for _, tok := range []string{
		authd.Mint("alice", sessionID, "user"),
		authd.Mint("alice", sessionID, "user", verifiertest.ExpiresIn(-time.Hour)),
		authd.Mint("alice", sessionID, "user", verifiertest.WithClaim("aud", "another-service")),
	} {
		req := httptest.NewRequest(http.MethodGet, "/", nil)
		req.Header.Set("Authorization", "Bearer "+tok)
		rec := httptest.NewRecorder()
		h.ServeHTTP(rec, req)
		fmt.Println(rec.Code, strings.TrimSpace(rec.Body.String()))
	}
	// Output:
	// 200 hello alice
	// 401 Unauthorized
	// 401 Unauthorized
}

// A logout in authd reaches the Verifier with its next poll.
func ExampleServer_Revoke() {
	authd, v := newVerifier()
	defer authd.Close()
	defer v.Close()

	tok := authd.Mint("alice", sessionID, "user")
	authd.Revoke(sessionID)
	err := await(v, tok, verifier.ErrRevoked)
	fmt.Println(errors.Is(err, verifier.ErrRevoked))
	// Output:
	// true
}

// Tokens of a new signing key are accepted at once; older tokens stay valid.
func ExampleServer_RotateKey() {
	authd, v := newVerifier()
	defer authd.Close()
	defer v.Close()

	old := authd.Mint("alice", sessionID, "user")
	kid := authd.RotateKey()
	for _, tok := range []string{old, authd.Mint("alice", sessionID, "user")} {
		_, err := v.Verify(context.Background(), tok)
		fmt.Println(kid, err)
	}
	// Output:
	// key-2 <nil>
	// key-2 <nil>
}

// While the feed is down the Verifier keeps its denylist; once its last
// successful poll is older than MaxStaleness it fails closed. A Clock
// shared by the Server and the Verifier makes that time pass at once.
func ExampleServer_SetFeedDown() {
	clk := verifiertest.NewClock(time.Date(2030, 1, 1, 12, 0, 0, 0, time.UTC))
	authd, v := newVerifier(verifiertest.WithClock(clk))
	defer authd.Close()
	defer v.Close()

	authd.SetFeedDown(true)
	// Wait until a poll has failed: one under way could still succeed.
	for failed := v.Stats().PollErrors; v.Stats().PollErrors == failed; {
		time.Sleep(5 * time.Millisecond)
	}
	clk.Advance(2 * time.Minute) // past Config's MaxStaleness of one minute
	tok := authd.Mint("alice", sessionID, "user")
	_, err := v.Verify(context.Background(), tok)
	fmt.Println(errors.Is(err, verifier.ErrStale), v.Stats().Stale)

	authd.SetFeedDown(false)
	fmt.Println(await(v, tok, nil))
	// Output:
	// true true
	// <nil>
}
