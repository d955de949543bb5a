package main

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"sync"
	"sync/atomic"
	"time"

	"github.com/jackc/pgx/v5/pgxpool"
)

// result is one line of the report: a scenario or a floor.
type result struct {
	Name        string
	What        string
	Concurrency int
	Window      time.Duration
	OK, Failed  int64
	Errors      map[string]int64
	FirstErrors map[string]string
	Lat         latencies
	OKPerSec    float64
	CPU         cpuUsage
	// ServerSide: authd and PostgreSQL do the work (CPU per operation is
	// reported for them); PGSide: PostgreSQL only; ClientSide: authbench.
	ServerSide, PGSide, ClientSide bool
	// Floor is the floor this figure is compared with, Ratio = OKPerSec /
	// the floor's OKPerSec. FloorDerived: computed from other floors (mixed).
	Floor        string
	FloorDerived bool
	FloorPerSec  float64
	Ratio        float64
	Sub          []*result // mixed: one per kind of operation
	Notes        []string
}

// perOp divides d among the successful operations (0 if none).
func (r *result) perOp(d time.Duration) time.Duration {
	if r.OK == 0 {
		return 0
	}
	return d / time.Duration(r.OK)
}

// account is a user authbench created.
type account struct {
	ID, Name, Password string
}

// bench is one run: authd's API, the setup it made, the floors and the results.
type bench struct {
	o     options
	api   *api
	log   io.Writer // progress, stderr
	meter *cpuMeter
	pool  *pgxpool.Pool // nil without -database-url: no database floors
	runID string

	adminMu  sync.Mutex
	adminTok string

	users    []account // the login pool: worker w owns users[w*k : (w+1)*k]
	service  account
	svcMu    sync.Mutex
	svcTok   string
	created  []account       // everything to disable at the end
	sessions []tokenResponse // per worker: the session it refreshes

	cursors []int64 // per worker: the feed cursor of its last poll

	logoutMu     sync.Mutex
	logoutTokens []string // access tokens of live sessions, to log out
	logoutNext   atomic.Int64
	harvest      [][]string // per worker: sessions the login scenario made
	mixedTokens  [][]string // per worker: sessions mixed logged in, to log out

	revoked   atomic.Int64 // sessions this run has revoked
	verifyTok string

	floors       map[string]*result // the latest measurement of each floor, by base name
	floorResults []*result          // every floor measurement, in order
	results      []*result
}

func newRunID() string {
	b := make([]byte, 4)
	_, _ = rand.Read(b)
	return hex.EncodeToString(b)
}

func (b *bench) logf(format string, args ...any) {
	fmt.Fprintf(b.log, "authbench: "+format+"\n", args...)
}

// spec is a measurement to make: a scenario or a floor.
type spec struct {
	name, what string
	// cfg.Duration is the whole measured window, split over the rounds.
	cfg loopConfig
	fn  op
	// Who does the work, for the CPU columns (see result).
	serverSide, pgSide, clientSide bool
	// after adds notes from what the operations counted; cleanup releases
	// what the spec holds (a scratch table, a Verifier).
	after   func(r *result)
	cleanup func()
}

func (s *spec) close() {
	if s != nil && s.cleanup != nil {
		s.cleanup()
	}
}

