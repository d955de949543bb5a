package httpapi_test

import (
	"context"
	"encoding/json"
	"errors"
	"io"
	"log/slog"
	"net"
	"net/http"
	"net/http/httptest"
	"net/netip"
	"net/url"
	"os"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/seedc5a8123e/authd/internal/app"
	"github.com/seedc5a8123e/authd/internal/authdtest"
	"github.com/seedc5a8123e/authd/internal/clock"
	"github.com/seedc5a8123e/authd/internal/config"
	"github.com/seedc5a8123e/authd/internal/keys"
	"github.com/seedc5a8123e/authd/internal/openapitest"
	"github.com/seedc5a8123e/authd/internal/password"
	"github.com/seedc5a8123e/authd/internal/pgtest"
	"github.com/seedc5a8123e/authd/internal/postgres"
	"github.com/seedc5a8123e/authd/internal/push"
	"github.com/seedc5a8123e/authd/internal/throttle"
)

// throttleAnswer is what a client can observe of one /token attempt.
type throttleAnswer struct {
	Status     int
	RetryAfter string
	Body       string
}

func throttleAttempt(t *testing.T, env *authdtest.Env, form url.Values) throttleAnswer {
	t.Helper()
	res, body := env.PostForm(t, "/token", form)
	a := throttleAnswer{Status: res.StatusCode, RetryAfter: res.Header.Get("Retry-After")}
	if res.StatusCode == 200 {
		a.Body = "token"
	} else {
		a.Body = string(body)
	}
	return a
}

// startBehindProxy runs authd as authdtest.Start does, with o and then
// adjust applied to its configuration, behind a trusted proxy on the
// loopback address: each request picks its client address with
// X-Forwarded-For (attemptFrom).
func startBehindProxy(t *testing.T, o authdtest.Options, adjust func(*config.Config)) *authdtest.Env {
	t.Helper()
	cfg := authdtest.Config(t, o)
	cfg.TrustedProxies = []netip.Prefix{netip.MustParsePrefix("127.0.0.0/8"), netip.MustParsePrefix("::1/128")}
	if adjust != nil {
		adjust(&cfg)
	}
	k, err := keys.Generate(keys.EdDSA)
	if err != nil {
		t.Fatal(err)
	}
	set, err := keys.NewSet(k)
	if err != nil {
		t.Fatal(err)
	}
	clk := clock.NewManual(time.Now().Truncate(time.Second))
	log := slog.New(slog.DiscardHandler)
	cheap := password.Params{Memory: 64, Time: 1, Threads: 1, SaltLen: 16, KeyLen: 32}
	a, err := app.New(context.Background(), cfg, app.Deps{
		Log: log, Clock: clk, DB: pgtest.NewDB(t), Keys: set, Publisher: push.Nop{}, Password: &cheap,
	})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(a.Close)
	env := &authdtest.Env{
		App: a, DB: a.DB, Clock: clk, Keys: a.Keys, Signer: a.Signer, Log: log,
		Sessions: a.Sessions, Accounts: a.Accounts, Throttle: a.Throttle,
		Metrics: a.Metrics, Registry: a.Registry,
	}
	env.Server = httptest.NewServer(a.Handler)
	env.URL = env.Server.URL
	t.Cleanup(env.Server.Close)
	return env
}

// attemptFrom is throttleAttempt from the client address ip, for an env of
// startBehindProxy.
func attemptFrom(t *testing.T, env *authdtest.Env, ip string, form url.Values) throttleAnswer {
	t.Helper()
	req, err := http.NewRequest(http.MethodPost, env.URL+"/token", strings.NewReader(form.Encode()))
	if err != nil {
		t.Fatal(err)
	}
	req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	req.Header.Set("X-Forwarded-For", ip)
	res, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer res.Body.Close()
	body, err := io.ReadAll(res.Body)
	if err != nil {
		t.Fatal(err)
	}
	a := throttleAnswer{Status: res.StatusCode, RetryAfter: res.Header.Get("Retry-After"), Body: string(body)}
	if res.StatusCode == 200 {
		a.Body = "token"
	}
	return a
}

