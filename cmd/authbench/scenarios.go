package main

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"math"
	"math/rand/v2"
	"slices"
	"sort"
	"strconv"
	"strings"
	"sync/atomic"
	"time"

	"github.com/seedc5a8123e/authd/verifier"
)

// The scenarios, in the order the standard set runs them: feed-delta before
// logout, so its polls see the empty delta a verifier sees in steady state
// (a delta repeats the last 15 s of revocations), and feed-snapshot after
// it, so the snapshot holds the sessions logout revoked.
var standardSet = []string{"verify", "login", "refresh", "feed-delta", "logout", "feed-snapshot", "mixed"}

// floorOf names the floor each scenario is compared with.
var floorOf = map[string]string{
	"login": floorArgon2, "refresh": floorUpdate, "logout": floorUpdate,
	"feed-delta": floorDelta, "feed-snapshot": floorSnapshot, "verify": floorJWT,
}

// parseScenarios reads -scenario: "standard" or a comma-separated list.
func parseScenarios(s string) ([]string, error) {
	if s == "" || s == "standard" {
		return standardSet, nil
	}
	var out []string
	for _, name := range strings.Split(s, ",") {
		name = strings.TrimSpace(name)
		if !slices.Contains(standardSet, name) {
			return nil, fmt.Errorf("-scenario: unknown scenario %q (want standard or some of %s)", name, strings.Join(standardSet, ","))
		}
		if !slices.Contains(out, name) {
			out = append(out, name)
		}
	}
	return out, nil
}

// run runs one scenario interleaved with its floor (-rounds), and records
// both; mixed is compared with a floor derived from its parts' floors.
func (b *bench) run(ctx context.Context, name string) error {
	sc, err := b.scenario(ctx, name)
	if err != nil {
		return fmt.Errorf("%s: %w", name, err)
	}
	defer sc.close()
	specs := []*spec{sc}
	var floorErr error
	if name != "mixed" {
		fl, err := b.floorSpec(ctx, floorOf[name])
		if err != nil {
			floorErr = err
			b.logf("%s: no floor: %v", name, err)
		} else {
			defer fl.close()
			specs = append(specs, fl)
		}
	}
	rs := b.measureSpecs(ctx, specs, b.o.rounds)
	if ctx.Err() != nil {
		return ctx.Err()
	}
	r := rs[0]
	b.results = append(b.results, r)
	switch {
	case name == "mixed":
		return b.deriveMixedFloor(ctx, r)
	case floorErr != nil:
		r.Notes = append(r.Notes, "no floor: "+floorErr.Error())
		return nil
	}
	f := rs[1]
	f.Name = fmt.Sprintf("%s[%s]", f.Name, name) // each scenario has its own, interleaved
	b.floorResults = append(b.floorResults, f)
	b.floors[floorOf[name]] = f
	compare(r, f, floorOf[name])
	return nil
}

// compare states r against its floor f (named base).
func compare(r, f *result, base string) {
	r.Floor, r.FloorPerSec = base, f.OKPerSec
	if f.OKPerSec > 0 {
		r.Ratio = r.OKPerSec / f.OKPerSec
	}
	if a, b, ok := otherShare(r.CPU), otherShare(f.CPU), r.CPU.MachineOK && f.CPU.MachineOK; ok && math.Abs(a-b) > noisyGap {
		r.Notes = append(r.Notes, fmt.Sprintf("noisy comparison: other processes took %.0f%% of the machine during the scenario, %.0f%% during its floor",
			100*a, 100*b))
	}
}

// noisyGap: a scenario and its floor whose shares of the machine taken by
// other processes differ by more than this are flagged.
const noisyGap = 0.15

func otherShare(u cpuUsage) float64 {
	if u.Capacity <= 0 {
		return 0
	}
	return float64(u.Other) / float64(u.Capacity)
}

// floorSpec prepares the named floor.
func (b *bench) floorSpec(ctx context.Context, name string) (*spec, error) {
	needsDB := name == floorUpdate || name == floorDelta || name == floorSnapshot
	if needsDB && b.pool == nil {
		return nil, errors.New("needs -database-url")
	}
	switch name {
	case floorUpdate:
		return b.updateFloor(ctx)
	case floorArgon2:
		return b.argon2Floor(), nil
	case floorDelta:
		return b.feedFloor(false), nil
	case floorSnapshot:
		return b.feedFloor(true), nil
	case floorJWT:
		return b.jwtFloor(ctx, b.verifyTok)
	}
	return nil, fmt.Errorf("no floor %q", name)
}