// measureSpecs measures the specs in alternating slices, rounds times
// (scenario, floor, scenario, floor, …), so that whatever else the machine
// does falls on both alike; each slice is a closed loop of
// cfg.Duration/rounds, the first one preceded by the warmup. A spec that
// ran out (errExhausted) gets no further slices. The CPU is sampled around
// every slice and summed.
func (b *bench) measureSpecs(ctx context.Context, specs []*spec, rounds int) []*result {
	rounds = max(rounds, 1)
	type acc struct {
		lr  *loopResult
		cpu cpuUsage
	}
	accs := make([]acc, len(specs))
	for round := range rounds {
		for i, s := range specs {
			if ctx.Err() != nil || (accs[i].lr != nil && accs[i].lr.Exhausted) {
				continue
			}
			cfg := s.cfg
			cfg.Duration = max(s.cfg.Duration/time.Duration(rounds), time.Millisecond)
			if round > 0 {
				cfg.Warmup, cfg.WarmupMaxOps = 0, 0
			}
			var before, after cpuSample
			cfg.OnMeasureStart = func() { before = b.meter.sample() }
			cfg.OnMeasureEnd = func() { after = b.meter.sample() }
			label := s.name
			if rounds > 1 {
				label = fmt.Sprintf("%s [%d/%d]", s.name, round+1, rounds)
			}
			if b.o.progress > 0 {
				cfg.ProgressEvery = b.o.progress
				total := cfg.Duration.Round(10 * time.Millisecond)
				cfg.Progress = func(el time.Duration, ok, failed int64) {
					b.logf("  %-32s %4.1fs/%s  ok %-7d errors %-5d %s/s", label, el.Seconds(), total, ok, failed,
						formatRate(perSecond(ok, el)))
				}
			}
			if round == 0 {
				b.logf("%s: %d workers, warmup %s, %s in %d slices (%s)", s.name, cfg.Concurrency, cfg.Warmup,
					s.cfg.Duration, rounds, s.what)
			}
			lr := runLoop(ctx, cfg, s.fn)
			u := cpuDelta(before, after)
			if accs[i].lr == nil {
				accs[i] = acc{lr, u}
			} else {
				accs[i].lr.add(lr)
				accs[i].cpu = accs[i].cpu.add(u)
			}
		}
	}
	out := make([]*result, len(specs))
	for i, s := range specs {
		lr := accs[i].lr
		if lr == nil {
			lr = &loopResult{All: newLabelRecord(), ByLabel: map[string]*labelRecord{}}
		}
		r := fromLoop(s.name, s.what, s.cfg.Concurrency, lr)
		r.CPU = accs[i].cpu
		r.ServerSide, r.PGSide, r.ClientSide = s.serverSide, s.pgSide, s.clientSide
		if lr.Exhausted {
			r.Notes = append(r.Notes, fmt.Sprintf("ran out of sessions to consume: measured for %s in all", lr.Window.Round(time.Millisecond)))
		}
		if s.after != nil {
			s.after(r)
		}
		b.logf("%s: %d ok, %d errors, %s/s, p50 %s, p99 %s", s.name, r.OK, r.Failed, formatRate(r.OKPerSec),
			formatDuration(r.Lat.P50), formatDuration(r.Lat.P99))
		out[i] = r
	}
	return out
}

// fromLoop computes a result's statistics from a loop's records.
func fromLoop(name, what string, concurrency int, lr *loopResult) *result {
	mk := func(name string, rec *labelRecord) *result {
		r := &result{Name: name, What: what, Concurrency: concurrency, Window: lr.Window,
			OK: int64(len(rec.ok)), Errors: rec.errs, FirstErrors: rec.firstErr}
		for _, n := range rec.errs {
			r.Failed += n
		}
		r.OKPerSec = perSecond(r.OK, lr.Window)
		r.Lat = summarize(rec.ok)
		return r
	}
	r := mk(name, lr.All)
	if len(lr.ByLabel) > 1 || (len(lr.ByLabel) == 1 && lr.ByLabel[""] == nil) {
		for _, label := range sortedKeys(lr.ByLabel) {
			r.Sub = append(r.Sub, mk(name+"/"+label, lr.ByLabel[label]))
		}
	}
	return r
}

// admin returns an admin access token, logging in the first time or again
// when forced (after a 401).
func (b *bench) admin(ctx context.Context, force bool) (string, error) {
	b.adminMu.Lock()
	defer b.adminMu.Unlock()
	if b.adminTok != "" && !force {
		return b.adminTok, nil
	}
	t, err := b.api.passwordGrant(ctx, b.o.adminUser, b.o.adminPassword)
	if err != nil {
		return "", fmt.Errorf("log in as admin %q: %w", b.o.adminUser, err)
	}
	b.adminTok = t.AccessToken
	return b.adminTok, nil
}

// createUser makes one user through POST /users, logging the admin in
// again if its token expired.
func (b *bench) createUser(ctx context.Context, name, role string) (account, error) {
	pw := newPassword()
	for attempt := 0; ; attempt++ {
		tok, err := b.admin(ctx, attempt > 0)
		if err != nil {
			return account{}, err
		}
		id, err := b.api.createUser(ctx, tok, name, role, pw)
		var se *httpStatusError
		if errors.As(err, &se) && se.Code == 401 && attempt == 0 {
			continue
		}
		if err != nil {
			return account{}, fmt.Errorf("create user %s: %w", name, err)
		}
		a := account{ID: id, Name: name, Password: pw}
		b.adminMu.Lock()
		b.created = append(b.created, a)
		b.adminMu.Unlock()
		return a, nil
	}
}

