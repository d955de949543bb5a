package httpapi_test

import (
	"net/http"
	"net/url"
	"strings"
	"testing"

	dto "github.com/prometheus/client_model/go"
	"github.com/prometheus/common/expfmt"
	"github.com/prometheus/common/model"

	"github.com/seedc5a8123e/authd/internal/authdtest"
	"github.com/seedc5a8123e/authd/internal/throttle"
)

// scrape reads GET /metrics in the text format.
func scrape(t *testing.T, env *authdtest.Env) metricValues {
	t.Helper()
	res, body := env.Do(t, http.MethodGet, "/metrics", "", "", nil)
	if res.StatusCode != http.StatusOK {
		t.Fatalf("GET /metrics: %d %s", res.StatusCode, body)
	}
	if ct := res.Header.Get("Content-Type"); !strings.HasPrefix(ct, "text/plain") {
		t.Fatalf("GET /metrics: Content-Type %q, want text/plain", ct)
	}
	p := expfmt.NewTextParser(model.UTF8Validation)
	fams, err := p.TextToMetricFamilies(strings.NewReader(string(body)))
	if err != nil {
		t.Fatalf("parse /metrics: %v\n%s", err, body)
	}
	return metricValues{fams}
}

type metricValues struct{ fams map[string]*dto.MetricFamily }

// get is the value of the series name{labels} (label pairs as
// "k", "v", ...), 0 when it is absent, as Prometheus treats a counter never
// incremented.
func (m metricValues) get(name string, labels ...string) float64 {
	f := m.fams[name]
	if f == nil {
		return 0
	}
	for _, s := range f.GetMetric() {
		if !hasLabels(s, labels) {
			continue
		}
		switch {
		case s.Counter != nil:
			return s.GetCounter().GetValue()
		case s.Gauge != nil:
			return s.GetGauge().GetValue()
		case s.Histogram != nil:
			return float64(s.GetHistogram().GetSampleCount())
		}
	}
	return 0
}

func hasLabels(s *dto.Metric, kv []string) bool {
	have := map[string]string{}
	for _, l := range s.GetLabel() {
		have[l.GetName()] = l.GetValue()
	}
	for i := 0; i+1 < len(kv); i += 2 {
		if have[kv[i]] != kv[i+1] {
			return false
		}
	}
	return true
}

// routes lists the route labels of authd_http_requests_total.
func (m metricValues) routes() map[string]bool {
	out := map[string]bool{}
	if f := m.fams["authd_http_requests_total"]; f != nil {
		for _, s := range f.GetMetric() {
			for _, l := range s.GetLabel() {
				if l.GetName() == "route" {
					out[l.GetValue()] = true
				}
			}
		}
	}
	return out
}