func passwordForm(user, pw string) url.Values {
	return url.Values{"grant_type": {"password"}, "username": {user}, "password": {pw}}
}

const wrongPW = "not the password at all"

// throttleScript runs the same sequence of attempts against username and
// returns what a client sees; correct is the right password (or any, for
// an unknown user).
func throttleScript(t *testing.T, env *authdtest.Env, username, correct string) []throttleAnswer {
	t.Helper()
	var out []throttleAnswer
	for range 5 { // five failures are free
		out = append(out, throttleAttempt(t, env, passwordForm(username, wrongPW)))
	}
	out = append(out, throttleAttempt(t, env, passwordForm(username, correct))) // 429 even when right
	env.Clock.Advance(time.Second)
	out = append(out, throttleAttempt(t, env, passwordForm(username, wrongPW))) // 6th failure: 2s now
	out = append(out, throttleAttempt(t, env, passwordForm(username, wrongPW))) // 429, Retry-After 2
	env.Clock.Advance(time.Second)
	out = append(out, throttleAttempt(t, env, passwordForm(username, wrongPW))) // still 429, 1s left
	env.Clock.Advance(time.Second)
	return out
}

func TestThrottleAccount(t *testing.T) {
	env := authdtest.Start(t, authdtest.Options{})
	env.CreateUser(t, "carol", "user", acctPW)
	got := throttleScript(t, env, "carol", acctPW)

	wrong := got[0]
	if wrong.Status != 400 || wrong.RetryAfter != "" {
		t.Fatalf("wrong password: %+v", wrong)
	}
	for i, a := range got[:5] {
		if a != wrong {
			t.Fatalf("failure %d answered %+v, want %+v", i+1, a, wrong)
		}
	}
	var body struct {
		Error            string `json:"error"`
		ErrorDescription string `json:"error_description"`
	}
	if err := json.Unmarshal([]byte(got[5].Body), &body); err != nil {
		t.Fatal(err)
	}
	if got[5].Status != 429 || got[5].RetryAfter != "1" || body.Error != "invalid_request" ||
		body.ErrorDescription != "too many failed attempts; retry later" {
		t.Fatalf("right password during the delay: %+v", got[5])
	}
	if got[6] != wrong {
		t.Fatalf("after the delay a wrong password is checked again: %+v", got[6])
	}
	if got[7].Status != 429 || got[7].RetryAfter != "2" {
		t.Fatalf("the delay doubles: %+v", got[7])
	}
	if got[8].Status != 429 || got[8].RetryAfter != "1" {
		t.Fatalf("half way through the delay: %+v", got[8])
	}

	t.Run("RecoversAfterTheDelayAndSuccessResets", func(t *testing.T) {
		env.Login(t, "carol", acctPW)
		for i := range 5 {
			if a := throttleAttempt(t, env, passwordForm("CAROL", wrongPW)); a != wrong {
				t.Fatalf("failure %d after a success: %+v", i+1, a)
			}
		}
		if a := throttleAttempt(t, env, passwordForm("carol", acctPW)); a.Status != 429 {
			t.Fatalf("letter case must not give fresh attempts: %+v", a)
		}
	})
}

func TestThrottleUnknownUsernamesLikeKnownOnes(t *testing.T) {
	known := authdtest.Start(t, authdtest.Options{})
	known.CreateUser(t, "carol", "user", acctPW)
	unknown := authdtest.Start(t, authdtest.Options{})
	a := throttleScript(t, known, "carol", acctPW)
	b := throttleScript(t, unknown, "carol", acctPW)
	for i := range a {
		if a[i] != b[i] {
			t.Fatalf("attempt %d: known user %+v, unknown user %+v", i+1, a[i], b[i])
		}
	}
	if a[5].Status != 429 || b[5].Status != 429 {
		t.Fatalf("not throttled: %+v %+v", a[5], b[5])
	}
}

