// Package app builds authd's object graph, once, for every caller: `authd
// serve`, each admin subcommand and the test harness (internal/authdtest).
// It owns no process concerns (listeners, signals, schedules, migrations);
// those stay in cmd/authd. What differs between callers comes in through
// config.Config and Deps, never through a second copy of the wiring.
package app

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net/http"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/seedc5a8123e/authd/internal/account"
	"github.com/seedc5a8123e/authd/internal/audit"
	"github.com/seedc5a8123e/authd/internal/auditlog"
	"github.com/seedc5a8123e/authd/internal/clock"
	"github.com/seedc5a8123e/authd/internal/config"
	"github.com/seedc5a8123e/authd/internal/console"
	"github.com/seedc5a8123e/authd/internal/feed"
	"github.com/seedc5a8123e/authd/internal/fleet"
	"github.com/seedc5a8123e/authd/internal/httpapi"
	"github.com/seedc5a8123e/authd/internal/jobs"
	"github.com/seedc5a8123e/authd/internal/keyring"
	"github.com/seedc5a8123e/authd/internal/keys"
	"github.com/seedc5a8123e/authd/internal/metrics"
	"github.com/seedc5a8123e/authd/internal/password"
	"github.com/seedc5a8123e/authd/internal/postgres"
	"github.com/seedc5a8123e/authd/internal/push"
	"github.com/seedc5a8123e/authd/internal/session"
	"github.com/seedc5a8123e/authd/internal/statuslist"
	"github.com/seedc5a8123e/authd/internal/throttle"
	"github.com/seedc5a8123e/authd/internal/token"
)

// Deps are what the caller may supply instead of what cfg describes. Every
// field is optional except Log; a nil field is built from cfg as production
// builds it.
type Deps struct {
	Log *slog.Logger
	// Clock defaults to clock.Real.
	Clock clock.Clock
	// DB defaults to a pool on cfg.DatabaseURL, closed by Close. A DB given
	// here is the caller's to close.
	DB *postgres.DB
	// Keys defaults to the database keyring when cfg.KeyEncryptionKey is
	// set, else to the files of cfg.SigningKeys or, when there are none, one
	// ephemeral key (App.EphemeralKey tells).
	Keys keys.Source
	// CreateFirstKey lets the database keyring make the first signing key
	// of an empty table (authd serve, and tests); without it the App of an
	// admin command, which signs nothing, gets an ephemeral key instead.
	CreateFirstKey bool
	// Publisher defaults to Redis on cfg.RedisURL, or push.Nop without one.
	// A Publisher given here is the caller's to close.
	Publisher push.Publisher
	// Registry defaults to a fresh one; metrics are registered on it.
	Registry *prometheus.Registry
	// Password defaults to password.Default (OWASP argon2id parameters).
	Password *password.Params
}

// App is authd, built: every service, the HTTP handler and the jobs.
type App struct {
	Config config.Config
	Clock  clock.Clock
	Log    *slog.Logger
	DB     *postgres.DB
	Keys   keys.Source
	// KeyRing is the database keyring (AUTHD_KEY_ENCRYPTION_KEY), also in
	// Keys; nil with key files. `authd serve` starts its maintenance (Start).
	KeyRing  *keyring.Ring
	Signer   *token.Signer
	Sessions *session.Service
	Accounts *account.Service
	// Audit reads the audit log (GET /audit, `authd audit list`).
	Audit    *auditlog.Service
	Throttle *throttle.Throttle
	Feed     *feed.Service
	// Fleet watches the verifiers' feed polls; `authd serve` starts its
	// flushes (Start).
	Fleet *fleet.Tracker
	// StatusLists serves the IETF Token Status Lists; nil when
	// AUTHD_STATUS_LIST is off. `authd serve` starts its syncs (Start).
	StatusLists *statuslist.Service
	Metrics     *metrics.Metrics
	Registry    *prometheus.Registry
	Pruner      *jobs.Pruner
	// Console is the admin console under /console/; nil when
	// AUTHD_CONSOLE is off.
	Console *console.Console
	// Handler serves the whole HTTP API.
	Handler http.Handler
	// EphemeralKey is true when no signing key was configured and a fresh
	// one, gone at exit, signs (development only).
	EphemeralKey bool

	closers []func()
}

// New builds the graph. On error, whatever it opened is closed again.
func New(ctx context.Context, cfg config.Config, d Deps) (*App, error) {
	if d.Log == nil {
		return nil, errors.New("app: Deps.Log is required")
	}
	a := &App{Config: cfg, Clock: d.Clock, Log: d.Log, DB: d.DB, Keys: d.Keys, Registry: d.Registry}
	if err := a.build(ctx, d); err != nil {
		a.Close()
		return nil, err
	}
	return a, nil
}