// TestMetricsCountTheFlow drives a login, a refresh, a refresh reuse, a
// logout, a logout everywhere and a feed poll, and finds every counter moved
// by exactly what happened.
func TestMetricsCountTheFlow(t *testing.T) {
	env := authdtest.Start(t, authdtest.Options{})
	env.CreateUser(t, "alice", "user", acctPW)
	env.CreateUser(t, "feedsvc", "service", acctPW)
	before := scrape(t, env)

	// Login, refresh, then the first refresh token again: reuse.
	tr := env.Login(t, "alice", acctPW)
	res, body := refresh(t, env, tr.RefreshToken)
	if res.StatusCode != http.StatusOK {
		t.Fatalf("refresh: %d %s", res.StatusCode, body)
	}
	res, body = refresh(t, env, tr.RefreshToken)
	wantOAuthError(t, res, body, http.StatusBadRequest, "invalid_grant")
	// The reused session is revoked already: no second revocation.
	res, body = refresh(t, env, tr.RefreshToken)
	wantOAuthError(t, res, body, http.StatusBadRequest, "invalid_grant")

	// A logout, then the same logout again (already revoked, not counted).
	lo := env.Login(t, "alice", acctPW)
	for range 2 {
		if res, body := env.Do(t, http.MethodPost, "/logout", lo.AccessToken, "", nil); res.StatusCode != http.StatusOK {
			t.Fatalf("logout: %d %s", res.StatusCode, body)
		}
	}
	// Logout everywhere with two live sessions: two revocations.
	a1 := env.Login(t, "alice", acctPW)
	env.Login(t, "alice", acctPW)
	if res, body := env.Do(t, http.MethodPost, "/logout/all", a1.AccessToken, "", nil); res.StatusCode != http.StatusOK || !strings.Contains(string(body), `"revoked":2`) {
		t.Fatalf("logout/all: %d %s", res.StatusCode, body)
	}

	// One feed poll: four sessions revoked, all with live tokens.
	svc := env.ServiceToken(t, "feedsvc", acctPW)
	res, body = env.Do(t, http.MethodGet, "/sessions/revoked", svc.AccessToken, "", nil)
	if res.StatusCode != http.StatusOK || strings.Count(string(body), `"sid"`) != 4 {
		t.Fatalf("feed: %d %s", res.StatusCode, body)
	}

	// Route labels: a template, a method the route lacks, and paths that
	// match nothing or only part of a route.
	sid := tr.SID
	env.Do(t, http.MethodPost, "/sessions/"+sid+"/revoke", "", "", nil) // 401, no token
	env.Do(t, http.MethodGet, "/logout", "", "", nil)                   // 405
	env.Do(t, http.MethodGet, "/no/such/"+sid, "", "", nil)             // 404
	env.Do(t, http.MethodGet, "/sessions/"+sid, "", "", nil)            // 404 on a partial match

	after := scrape(t, env)
	delta := func(name string, labels ...string) float64 {
		return after.get(name, labels...) - before.get(name, labels...)
	}
	for _, c := range []struct {
		name   string
		labels []string
		want   float64
	}{
		{"authd_tokens_issued_total", []string{"grant", "password"}, 4},
		{"authd_tokens_issued_total", []string{"grant", "refresh_token"}, 1},
		{"authd_tokens_issued_total", []string{"grant", "client_credentials"}, 1},
		{"authd_refresh_reuse_detected_total", nil, 2},
		{"authd_revocations_total", []string{"reason", "refresh_token_reuse"}, 1},
		{"authd_revocations_total", []string{"reason", "user_logout"}, 1},
		{"authd_revocations_total", []string{"reason", "user_logout_all"}, 2},
		{"authd_feed_polls_total", nil, 1},
		{"authd_feed_entries_returned_total", nil, 4},
		{"authd_login_throttled_total", nil, 0},
		{"authd_http_requests_total", []string{"route", "/token", "code", "200"}, 6},
		{"authd_http_requests_total", []string{"route", "/token", "code", "400"}, 2},
		{"authd_http_requests_total", []string{"route", "/logout", "code", "200"}, 2},
		{"authd_http_requests_total", []string{"route", "/logout", "code", "405"}, 1},
		{"authd_http_requests_total", []string{"route", "/logout/all", "code", "200"}, 1},
		{"authd_http_requests_total", []string{"route", "/sessions/revoked", "code", "200"}, 1},
		{"authd_http_requests_total", []string{"route", "/sessions/:sid/revoke", "code", "401"}, 1},
		{"authd_http_requests_total", []string{"route", "unmatched", "code", "404"}, 2},
		{"authd_http_requests_total", []string{"route", "/metrics", "code", "200"}, 1}, // the first scrape
		{"authd_http_request_duration_seconds", []string{"route", "/token", "code", "200"}, 6},
	} {
		if got := delta(c.name, c.labels...); got != c.want {
			t.Errorf("%s%v moved by %v, want %v", c.name, c.labels, got, c.want)
		}
	}
	for r := range after.routes() {
		if strings.Contains(r, sid) {
			t.Errorf("route label %q holds a raw path", r)
		}
	}
	// The pool and runtime collectors are registered.
	if after.get("authd_db_pool_max_conns") < 1 || after.get("authd_db_pool_acquires_total") < 1 {
		t.Errorf("database pool metrics missing: max_conns %v, acquires %v",
			after.get("authd_db_pool_max_conns"), after.get("authd_db_pool_acquires_total"))
	}
	for _, name := range []string{"authd_db_pool_acquired_conns", "authd_db_pool_idle_conns", "authd_db_pool_total_conns",
		"authd_db_pool_acquire_duration_seconds_total", "authd_db_pool_empty_acquire_wait_seconds_total",
		"go_goroutines", "process_cpu_seconds_total", "authd_prune_runs_total", "authd_push_failures_total"} {
		if after.fams[name] == nil {
			t.Errorf("/metrics lacks %s", name)
		}
	}
}

// TestMetricsCountThrottledLogins: an attempt refused with 429 is counted,
// a plain wrong password is not.
func TestMetricsCountThrottledLogins(t *testing.T) {
	cfg := throttle.DefaultConfig()
	cfg.MaxFailuresAccount = 1
	env := authdtest.Start(t, authdtest.Options{Throttle: cfg})
	env.CreateUser(t, "alice", "user", acctPW)
	form := url.Values{"grant_type": {"password"}, "username": {"alice"}, "password": {"wrong password here"}}
	if res, body := env.PostForm(t, "/token", form); res.StatusCode != http.StatusBadRequest {
		t.Fatalf("first wrong password: %d %s", res.StatusCode, body)
	}
	if res, body := env.PostForm(t, "/token", form); res.StatusCode != http.StatusTooManyRequests {
		t.Fatalf("second attempt: %d %s", res.StatusCode, body)
	}
	m := scrape(t, env)
	if got := m.get("authd_login_throttled_total"); got != 1 {
		t.Errorf("authd_login_throttled_total = %v, want 1", got)
	}
	if got := m.get("authd_http_requests_total", "route", "/token", "code", "429"); got != 1 {
		t.Errorf("429s on /token = %v, want 1", got)
	}
}

// TestMetricsRegistryPerServer: two servers in one process count apart.
func TestMetricsRegistryPerServer(t *testing.T) {
	a := authdtest.Start(t, authdtest.Options{})
	b := authdtest.Start(t, authdtest.Options{})
	a.CreateUser(t, "alice", "user", acctPW)
	a.Login(t, "alice", acctPW)
	if got := scrape(t, a).get("authd_tokens_issued_total", "grant", "password"); got != 1 {
		t.Errorf("server a issued %v password tokens, want 1", got)
	}
	if got := scrape(t, b).get("authd_tokens_issued_total", "grant", "password"); got != 0 {
		t.Errorf("server b issued %v password tokens, want 0", got)
	}
}