func newPassword() string {
	p := make([]byte, 18)
	_, _ = rand.Read(p)
	return "ab-" + hex.EncodeToString(p)
}

// fanOut runs work(i) for i in [0, n) on the run's concurrency until every
// i has run or ctx ends; work returns false to stop its worker.
func (b *bench) fanOut(ctx context.Context, n int, work func(ctx context.Context, i int) bool) {
	var next atomic.Int64
	var wg sync.WaitGroup
	for range min(b.o.concurrency, n) {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for ctx.Err() == nil {
				i := int(next.Add(1) - 1)
				if i >= n || !work(ctx, i) {
					return
				}
			}
		}()
	}
	wg.Wait()
}

// parallel runs fn(i) for i in [0, n) on the run's concurrency, stopping at
// the first error or when the setup time limit passes.
func (b *bench) parallel(ctx context.Context, n int, fn func(ctx context.Context, i int) error) error {
	ctx, cancel := context.WithTimeout(ctx, b.o.setupTimeout)
	defer cancel()
	var once sync.Once
	var first error
	b.fanOut(ctx, n, func(ctx context.Context, i int) bool {
		if err := fn(ctx, i); err != nil {
			once.Do(func() { first = err; cancel() })
			return false
		}
		return true
	})
	if first != nil {
		return first
	}
	if err := ctx.Err(); err != nil {
		return fmt.Errorf("setup did not finish within -setup-timeout %s: %w", b.o.setupTimeout, err)
	}
	return nil
}

// setup creates what the chosen scenarios need, through authd's API only:
// the login pool (usersPerWorker users per worker, so no account ever has
// two logins in flight and the per-account throttle never fires), a
// service identity for the feed and the verifier, one session per worker
// to refresh, and a session whose token the verify scenario checks.
func (b *bench) setup(ctx context.Context) error {
	start := time.Now()
	if _, err := b.admin(ctx, false); err != nil {
		return err
	}
	c, k := b.o.concurrency, b.o.usersPerWorker
	b.users = make([]account, c*k)
	if err := b.parallel(ctx, c*k, func(ctx context.Context, i int) error {
		u, err := b.createUser(ctx, fmt.Sprintf("authbench-%s-u%d", b.runID, i), "user")
		b.users[i] = u
		return err
	}); err != nil {
		return err
	}
	svc, err := b.createUser(ctx, "authbench-"+b.runID+"-svc", "service")
	if err != nil {
		return err
	}
	b.service = svc
	if _, err := b.serviceToken(ctx, ""); err != nil {
		return err
	}
	b.sessions = make([]tokenResponse, c)
	if err := b.parallel(ctx, c, func(ctx context.Context, w int) error {
		t, err := b.login(ctx, w, 0)
		b.sessions[w] = t
		return err
	}); err != nil {
		return err
	}
	t, err := b.login(ctx, 0, 1)
	if err != nil {
		return err
	}
	b.verifyTok = t.AccessToken
	b.cursors = make([]int64, c)
	b.harvest = make([][]string, c)
	b.mixedTokens = make([][]string, c)
	b.logf("setup: %d users, 1 service identity, %d sessions in %s", len(b.created)-1, c+1,
		time.Since(start).Round(time.Millisecond))
	return nil
}

// login logs in the j-th user (mod k) of worker w's share of the pool.
func (b *bench) login(ctx context.Context, w, j int) (tokenResponse, error) {
	k := b.o.usersPerWorker
	u := b.users[w*k+((j%k)+k)%k]
	return b.api.passwordGrant(ctx, u.Name, u.Password)
}

// serviceToken returns the service identity's access token, fetching a new
// one when stale equals the current one (it was refused) or there is none.
func (b *bench) serviceToken(ctx context.Context, stale string) (string, error) {
	b.svcMu.Lock()
	defer b.svcMu.Unlock()
	if b.svcTok != "" && b.svcTok != stale {
		return b.svcTok, nil
	}
	t, err := b.api.clientCredentials(ctx, b.service.Name, b.service.Password)
	if err != nil {
		return "", fmt.Errorf("client_credentials for %s: %w", b.service.Name, err)
	}
	b.svcTok = t.AccessToken
	return b.svcTok, nil
}

