package httpapi_test

import (
	"net/http"
	"strconv"
	"testing"
	"time"

	dto "github.com/prometheus/client_model/go"

	"github.com/seedc5a8123e/authd/internal/authdtest"
	"github.com/seedc5a8123e/authd/internal/feed"
	"github.com/seedc5a8123e/authd/internal/fleet"
	"github.com/seedc5a8123e/authd/internal/pgtest"
	"github.com/seedc5a8123e/authd/verifier"
)

// feedPoll polls env's feed as a verifier does and returns the cursor it
// received.
func feedPoll(t testing.TB, env *authdtest.Env, tok string) int64 {
	t.Helper()
	req, _ := http.NewRequest("GET", env.URL+"/sessions/revoked?format=2", nil)
	req.Header.Set("Authorization", "Bearer "+tok)
	req.Header.Set("User-Agent", verifier.UserAgent)
	res, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	res.Body.Close()
	if res.StatusCode != http.StatusOK {
		t.Fatalf("feed poll: %d", res.StatusCode)
	}
	c, err := strconv.ParseInt(res.Header.Get(verifier.CursorHeader), 10, 64)
	if err != nil {
		t.Fatal(err)
	}
	return c
}

// pollPast polls until the cursor received is past the second sec: the
// follower reads the manual clock on its own (real-time) ticks.
func pollPast(t testing.TB, env *authdtest.Env, tok string, sec int64) {
	t.Helper()
	authdtest.Eventually(t, 5*time.Second, func() bool { return feedPoll(t, env, tok) > sec }, "a cursor past %d", sec)
}

type fleetView struct {
	Verifiers []struct {
		ClientID   string  `json:"client_id"`
		State      string  `json:"state"`
		LagSeconds float64 `json:"lag_seconds"`
		UserAgent  string  `json:"user_agent"`
	} `json:"verifiers"`
	Revocations []struct {
		Seconds *float64 `json:"propagation_seconds"`
		Waiting []string `json:"waiting_for"`
	} `json:"revocations"`
}

func verifiersOf(t testing.TB, env *authdtest.Env, admin string) fleetView {
	t.Helper()
	if err := env.App.Fleet.Sync(t.Context()); err != nil {
		t.Fatal(err)
	}
	res, body := env.Do(t, "GET", "/verifiers", admin, "", nil)
	wantStatus(t, res, body, http.StatusOK)
	return decode[fleetView](t, body)
}

func states(v fleetView) map[string]string {
	m := map[string]string{}
	for _, x := range v.Verifiers {
		m[x.ClientID] = x.State
	}
	return m
}

// metric finds the family name in env's registry, with the series of
// label client=client when client is not empty.
func metric(t testing.TB, env *authdtest.Env, name, client string) *dto.Metric {
	t.Helper()
	mfs, err := env.Registry.Gather()
	if err != nil {
		t.Fatal(err)
	}
	for _, mf := range mfs {
		if mf.GetName() != name {
			continue
		}
		for _, m := range mf.Metric {
			if client == "" {
				return m
			}
			for _, l := range m.Label {
				if l.GetName() == "client" && l.GetValue() == client {
					return m
				}
			}
		}
	}
	t.Fatalf("no %s{client=%q}", name, client)
	return nil
}