// scenario does the named scenario's own setup and returns its spec.
func (b *bench) scenario(ctx context.Context, name string) (*spec, error) {
	switch name {
	case "login":
		return b.loginScenario(), nil
	case "refresh":
		return b.refreshScenario(), nil
	case "logout":
		return b.logoutScenario(ctx), nil
	case "feed-delta":
		return b.feedDeltaScenario(ctx)
	case "feed-snapshot":
		return b.feedSnapshotScenario(ctx)
	case "verify":
		return b.verifyScenario(ctx)
	case "mixed":
		return b.mixedScenario(ctx)
	}
	return nil, fmt.Errorf("no scenario %q", name)
}

func (b *bench) scenarioLoop() loopConfig {
	return loopConfig{Concurrency: b.o.concurrency, Warmup: b.o.warmup, Duration: b.o.duration, MaxOps: b.o.maxOps}
}

// loginScenario: password grants, worker w cycling through its own users,
// so no account has two attempts in flight (the per-account limit is 5) and
// every password is right (the throttle counts failures). All workers share
// 127.0.0.1, which may have AUTHD_LOGIN_MAX_FAILURES_IP (default 20)
// attempts in flight: beyond that many workers, logins get 429. The
// sessions made are kept (up to -logout-pool) for the logout scenario.
func (b *bench) loginScenario() *spec {
	seq := make([]int, b.o.concurrency)
	perWorker := b.o.logoutPool/b.o.concurrency + 1
	return &spec{
		name: "login", what: "POST /token grant_type=password, own users per worker", cfg: b.scenarioLoop(), serverSide: true,
		fn: func(ctx context.Context, w int) (string, error) {
			seq[w]++
			t, err := b.login(ctx, w, seq[w])
			if err == nil && len(b.harvest[w]) < perWorker {
				b.harvest[w] = append(b.harvest[w], t.AccessToken)
			}
			return "", err
		},
		after: func(r *result) {
			if b.o.concurrency > 20 {
				r.Notes = append(r.Notes, "more workers than the default 20 login attempts in flight per address: expect http_429")
			}
		},
	}
}

// refresh rotates worker w's own session, serially (authd rotates refresh
// tokens: two refreshes of one token at once revoke the session). A failed
// refresh leaves the worker a fresh session for its next operation.
func (b *bench) refresh(ctx context.Context, w int) error {
	t, err := b.api.refreshGrant(ctx, b.sessions[w].RefreshToken)
	if err != nil {
		var se *httpStatusError
		if errors.As(err, &se) && se.Code == 400 && len(b.users) > 0 { // invalid_grant: the session is gone
			if fresh, lerr := b.login(ctx, w, 0); lerr == nil {
				b.sessions[w] = fresh
			}
		}
		return err
	}
	b.sessions[w] = t
	return nil
}

func (b *bench) refreshScenario() *spec {
	return &spec{
		name: "refresh", what: "POST /token grant_type=refresh_token, one session per worker, serial",
		cfg: b.scenarioLoop(), serverSide: true,
		fn: func(ctx context.Context, w int) (string, error) { return "", b.refresh(ctx, w) },
	}
}

// logoutScenario logs out sessions made beforehand (by the login scenario
// and, for the rest of -logout-pool, by logins in its setup, for at most
// -fill-time): each logout needs a live session, and making one costs an
// argon2id verification, far more than the logout. The measurement ends
// early, with a note, when the pool is spent; the warmup may use a tenth.
func (b *bench) logoutScenario(ctx context.Context) *spec {
	b.fillLogoutPool(ctx, b.o.logoutPool)
	cfg := b.scenarioLoop()
	cfg.WarmupMaxOps = int64(max(1, (len(b.logoutTokens)-int(b.logoutNext.Load()))/10))
	return &spec{
		name: "logout", what: "POST /logout of a live session", cfg: cfg, serverSide: true,
		fn: func(ctx context.Context, _ int) (string, error) {
			tok, err := b.nextLogout()
			if err != nil {
				return "", err
			}
			err = b.api.logout(ctx, tok)
			if err == nil {
				b.revoked.Add(1)
			}
			return "", err
		},
	}
}

// pollDelta polls the feed from worker w's cursor, as a verifier does.
func (b *bench) pollDelta(ctx context.Context, w int, entries *atomic.Int64) error {
	tok, err := b.serviceToken(ctx, "")
	if err != nil {
		return err
	}
	n, cursor, err := b.api.feed(ctx, tok, b.cursors[w])
	var se *httpStatusError
	if errors.As(err, &se) && se.Code == 401 {
		_, _ = b.serviceToken(ctx, tok) // expired: the next poll uses a new one
	}
	if err != nil {
		return err
	}
	b.cursors[w] = cursor
	entries.Add(int64(n))
	return nil
}

