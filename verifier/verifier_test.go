package verifier_test

import (
	"context"
	"errors"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/golang-jwt/jwt/v5"
	"github.com/google/uuid"

	"github.com/seedc5a8123e/authd/verifier"
	"github.com/seedc5a8123e/authd/verifier/verifiertest"
)

func TestVerify(t *testing.T) {
	srv, clk := newServer(t)
	ed, ec := newEdKey(t, "ed-1"), newECKey(t, "ec-1")
	ed.publish(t, srv)
	ec.publish(t, srv)
	v := newVerifier(t, srv, nil)
	now := clk.Now()
	ctx := context.Background()

	mintWith := func(opts ...verifiertest.MintOption) func() string {
		return func() string {
			tok, _ := mint(srv, opts...)
			return tok
		}
	}
	claim, header := verifiertest.WithClaim, verifiertest.WithHeader

	tests := []struct {
		name  string
		token func() string
		want  error // nil: accepted
	}{
		{"ValidMinted", mintWith(), nil},
		{"ValidEdDSA", func() string { return sign(t, ed, claimsAt(now), nil) }, nil},
		{"ValidES256", func() string { return sign(t, ec, claimsAt(now), nil) }, nil},
		{"ExpiredBeyondLeeway", mintWith(verifiertest.ExpiresIn(-31 * time.Second)), verifier.ErrExpired},
		{"ExpiredWithinLeeway", mintWith(verifiertest.ExpiresIn(-29 * time.Second)), nil},
		{"MissingExp", mintWith(claim("exp", nil)), verifier.ErrMalformed},
		{"NotBeforeInFuture", mintWith(claim("nbf", now.Add(time.Minute).Unix())), verifier.ErrNotYetValid},
		{"IssuedInFuture", mintWith(claim("iat", now.Add(time.Minute).Unix())), verifier.ErrNotYetValid},
		{"WrongIssuer", mintWith(claim("iss", "http://evil")), verifier.ErrIssuer},
		{"WrongAudience", mintWith(claim("aud", []string{"other"})), verifier.ErrAudience},
		{"WrongTyp", mintWith(header("typ", "JWT")), verifier.ErrMalformed},
		{"NoTyp", mintWith(header("typ", nil)), verifier.ErrMalformed},
		{"NoKid", mintWith(header("kid", nil)), verifier.ErrMalformed},
		{"UnknownKid", mintWith(header("kid", "nope")), verifier.ErrSignature},
		{"AlgHeaderNotTheKeys", mintWith(header("alg", "ES256")), verifier.ErrSignature},
		{"SidNotUUID", func() string { return srv.Mint(uuid.NewString(), "abc", "user") }, verifier.ErrMalformed},
		{"NoSubject", mintWith(claim("sub", nil)), verifier.ErrMalformed},
		{"NoJTI", mintWith(claim("jti", nil)), verifier.ErrMalformed},
		{"Garbage", func() string { return "not.a.jwt" }, verifier.ErrMalformed},
		{"Empty", func() string { return "" }, verifier.ErrMalformed},
		{"Huge", func() string { return strings.Repeat("a", verifier.MaxTokenBytes+1) }, verifier.ErrMalformed},
		{"TamperedPayload", func() string {
			parts := strings.Split(mintWith()(), ".")
			other := strings.Split(mintWith(claim("role", "admin"))(), ".")
			return parts[0] + "." + other[1] + "." + parts[2]
		}, verifier.ErrSignature},
		{"AlgNone", func() string {
			s, err := jwt.NewWithClaims(jwt.SigningMethodNone, claimsAt(now)).SignedString(jwt.UnsafeAllowNoneSignatureType)
			if err != nil {
				t.Fatal(err)
			}
			return s
		}, verifier.ErrSignature},
		{"HS256WithPublicKeyAsSecret", func() string {
			tok := jwt.NewWithClaims(jwt.SigningMethodHS256, claimsAt(now))
			tok.Header["kid"], tok.Header["typ"] = ed.kid, verifier.Type
			s, err := tok.SignedString([]byte(ed.x()))
			if err != nil {
				t.Fatal(err)
			}
			return s
		}, verifier.ErrSignature},
		{"ES256HeaderOnEdDSAKey", func() string {
			// Signed by the EC key but naming the Ed25519 key's kid.
			return sign(t, ec, claimsAt(now), map[string]any{"kid": ed.kid})
		}, verifier.ErrSignature},
		{"EdDSAHeaderOnES256Key", func() string {
			return sign(t, ed, claimsAt(now), map[string]any{"kid": ec.kid})
		}, verifier.ErrSignature},
		{"SignedByUnpublishedKeyWithKnownKid", func() string {
			return sign(t, newEdKey(t, ed.kid), claimsAt(now), nil)
		}, verifier.ErrSignature},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := v.Verify(ctx, tt.token())
			if tt.want == nil {
				if err != nil {
					t.Fatalf("Verify: %v, want success", err)
				}
				if got.SessionID == "" || got.Subject == "" || got.ID == "" || got.Role != "user" ||
					got.Issuer != testIssuer || len(got.Audience) != 1 || got.ExpiresAt.IsZero() {
					t.Errorf("claims incomplete: %+v", got)
				}
				return
			}
			if !errors.Is(err, tt.want) {
				t.Fatalf("Verify: got %v, want %v", err, tt.want)
			}
			if got != nil {
				t.Errorf("claims returned with an error: %+v", got)
			}
		})
	}
}

