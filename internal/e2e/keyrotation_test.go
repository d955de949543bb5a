package e2e_test

import (
	"context"
	"log/slog"
	"testing"
	"time"

	"github.com/golang-jwt/jwt/v5"

	"github.com/seedc5a8123e/authd/internal/authdtest"
	"github.com/seedc5a8123e/authd/internal/clock"
	"github.com/seedc5a8123e/authd/internal/keys"
	"github.com/seedc5a8123e/authd/internal/pgtest"
	"github.com/seedc5a8123e/authd/verifier"
)

// TestDatabaseKeyRotationNeverRejects runs two replicas on database keys
// and one verifier through two scheduled rotations, a minute of the manual
// clock at a time, as the replicas' maintenance loops and the verifier's
// poll loop would see it. At every step both replicas mint a token and the
// verifier must accept every token not yet expired, the ones signed by a
// key being replaced included. The verifier learns keys only from its
// max-age refetch: its unknown-kid refetch is rate limited to once an hour
// of wall time, so a new key it met first in a token would fail.
func TestDatabaseKeyRotationNeverRejects(t *testing.T) {
	kek, err := keys.NewKEK()
	if err != nil {
		t.Fatal(err)
	}
	db := pgtest.NewDB(t)
	clk := clock.NewManual(time.Now().Truncate(time.Second))
	o := authdtest.Options{DB: db, Clock: clk, KeyEncryptionKey: kek, StatusListOff: true}
	a := authdtest.Start(t, o)
	b := authdtest.Start(t, o)
	a.CreateUser(t, svcUser, "service", svcSecret)
	a.CreateUser(t, "alice", "user", userPW)
	replicas := []*authdtest.Env{a, b}

	px := newProxy(t, a.URL)
	v, err := verifier.New(context.Background(), verifier.Config{
		IssuerURL: px.URL, Issuer: authdtest.Issuer, Audience: authdtest.Audience,
		ClientID: svcUser, ClientSecret: svcSecret, PollInterval: 20 * time.Millisecond,
		Clock: clk, InitialTimeout: 10 * time.Second, KeyRefetchInterval: time.Hour,
		HTTPClient: clientVia(hostOf(px.Server)),
		Logger:     slog.New(slog.NewTextHandler(testWriter{t}, &slog.HandlerOptions{Level: slog.LevelWarn})),
	})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = v.Close() })

	type minted struct {
		token, kid string
		exp        time.Time
	}
	var live []minted
	signedBy := map[string]int{}
	step := 0
	// advance moves the clock, runs both replicas' maintenance, and waits
	// until the verifier has done what its poll loop does in that time:
	// synced the feed, and refetched the JWKS if it reached its max-age.
	advance := func(d time.Duration) {
		t.Helper()
		clk.Advance(d)
		step++
		px.setTarget(replicas[step%2].URL) // the verifier meets both replicas
		for _, r := range replicas {
			if err := r.App.KeyRing.Maintain(context.Background()); err != nil {
				t.Fatal(err)
			}
		}
		deadline := time.Now().Add(5 * time.Second)
		for {
			s := v.Stats()
			if !s.Stale && clk.Now().Sub(s.KeysFetchedAt) < keys.JWKSMaxAge {
				break
			}
			if time.Now().After(deadline) {
				t.Fatalf("step %d: the verifier did not catch up (stale %v, keys fetched %s ago)",
					step, s.Stale, clk.Now().Sub(s.KeysFetchedAt))
			}
			time.Sleep(5 * time.Millisecond)
		}
	}
	// mintAndVerify logs in on both replicas and checks every live token.
	mintAndVerify := func() {
		t.Helper()
		for _, r := range replicas {
			tr := r.Login(t, "alice", userPW)
			tok, _, err := jwt.NewParser().ParseUnverified(tr.AccessToken, jwt.MapClaims{})
			if err != nil {
				t.Fatal(err)
			}
			kid, _ := tok.Header["kid"].(string)
			signedBy[kid]++
			live = append(live, minted{tr.AccessToken, kid, clk.Now().Add(time.Duration(tr.ExpiresIn) * time.Second)})
		}
		kept := live[:0]
		for _, m := range live {
			if !clk.Now().Before(m.exp) {
				continue // expired: no longer a valid token
			}
			if _, err := v.Verify(context.Background(), m.token); err != nil {
				t.Fatalf("step %d (%s): a valid token of key %s was rejected: %v", step, clk.Now().Format(time.RFC3339), m.kid, err)
			}
			kept = append(kept, m)
		}
		live = kept
	}

	signing := func() string { return a.App.Keys.Current().Signing().ID }
	var order []string
	mintAndVerify()
	order = append(order, signing())
	for rotation := 1; rotation <= 2; rotation++ {
		// To a minute before the rotation is due, then a minute at a time
		// through publication, the switch and the old key's retirement.
		var newest time.Time
		for _, k := range a.App.KeyRing.Keys() {
			if k.PublishAt.After(newest) {
				newest = k.PublishAt
			}
		}
		advance(newest.Add(720*time.Hour - 2*time.Minute).Sub(clk.Now()))
		for range 25 {
			mintAndVerify()
			advance(time.Minute)
		}
		mintAndVerify()
		if s := signing(); s == order[len(order)-1] {
			t.Fatalf("rotation %d: still signing with %s", rotation, s)
		} else {
			order = append(order, s)
		}
		if b.App.Keys.Current().Signing().ID != signing() {
			t.Fatalf("rotation %d: the replicas sign with different keys", rotation)
		}
		if got := len(a.App.Keys.Current().All()); got != 1 {
			t.Errorf("rotation %d: %d keys published after the old one retired, want 1", rotation, got)
		}
	}
	for i, kid := range order {
		if signedBy[kid] == 0 {
			t.Errorf("key %d (%s) signed no token", i, kid)
		}
	}
	if len(signedBy) != 3 {
		t.Errorf("tokens were signed by %d keys, want 3 (the first and two rotations)", len(signedBy))
	}
	if s := v.Stats(); s.KeyFetches < 4 {
		t.Errorf("the verifier fetched the JWKS %d times; it cannot have learnt two new keys ahead", s.KeyFetches)
	}
}