// startCursors gives every worker the cursor of a first full poll.
func (b *bench) startCursors(ctx context.Context) error {
	tok, err := b.serviceToken(ctx, "")
	if err != nil {
		return err
	}
	_, cursor, err := b.api.feed(ctx, tok, -1)
	if err != nil {
		return fmt.Errorf("first feed poll: %w", err)
	}
	for w := range b.cursors {
		b.cursors[w] = cursor
	}
	return nil
}

func (b *bench) feedDeltaScenario(ctx context.Context) (*spec, error) {
	if err := b.startCursors(ctx); err != nil {
		return nil, err
	}
	var entries atomic.Int64
	return &spec{
		name: "feed-delta", what: "GET /sessions/revoked?since=<cursor of the last poll>, service bearer",
		cfg: b.scenarioLoop(), serverSide: true,
		fn: func(ctx context.Context, w int) (string, error) { return "", b.pollDelta(ctx, w, &entries) },
		after: func(r *result) {
			if r.OK > 0 {
				r.Notes = append(r.Notes, fmt.Sprintf("%.1f entries per poll (warmup included)", float64(entries.Load())/float64(r.OK)))
			}
		},
	}, nil
}

// feedSnapshotScenario polls the full snapshot. It first tries to make sure
// at least -snapshot-revoked revocations are live, logging in and out as
// many sessions as the run has not already revoked (for at most -fill-time
// each).
func (b *bench) feedSnapshotScenario(ctx context.Context) (*spec, error) {
	if need := b.o.snapshotRevoked - int(b.revoked.Load()); need > 0 {
		b.fillLogoutPool(ctx, need)
		start := time.Now()
		done := b.bestEffort(ctx, need, b.o.fillTime, func(ctx context.Context, _ int) error {
			tok, err := b.nextLogout()
			if errors.Is(err, errExhausted) {
				return nil
			}
			if err == nil {
				if err = b.api.logout(ctx, tok); err == nil {
					b.revoked.Add(1)
				}
			}
			return err
		})
		b.logf("setup: %d logouts for the snapshot in %s", done, time.Since(start).Round(time.Millisecond))
	}
	if _, err := b.serviceToken(ctx, ""); err != nil {
		return nil, err
	}
	var entries atomic.Int64
	return &spec{
		name: "feed-snapshot", what: "GET /sessions/revoked (no since), service bearer, gzip accepted",
		cfg: b.scenarioLoop(), serverSide: true,
		fn: func(ctx context.Context, _ int) (string, error) {
			tok, err := b.serviceToken(ctx, "")
			if err != nil {
				return "", err
			}
			n, _, err := b.api.feed(ctx, tok, -1)
			var se *httpStatusError
			if errors.As(err, &se) && se.Code == 401 {
				_, _ = b.serviceToken(ctx, tok)
			}
			entries.Store(int64(n))
			return "", err
		},
		after: func(r *result) {
			r.Notes = append(r.Notes, fmt.Sprintf("%d entries per snapshot (the last)", entries.Load()))
		},
	}, nil
}

// verifyScenario runs verifier.Verify of one valid token on every worker,
// with a Verifier started against authd (discovery, JWKS, snapshot, poll).
func (b *bench) verifyScenario(ctx context.Context) (*spec, error) {
	nctx, cancel := context.WithTimeout(ctx, 30*time.Second)
	defer cancel()
	v, err := verifier.New(nctx, verifier.Config{
		IssuerURL: b.o.url, Audience: b.o.audience,
		ClientID: b.service.Name, ClientSecret: b.service.Password,
		Logger: slog.New(slog.NewTextHandler(b.log, &slog.HandlerOptions{Level: slog.LevelWarn})),
	})
	if err != nil {
		return nil, err
	}
	tok := b.verifyTok
	return &spec{
		name: "verify", what: "verifier.Verify of a valid token (in process, no request)",
		cfg: b.scenarioLoop(), clientSide: true, cleanup: func() { _ = v.Close() },
		fn: func(ctx context.Context, _ int) (string, error) {
			_, err := v.Verify(ctx, tok)
			return "", err
		},
	}, nil
}

// mix is the mixed scenario's share of each operation, in percent.
type mix map[string]int

// parseMix reads "refresh=70,feed-delta=20,login=5,logout=5".
func parseMix(s string) (mix, error) {
	m := mix{}
	total := 0
	for _, part := range strings.Split(s, ",") {
		name, weight, ok := strings.Cut(strings.TrimSpace(part), "=")
		n, err := strconv.Atoi(weight)
		if !ok || err != nil || n < 0 {
			return nil, fmt.Errorf("-mix: %q is not name=weight", part)
		}
		switch name {
		case "refresh", "feed-delta", "login", "logout":
		default:
			return nil, fmt.Errorf("-mix: %q is not one of refresh, feed-delta, login, logout", name)
		}
		m[name] += n
		total += n
	}
	if total == 0 {
		return nil, errors.New("-mix: the weights add up to zero")
	}
	return m, nil
}