// ipRow is the stored count of the test client's address (the only one).
func ipRow(t *testing.T, env *authdtest.Env) (failures int, lastFailedAt time.Time) {
	t.Helper()
	err := env.DB.Pool().QueryRow(context.Background(),
		`SELECT failures, last_failed_at FROM login_failures WHERE scope = 'ip'`).Scan(&failures, &lastFailedAt)
	if errors.Is(err, pgx.ErrNoRows) {
		return 0, time.Time{} // correct logins write no throttle row at all
	}
	if err != nil {
		t.Fatal(err)
	}
	return failures, lastFailedAt
}

func TestThrottlePerIP(t *testing.T) {
	env := authdtest.Start(t, authdtest.Options{Throttle: throttle.Config{MaxFailuresIP: 3}})
	env.CreateUser(t, "dave", "user", acctPW)
	for _, u := range []string{"u1", "u2", "u3"} {
		if a := throttleAttempt(t, env, passwordForm(u, wrongPW)); a.Status != 400 {
			t.Fatalf("%s: %+v", u, a)
		}
	}
	failedAt := env.Clock.Now()
	if a := throttleAttempt(t, env, passwordForm("dave", acctPW)); a.Status != 429 || a.RetryAfter != "1" {
		t.Fatalf("fourth account from one IP: %+v", a)
	}
	env.Clock.Advance(time.Second)
	env.Login(t, "dave", acctPW)
	// A success neither clears the IP's count nor moves its last failure,
	// so it leaves no delay behind it.
	if n, at := ipRow(t, env); n != 3 || !at.Equal(failedAt) {
		t.Fatalf("IP row after a success: %d failures, last at %s; want 3 at %s", n, at, failedAt)
	}
	if a := throttleAttempt(t, env, passwordForm("u4", wrongPW)); a.Status != 400 {
		t.Fatalf("right after a success, once the delay ran out: %+v", a)
	}
	if a := throttleAttempt(t, env, passwordForm("dave", acctPW)); a.Status != 429 || a.RetryAfter != "2" {
		t.Fatalf("IP count survived the success: %+v", a)
	}
	env.Clock.Advance(2 * time.Second)
	lastFailure := env.Clock.Now().Add(-2 * time.Second)

	// Correct logins through the following day do not keep the address's
	// failures alive: a day after its last failure it is forgotten.
	for range 4 {
		env.Login(t, "dave", acctPW)
		env.Clock.Advance(6 * time.Hour)
	}
	if n, at := ipRow(t, env); n != 4 || !at.Equal(lastFailure) {
		t.Fatalf("IP row after a day of successes: %d failures, last at %s; want 4 at %s", n, at, lastFailure)
	}
	env.Login(t, "dave", acctPW)
	for _, u := range []string{"u5", "u6"} {
		if a := throttleAttempt(t, env, passwordForm(u, wrongPW)); a.Status != 400 {
			t.Fatalf("%s a day after the last failure: %+v, want the IP's count forgotten", u, a)
		}
	}
	env.Login(t, "dave", acctPW) // two failures: below the threshold again
}

// concurrently sends n requests at once and returns their answers.
func concurrently(t *testing.T, env *authdtest.Env, n int, form func(i int) url.Values) []throttleAnswer {
	t.Helper()
	out := make([]throttleAnswer, n)
	start := make(chan struct{})
	var wg sync.WaitGroup
	for i := range n {
		wg.Go(func() {
			<-start
			res, err := http.PostForm(env.URL+"/token", form(i))
			if err != nil {
				t.Error(err)
				return
			}
			body, _ := io.ReadAll(res.Body)
			res.Body.Close()
			out[i] = throttleAnswer{Status: res.StatusCode, RetryAfter: res.Header.Get("Retry-After"), Body: string(body)}
		})
	}
	close(start)
	wg.Wait()
	return out
}