func (a *App) build(ctx context.Context, d Deps) (err error) {
	cfg := a.Config
	if a.Clock == nil {
		a.Clock = clock.Real{}
	}
	if a.Registry == nil {
		a.Registry = prometheus.NewRegistry()
	}
	if a.DB == nil {
		if a.DB, err = postgres.Open(ctx, cfg.DatabaseURL, postgres.Options{
			Pooler: postgres.Pooler(cfg.DatabasePooler), ReadURL: cfg.DatabaseReadURL, MaxConns: cfg.DBMaxConns,
		}); err != nil {
			return err
		}
		a.closers = append(a.closers, a.DB.Close)
	}
	a.Metrics = metrics.New(a.Registry, a.DB.Pool(), session.Grants)
	if a.Keys == nil {
		if err := a.loadKeys(ctx, d.CreateFirstKey); err != nil {
			return err
		}
	}
	pub := d.Publisher
	if pub == nil {
		if pub, err = a.newPublisher(); err != nil {
			return err
		}
	}
	params := password.Default
	if d.Password != nil {
		params = *d.Password
	}
	hasher := password.New(params)

	var src *postgres.ReadSource
	if a.DB.Replica() != nil {
		src = postgres.NewReadSource(a.DB, a.DB.Replica(), cfg.ReadMaxLag, a.Metrics.FeedReadFrom)
	}
	a.Feed = feed.NewService(a.DB, a.Clock, feed.Config{Log: a.Log, OnRead: a.Metrics.FeedRead, Source: src})
	a.closers = append(a.closers, a.Feed.Close)
	a.Fleet = fleet.New(a.DB, a.Clock, a.Metrics, fleet.Config{Log: a.Log})
	a.closers = append(a.closers, a.Fleet.Close)
	a.Signer = token.NewSigner(a.Keys, cfg.Issuer, cfg.Audience, cfg.AccessTTL, a.Clock)
	a.Throttle = throttle.New(a.DB, a.Clock, throttle.Config{
		MaxFailuresAccount: cfg.LoginMaxFailuresAccount, MaxFailuresAccountAnyIP: cfg.LoginMaxFailuresAccountAnyIP,
		MaxFailuresIP: cfg.LoginMaxFailuresIP, MaxInFlightIP: cfg.LoginMaxInFlightIP,
		Base: cfg.LoginBackoffBase, Max: cfg.LoginBackoffMax,
	}, a.Log, a.Metrics.LoginThrottled)
	var alloc *statuslist.Allocator
	if cfg.StatusList {
		alloc = statuslist.NewAllocator(a.DB, a.Clock, cfg.Issuer, cfg.StatusListSize, max(cfg.SessionTTL, cfg.AccessTTL))
		a.StatusLists = statuslist.New(a.DB, a.Keys, a.Clock, a.Log, statuslist.Config{
			Issuer: cfg.Issuer, TTL: cfg.StatusListTTL, Holdback: feed.Holdback,
		})
		a.closers = append(a.closers, a.StatusLists.Close)
	}
	a.Sessions = session.NewService(session.Deps{
		DB: a.DB, Hasher: hasher, Signer: a.Signer, Throttle: a.Throttle, Clock: a.Clock,
		Limits: session.Limits{
			SessionTTL: cfg.SessionTTL, MaxPerUser: cfg.MaxSessionsPerUser,
			IdleTTL: cfg.SessionIdleTTL, ReuseGrace: cfg.RefreshReuseGrace,
		},
		Publisher: pub, Log: a.Log, Observer: a.Metrics, Revoked: a.Feed.Kick, Announced: a.Fleet.Revoked, Status: alloc,
	})
	a.Accounts = account.NewService(account.Deps{
		DB: a.DB, Hasher: hasher, Clock: a.Clock, Sessions: a.Sessions, Throttle: a.Throttle,
	})
	a.Audit = auditlog.New(a.DB)
	a.Pruner = &jobs.Pruner{
		DB: a.DB, Clock: a.Clock, Retention: cfg.SessionRetention, Log: a.Log,
		LoginFailures: a.Throttle, OnRun: a.Metrics.PruneRan, Sweep: a.Sessions.SweepCutoffs,
		AuditRetention: cfg.AuditRetention,
	}
	if cfg.Console {
		if a.Console, err = console.New(console.Deps{
			Sessions: a.Sessions, Accounts: a.Accounts, Clock: a.Clock, Log: a.Log,
			Audit: consoleAudit{a.Audit}, Fleet: consoleFleet{a.Fleet}, Actor: audit.WithActor,
		}); err != nil {
			return err
		}
	}
	a.Handler = httpapi.NewServer(httpapi.Deps{
		DB: a.DB, Sessions: a.Sessions, Accounts: a.Accounts, Audit: a.Audit, Feed: a.Feed, Fleet: a.Fleet, StatusLists: a.StatusLists, Keys: a.Keys, Log: a.Log,
		IssuerURL: cfg.Issuer, TrustedProxies: cfg.TrustedProxies,
		Metrics: a.Metrics, MetricsElsewhere: cfg.MetricsAddr != "", Console: a.Console,
	})
	return nil
}

// Close releases what New opened, newest first. It is safe to call twice.
func (a *App) Close() {
	for i := len(a.closers) - 1; i >= 0; i-- {
		a.closers[i]()
	}
	a.closers = nil
}

// newPublisher is Redis when AUTHD_REDIS_URL is set, else nothing.
func (a *App) newPublisher() (push.Publisher, error) {
	if a.Config.RedisURL == "" {
		return push.Nop{}, nil
	}
	r, err := push.NewRedis(a.Config.RedisURL, a.Log, a.Metrics.PushFailed)
	if err != nil {
		return nil, fmt.Errorf("AUTHD_REDIS_URL: %w", err)
	}
	a.closers = append(a.closers, func() { _ = r.Close() })
	return r, nil
}
