package main

import (
	"context"
	"io"
	"net/http"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/seedc5a8123e/authd/internal/authdtest"
	"github.com/seedc5a8123e/authd/internal/pgtest"
)

// get returns the status and body of GET url.
func get(t *testing.T, url string) (int, string) {
	t.Helper()
	res, err := http.Get(url)
	if err != nil {
		t.Fatal(err)
	}
	defer res.Body.Close()
	b, err := io.ReadAll(res.Body)
	if err != nil {
		t.Fatal(err)
	}
	return res.StatusCode, string(b)
}

// startServe runs `authd serve` with env on loopback ports and returns the
// addresses its log announces for each of msgs, and a stop function that
// fails the test unless serve shuts down cleanly.
func startServe(t *testing.T, env map[string]string, msgs ...string) ([]string, func()) {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	stderr := &syncBuffer{}
	done := make(chan error, 1)
	go func() { done <- run(ctx, []string{"serve"}, envOf(env), nil, io.Discard, stderr) }()
	stop := func() {
		cancel()
		select {
		case err := <-done:
			if err != nil {
				t.Fatalf("serve returned %v after shutdown", err)
			}
		case <-time.After(30 * time.Second):
			t.Fatal("serve did not stop")
		}
	}
	var addrs []string
	for _, msg := range msgs {
		re := regexp.MustCompile(`"msg":"` + msg + `","addr":"([^"]+)"`)
		authdtest.Eventually(t, startTimeout, func() bool {
			select {
			case err := <-done:
				t.Fatalf("serve returned early: %v\n%s", err, stderr.String())
			default:
			}
			return re.MatchString(stderr.String())
		}, "the %s log line", msg)
		addrs = append(addrs, "http://"+re.FindStringSubmatch(stderr.String())[1])
	}
	return addrs, stop
}

func TestServeMetricsOnMainListener(t *testing.T) {
	addrs, stop := startServe(t, map[string]string{
		"DATABASE_URL": pgtest.URL(t), "AUTHD_ADDR": "127.0.0.1:0", "AUTHD_PRUNE_SCHEDULE": "@every 1h",
	}, "listening")
	defer stop()
	base := addrs[0]
	authdtest.Eventually(t, startTimeout, func() bool { code, _ := get(t, base+"/readyz"); return code == http.StatusOK }, "/readyz")
	code, body := get(t, base+"/metrics")
	if code != http.StatusOK || !strings.Contains(body, `authd_http_requests_total{code="200",route="/readyz"}`) ||
		!strings.Contains(body, "authd_db_pool_max_conns") || !strings.Contains(body, "go_goroutines") {
		t.Fatalf("GET /metrics on the main listener: %d\n%s", code, body)
	}
}

func TestServeMetricsOnOwnListener(t *testing.T) {
	addrs, stop := startServe(t, map[string]string{
		"DATABASE_URL": pgtest.URL(t), "AUTHD_ADDR": "127.0.0.1:0", "AUTHD_METRICS_ADDR": "127.0.0.1:0",
		"AUTHD_PRUNE_SCHEDULE": "@every 1h",
	}, "listening", "metrics listening")
	defer stop()
	base, metricsBase := addrs[0], addrs[1]
	if base == metricsBase {
		t.Fatalf("both listeners on %s", base)
	}
	authdtest.Eventually(t, startTimeout, func() bool { code, _ := get(t, base+"/readyz"); return code == http.StatusOK }, "/readyz")

	if code, body := get(t, base+"/metrics"); code != http.StatusNotFound {
		t.Fatalf("GET /metrics on the main listener: %d, want 404\n%s", code, body)
	}
	code, body := get(t, metricsBase+"/metrics")
	// The main listener's requests are counted, its refused /metrics among them.
	if code != http.StatusOK || !strings.Contains(body, `authd_http_requests_total{code="200",route="/readyz"}`) ||
		!strings.Contains(body, `authd_http_requests_total{code="404",route="unmatched"} 1`) {
		t.Fatalf("GET /metrics on the metrics listener: %d\n%s", code, body)
	}
	// The metrics listener serves nothing else.
	if code, _ := get(t, metricsBase+"/readyz"); code != http.StatusNotFound {
		t.Fatalf("GET /readyz on the metrics listener: %d, want 404", code)
	}
}
