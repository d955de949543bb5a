package metrics

import (
	"errors"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/testutil"

	"github.com/seedc5a8123e/authd/internal/buildinfo"
)

func TestHooks(t *testing.T) {
	m := New(prometheus.NewRegistry(), nil, nil)
	m.PruneRan(3, nil)
	m.PruneRan(2, errors.New("deadline exceeded"))
	m.PruneRan(0, nil)
	m.PushFailed()
	m.PushFailed()
	m.Revoked("user_disabled", 3)
	m.Revoked("user_disabled", 0)
	m.LoginThrottled()
	m.HTTPRequest("/token", 200, 5*time.Millisecond)
	for _, c := range []struct {
		name string
		got  prometheus.Collector
		want float64
	}{
		{"prune ok", m.pruneRuns.WithLabelValues(PruneOK), 2},
		{"prune error", m.pruneRuns.WithLabelValues(PruneError), 1},
		{"prune deleted", m.pruneDeleted, 5},
		{"push failures", m.pushFailures, 2},
		{"revocations", m.revocations.WithLabelValues("user_disabled"), 3},
		{"throttled", m.loginThrottled, 1},
		{"http requests", m.httpRequests.WithLabelValues("/token", "200"), 1},
	} {
		if got := testutil.ToFloat64(c.got); got != c.want {
			t.Errorf("%s = %v, want %v", c.name, got, c.want)
		}
	}
	// A revocation count of zero adds no series.
	if n := testutil.CollectAndCount(m.revocations); n != 1 {
		t.Errorf("revocation series = %d, want 1", n)
	}
}

// TestNilRecordsNothing: a server wired without metrics may call every hook.
func TestNilRecordsNothing(t *testing.T) {
	var m *Metrics
	m.HTTPRequest("/token", 200, time.Millisecond)
	m.TokenIssued("password")
	m.RefreshReused()
	m.Revoked("user_logout", 1)
	m.FeedPolled(3)
	m.PushFailed()
	m.PruneRan(1, nil)
	m.LoginThrottled()
}

// TestRegistriesAreIndependent: New on two registries in one process, as
// tests that start several servers do, neither panics nor shares counts.
func TestRegistriesAreIndependent(t *testing.T) {
	a, b := New(prometheus.NewRegistry(), nil, nil), New(prometheus.NewRegistry(), nil, nil)
	a.TokenIssued("password")
	if got := testutil.ToFloat64(b.tokensIssued.WithLabelValues("password")); got != 0 {
		t.Fatalf("b counted a's token: %v", got)
	}
}

// TestBuildInfo: authd_build_info is 1, labelled with what `authd version`
// prints (buildinfo.Read).
func TestBuildInfo(t *testing.T) {
	reg := prometheus.NewRegistry()
	New(reg, nil, nil)
	in := buildinfo.Read()
	want := fmt.Sprintf(`
# HELP authd_build_info The running build: version, VCS revision (-dirty for uncommitted changes) and Go version; always 1.
# TYPE authd_build_info gauge
authd_build_info{goversion=%q,revision=%q,version=%q} 1
`, in.GoVersion, in.Revision, in.Version)
	if err := testutil.GatherAndCompare(reg, strings.NewReader(want), "authd_build_info"); err != nil {
		t.Fatal(err)
	}
}