func TestVerifyRevoked(t *testing.T) {
	v, srv, _ := setup(t, nil)
	ctx := context.Background()
	sub, sid := uuid.NewString(), uuid.NewString()
	tok := srv.Mint(sub, sid, "user")
	if _, err := v.Verify(ctx, tok); err != nil {
		t.Fatalf("before revocation: %v", err)
	}
	srv.Revoke(sid)
	waitFor(t, 5*time.Second, "the poll to deliver the revocation", func() bool {
		_, err := v.Verify(ctx, tok)
		return errors.Is(err, verifier.ErrRevoked)
	})
	// Another token of the same session is denied as well.
	if _, err := v.Verify(ctx, srv.Mint(sub, sid, "user")); !errors.Is(err, verifier.ErrRevoked) {
		t.Fatalf("second token of the session: %v, want ErrRevoked", err)
	}
	if _, err := v.Verify(ctx, srv.Mint(sub, uuid.NewString(), "user")); err != nil {
		t.Fatalf("token of another session: %v", err)
	}
}

// TestNewLoadsSnapshotFirst: a revocation that predates the Verifier is
// enforced by the time New returns.
func TestNewLoadsSnapshotFirst(t *testing.T) {
	srv, _ := newServer(t)
	tok, sid := mint(srv)
	srv.Revoke(sid)
	v := newVerifier(t, srv, pollHourly)
	if _, err := v.Verify(context.Background(), tok); !errors.Is(err, verifier.ErrRevoked) {
		t.Fatalf("got %v, want ErrRevoked", err)
	}
}

func TestNewFailsAfterInitialTimeout(t *testing.T) {
	srv, _ := newServer(t)
	srv.SetFeedDown(true)
	start := time.Now()
	_, err := verifier.New(context.Background(), verifier.Config{
		IssuerURL: srv.URL, ClientID: verifiertest.ClientID, ClientSecret: verifiertest.ClientSecret,
		InitialTimeout: 300 * time.Millisecond,
	})
	if err == nil {
		t.Fatal("New succeeded with the feed down")
	}
	if d := time.Since(start); d > 3*time.Second {
		t.Errorf("New took %s", d)
	}
	// Long enough that even a loaded CI machine reaches the token request.
	_, err = verifier.New(context.Background(), verifier.Config{IssuerURL: srv.URL, ClientID: verifiertest.ClientID,
		ClientSecret: "wrong", InitialTimeout: 2 * time.Second})
	if err == nil || !strings.Contains(err.Error(), "service token") {
		t.Errorf("wrong secret: got %v", err)
	}
}

