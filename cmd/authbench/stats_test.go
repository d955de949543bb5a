package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"net/url"
	"os"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/seedc5a8123e/authd/internal/password"
	"github.com/seedc5a8123e/authd/verifier"
)

func ms1(n int) time.Duration { return time.Duration(n) * time.Millisecond }

func TestPercentileOnKnownSamples(t *testing.T) {
	hundred := make([]time.Duration, 100)
	for i := range hundred {
		hundred[i] = ms1(100 - i) // 100ms … 1ms, unsorted on purpose
	}
	l := summarize(hundred)
	if l.P50 != ms1(50) || l.P90 != ms1(90) || l.P99 != ms1(99) || l.Max != ms1(100) {
		t.Errorf("1..100 ms: got p50 %s p90 %s p99 %s max %s, want 50ms 90ms 99ms 100ms", l.P50, l.P90, l.P99, l.Max)
	}
	for _, tc := range []struct {
		samples []int
		p       float64
		want    int
	}{
		{[]int{7}, 50, 7}, {[]int{7}, 99, 7},
		{[]int{1, 2, 3}, 50, 2}, {[]int{1, 2, 3}, 90, 3}, {[]int{1, 2, 3}, 1, 1},
		{[]int{1, 2, 3, 4}, 50, 2}, {[]int{1, 2, 3, 4}, 75, 3}, {[]int{1, 2, 3, 4}, 76, 4},
		{[]int{1, 2, 3, 4, 5, 6, 7, 8, 9, 10}, 99, 10}, {[]int{1, 2, 3, 4, 5, 6, 7, 8, 9, 10}, 90, 9},
		{[]int{1, 2, 3, 4, 5, 6, 7, 8, 9, 10}, 100, 10},
	} {
		s := make([]time.Duration, len(tc.samples))
		for i, v := range tc.samples {
			s[i] = ms1(v)
		}
		if got := percentile(s, tc.p); got != ms1(tc.want) {
			t.Errorf("p%v of %v = %s, want %dms", tc.p, tc.samples, got, tc.want)
		}
	}
	if got := summarize(nil); got != (latencies{}) {
		t.Errorf("no samples: %+v, want zeros", got)
	}
	// 1000 samples: p99 is the 990th.
	k := make([]time.Duration, 1000)
	for i := range k {
		k[i] = time.Duration(i+1) * time.Microsecond
	}
	if got := percentile(k, 99); got != 990*time.Microsecond {
		t.Errorf("p99 of 1..1000µs = %s, want 990µs", got)
	}
	if got := percentile(k, 99.9); got != 999*time.Microsecond {
		t.Errorf("p99.9 of 1..1000µs = %s, want 999µs", got)
	}
}

func TestPerSecond(t *testing.T) {
	for _, tc := range []struct {
		n    int64
		w    time.Duration
		want float64
	}{{500, 5 * time.Second, 100}, {1, 250 * time.Millisecond, 4}, {0, time.Second, 0}, {10, 0, 0}} {
		if got := perSecond(tc.n, tc.w); got != tc.want {
			t.Errorf("perSecond(%d, %s) = %v, want %v", tc.n, tc.w, got, tc.want)
		}
	}
}

type timeoutErr struct{}

func (timeoutErr) Error() string   { return "i/o timeout" }
func (timeoutErr) Timeout() bool   { return true }
func (timeoutErr) Temporary() bool { return true }

func TestClassify(t *testing.T) {
	opErr := func(errno error) error {
		return &url.Error{Op: "Post", URL: "http://127.0.0.1:1/token",
			Err: &net.OpError{Op: "dial", Net: "tcp", Err: os.NewSyscallError("connect", errno)}}
	}
	for _, tc := range []struct {
		err  error
		want string
	}{
		{nil, ""},
		{&httpStatusError{Code: 429}, "http_429"},
		{fmt.Errorf("login: %w", &httpStatusError{Code: 503}), "http_503"},
		{&badResponseError{"no access_token"}, "bad_response"},
		{errAlreadyRevoked, "already_revoked"},
		{fmt.Errorf("%w: session x", verifier.ErrRevoked), "verify_revoked"},
		{fmt.Errorf("%w: sig", verifier.ErrSignature), "verify_signature"},
		{verifier.ErrStale, "verify_stale"},
		{opErr(syscall.ECONNREFUSED), "conn_refused"},
		{opErr(syscall.ECONNRESET), "conn_reset"},
		{opErr(syscall.EPIPE), "broken_pipe"},
		{&url.Error{Op: "Post", URL: "u", Err: timeoutErr{}}, "timeout"},
		{context.DeadlineExceeded, "timeout"},
		{fmt.Errorf("read: %w", context.Canceled), "canceled"},
		{&url.Error{Op: "Post", URL: "u", Err: io.EOF}, "eof"},
		{io.ErrUnexpectedEOF, "eof"},
		{&net.OpError{Op: "read", Net: "tcp", Err: errors.New("something")}, "transport"},
		{errors.New("what"), "other"},
	} {
		if got := classify(tc.err); got != tc.want {
			t.Errorf("classify(%v) = %q, want %q", tc.err, got, tc.want)
		}
	}
}

