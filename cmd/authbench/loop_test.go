package main

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"net/url"
	"sync"
	"sync/atomic"
	"testing"
	"time"
)

// fakeAuthd answers POST /token refresh grants like authd does, rotating
// each session's refresh token, and treats the presentation of a rotated
// token as reuse (authd would revoke the session). Every tenth request is
// answered 429 and every fourteenth 503, without rotating, so the client's
// token stays good.
type fakeAuthd struct {
	requests atomic.Int64
	mu       sync.Mutex
	current  map[string]string // refresh token -> session
	rotated  map[string]bool
	reuse    int
	perSID   map[string]int
	gen      int
}

func newFakeAuthd() *fakeAuthd {
	return &fakeAuthd{current: map[string]string{}, rotated: map[string]bool{}, perSID: map[string]int{}}
}

// session makes a session and returns its first refresh token.
func (f *fakeAuthd) session(sid string) string {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.gen++
	rt := fmt.Sprintf("rt-%s-%d", sid, f.gen)
	f.current[rt] = sid
	return rt
}

func (f *fakeAuthd) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	n := f.requests.Add(1)
	if r.Method != http.MethodPost || r.URL.Path != "/token" {
		http.NotFound(w, r)
		return
	}
	body, _ := io.ReadAll(r.Body)
	form, err := url.ParseQuery(string(body))
	if err != nil || form.Get("grant_type") != "refresh_token" ||
		r.Header.Get("Content-Type") != "application/x-www-form-urlencoded" {
		http.Error(w, `{"error":"invalid_request"}`, http.StatusBadRequest)
		return
	}
	switch {
	case n%10 == 0:
		w.Header().Set("Retry-After", "1")
		http.Error(w, `{"error":"slow_down"}`, http.StatusTooManyRequests)
		return
	case n%14 == 0:
		http.Error(w, "unavailable", http.StatusServiceUnavailable)
		return
	}
	f.mu.Lock()
	rt := form.Get("refresh_token")
	sid, ok := f.current[rt]
	if !ok {
		if f.rotated[rt] {
			f.reuse++
		}
		f.mu.Unlock()
		http.Error(w, `{"error":"invalid_grant"}`, http.StatusBadRequest)
		return
	}
	delete(f.current, rt)
	f.rotated[rt] = true
	f.gen++
	next := fmt.Sprintf("rt-%s-%d", sid, f.gen)
	f.current[next] = sid
	f.perSID[sid]++
	f.mu.Unlock()
	w.Header().Set("Content-Type", "application/json")
	_ = json.NewEncoder(w).Encode(map[string]any{
		"access_token": "at-" + next, "token_type": "Bearer", "expires_in": 600, "refresh_token": next, "sid": sid,
	})
}

// multiples counts k in [1, n] divisible by d.
func multiples(n, d int64) int64 { return n / d }

// The closed loop, driving the refresh operation against the fake for a
// bounded number of operations: every request is one operation, each
// worker's session is refreshed serially (no reuse), and failures are
// tallied by kind.
func TestClosedLoopRefreshAgainstFakeServer(t *testing.T) {
	fake := newFakeAuthd()
	srv := httptest.NewServer(fake)
	defer srv.Close()

	const workers, ops = 6, 700
	b := &bench{o: options{concurrency: workers, usersPerWorker: 1}, api: newAPI(srv.URL, workers, 10*time.Second)}
	defer b.api.close()
	b.sessions = make([]tokenResponse, workers)
	for w := range b.sessions {
		b.sessions[w] = tokenResponse{RefreshToken: fake.session(fmt.Sprintf("s%d", w))}
	}
	res := runLoop(context.Background(), loopConfig{Concurrency: workers, MaxOps: ops},
		func(ctx context.Context, w int) (string, error) { return "", b.refresh(ctx, w) })

	if got := fake.requests.Load(); got != ops {
		t.Errorf("server saw %d requests, want exactly %d", got, ops)
	}
	want429 := multiples(ops, 10)
	want503 := multiples(ops, 14) - multiples(ops, 70) // multiples of 70 got 429
	if res.OK()+res.Failed() != ops {
		t.Errorf("ok %d + failed %d != %d operations", res.OK(), res.Failed(), ops)
	}
	if res.OK() != ops-want429-want503 {
		t.Errorf("ok %d, want %d", res.OK(), ops-want429-want503)
	}
	if got := res.All.errs; got["http_429"] != want429 || got["http_503"] != want503 || len(got) != 2 {
		t.Errorf("errors by kind %v, want http_429:%d http_503:%d", got, want429, want503)
	}
	if len(res.All.ok) != int(res.OK()) {
		t.Errorf("%d latencies for %d successes", len(res.All.ok), res.OK())
	}
	fake.mu.Lock()
	defer fake.mu.Unlock()
	if fake.reuse != 0 {
		t.Errorf("%d refresh tokens presented twice: workers shared a session", fake.reuse)
	}
	total := 0
	for sid, n := range fake.perSID {
		if n == 0 {
			t.Errorf("session %s never refreshed", sid)
		}
		total += n
	}
	if int64(total) != res.OK() {
		t.Errorf("server rotated %d times, client counted %d successes", total, res.OK())
	}
	if r := fromLoop("refresh", "", workers, res); r.OK != res.OK() || r.Errors["http_429"] != want429 || r.Sub != nil {
		t.Errorf("result: %+v", r)
	}
}