// pick chooses an operation by weight for a draw in [0, total).
func (m mix) pick(draw int) string {
	for _, name := range sortedKeys(m) {
		if draw < m[name] {
			return name
		}
		draw -= m[name]
	}
	return ""
}

func (m mix) total() int {
	t := 0
	for _, n := range m {
		t += n
	}
	return t
}

// mixedScenario interleaves refreshes (of each worker's session), delta
// polls (from each worker's cursor), logins and logouts by -mix. A worker
// logs out only sessions it logged in itself during the mix; with none, a
// logout turns into a login.
func (b *bench) mixedScenario(ctx context.Context) (*spec, error) {
	if b.cursors[0] == 0 {
		if err := b.startCursors(ctx); err != nil {
			return nil, err
		}
	}
	rngs := make([]*rand.Rand, b.o.concurrency)
	for w := range rngs {
		rngs[w] = rand.New(rand.NewPCG(uint64(w), 0x6175746862656e63))
	}
	seq := make([]int, b.o.concurrency)
	total := b.o.mix.total()
	var entries atomic.Int64
	return &spec{
		name: "mixed", what: "by -mix " + b.o.mixFlag, cfg: b.scenarioLoop(), serverSide: true,
		fn: func(ctx context.Context, w int) (string, error) {
			kind := b.o.mix.pick(rngs[w].IntN(total))
			if kind == "logout" && len(b.mixedTokens[w]) == 0 {
				kind = "login"
			}
			switch kind {
			case "refresh":
				return kind, b.refresh(ctx, w)
			case "feed-delta":
				return kind, b.pollDelta(ctx, w, &entries)
			case "login":
				seq[w]++
				t, err := b.login(ctx, w, seq[w])
				if err == nil && len(b.mixedTokens[w]) < 1000 {
					b.mixedTokens[w] = append(b.mixedTokens[w], t.AccessToken)
				}
				return kind, err
			default: // logout
				n := len(b.mixedTokens[w])
				tok := b.mixedTokens[w][n-1]
				b.mixedTokens[w] = b.mixedTokens[w][:n-1]
				err := b.api.logout(ctx, tok)
				if err == nil {
					b.revoked.Add(1)
				}
				return kind, err
			}
		},
	}, nil
}

// deriveMixedFloor computes the mixed scenario's floor from the floors of
// its parts, weighted by the shares the run actually did: if a share s_i of
// the operations each cost at least 1/f_i (f_i the part's floor in ops/s),
// the mix can do at most 1 / Σ s_i/f_i. A model, not a measurement: it
// treats the parts' floors as if they used one resource in turn. Floors
// not measured by an earlier scenario are measured now, alone.
func (b *bench) deriveMixedFloor(ctx context.Context, r *result) error {
	if r.OK == 0 {
		return nil
	}
	var cost float64
	var parts []string
	for _, s := range r.Sub {
		kind := strings.TrimPrefix(s.Name, r.Name+"/")
		base := floorOf[kind]
		f, ok := b.floors[base]
		if !ok {
			fl, err := b.floorSpec(ctx, base)
			if err != nil {
				r.Notes = append(r.Notes, "no derived floor: "+kind+": "+err.Error())
				return nil
			}
			f = b.measureSpecs(ctx, []*spec{fl}, 1)[0]
			fl.close()
			if ctx.Err() != nil {
				return ctx.Err()
			}
			f.Name += "[mixed]"
			b.floors[base], b.floorResults = f, append(b.floorResults, f)
		}
		if f.OKPerSec <= 0 {
			r.Notes = append(r.Notes, "no derived floor: "+f.Name+" did nothing")
			return nil
		}
		share := float64(s.OK) / float64(r.OK)
		cost += share / f.OKPerSec
		parts = append(parts, fmt.Sprintf("%s %.0f%% (%s)", kind, 100*share, f.Name))
		s.Floor, s.FloorPerSec = base, f.OKPerSec
	}
	if cost > 0 {
		r.Floor, r.FloorDerived, r.FloorPerSec = "derived", true, 1/cost
		r.Ratio = r.OKPerSec / r.FloorPerSec
		r.Notes = append(r.Notes, "derived floor 1/Σ(share/floor) over "+strings.Join(parts, ", "))
	}
	return nil
}

func sortedKeys[V any](m map[string]V) []string {
	keys := make([]string, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	return keys
}