// wantOKOrBusy checks that every answer is a 200 or a 429 asking to retry
// in a second, and at least least 200s. The tests set a base delay of a
// minute, so a 429 answered with 1 comes from attempts in flight, never
// from a delay earned by failures.
func wantOKOrBusy(t *testing.T, got []throttleAnswer, least int) (ok int) {
	t.Helper()
	for i, a := range got {
		switch {
		case a.Status == 200:
			ok++
		case a.Status == 429 && a.RetryAfter == "1":
		default:
			t.Fatalf("request %d: %+v", i, a)
		}
	}
	if ok < least {
		t.Fatalf("%d of %d correct requests answered 200, want at least %d", ok, len(got), least)
	}
	t.Logf("%d of %d answered 200", ok, len(got))
	return ok
}

// TestConcurrentCorrectClientCredentials: a service client that requests
// tokens in parallel is never delayed by its own correct requests.
func TestConcurrentCorrectClientCredentials(t *testing.T) {
	env := authdtest.Start(t, authdtest.Options{Throttle: throttle.Config{MaxFailuresAccount: 5, Base: time.Minute}})
	env.CreateUser(t, "billing", "service", acctPW)
	got := concurrently(t, env, 30, func(int) url.Values {
		return url.Values{"grant_type": {"client_credentials"}, "client_id": {"billing"}, "client_secret": {acctPW}}
	})
	wantOKOrBusy(t, got, 5)
	env.ServiceToken(t, "billing", acctPW) // no delay left behind, and no clock advance
	if n, _ := ipRow(t, env); n != 0 {
		t.Fatalf("IP charged %d failures by correct requests", n)
	}
}

// TestConcurrentCorrectLoginsFromOneIP: many users behind one address
// (a NAT, a gateway, a load test) logging in at once, with the defaults, are
// neither refused as failures nor throttled as a spray: the address's
// attempts in flight are bounded by AUTHD_LOGIN_MAX_IN_FLIGHT_IP (200), not
// by its failure threshold (20).
func TestConcurrentCorrectLoginsFromOneIP(t *testing.T) {
	env := authdtest.Start(t, authdtest.Options{})
	const n = 100
	for i := range n {
		env.CreateUser(t, "nat"+strconv.Itoa(i), "user", acctPW)
	}
	got := concurrently(t, env, n, func(i int) url.Values { return passwordForm("nat"+strconv.Itoa(i), acctPW) })
	for i, a := range got {
		if a.Status != 200 {
			t.Errorf("login %d of %d from one address: %+v", i, n, a)
		}
	}
	if n, _ := ipRow(t, env); n != 0 {
		t.Fatalf("IP charged %d failures by correct logins", n)
	}
}

// TestTooManyLoginsInFlightFromOneAddress: past AUTHD_LOGIN_MAX_IN_FLIGHT_IP
// attempts being checked at once from one address, the next is refused with
// 429 and Retry-After 1, although nothing failed; once they settle, logins
// go on.
func TestTooManyLoginsInFlightFromOneAddress(t *testing.T) {
	env := startBehindProxy(t, authdtest.Options{}, func(c *config.Config) { c.LoginMaxInFlightIP = 2 })
	env.CreateUser(t, "late", "user", acctPW)
	// Two logins of other users being checked from 10.2.0.1, on another
	// replica: each holds a connection of its pool while it is checked.
	o := postgres.Options{MaxConns: 8}
	if os.Getenv("AUTHD_TEST_POOLER_URL") != "" { // env.DB's URL is the pooler's
		o.Pooler = postgres.PoolerTransaction
	}
	db, err := postgres.Open(context.Background(), env.DB.Pool().Config().ConnString(), o)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(db.Close)
	other := throttle.New(db, env.Clock, throttle.Config{MaxInFlightIP: 2}, slog.New(slog.NewTextHandler(io.Discard, nil)), nil)
	var busy []*authdtest.Held
	for i := range 2 {
		h, err := authdtest.Hold(t, other, "login:busy"+strconv.Itoa(i), "10.2.0.1")
		if err != nil {
			t.Fatal(err)
		}
		busy = append(busy, h)
	}
	a := attemptFrom(t, env, "10.2.0.1", passwordForm("late", acctPW))
	if a.Status != 429 || a.RetryAfter != "1" {
		t.Fatalf("with 2 logins in flight from the address: %+v, want 429 with Retry-After 1", a)
	}
	var body struct {
		Error            string `json:"error"`
		ErrorDescription string `json:"error_description"`
	}
	if err := json.Unmarshal([]byte(a.Body), &body); err != nil {
		t.Fatalf("%+v: %v", a, err)
	}
	// Not answered as if anything had failed.
	if body.Error != "invalid_request" ||
		body.ErrorDescription != "too many logins in progress from this address; retry shortly" {
		t.Fatalf("with 2 logins in flight from the address: %+v", a)
	}
	if a := attemptFrom(t, env, "10.2.0.2", passwordForm("late", acctPW)); a.Status != 200 {
		t.Fatalf("from another address: %+v", a)
	}
	if err := busy[0].Settle(nil); err != nil {
		t.Fatal(err)
	}
	if a := attemptFrom(t, env, "10.2.0.1", passwordForm("late", acctPW)); a.Status != 200 {
		t.Fatalf("with one settled: %+v", a)
	}
}

