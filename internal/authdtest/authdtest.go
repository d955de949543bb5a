// Package authdtest starts a complete authd for tests: the real HTTP handler
// on a real listener (httptest), a fresh PostgreSQL database, and a manual
// clock. Tests in several packages (httpapi, the verifier end-to-end tests)
// share it so they all exercise the same wiring as `authd serve`.
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
	"github.com/seedc5a8123e/authd/internal/clock"
	"github.com/seedc5a8123e/authd/internal/feed"
	"github.com/seedc5a8123e/authd/internal/httpapi"
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
	Keys               *keys.Set       // default: one fresh EdDSA key
	Clock              *clock.Manual   // default: a manual clock at a fixed time
	DB                 *postgres.DB    // default: a fresh database (pgtest.NewDB)
	Start              time.Time       // initial clock time when Clock is nil; default now, to the second
	Throttle           throttle.Config // login throttle; zero fields take throttle.DefaultConfig's
}

// Env is a running authd.
type Env struct {
	URL      string
	Server   *httptest.Server
	DB       *postgres.DB
	Clock    *clock.Manual
	Keys     *keys.Set
	Sessions *session.Service
	Accounts *account.Service
	Users    *account.Manager
	Throttle *throttle.Throttle
	Issuer   *token.Issuer
	Log      *slog.Logger
	// Metrics is wired as in `authd serve` and served on /metrics; Registry
	// is this server's own.
	Metrics  *metrics.Metrics
	Registry *prometheus.Registry
}

// cheapHash keeps test logins fast; production parameters are tested in
// internal/password.
var cheapHash = password.Params{Memory: 64, Time: 1, Threads: 1, SaltLen: 16, KeyLen: 32}

// Start runs authd until t ends.
func Start(t testing.TB, o Options) *Env {
	t.Helper()
	if o.AccessTTL == 0 {
		o.AccessTTL = 10 * time.Minute
	}
	if o.SessionTTL == 0 {
		o.SessionTTL = 720 * time.Hour
	}
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
	if o.Keys == nil {
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
	hasher := password.New(cheapHash)
	iss := token.NewIssuer(o.Keys, Issuer, Audience, o.AccessTTL, o.Clock)
	env := &Env{
		DB: o.DB, Clock: o.Clock, Keys: o.Keys, Issuer: iss, Log: log,
		Sessions: session.NewService(o.DB, hasher, iss, o.Clock, session.Limits{SessionTTL: o.SessionTTL, MaxPerUser: o.MaxSessionsPerUser}, o.Publisher, log),
		Accounts: account.NewService(o.DB, hasher, o.Clock),
		Throttle: throttle.New(o.DB, o.Clock, o.Throttle, log),
	}
	env.Users = account.NewManager(o.DB, hasher, o.Clock, env.Sessions)
	env.Registry = prometheus.NewRegistry()
	env.Metrics = metrics.New(env.Registry, o.DB.Pool())
	env.Sessions.SetObserver(env.Metrics)
	env.Server = httptest.NewServer(httpapi.NewServer(httpapi.Deps{
		DB: o.DB, Sessions: env.Sessions, Accounts: env.Accounts, Feed: feed.NewService(o.DB, o.Clock),
		Keys: o.Keys, Clock: o.Clock, Log: log, Issuer: Issuer,
		Users: env.Users, Throttle: env.Throttle, Metrics: env.Metrics,
	}))
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
