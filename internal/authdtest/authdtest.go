// Package authdtest starts a complete authd for tests: the graph built by
// internal/app, as `authd serve` builds it, its HTTP handler on a real
// listener (httptest), a fresh PostgreSQL database, and a manual clock.
// Tests in several packages (httpapi, the verifier end-to-end tests) share it
// so they all exercise the same wiring as production.
package authdtest

import (
	"context"
	"encoding/json"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"net/url"
	"strings"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/seedc5a8123e/authd/internal/account"
	"github.com/seedc5a8123e/authd/internal/app"
	"github.com/seedc5a8123e/authd/internal/clock"
	"github.com/seedc5a8123e/authd/internal/config"
	"github.com/seedc5a8123e/authd/internal/keys"
	"github.com/seedc5a8123e/authd/internal/metrics"
	"github.com/seedc5a8123e/authd/internal/password"
	"github.com/seedc5a8123e/authd/internal/pgtest"
	"github.com/seedc5a8123e/authd/internal/postgres"
	"github.com/seedc5a8123e/authd/internal/push"
	"github.com/seedc5a8123e/authd/internal/session"
	"github.com/seedc5a8123e/authd/internal/throttle"
	"github.com/seedc5a8123e/authd/internal/token"
)

// Issuer and Audience are the claims the test server stamps.
const (
	Issuer   = "http://authd.test"
	Audience = "authd-test"
)

// Options adjust the server; the zero value is a sensible default.
type Options struct {
	AccessTTL  time.Duration // default 10m
	SessionTTL time.Duration // default 720h
	// MaxSessionsPerUser caps live sessions per user; default 0, no cap.
	MaxSessionsPerUser int
	Publisher          push.Publisher  // default push.Nop
	Keys               keys.Source     // default: one fresh EdDSA key, unless KeyEncryptionKey
	Clock              *clock.Manual   // default: a manual clock at a fixed time
	DB                 *postgres.DB    // default: a fresh database (pgtest.NewDB)
	Start              time.Time       // initial clock time when Clock is nil; default now, to the second
	Throttle           throttle.Config // login throttle; zero fields take throttle.DefaultConfig's
	// KeyEncryptionKey is AUTHD_KEY_ENCRYPTION_KEY: set, the keys live in
	// the database (internal/keyring); KeyRotation is AUTHD_KEY_ROTATION.
	// The keyring is maintained only when a test calls App.KeyRing.Maintain,
	// as the clock is manual.
	KeyEncryptionKey string
	KeyRotation      string
	// SessionIdleTTL and RefreshReuseGrace are AUTHD_SESSION_IDLE_TTL and
	// AUTHD_REFRESH_REUSE_GRACE; default 0, off.
	SessionIdleTTL    time.Duration
	RefreshReuseGrace time.Duration
	// StatusListOff is AUTHD_STATUS_LIST=off; StatusListSize is
	// AUTHD_STATUS_LIST_SIZE (0: the default). The lists are synced only
	// when a test calls App.StatusLists.Sync, as the clock is manual.
	StatusListOff  bool
	StatusListSize int
	// ReadMaxLag is AUTHD_READ_MAX_LAG (default 5s); it matters only when
	// DB has a replica (postgres.Options.ReadURL).
	ReadMaxLag time.Duration
}

// Env is a running authd.
type Env struct {
	URL    string
	Server *httptest.Server
	// App is the graph, built by app.New exactly as `authd serve` builds it.
	App      *app.App
	DB       *postgres.DB
	Clock    *clock.Manual
	Keys     keys.Source
	Sessions *session.Service
	Accounts *account.Service
	Throttle *throttle.Throttle
	Signer   *token.Signer
	Log      *slog.Logger
	// Metrics is wired as in `authd serve` and served on /metrics; Registry
	// is this server's own.
	Metrics  *metrics.Metrics
	Registry *prometheus.Registry
}

// cheapHash keeps test logins fast; production parameters are tested in
// internal/password.
var cheapHash = password.Params{Memory: 64, Time: 1, Threads: 1, SaltLen: 16, KeyLen: 32}

// Config is the configuration Start passes to app.New for o: production's
// defaults (config.Load with an empty environment) with o's fields over them.
func Config(t testing.TB, o Options) config.Config {
	t.Helper()
	cfg, err := config.Load(func(k string) string {
		if k == "DATABASE_URL" {
			return "postgres://unused.invalid/authd" // Start passes its own DB
		}
		return ""
	})
	if err != nil {
		t.Fatal(err)
	}
	cfg.Issuer, cfg.Audience = Issuer, Audience
	if o.AccessTTL != 0 {
		cfg.AccessTTL = o.AccessTTL
	}
	if o.SessionTTL != 0 {
		cfg.SessionTTL = o.SessionTTL
	}
	cfg.MaxSessionsPerUser = o.MaxSessionsPerUser // 0: no cap, unlike production
	cfg.SessionIdleTTL, cfg.RefreshReuseGrace = o.SessionIdleTTL, o.RefreshReuseGrace
	cfg.ReadMaxLag = or(o.ReadMaxLag, cfg.ReadMaxLag)
	d := throttle.DefaultConfig()
	cfg.LoginMaxFailuresAccount = or(o.Throttle.MaxFailuresAccount, d.MaxFailuresAccount)
	cfg.LoginMaxFailuresIP = or(o.Throttle.MaxFailuresIP, d.MaxFailuresIP)
	cfg.LoginBackoffBase = or(o.Throttle.Base, d.Base)
	cfg.LoginBackoffMax = or(o.Throttle.Max, d.Max)
	cfg.LoginMaxFailuresAccountAnyIP = or(o.Throttle.MaxFailuresAccountAnyIP, max(d.MaxFailuresAccountAnyIP, cfg.LoginMaxFailuresAccount))
	cfg.LoginMaxInFlightIP = or(o.Throttle.MaxInFlightIP, d.MaxInFlightIP)
	cfg.StatusList = !o.StatusListOff
	cfg.StatusListSize = or(o.StatusListSize, cfg.StatusListSize)
	cfg.KeyEncryptionKey = o.KeyEncryptionKey
	cfg.KeyRotation = or(o.KeyRotation, cfg.KeyRotation)
	return cfg
}