// TestThrottleGuesserCannotLockTheOwnerOut: failures are counted per
// account and address first, so a guesser on 10.0.0.1 earns a backoff for
// 10.0.0.1 only, and the owner's correct password from 10.0.0.2 still logs
// in; the owner's success does not lift the guesser's backoff.
func TestThrottleGuesserCannotLockTheOwnerOut(t *testing.T) {
	env := startBehindProxy(t, authdtest.Options{}, nil)
	env.CreateUser(t, "owner", "user", acctPW)
	const guesser, owner = "10.0.0.1", "10.0.0.2"
	for i := range 5 {
		if a := attemptFrom(t, env, guesser, passwordForm("owner", wrongPW)); a.Status != 400 {
			t.Fatalf("guess %d: %+v", i+1, a)
		}
	}
	if a := attemptFrom(t, env, guesser, passwordForm("owner", acctPW)); a.Status != 429 || a.RetryAfter != "1" {
		t.Fatalf("the guesser's address after 5 failures: %+v, want its backoff", a)
	}
	for i := range 3 { // 8 failures: the guesser waits out each delay
		env.Clock.Advance(time.Duration(1<<i) * time.Second)
		if a := attemptFrom(t, env, guesser, passwordForm("owner", wrongPW)); a.Status != 400 {
			t.Fatalf("guess %d after the delay: %+v", i+6, a)
		}
	}
	if a := attemptFrom(t, env, owner, passwordForm("owner", acctPW)); a.Status != 200 {
		t.Fatalf("the owner from another address after 8 failures elsewhere: %+v", a)
	}
	if a := attemptFrom(t, env, guesser, passwordForm("owner", acctPW)); a.Status != 429 || a.RetryAfter != "8" {
		t.Fatalf("the guesser's address after the owner's success: %+v, want its 8s delay to stand", a)
	}
}

// TestDistributedGuessHitsTheAccountWideBackoff: a guess spread over many
// addresses, one wrong password each, still ends in a backoff: at
// AUTHD_LOGIN_MAX_FAILURES_ACCOUNT_ANY_IP (50) failures of the account from
// anywhere every address waits, the owner's too.
func TestDistributedGuessHitsTheAccountWideBackoff(t *testing.T) {
	env := startBehindProxy(t, authdtest.Options{}, nil)
	env.CreateUser(t, "target", "user", acctPW)
	for i := range 60 {
		a := attemptFrom(t, env, "10.3.0."+strconv.Itoa(i), passwordForm("target", wrongPW))
		switch {
		case i < 50 && a.Status != 400:
			t.Fatalf("guess %d, below the account-wide threshold: %+v", i+1, a)
		case i >= 50 && (a.Status != 429 || a.RetryAfter != "1"):
			t.Fatalf("guess %d, past the account-wide threshold: %+v", i+1, a)
		}
	}
	if a := attemptFrom(t, env, "10.4.0.1", passwordForm("target", acctPW)); a.Status != 429 || a.RetryAfter != "1" {
		t.Fatalf("the owner during the account-wide backoff: %+v", a)
	}
	env.Clock.Advance(time.Second)
	env.Login(t, "target", acctPW) // the delay runs out
}