// Transport errors are tallied by class: nothing listens on a closed port.
func TestClosedLoopTalliesTransportErrors(t *testing.T) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := ln.Addr().String()
	ln.Close()
	a := newAPI("http://"+addr, 2, 5*time.Second)
	defer a.close()
	res := runLoop(context.Background(), loopConfig{Concurrency: 2, MaxOps: 9},
		func(ctx context.Context, _ int) (string, error) {
			_, err := a.refreshGrant(ctx, "x")
			return "", err
		})
	if res.OK() != 0 || res.All.errs["conn_refused"] != 9 {
		t.Errorf("got ok %d, errors %v; want conn_refused:9", res.OK(), res.All.errs)
	}
	if res.All.firstErr["conn_refused"] == "" {
		t.Error("no example error kept")
	}
}

// A consumer that runs out stops its worker without counting the attempt,
// and labelled operations are tallied apart.
func TestClosedLoopExhaustionAndLabels(t *testing.T) {
	var seq atomic.Int64
	res := runLoop(context.Background(), loopConfig{Concurrency: 4, MaxOps: 1000},
		func(context.Context, int) (string, error) {
			n := seq.Add(1)
			switch {
			case n > 50:
				return "", errExhausted
			case n%2 == 0:
				return "even", nil
			}
			return "odd", &httpStatusError{Code: 500}
		})
	if !res.Exhausted || res.OK() != 25 || res.Failed() != 25 {
		t.Fatalf("exhausted %v, %d ok + %d failed, want 25 + 25", res.Exhausted, res.OK(), res.Failed())
	}
	if even, odd := res.ByLabel["even"], res.ByLabel["odd"]; even == nil || odd == nil ||
		len(even.ok) != 25 || len(even.errs) != 0 || odd.errs["http_500"] != 25 || len(odd.ok) != 0 {
		t.Errorf("by label: even %+v odd %+v", res.ByLabel["even"], res.ByLabel["odd"])
	}
	r := fromLoop("mixed", "", 4, res)
	if len(r.Sub) != 2 || r.Sub[0].Name != "mixed/even" || r.Sub[0].OK != 25 || r.Sub[1].Name != "mixed/odd" || r.Sub[1].Failed != 25 {
		t.Errorf("parts: %+v %+v", r.Sub[0], r.Sub[len(r.Sub)-1])
	}
}

// The warmup's operations are not counted, and a warmup bounded by count
// waits for the window instead of consuming more.
func TestClosedLoopWarmupIsNotCounted(t *testing.T) {
	var calls atomic.Int64
	var started atomic.Bool
	res := runLoop(context.Background(), loopConfig{
		Concurrency: 3, Warmup: 20 * time.Millisecond, WarmupMaxOps: 5, MaxOps: 30,
		OnMeasureStart: func() { started.Store(true) },
	}, func(context.Context, int) (string, error) {
		calls.Add(1)
		return "", nil
	})
	if !started.Load() {
		t.Error("OnMeasureStart not called")
	}
	if res.OK() != 30 {
		t.Errorf("%d measured operations, want 30 (MaxOps)", res.OK())
	}
	// Every operation outside the window held one of the 5 warmup tickets.
	if extra := calls.Load() - res.OK(); extra > 5 {
		t.Errorf("%d operations outside the window, want at most 5", extra)
	}
}

// measureSpecs alternates a scenario and its floor slice by slice, merges
// the slices, and gives a spec that ran out no further slices.
func TestMeasureSpecsInterleaves(t *testing.T) {
	b := &bench{o: options{}, log: io.Discard, meter: &cpuMeter{root: t.TempDir()}}
	var mu sync.Mutex
	var order []string
	counting := func(name string, limit int64) *spec {
		var n atomic.Int64
		return &spec{
			name: name, cfg: loopConfig{Concurrency: 2, Duration: time.Hour, MaxOps: 10},
			fn: func(context.Context, int) (string, error) {
				if n.Add(1) > limit {
					return "", errExhausted
				}
				mu.Lock()
				order = append(order, name)
				mu.Unlock()
				return "", nil
			},
		}
	}
	rs := b.measureSpecs(context.Background(), []*spec{counting("scenario", 15), counting("floor", 1000)}, 3)
	if rs[0].OK != 15 || rs[1].OK != 30 {
		t.Errorf("scenario %d ok (want 15: it ran out), floor %d ok (want 3 slices of 10)", rs[0].OK, rs[1].OK)
	}
	var runs []string
	for i, name := range order {
		if i == 0 || order[i-1] != name {
			runs = append(runs, name)
		}
	}
	if got := fmt.Sprint(runs); got != "[scenario floor scenario floor]" { // the last two floor slices run back to back
		t.Errorf("slices ran in the order %s", got)
	}
	if len(rs[0].Notes) != 1 || len(rs[1].Notes) != 0 {
		t.Errorf("notes: %q %q", rs[0].Notes, rs[1].Notes)
	}
}

func TestAuthdEnvTakesOnlyAuthdSettings(t *testing.T) {
	var l envList
	for _, ok := range []string{"AUTHD_DB_MAX_CONNS=4", "AUTHD_LOG_LEVEL="} {
		if err := l.Set(ok); err != nil {
			t.Errorf("Set(%q) = %v", ok, err)
		}
	}
	for _, bad := range []string{"DATABASE_URL=postgres://x", "AUTHD_ADDR=:1", "AUTHD_DB_MAX_CONNS", "PATH=/"} {
		if err := l.Set(bad); err == nil {
			t.Errorf("Set(%q) accepted", bad)
		}
	}
	if len(l) != 2 {
		t.Errorf("list = %v", l)
	}
}