// TestNewContextBoundsStartup: New gives up when its context ends, even
// with a long InitialTimeout, and says why.
func TestNewContextBoundsStartup(t *testing.T) {
	srv, _ := newServer(t)
	srv.SetFeedDown(true)
	cfg := srv.Config()
	cfg.InitialTimeout = time.Minute
	ctx, cancel := context.WithTimeout(context.Background(), 300*time.Millisecond)
	defer cancel()
	start := time.Now()
	v, err := verifier.New(ctx, cfg)
	if err == nil {
		_ = v.Close()
		t.Fatal("New succeeded with the feed down")
	}
	if d := time.Since(start); d > 10*time.Second {
		t.Errorf("New took %s; its context's deadline was 300ms", d)
	}
	if !errors.Is(err, context.DeadlineExceeded) || !strings.Contains(err.Error(), "status 503") {
		t.Errorf("error %q names neither the deadline nor the last failure", err)
	}
}

// TestNewContextNotInherited: ending New's context after New returned stops
// nothing; the Verifier keeps polling until Close.
func TestNewContextNotInherited(t *testing.T) {
	for _, tc := range []struct {
		name string
		end  func() (context.Context, func())
	}{
		{"Cancelled", func() (context.Context, func()) {
			ctx, cancel := context.WithCancel(context.Background())
			return ctx, cancel
		}},
		{"DeadlinePassed", func() (context.Context, func()) {
			ctx, cancel := context.WithTimeout(context.Background(), time.Second)
			return ctx, func() { <-ctx.Done(); cancel() }
		}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			srv, _ := newServer(t)
			cfg := srv.Config()
			cfg.InitialTimeout = 5 * time.Second
			ctx, end := tc.end()
			v, err := verifier.New(ctx, cfg)
			if err != nil {
				t.Fatal(err)
			}
			t.Cleanup(func() { _ = v.Close() })
			end()

			tok, sid := mint(srv)
			if _, err := v.Verify(context.Background(), tok); err != nil {
				t.Fatalf("before revocation: %v", err)
			}
			srv.Revoke(sid)
			waitFor(t, 5*time.Second, "a poll after New's context ended", func() bool {
				_, err := v.Verify(context.Background(), tok)
				return errors.Is(err, verifier.ErrRevoked)
			})
		})
	}
}

func TestConfigValidation(t *testing.T) {
	for name, cfg := range map[string]verifier.Config{
		"NoURL":              {ClientID: "a", ClientSecret: "b"},
		"RelativeURL":        {IssuerURL: "authd:8080", ClientID: "a", ClientSecret: "b"},
		"NoSecret":           {IssuerURL: "http://x", ClientID: "a"},
		"StalenessBelowPoll": {IssuerURL: "http://x", ClientID: "a", ClientSecret: "b", PollInterval: time.Minute, MaxStaleness: time.Second},
		"BadRedisURL":        {IssuerURL: "http://127.0.0.1:1", ClientID: "a", ClientSecret: "b", RedisURL: "ftp://x"},
	} {
		t.Run(name, func(t *testing.T) {
			if _, err := verifier.New(context.Background(), cfg); err == nil {
				t.Fatal("New accepted an invalid config")
			}
		})
	}
}

func TestStaleness(t *testing.T) {
	for _, failOpen := range []bool{false, true} {
		name := "FailClosed"
		if failOpen {
			name = "FailOpen"
		}
		t.Run(name, func(t *testing.T) {
			v, srv, clk := setup(t, func(c *verifier.Config) { c.MaxStaleness = time.Minute; c.FailOpen = failOpen })
			ctx := context.Background()
			revoked, sid := mint(srv)
			srv.Revoke(sid)
			waitFor(t, 5*time.Second, "revocation", func() bool {
				_, err := v.Verify(ctx, revoked)
				return errors.Is(err, verifier.ErrRevoked)
			})
			srv.SetFeedDown(true)
			polls := v.Stats().PollErrors
			waitFor(t, 5*time.Second, "a failed poll", func() bool { return v.Stats().PollErrors > polls })
			clk.Advance(61 * time.Second)
			good, _ := mint(srv)
			_, err := v.Verify(ctx, good)
			if failOpen {
				if err != nil {
					t.Fatalf("fail open: %v", err)
				}
			} else if !errors.Is(err, verifier.ErrStale) {
				t.Fatalf("got %v, want ErrStale", err)
			}
			if st := v.Stats(); !st.Stale || !st.LastSync.Before(clk.Now().Add(-time.Minute)) {
				t.Errorf("Stats: Stale %v, LastSync %s at Clock time %s", st.Stale, st.LastSync, clk.Now())
			}
			// The denylist survived the outage.
			if _, err := v.Verify(ctx, revoked); failOpen && !errors.Is(err, verifier.ErrRevoked) {
				t.Errorf("revoked token during outage: %v, want ErrRevoked", err)
			}
			srv.SetFeedDown(false)
			waitFor(t, 5*time.Second, "recovery", func() bool {
				_, err := v.Verify(ctx, good)
				return err == nil
			})
		})
	}
}