// TestStaleClaimNoLongerBlocks: attempts claimed by a replica of the
// release before (a committed pending row) that died before settling them
// block the account only until throttle.PendingTTL.
func TestStaleClaimNoLongerBlocks(t *testing.T) {
	env := authdtest.Start(t, authdtest.Options{Throttle: throttle.Config{MaxFailuresAccount: 5}})
	env.CreateUser(t, "zoe", "user", acctPW)
	ip, _, err := net.SplitHostPort(env.Server.Listener.Addr().String()) // the client's address too
	if err != nil {
		t.Fatal(err)
	}
	for range 5 {
		if err := env.DB.InTx(context.Background(), func(tx *postgres.Tx) error {
			if _, err := tx.LockLoginKeys("login:zoe", ip); err != nil {
				return err
			}
			now := env.Clock.Now()
			return tx.ClaimLogin("login:zoe", ip, now, now.Add(-throttle.PendingTTL), true)
		}); err != nil {
			t.Fatal(err)
		}
	}
	if a := throttleAttempt(t, env, passwordForm("zoe", acctPW)); a.Status != 429 || a.RetryAfter != "1" {
		t.Fatalf("with five attempts in flight: %+v", a)
	}
	env.Clock.Advance(throttle.PendingTTL + time.Second)
	env.Login(t, "zoe", acctPW)
}

// TestParallelGuessesCannotOutrunTheThrottle sends a burst of wrong guesses
// at one account from one address at once: only as many as the threshold
// of one account from one address (5) may reach the password check.
func TestParallelGuessesCannotOutrunTheThrottle(t *testing.T) {
	env := authdtest.Start(t, authdtest.Options{Throttle: throttle.Config{MaxFailuresAccount: 5}})
	env.CreateUser(t, "target", "user", acctPW)
	var wg sync.WaitGroup
	var checked, throttled atomic.Int64
	for range 30 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			res, err := http.PostForm(env.URL+"/token", passwordForm("target", wrongPW))
			if err != nil {
				t.Error(err)
				return
			}
			res.Body.Close()
			switch {
			case res.StatusCode == 400:
				checked.Add(1)
			case res.StatusCode == 429 && res.Header.Get("Retry-After") == "1":
				throttled.Add(1)
			default:
				t.Errorf("status %d, Retry-After %q", res.StatusCode, res.Header.Get("Retry-After"))
			}
		}()
	}
	wg.Wait()
	if checked.Load() != 5 || throttled.Load() != 25 {
		t.Fatalf("%d guesses checked, %d throttled; want 5 and 25", checked.Load(), throttled.Load())
	}
	if n, _ := ipRow(t, env); n != 5 {
		t.Fatalf("IP counts %d failures, want the 5 checked", n)
	}
}

func TestThrottleClientCredentials(t *testing.T) {
	env := authdtest.Start(t, authdtest.Options{Throttle: throttle.Config{MaxFailuresAccount: 2}})
	env.CreateUser(t, "billing", "service", acctPW)
	form := func(secret string) url.Values {
		return url.Values{"grant_type": {"client_credentials"}, "client_id": {"billing"}, "client_secret": {secret}}
	}
	for range 2 {
		if a := throttleAttempt(t, env, form(wrongPW)); a.Status != 401 {
			t.Fatalf("wrong secret: %+v", a)
		}
	}
	if a := throttleAttempt(t, env, form(acctPW)); a.Status != 429 || a.RetryAfter != "1" {
		t.Fatalf("right secret during the delay: %+v", a)
	}
	env.Clock.Advance(time.Second)
	env.ServiceToken(t, "billing", acctPW)
}

