package verifier

import (
	"context"
	"crypto/ed25519"
	"errors"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/golang-jwt/jwt/v5"
	"github.com/google/uuid"
)

func TestVerify(t *testing.T) {
	v, f, key, clk := setup(t, nil)
	ec := newECKey(t, "ec-1")
	f.addKey(ec)
	v.keys.forgetLastFetch()
	now := clk.Now()
	ctx := context.Background()

	with := func(mod func(jwt.MapClaims)) jwt.MapClaims {
		c := claimsAt(now)
		mod(c)
		return c
	}
	edPub := []byte(key.jwk["x"])

	tests := []struct {
		name  string
		token func() string
		want  error // nil: accepted
	}{
		{"ValidEdDSA", func() string { return sign(t, key, claimsAt(now), nil) }, nil},
		{"ValidES256", func() string { return sign(t, ec, claimsAt(now), nil) }, nil},
		{"ExpiredBeyondLeeway", func() string {
			return sign(t, key, with(func(c jwt.MapClaims) { c["exp"] = now.Add(-31 * time.Second).Unix() }), nil)
		}, ErrExpired},
		{"ExpiredWithinLeeway", func() string {
			return sign(t, key, with(func(c jwt.MapClaims) { c["exp"] = now.Add(-29 * time.Second).Unix() }), nil)
		}, nil},
		{"MissingExp", func() string { return sign(t, key, with(func(c jwt.MapClaims) { delete(c, "exp") }), nil) }, ErrMalformed},
		{"NotBeforeInFuture", func() string {
			return sign(t, key, with(func(c jwt.MapClaims) { c["nbf"] = now.Add(time.Minute).Unix() }), nil)
		}, ErrNotYetValid},
		{"IssuedInFuture", func() string {
			return sign(t, key, with(func(c jwt.MapClaims) { c["iat"] = now.Add(time.Minute).Unix() }), nil)
		}, ErrNotYetValid},
		{"WrongIssuer", func() string { return sign(t, key, with(func(c jwt.MapClaims) { c["iss"] = "http://evil" }), nil) }, ErrIssuer},
		{"WrongAudience", func() string {
			return sign(t, key, with(func(c jwt.MapClaims) { c["aud"] = []string{"other"} }), nil)
		}, ErrAudience},
		{"WrongTyp", func() string { return sign(t, key, claimsAt(now), map[string]any{"typ": "JWT"}) }, ErrMalformed},
		{"NoTyp", func() string { return sign(t, key, claimsAt(now), map[string]any{"typ": nil}) }, ErrMalformed},
		{"NoKid", func() string { return sign(t, key, claimsAt(now), map[string]any{"kid": nil}) }, ErrMalformed},
		{"UnknownKid", func() string { return sign(t, key, claimsAt(now), map[string]any{"kid": "nope"}) }, ErrSignature},
		{"SidNotUUID", func() string { return sign(t, key, with(func(c jwt.MapClaims) { c["sid"] = "abc" }), nil) }, ErrMalformed},
		{"NoSubject", func() string { return sign(t, key, with(func(c jwt.MapClaims) { delete(c, "sub") }), nil) }, ErrMalformed},
		{"Garbage", func() string { return "not.a.jwt" }, ErrMalformed},
		{"Empty", func() string { return "" }, ErrMalformed},
		{"Huge", func() string { return strings.Repeat("a", MaxTokenBytes+1) }, ErrMalformed},
		{"TamperedPayload", func() string {
			s := sign(t, key, claimsAt(now), nil)
			parts := strings.Split(s, ".")
			other := strings.Split(sign(t, key, with(func(c jwt.MapClaims) { c["role"] = "admin" }), nil), ".")
			return parts[0] + "." + other[1] + "." + parts[2]
		}, ErrSignature},
		{"AlgNone", func() string {
			s, err := jwt.NewWithClaims(jwt.SigningMethodNone, claimsAt(now)).SignedString(jwt.UnsafeAllowNoneSignatureType)
			if err != nil {
				t.Fatal(err)
			}
			return s
		}, ErrSignature},
		{"HS256WithPublicKeyAsSecret", func() string {
			tok := jwt.NewWithClaims(jwt.SigningMethodHS256, claimsAt(now))
			tok.Header["kid"], tok.Header["typ"] = key.kid, Type
			s, err := tok.SignedString(edPub)
			if err != nil {
				t.Fatal(err)
			}
			return s
		}, ErrSignature},
		{"ES256HeaderOnEdDSAKey", func() string {
			// Signed by the EC key but naming the Ed25519 key's kid.
			return sign(t, ec, claimsAt(now), map[string]any{"kid": key.kid})
		}, ErrSignature},
		{"EdDSAHeaderOnES256Key", func() string {
			return sign(t, key, claimsAt(now), map[string]any{"kid": ec.kid})
		}, ErrSignature},
		{"SignedByUnpublishedKeyWithKnownKid", func() string {
			return sign(t, newEdKey(t, key.kid), claimsAt(now), nil)
		}, ErrSignature},
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
	v, f, key, clk := setup(t, nil)
	ctx := context.Background()
	c := claimsAt(clk.Now())
	tok := sign(t, key, c, nil)
	if _, err := v.Verify(ctx, tok); err != nil {
		t.Fatalf("before revocation: %v", err)
	}
	f.revoke(revocationOf(t, c))
	waitFor(t, 5*time.Second, "the poll to deliver the revocation", func() bool {
		_, err := v.Verify(ctx, tok)
		return errors.Is(err, ErrRevoked)
	})
	// Another token of the same session is denied as well.
	c2 := claimsAt(clk.Now())
	c2["sid"] = c["sid"]
	if _, err := v.Verify(ctx, sign(t, key, c2, nil)); !errors.Is(err, ErrRevoked) {
		t.Fatalf("second token of the session: %v, want ErrRevoked", err)
	}
}

// TestNewLoadsSnapshotFirst: a revocation that predates the Verifier is
// enforced by the time New returns.
func TestNewLoadsSnapshotFirst(t *testing.T) {
	key := newEdKey(t, "ed-1")
	f := newFakeAuthd(t, key)
	clk := &manualClock{now: testStart}
	c := claimsAt(clk.Now())
	f.revoke(revocationOf(t, c))
	v, err := New(context.Background(), Config{
		IssuerURL: f.srv.URL, Issuer: testIssuer, Audience: testAudience, ClientID: testClientID,
		ClientSecret: testSecret, Clock: clk, PollInterval: time.Hour,
	})
	if err != nil {
		t.Fatal(err)
	}
	defer v.Close()
	if _, err := v.Verify(context.Background(), sign(t, key, c, nil)); !errors.Is(err, ErrRevoked) {
		t.Fatalf("got %v, want ErrRevoked", err)
	}
}

func TestNewFailsAfterInitialTimeout(t *testing.T) {
	f := newFakeAuthd(t, newEdKey(t, "ed-1"))
	f.setFeedDown(true)
	start := time.Now()
	_, err := New(context.Background(), Config{
		IssuerURL: f.srv.URL, ClientID: testClientID, ClientSecret: testSecret, InitialTimeout: 300 * time.Millisecond,
	})
	if err == nil {
		t.Fatal("New succeeded with the feed down")
	}
	if d := time.Since(start); d > 3*time.Second {
		t.Errorf("New took %s", d)
	}
	// Long enough that even a loaded CI machine reaches the token request.
	_, err = New(context.Background(), Config{IssuerURL: f.srv.URL, ClientID: testClientID, ClientSecret: "wrong",
		InitialTimeout: 2 * time.Second})
	if err == nil || !strings.Contains(err.Error(), "service token") {
		t.Errorf("wrong secret: got %v", err)
	}
}

func TestConfigValidation(t *testing.T) {
	for name, cfg := range map[string]Config{
		"NoURL":              {ClientID: "a", ClientSecret: "b"},
		"RelativeURL":        {IssuerURL: "authd:8080", ClientID: "a", ClientSecret: "b"},
		"NoSecret":           {IssuerURL: "http://x", ClientID: "a"},
		"StalenessBelowPoll": {IssuerURL: "http://x", ClientID: "a", ClientSecret: "b", PollInterval: time.Minute, MaxStaleness: time.Second},
		"BadRedisURL":        {IssuerURL: "http://127.0.0.1:1", ClientID: "a", ClientSecret: "b", RedisURL: "ftp://x"},
	} {
		t.Run(name, func(t *testing.T) {
			if _, err := New(context.Background(), cfg); err == nil {
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
			v, f, key, clk := setup(t, func(c *Config) { c.MaxStaleness = time.Minute; c.FailOpen = failOpen })
			ctx := context.Background()
			revoked := claimsAt(clk.Now())
			f.revoke(revocationOf(t, revoked))
			waitFor(t, 5*time.Second, "revocation", func() bool {
				_, err := v.Verify(ctx, sign(t, key, revoked, nil))
				return errors.Is(err, ErrRevoked)
			})
			f.setFeedDown(true)
			polls := v.Stats().PollErrors
			waitFor(t, 5*time.Second, "a failed poll", func() bool { return v.Stats().PollErrors > polls })
			clk.Advance(61 * time.Second)
			good := sign(t, key, claimsAt(clk.Now()), nil)
			_, err := v.Verify(ctx, good)
			if failOpen {
				if err != nil {
					t.Fatalf("fail open: %v", err)
				}
			} else if !errors.Is(err, ErrStale) {
				t.Fatalf("got %v, want ErrStale", err)
			}
			if !v.Stats().Stale {
				t.Error("Stats.Stale is false")
			}
			// The denylist survived the outage.
			if _, err := v.Verify(ctx, sign(t, key, revoked, nil)); failOpen && !errors.Is(err, ErrRevoked) {
				t.Errorf("revoked token during outage: %v, want ErrRevoked", err)
			}
			f.setFeedDown(false)
			waitFor(t, 5*time.Second, "recovery", func() bool {
				_, err := v.Verify(ctx, good)
				return err == nil
			})
		})
	}
}

func TestServiceTokenRenewedOn401(t *testing.T) {
	v, f, _, _ := setup(t, nil)
	before := f.tokenHits.Load()
	f.mu.Lock()
	f.token = "service-token-2" // the old one is now refused
	f.mu.Unlock()
	errs := v.Stats().PollErrors
	syncs := v.Stats().Polls
	waitFor(t, 5*time.Second, "a new service token", func() bool { return f.tokenHits.Load() > before })
	waitFor(t, 5*time.Second, "more polls", func() bool { return v.Stats().Polls > syncs+3 })
	if got := v.Stats().PollErrors; got != errs {
		t.Errorf("poll errors went from %d to %d; the 401 should be retried with a new token", errs, got)
	}
}

func TestKeyRotation(t *testing.T) {
	v, f, _, clk := setup(t, func(c *Config) { c.KeyRefetchInterval = time.Hour })
	ctx := context.Background()
	hits := f.jwksHits.Load()
	newKey := newEdKey(t, "ed-2")
	f.addKey(newKey)
	v.keys.forgetLastFetch() // as if KeyRefetchInterval had passed since New
	tok := sign(t, newKey, claimsAt(clk.Now()), nil)

	// Concurrent callers share one fetch.
	var wg sync.WaitGroup
	errs := make([]error, 20)
	for i := range errs {
		wg.Add(1)
		go func() {
			defer wg.Done()
			_, errs[i] = v.Verify(ctx, tok)
		}()
	}
	wg.Wait()
	for _, err := range errs {
		if err != nil {
			t.Fatalf("token of the new key: %v", err)
		}
	}
	if got := f.jwksHits.Load() - hits; got != 1 {
		t.Errorf("JWKS fetched %d times, want 1", got)
	}
	// Within the rate limit another unknown kid causes no fetch.
	other := newEdKey(t, "ed-3")
	f.addKey(other)
	if _, err := v.Verify(ctx, sign(t, other, claimsAt(clk.Now()), nil)); !errors.Is(err, ErrSignature) {
		t.Errorf("rate-limited unknown kid: %v, want ErrSignature", err)
	}
	if got := f.jwksHits.Load() - hits; got != 1 {
		t.Errorf("JWKS fetched %d times, want 1 (rate limit)", got)
	}
}

func TestDenylistExpiry(t *testing.T) {
	d := newDenylist()
	at := func(sec int64) Revocation {
		return Revocation{SID: uuid.NewString(), JTI: uuid.NewString(), Exp: sec}
	}
	early, late := at(100), at(200)
	for _, r := range []Revocation{early, late, late} { // a repeat is one entry
		if !d.add(r) {
			t.Fatal("add refused a valid entry")
		}
	}
	if got, want := d.len(), 2; got != want {
		t.Fatalf("len = %d, want %d", got, want)
	}
	if !d.add(Revocation{SID: early.SID, Exp: 50}) || d.m[mustID(t, early.SID)] != 100 {
		t.Error("an older exp replaced a newer one")
	}
	tests := []struct {
		name   string
		cutoff int64
		early  bool
		late   bool
	}{
		{"NothingExpired", 100, true, true},
		{"EarlyExpired", 101, false, true},
		{"AllExpired", 201, false, false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			d.sweep(tt.cutoff)
			if got := d.denied(mustID(t, early.SID)); got != tt.early {
				t.Errorf("early denied = %v, want %v", got, tt.early)
			}
			if got := d.denied(mustID(t, late.SID)); got != tt.late {
				t.Errorf("late denied = %v, want %v", got, tt.late)
			}
		})
	}
	if d.add(Revocation{SID: "not-a-uuid"}) {
		t.Error("add accepted a malformed sid")
	}
}

// TestVerifierSweeps: the poll loop drops entries once exp+leeway passed.
func TestVerifierSweeps(t *testing.T) {
	v, f, _, clk := setup(t, nil)
	f.revoke(Revocation{SID: uuid.NewString(), JTI: uuid.NewString(), Exp: clk.Now().Add(time.Minute).Unix()})
	waitFor(t, 5*time.Second, "entry loaded", func() bool { return v.DenylistSize() == 1 })
	clk.Advance(time.Minute + DefaultLeeway)
	// Exactly at exp+leeway a token could still pass: the entry must stay.
	polls := v.Stats().Polls
	waitFor(t, 5*time.Second, "polls", func() bool { return v.Stats().Polls > polls+2 })
	if v.DenylistSize() != 1 {
		t.Fatal("entry dropped while a token of the session could still be accepted")
	}
	clk.Advance(2 * time.Second)
	waitFor(t, 5*time.Second, "entry swept", func() bool { return v.DenylistSize() == 0 })
}

func TestParseID(t *testing.T) {
	for _, s := range []string{"", "x", strings.Repeat("0", 36), "0000000-00000-0000-0000-000000000000",
		"g0000000-0000-0000-0000-000000000000"} {
		if _, ok := parseID(s); ok {
			t.Errorf("parseID(%q) succeeded", s)
		}
	}
	u := uuid.New()
	for _, s := range []string{u.String(), strings.ToUpper(u.String())} {
		got, ok := parseID(s)
		if !ok || got != id(u) {
			t.Errorf("parseID(%q) = %x, %v", s, got, ok)
		}
	}
}

func mustID(t testing.TB, s string) id {
	t.Helper()
	u, ok := parseID(s)
	if !ok {
		t.Fatalf("bad id %q", s)
	}
	return u
}

func TestMiddleware(t *testing.T) {
	v, f, key, clk := setup(t, func(c *Config) { c.MaxStaleness = time.Minute })
	h := Middleware(v, RequireRole("admin", "user"))(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		c, ok := ClaimsFromContext(r.Context())
		if !ok {
			t.Error("no claims in context")
			return
		}
		_, _ = w.Write([]byte(c.Subject))
	}))
	adminOnly := Middleware(v, RequireRole("admin"))(http.NotFoundHandler())
	do := func(h http.Handler, auth string) *httptest.ResponseRecorder {
		req := httptest.NewRequest(http.MethodGet, "/", nil)
		if auth != "" {
			req.Header.Set("Authorization", auth)
		}
		rec := httptest.NewRecorder()
		h.ServeHTTP(rec, req)
		return rec
	}
	c := claimsAt(clk.Now())
	good := sign(t, key, c, nil)

	if rec := do(h, "bearer "+good); rec.Code != http.StatusOK || rec.Body.String() != c["sub"] {
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
	f.revoke(revocationOf(t, c))
	waitFor(t, 5*time.Second, "revocation", func() bool { return do(h, "Bearer "+good).Code == http.StatusUnauthorized })

	f.setFeedDown(true)
	errs := v.Stats().PollErrors
	waitFor(t, 5*time.Second, "a failed poll", func() bool { return v.Stats().PollErrors > errs })
	clk.Advance(2 * time.Minute)
	if rec := do(h, "Bearer "+sign(t, key, claimsAt(clk.Now()), nil)); rec.Code != http.StatusServiceUnavailable {
		t.Errorf("stale: %d, want 503", rec.Code)
	}
}

func TestClose(t *testing.T) {
	v, _, key, clk := setup(t, nil)
	if err := v.Close(); err != nil {
		t.Fatal(err)
	}
	if err := v.Close(); err != nil {
		t.Fatal("second Close:", err)
	}
	if _, err := v.Verify(context.Background(), sign(t, key, claimsAt(clk.Now()), nil)); !errors.Is(err, ErrClosed) {
		t.Errorf("after Close: %v", err)
	}
}

var _ = ed25519.PublicKeySize