// fillLogoutPool logs in until n sessions wait to be logged out, for at
// most -fill-time: each costs authd an argon2id verification, so on a busy
// machine the pool may stay smaller, and the logout scenario then ends
// early. Failed logins are counted, not fatal.
func (b *bench) fillLogoutPool(ctx context.Context, n int) {
	b.logoutMu.Lock()
	for w, h := range b.harvest {
		b.logoutTokens = append(b.logoutTokens, h...)
		b.harvest[w] = nil
	}
	have := len(b.logoutTokens) - int(b.logoutNext.Load())
	b.logoutMu.Unlock()
	need := n - have
	if need <= 0 {
		return
	}
	start := time.Now()
	b.logf("setup: up to %d logins (for at most %s) for sessions to log out; %d left from the login scenario",
		need, b.o.fillTime, max(have, 0))
	toks := make([]string, need)
	made := b.bestEffort(ctx, need, b.o.fillTime, func(ctx context.Context, i int) error {
		t, err := b.login(ctx, i%b.o.concurrency, i/b.o.concurrency)
		toks[i] = t.AccessToken
		return err
	})
	b.logoutMu.Lock()
	for _, t := range toks {
		if t != "" {
			b.logoutTokens = append(b.logoutTokens, t)
		}
	}
	b.logoutMu.Unlock()
	b.logf("setup: %d of %d sessions in %s", made, need, time.Since(start).Round(time.Millisecond))
}

// bestEffort runs fn(i) for i in [0, n) on the run's concurrency until all
// are done or budget has passed, and returns how many succeeded. The first
// failure of each kind is logged.
func (b *bench) bestEffort(ctx context.Context, n int, budget time.Duration, fn func(ctx context.Context, i int) error) int {
	ctx, cancel := context.WithTimeout(ctx, budget)
	defer cancel()
	var ok atomic.Int64
	var mu sync.Mutex
	seen := map[string]int{}
	b.fanOut(ctx, n, func(ctx context.Context, i int) bool {
		err := fn(ctx, i)
		if err == nil {
			ok.Add(1)
			return true
		}
		if ctx.Err() != nil {
			return false // the budget ended this one
		}
		mu.Lock()
		kind := classify(err)
		if seen[kind]++; seen[kind] == 1 {
			b.logf("setup: %s (further %s not shown)", err, kind)
		}
		mu.Unlock()
		return true
	})
	if len(seen) > 0 {
		b.logf("setup: failures %s", formatKinds(toInt64(seen)))
	}
	return int(ok.Load())
}

func toInt64(m map[string]int) map[string]int64 {
	out := make(map[string]int64, len(m))
	for k, v := range m {
		out[k] = int64(v)
	}
	return out
}

// nextLogout hands out the next session to log out, errExhausted when none is left.
func (b *bench) nextLogout() (string, error) {
	i := b.logoutNext.Add(1) - 1
	if i >= int64(len(b.logoutTokens)) {
		return "", errExhausted
	}
	return b.logoutTokens[i], nil
}

// cleanup disables every user this run created (PATCH /users/{id}), which
// revokes their sessions: authd has no user deletion.
func (b *bench) cleanup(ctx context.Context) {
	if len(b.created) == 0 {
		return
	}
	ctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 60*time.Second)
	defer cancel()
	failed := 0
	for i, u := range b.created {
		tok, err := b.admin(ctx, false)
		if err == nil {
			err = b.api.disableUser(ctx, tok, u.ID)
			var se *httpStatusError
			if errors.As(err, &se) && se.Code == 401 {
				if tok, err = b.admin(ctx, true); err == nil {
					err = b.api.disableUser(ctx, tok, u.ID)
				}
			}
		}
		if err != nil {
			failed++
			if failed == 1 {
				b.logf("cleanup: disable %s: %v", u.Name, err)
			}
		}
		if ctx.Err() != nil {
			failed += len(b.created) - i - 1
			break
		}
	}
	b.logf("cleanup: disabled %d of the %d users authbench-%s-* (their sessions are revoked)",
		len(b.created)-failed, len(b.created), b.runID)
}