func TestThrottleForgetsAfterADayOfQuiet(t *testing.T) {
	env := authdtest.Start(t, authdtest.Options{Throttle: throttle.Config{MaxFailuresAccount: 1, Max: time.Hour}})
	env.CreateUser(t, "erin", "user", acctPW)
	for range 3 {
		throttleAttempt(t, env, passwordForm("erin", wrongPW))
		env.Clock.Advance(time.Hour)
	}
	env.Clock.Advance(throttle.Forget)
	// The count starts again from one: a single failure gives the base delay.
	throttleAttempt(t, env, passwordForm("erin", wrongPW))
	if a := throttleAttempt(t, env, passwordForm("erin", acctPW)); a.Status != 429 || a.RetryAfter != "1" {
		t.Fatalf("after a day of quiet: %+v", a)
	}
}

// TestPasswordChangeIsThrottled: a stolen access token must not allow
// unlimited guesses at the current password.
func TestPasswordChangeIsThrottled(t *testing.T) {
	env := authdtest.Start(t, authdtest.Options{})
	env.CreateUser(t, "victim", "user", pw)
	tok := env.Login(t, "victim", pw).AccessToken
	client := &http.Client{Transport: openapitest.Transport(t, http.DefaultTransport)}
	change := func(current string) *http.Response {
		t.Helper()
		body := `{"current_password":"` + current + `","new_password":"a brand new password"}`
		req, _ := http.NewRequest(http.MethodPost, env.URL+"/me/password", strings.NewReader(body))
		req.Header.Set("Content-Type", "application/json")
		req.Header.Set("Authorization", "Bearer "+tok)
		res, err := client.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		res.Body.Close()
		return res
	}
	for i := range 5 { // the default account threshold
		if res := change("wrong guess number " + strconv.Itoa(i)); res.StatusCode != http.StatusForbidden {
			t.Fatalf("guess %d: %d, want 403", i, res.StatusCode)
		}
	}
	res := change(pw) // even the right password waits out the delay
	if res.StatusCode != http.StatusTooManyRequests || res.Header.Get("Retry-After") == "" {
		t.Fatalf("after 5 wrong guesses: %d, Retry-After %q; want 429 with Retry-After", res.StatusCode, res.Header.Get("Retry-After"))
	}
	secs, _ := strconv.Atoi(res.Header.Get("Retry-After"))
	env.Clock.Advance(time.Duration(secs) * time.Second)
	if res := change(pw); res.StatusCode != http.StatusOK {
		t.Fatalf("after the delay: %d, want 200", res.StatusCode)
	}
}

// TestUnrecordedWrongPasswordIsNotAnswered: when a wrong password cannot be
// counted, the caller gets a 500, not the answer to the guess.
func TestUnrecordedWrongPasswordIsNotAnswered(t *testing.T) {
	env := authdtest.Start(t, authdtest.Options{})
	env.CreateUser(t, "yan", "user", acctPW)
	_, err := env.DB.Pool().Exec(context.Background(), `
		CREATE FUNCTION break_login_failures() RETURNS trigger LANGUAGE plpgsql AS $$
		BEGIN
			IF NEW.failures > 0 AND (TG_OP = 'INSERT' OR NEW.failures > OLD.failures) THEN
				RAISE EXCEPTION 'the failure counter is broken';
			END IF;
			RETURN NEW;
		END $$;
		CREATE TRIGGER break_login_failures BEFORE INSERT OR UPDATE ON login_failures
			FOR EACH ROW EXECUTE FUNCTION break_login_failures();`)
	if err != nil {
		t.Fatal(err)
	}
	if a := throttleAttempt(t, env, passwordForm("yan", wrongPW)); a.Status != 500 || !strings.Contains(a.Body, `"server_error"`) {
		t.Fatalf("wrong password, not recorded: %+v", a)
	}
	env.Login(t, "yan", acctPW) // successes do not need the counter
}