// TestStats: LastSync is Config.Clock time, DenylistSize counts sessions.
func TestStats(t *testing.T) {
	v, srv, clk := setup(t, nil)
	st := v.Stats()
	if !st.LastSync.Equal(clk.Now()) || st.Stale || st.DenylistSize != 0 || st.Polls == 0 || st.PushMessages != 0 {
		t.Errorf("after New: %+v, want LastSync = Clock time %s", st, clk.Now())
	}
	clk.Advance(time.Second)
	for range 3 {
		srv.Revoke(uuid.NewString())
	}
	waitFor(t, 5*time.Second, "three revocations", func() bool { return v.Stats().DenylistSize == 3 })
	if st := v.Stats(); !st.LastSync.Equal(clk.Now()) {
		t.Errorf("LastSync %s, want the advanced Clock time %s", st.LastSync, clk.Now())
	}
}

func TestServiceTokenRenewedOn401(t *testing.T) {
	v, srv, _ := setup(t, nil)
	before := srv.Requests().Token
	srv.RenewServiceToken() // the old one is now refused
	errs := v.Stats().PollErrors
	polls := v.Stats().Polls
	waitFor(t, 5*time.Second, "a new service token", func() bool { return srv.Requests().Token > before })
	waitFor(t, 5*time.Second, "more polls", func() bool { return v.Stats().Polls > polls+3 })
	if got := v.Stats().PollErrors; got != errs {
		t.Errorf("poll errors went from %d to %d; the 401 should be retried with a new token", errs, got)
	}
}

func TestKeyRotation(t *testing.T) {
	v, srv, _ := setup(t, func(c *verifier.Config) { c.KeyRefetchInterval = time.Hour })
	ctx := context.Background()
	hits := srv.Requests().JWKS
	srv.RotateKey()
	verifier.ForgetLastFetch(v) // as if KeyRefetchInterval had passed since New
	tok, _ := mint(srv)

	// Concurrent callers share one fetch.
	var wg sync.WaitGroup
	errs := make([]error, 20)
	for i := range errs {
		wg.Go(func() { _, errs[i] = v.Verify(ctx, tok) })
	}
	wg.Wait()
	for _, err := range errs {
		if err != nil {
			t.Fatalf("token of the new key: %v", err)
		}
	}
	if got := srv.Requests().JWKS - hits; got != 1 {
		t.Errorf("JWKS fetched %d times, want 1", got)
	}
	// Within the rate limit another unknown kid causes no fetch.
	srv.RotateKey()
	if _, err := v.Verify(ctx, srv.Mint(uuid.NewString(), uuid.NewString(), "user")); !errors.Is(err, verifier.ErrSignature) {
		t.Errorf("rate-limited unknown kid: %v, want ErrSignature", err)
	}
	if got := srv.Requests().JWKS - hits; got != 1 {
		t.Errorf("JWKS fetched %d times, want 1 (rate limit)", got)
	}
	// Tokens of the older keys stay valid.
	if _, err := v.Verify(ctx, tok); err != nil {
		t.Errorf("token of the previous key: %v", err)
	}
}

// TestVerifierSweeps: the poll loop drops entries once exp+leeway passed.
func TestVerifierSweeps(t *testing.T) {
	v, srv, clk := setup(t, nil)
	_, sid := mint(srv, verifiertest.ExpiresIn(time.Minute))
	srv.Revoke(sid)
	size := func() int { return v.Stats().DenylistSize }
	waitFor(t, 5*time.Second, "entry loaded", func() bool { return size() == 1 })
	clk.Advance(time.Minute + verifier.DefaultLeeway)
	// Exactly at exp+leeway a token could still pass: the entry must stay.
	polls := v.Stats().Polls
	waitFor(t, 5*time.Second, "polls", func() bool { return v.Stats().Polls > polls+2 })
	if size() != 1 {
		t.Fatal("entry dropped while a token of the session could still be accepted")
	}
	clk.Advance(2 * time.Second)
	waitFor(t, 5*time.Second, "entry swept", func() bool { return size() == 0 })
}