func or[T comparable](v, def T) T {
	var zero T
	if v == zero {
		return def
	}
	return v
}

// Start runs authd until t ends.
func Start(t testing.TB, o Options) *Env {
	t.Helper()
	if o.Publisher == nil {
		o.Publisher = push.Nop{}
	}
	if o.Clock == nil {
		start := o.Start
		if start.IsZero() {
			start = time.Now().Truncate(time.Second)
		}
		o.Clock = clock.NewManual(start)
	}
	if o.Keys == nil && o.KeyEncryptionKey == "" {
		k, err := keys.Generate(keys.EdDSA)
		if err != nil {
			t.Fatal(err)
		}
		o.Keys, _ = keys.NewSet(k)
	}
	if o.DB == nil {
		o.DB = pgtest.NewDB(t)
	}
	log := slog.New(slog.NewTextHandler(testWriter{t}, &slog.HandlerOptions{Level: slog.LevelWarn}))
	a, err := app.New(context.Background(), Config(t, o), app.Deps{
		Log: log, Clock: o.Clock, DB: o.DB, Keys: o.Keys, Publisher: o.Publisher, Password: &cheapHash, CreateFirstKey: true,
	})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(a.Close)
	env := &Env{
		App: a, DB: a.DB, Clock: o.Clock, Keys: a.Keys, Signer: a.Signer, Log: log,
		Sessions: a.Sessions, Accounts: a.Accounts, Throttle: a.Throttle,
		Metrics: a.Metrics, Registry: a.Registry,
	}
	env.Server = httptest.NewServer(a.Handler)
	env.URL = env.Server.URL
	t.Cleanup(env.Server.Close)
	return env
}

type testWriter struct{ t testing.TB }

func (w testWriter) Write(p []byte) (int, error) {
	w.t.Log(strings.TrimRight(string(p), "\n"))
	return len(p), nil
}

// CreateUser makes a user and returns its id.
func (e *Env) CreateUser(t testing.TB, username, role, pw string) string {
	t.Helper()
	u, err := e.Accounts.Create(context.Background(), username, role, pw)
	if err != nil {
		t.Fatalf("create user %s: %v", username, err)
	}
	return u.ID
}

// TokenResponse is the body of a successful /token answer.
type TokenResponse struct {
	AccessToken  string `json:"access_token"`
	TokenType    string `json:"token_type"`
	ExpiresIn    int64  `json:"expires_in"`
	RefreshToken string `json:"refresh_token"`
	SID          string `json:"sid"`
}

// PostForm posts a form to path and returns the response with its body read.
func (e *Env) PostForm(t testing.TB, path string, form url.Values) (*http.Response, []byte) {
	t.Helper()
	return e.Do(t, http.MethodPost, path, "", "application/x-www-form-urlencoded", strings.NewReader(form.Encode()))
}

// Do sends a request with an optional bearer token and returns the response
// with its body read.
func (e *Env) Do(t testing.TB, method, path, bearer, contentType string, body io.Reader) (*http.Response, []byte) {
	t.Helper()
	req, err := http.NewRequest(method, e.URL+path, body)
	if err != nil {
		t.Fatal(err)
	}
	if contentType != "" {
		req.Header.Set("Content-Type", contentType)
	}
	if bearer != "" {
		req.Header.Set("Authorization", "Bearer "+bearer)
	}
	res, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer res.Body.Close()
	b, err := io.ReadAll(res.Body)
	if err != nil {
		t.Fatal(err)
	}
	return res, b
}

// Login runs the password grant and fails the test unless it succeeds.
func (e *Env) Login(t testing.TB, username, pw string) TokenResponse {
	t.Helper()
	res, body := e.PostForm(t, "/token", url.Values{"grant_type": {"password"}, "username": {username}, "password": {pw}})
	if res.StatusCode != http.StatusOK {
		t.Fatalf("login %s: %d %s", username, res.StatusCode, body)
	}
	var tr TokenResponse
	if err := json.Unmarshal(body, &tr); err != nil {
		t.Fatal(err)
	}
	return tr
}

// ServiceToken runs the client_credentials grant for a service user.
func (e *Env) ServiceToken(t testing.TB, clientID, secret string) TokenResponse {
	t.Helper()
	res, body := e.PostForm(t, "/token", url.Values{"grant_type": {"client_credentials"},
		"client_id": {clientID}, "client_secret": {secret}})
	if res.StatusCode != http.StatusOK {
		t.Fatalf("client_credentials %s: %d %s", clientID, res.StatusCode, body)
	}
	var tr TokenResponse
	if err := json.Unmarshal(body, &tr); err != nil {
		t.Fatal(err)
	}
	return tr
}
