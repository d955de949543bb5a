package e2e_test

import (
	"fmt"
	"net/http"
	"slices"
	"testing"
	"time"
)

// BenchmarkLogoutToRejection measures the time from sending POST /logout to
// the first Verify that answers ErrRevoked, by pull (100ms poll interval)
// and by push (1h poll interval, so only Redis can explain it), and reports
// the p50 and p99 in milliseconds.
func BenchmarkLogoutToRejection(b *testing.B) {
	for _, m := range modes {
		b.Run(m.name, func(b *testing.B) {
			f := setup(b, m.o)
			f.env.CreateUser(b, "alice", "user", userPW)
			var lat []time.Duration
			b.ResetTimer()
			for b.Loop() {
				b.StopTimer()
				tr := f.env.Login(b, "alice", userPW)
				f.mustAccept(b, tr.AccessToken)
				b.StartTimer()
				start := time.Now()
				res, body := f.env.Do(b, http.MethodPost, "/logout", tr.AccessToken, "", nil)
				if res.StatusCode != http.StatusOK {
					b.Fatalf("logout: %d %s", res.StatusCode, body)
				}
				f.waitRevoked(b, tr.AccessToken, 5*time.Second)
				lat = append(lat, time.Since(start))
			}
			slices.Sort(lat)
			pct := func(p float64) float64 {
				return float64(lat[min(len(lat)-1, int(p*float64(len(lat))))]) / float64(time.Millisecond)
			}
			b.ReportMetric(pct(0.50), "p50-ms")
			b.ReportMetric(pct(0.99), "p99-ms")
			b.ReportMetric(0, "ns/op") // the latency, not the loop, is the figure
			b.Logf("%d logouts: %s", len(lat), fmt.Sprint(lat[0], " .. ", lat[len(lat)-1]))
		})
	}
}