// TestFleetTwoVerifiersOneStops: two verifiers poll two replicas; a
// revocation on one replica propagates once both have a cursor past it
// (one of them on the other replica), then one verifier stops polling: it
// turns silent, holds the next revocation's propagation until it has been
// inactive for 5 minutes, and its lag grows.
func TestFleetTwoVerifiersOneStops(t *testing.T) {
	db := pgtest.NewDB(t)
	a := authdtest.Start(t, authdtest.Options{DB: db})
	b := authdtest.Start(t, authdtest.Options{DB: db, Clock: a.Clock})
	clk := a.Clock
	a.CreateUser(t, "root", "admin", pw)
	a.CreateUser(t, "alice", "user", pw)
	const secret = "service secret 1234"
	a.CreateUser(t, "svc-a", "service", secret)
	a.CreateUser(t, "svc-b", "service", secret)
	adminA, adminB := a.Login(t, "root", pw).AccessToken, b.Login(t, "root", pw).AccessToken
	tokA, tokB := a.ServiceToken(t, "svc-a", secret).AccessToken, b.ServiceToken(t, "svc-b", secret).AccessToken

	feedPoll(t, a, tokA)
	feedPoll(t, b, tokB)
	a.App.Fleet.Sync(t.Context()) // flush a's poll, so b sees both
	v := verifiersOf(t, b, adminB)
	if s := states(v); s["svc-a"] != fleet.StateCurrent || s["svc-b"] != fleet.StateCurrent || len(s) != 2 {
		t.Fatalf("both polling: %+v", v)
	}
	if v.Verifiers[0].UserAgent != verifier.UserAgent {
		t.Fatalf("user agent %q", v.Verifiers[0].UserAgent)
	}

	// A revocation on b: it propagates when both are past it, svc-a on a.
	revoke := func() int64 {
		t.Helper()
		sid := b.Login(t, "alice", pw).SID
		res, body := jsonDo(t, b, "POST", "/sessions/"+sid+"/revoke", adminB, map[string]string{})
		wantStatus(t, res, body, http.StatusOK)
		return clk.Now().Unix()
	}
	sec := revoke()
	if v := verifiersOf(t, b, adminB); len(v.Revocations) != 1 || v.Revocations[0].Seconds != nil || len(v.Revocations[0].Waiting) != 2 {
		t.Fatalf("just revoked: %+v", v.Revocations)
	}
	clk.Advance(feed.Holdback + 2*time.Second)
	pollPast(t, a, tokA, sec)
	pollPast(t, b, tokB, sec)
	a.App.Fleet.Sync(t.Context())
	v = verifiersOf(t, b, adminB)
	want := (feed.Holdback + 2*time.Second).Seconds()
	if r := v.Revocations[0]; r.Seconds == nil || *r.Seconds != want || len(r.Waiting) != 0 {
		t.Fatalf("propagation %+v, want %vs", r, want)
	}
	if h := metric(t, b, "authd_revocation_propagation_seconds", "").Histogram; h.GetSampleCount() != 1 || h.GetSampleSum() != want {
		t.Fatalf("histogram: count %d sum %v, want 1 and %v", h.GetSampleCount(), h.GetSampleSum(), want)
	}
	// a sees the same fleet, and measures only its own revocations.
	if v := verifiersOf(t, a, adminA); len(v.Verifiers) != 2 || len(v.Revocations) != 0 {
		t.Fatalf("replica a's view: %+v", v)
	}

	// svc-b stops polling. The next revocation waits for it.
	stopped := clk.Now()
	sec = revoke()
	clk.Advance(feed.Holdback + 2*time.Second)
	pollPast(t, a, tokA, sec)
	a.App.Fleet.Sync(t.Context())
	v = verifiersOf(t, b, adminB)
	if r := v.Revocations[0]; r.Seconds != nil || len(r.Waiting) != 1 || r.Waiting[0] != "svc-b" {
		t.Fatalf("waiting for the stopped verifier: %+v", r)
	}
	clk.Advance(fleet.DefaultSilentAfter)
	feedPoll(t, a, tokA)
	a.App.Fleet.Sync(t.Context())
	v = verifiersOf(t, b, adminB)
	if s := states(v); s["svc-a"] != fleet.StateCurrent || s["svc-b"] != fleet.StateSilent {
		t.Fatalf("svc-b stopped %s ago: %v", clk.Now().Sub(stopped), s)
	}
	if lag := metric(t, b, "authd_feed_client_lag_seconds", "svc-b").Gauge.GetValue(); lag < fleet.DefaultSilentAfter.Seconds() {
		t.Fatalf("svc-b's lag %vs", lag)
	}
	if last := metric(t, b, "authd_feed_client_last_poll_timestamp_seconds", "svc-b").Gauge.GetValue(); last > float64(stopped.Unix()) {
		t.Fatalf("svc-b's last poll %v, after it stopped at %d", last, stopped.Unix())
	}
	// Inactive for 5 minutes: no longer waited for.
	clk.Advance(fleet.DefaultActive)
	feedPoll(t, a, tokA)
	a.App.Fleet.Sync(t.Context())
	v = verifiersOf(t, b, adminB)
	if r := v.Revocations[0]; r.Seconds == nil || len(r.Waiting) != 0 {
		t.Fatalf("after svc-b went inactive: %+v", r)
	}
	if h := metric(t, b, "authd_revocation_propagation_seconds", "").Histogram; h.GetSampleCount() != 2 {
		t.Fatalf("histogram count %d, want 2", h.GetSampleCount())
	}
}