func TestMiddleware(t *testing.T) {
	v, srv, clk := setup(t, func(c *verifier.Config) { c.MaxStaleness = time.Minute })
	h := verifier.Middleware(v, verifier.RequireRole("admin", "user"))(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		c, ok := verifier.ClaimsFromContext(r.Context())
		if !ok {
			t.Error("no claims in context")
			return
		}
		_, _ = w.Write([]byte(c.Subject))
	}))
	adminOnly := verifier.Middleware(v, verifier.RequireRole("admin"))(http.NotFoundHandler())
	do := func(h http.Handler, auth string) *httptest.ResponseRecorder {
		req := httptest.NewRequest(http.MethodGet, "/", nil)
		if auth != "" {
			req.Header.Set("Authorization", auth)
		}
		rec := httptest.NewRecorder()
		h.ServeHTTP(rec, req)
		return rec
	}
	sub, sid := uuid.NewString(), uuid.NewString()
	good := srv.Mint(sub, sid, "user")

	if rec := do(h, "bearer "+good); rec.Code != http.StatusOK || rec.Body.String() != sub {
		t.Errorf("valid token: %d %q", rec.Code, rec.Body)
	}
	rec := do(h, "")
	if rec.Code != http.StatusUnauthorized || rec.Header().Get("WWW-Authenticate") != `Bearer realm="authd"` {
		t.Errorf("no token: %d %q", rec.Code, rec.Header().Get("WWW-Authenticate"))
	}
	rec = do(h, "Bearer "+good+"x")
	if rec.Code != http.StatusUnauthorized || !strings.Contains(rec.Header().Get("WWW-Authenticate"), `error="invalid_token"`) {
		t.Errorf("bad token: %d %q", rec.Code, rec.Header().Get("WWW-Authenticate"))
	}
	rec = do(adminOnly, "Bearer "+good)
	if rec.Code != http.StatusForbidden || !strings.Contains(rec.Header().Get("WWW-Authenticate"), `error="insufficient_scope"`) {
		t.Errorf("wrong role: %d %q", rec.Code, rec.Header().Get("WWW-Authenticate"))
	}
	srv.Revoke(sid)
	waitFor(t, 5*time.Second, "revocation", func() bool { return do(h, "Bearer "+good).Code == http.StatusUnauthorized })

	srv.SetFeedDown(true)
	errs := v.Stats().PollErrors
	waitFor(t, 5*time.Second, "a failed poll", func() bool { return v.Stats().PollErrors > errs })
	clk.Advance(2 * time.Minute)
	fresh, _ := mint(srv)
	if rec := do(h, "Bearer "+fresh); rec.Code != http.StatusServiceUnavailable || rec.Header().Get("Retry-After") != "5" {
		t.Errorf("stale: %d, Retry-After %q; want 503, 5", rec.Code, rec.Header().Get("Retry-After"))
	}
}

func TestClose(t *testing.T) {
	v, srv, _ := setup(t, nil)
	if err := v.Close(); err != nil {
		t.Fatal(err)
	}
	if err := v.Close(); err != nil {
		t.Fatal("second Close:", err)
	}
	tok, _ := mint(srv)
	if _, err := v.Verify(context.Background(), tok); !errors.Is(err, verifier.ErrClosed) {
		t.Errorf("after Close: %v", err)
	}
}

// TestUnusableVerifier: a Verifier not made by New panics instead of
// answering, as documented.
func TestUnusableVerifier(t *testing.T) {
	for name, v := range map[string]*verifier.Verifier{"Zero": {}, "Nil": nil} {
		for method, call := range map[string]func(){
			"Verify": func() { _, _ = v.Verify(context.Background(), "x.y.z") },
			"Stats":  func() { _ = v.Stats() },
			"Close":  func() { _ = v.Close() },
		} {
			t.Run(name+method, func(t *testing.T) {
				defer func() {
					if recover() == nil {
						t.Errorf("%s did not panic", method)
					}
				}()
				call()
			})
		}
	}
}