func TestFormatKindsMostFrequentFirst(t *testing.T) {
	got := formatKinds(map[string]int64{"timeout": 1, "http_429": 3, "eof": 1})
	if want := "http_429:3 eof:1 timeout:1"; got != want {
		t.Errorf("got %q, want %q", got, want)
	}
	if got := formatKinds(nil); got != "-" {
		t.Errorf("none: %q, want -", got)
	}
}

func TestFormatDuration(t *testing.T) {
	for d, want := range map[time.Duration]string{
		0: "-", 85 * time.Microsecond: "85µs", 1234 * time.Microsecond: "1.23ms",
		12340 * time.Microsecond: "12.3ms", 123 * time.Millisecond: "123ms", 1500 * time.Millisecond: "1.50s",
	} {
		if got := formatDuration(d); got != want {
			t.Errorf("formatDuration(%s) = %q, want %q", d, got, want)
		}
	}
}

// The argon2 floor must hash exactly as authd does.
func TestArgon2ParamsAreAuthds(t *testing.T) {
	d := password.Default
	p := argon2Params
	if d.Memory != p.Memory || d.Time != p.Time || d.Threads != p.Threads || d.SaltLen != p.SaltLen || d.KeyLen != p.Keys {
		t.Errorf("floor hashes with %+v, authd with %+v", p, d)
	}
}

func TestParseCredentials(t *testing.T) {
	bootstrap := "created the first admin user; its password is shown only this once:\n" +
		"username: admin\npassword: s3cr3t-xyz\nlog in with:\n  curl ... password='s3cr3t-xyz'\n"
	u, p, err := parseCredentials(strings.NewReader(bootstrap))
	if err != nil || u != "admin" || p != "s3cr3t-xyz" {
		t.Errorf("got %q %q %v", u, p, err)
	}
	if _, _, err := parseCredentials(strings.NewReader("username: admin\n")); err == nil {
		t.Error("no password line: no error")
	}
}

func TestParseMixAndPick(t *testing.T) {
	m, err := parseMix("refresh=70,feed-delta=20,login=5,logout=5")
	if err != nil {
		t.Fatal(err)
	}
	counts := map[string]int{}
	for draw := range m.total() {
		counts[m.pick(draw)]++
	}
	if counts["refresh"] != 70 || counts["feed-delta"] != 20 || counts["login"] != 5 || counts["logout"] != 5 {
		t.Errorf("every draw once: %v", counts)
	}
	for _, bad := range []string{"refresh", "refresh=x", "verify=3", "refresh=0", "login=-1"} {
		if _, err := parseMix(bad); err == nil {
			t.Errorf("parseMix(%q): no error", bad)
		}
	}
}

func TestParseScenarios(t *testing.T) {
	if s, _ := parseScenarios("standard"); len(s) != len(standardSet) {
		t.Errorf("standard: %v", s)
	}
	if s, err := parseScenarios("login, refresh,login"); err != nil || strings.Join(s, ",") != "login,refresh" {
		t.Errorf("got %v %v", s, err)
	}
	if _, err := parseScenarios("login,nope"); err == nil {
		t.Error("unknown scenario: no error")
	}
}

func TestTargetChecks(t *testing.T) {
	for host, want := range map[string]bool{"127.0.0.1": true, "localhost": true, "::1": true, "127.0.0.9": true,
		"10.0.0.1": false, "example.com": false} {
		if got := isLoopback(host); got != want {
			t.Errorf("isLoopback(%q) = %v", host, got)
		}
	}
	o := options{url: "http://auth.example.com", adminPassword: "x"}
	if err := o.checkTarget(); err == nil {
		t.Error("remote -url accepted without -allow-remote")
	}
	got, err := withDatabase("postgres://postgres@127.0.0.1:5432/postgres?sslmode=disable", "authd_bench_1")
	if err != nil || got != "postgres://postgres@127.0.0.1:5432/authd_bench_1?sslmode=disable" {
		t.Errorf("withDatabase: %q %v", got, err)
	}
	env := cleanEnv([]string{"PATH=/bin", "DATABASE_URL=x", "AUTHD_REDIS_URL=y", "HOME=/h"})
	if strings.Join(env, " ") != "PATH=/bin HOME=/h" {
		t.Errorf("cleanEnv: %v", env)
	}
}
