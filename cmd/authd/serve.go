package main

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/seedc5a8123e/authd/internal/account"
	"github.com/seedc5a8123e/authd/internal/clock"
	"github.com/seedc5a8123e/authd/internal/config"
	"github.com/seedc5a8123e/authd/internal/feed"
	"github.com/seedc5a8123e/authd/internal/httpapi"
	"github.com/seedc5a8123e/authd/internal/jobs"
	"github.com/seedc5a8123e/authd/internal/keys"
	"github.com/seedc5a8123e/authd/internal/metrics"
	"github.com/seedc5a8123e/authd/internal/password"
	"github.com/seedc5a8123e/authd/internal/postgres"
	"github.com/seedc5a8123e/authd/internal/push"
	"github.com/seedc5a8123e/authd/internal/session"
	"github.com/seedc5a8123e/authd/internal/throttle"
	"github.com/seedc5a8123e/authd/internal/token"
)

// shutdownGrace is how long in-flight requests get after SIGTERM.
const shutdownGrace = 20 * time.Second

func serve(ctx context.Context, args []string, e env) error {
	fs := newFlagSet("serve", e)
	noMigrate := fs.Bool("no-migrate", false, "do not apply pending migrations")
	bootstrap := fs.Bool("bootstrap-admin", false, "create an admin user if none exists and print its credentials once")
	if err := parseFlags(fs, args); err != nil {
		return err
	}

	// Configuration and logging.
	cfg, err := config.Load(e.getenv)
	if err != nil {
		return err
	}
	log := slog.New(slog.NewJSONHandler(e.stderr, &slog.HandlerOptions{Level: cfg.LogLevel}))
	log.Info("starting", cfg.Redacted()...)
	clk := clock.Real{}

	// Database and schema.
	if !*noMigrate {
		if err := migrateUp(cfg.DatabaseURL); err != nil {
			return err
		}
	}
	db, err := postgres.Open(ctx, cfg.DatabaseURL)
	if err != nil {
		return err
	}
	defer db.Close()

	// Metrics, on this server's own registry.
	m := metrics.New(prometheus.NewRegistry(), db.Pool())

	// Signing keys.
	ks, err := loadKeys(cfg, log)
	if err != nil {
		return err
	}

	// Domain services.
	hasher := password.New(password.Default)
	pub, closePub, err := newPublisher(cfg, log, m.PushFailed)
	if err != nil {
		return err
	}
	defer closePub()
	issuer := token.NewIssuer(ks, cfg.Issuer, cfg.Audience, cfg.AccessTTL, clk)
	sessions := session.NewService(db, hasher, issuer, clk, session.Limits{SessionTTL: cfg.SessionTTL, MaxPerUser: cfg.MaxSessionsPerUser}, pub, log)
	sessions.SetObserver(m)
	accounts := account.NewService(db, hasher, clk)
	users := account.NewManager(db, hasher, clk, sessions)
	loginThrottle := throttle.New(db, clk, throttleConfig(cfg), log)
	if *bootstrap {
		if err := bootstrapAdmin(ctx, db, accounts, cfg, e); err != nil {
			return err
		}
	}

	// HTTP server.
	srv := &http.Server{
		Handler: httpapi.NewServer(httpapi.Deps{
			DB: db, Sessions: sessions, Accounts: accounts, Feed: feed.NewService(db, clk),
			Keys: ks, Clock: clk, Log: log, Issuer: cfg.Issuer, TrustedProxies: cfg.TrustedProxies,
			Users: users, Throttle: loginThrottle, Metrics: m, MetricsElsewhere: cfg.MetricsAddr != "",
		}),
		ReadHeaderTimeout: 5 * time.Second,
		ReadTimeout:       15 * time.Second,
		WriteTimeout:      30 * time.Second,
		IdleTimeout:       2 * time.Minute,
		ErrorLog:          slog.NewLogLogger(log.Handler(), slog.LevelWarn),
	}
	ln, err := net.Listen("tcp", cfg.Addr)
	if err != nil {
		return fmt.Errorf("AUTHD_ADDR: listen on %s: %w", cfg.Addr, err)
	}
	defer ln.Close() // after Shutdown, a no-op; before it, frees the port on an early return
	var metricsSrv *http.Server
	var metricsLn net.Listener
	if cfg.MetricsAddr != "" {
		mux := http.NewServeMux()
		mux.Handle("GET /metrics", m.Handler())
		metricsSrv = &http.Server{
			Handler: mux, ReadHeaderTimeout: 5 * time.Second, WriteTimeout: 30 * time.Second,
			ErrorLog: slog.NewLogLogger(log.Handler(), slog.LevelWarn),
		}
		if metricsLn, err = net.Listen("tcp", cfg.MetricsAddr); err != nil {
			return fmt.Errorf("AUTHD_METRICS_ADDR: listen on %s: %w", cfg.MetricsAddr, err)
		}
		defer metricsLn.Close()
	}

	// Background jobs.
	sched, err := jobs.Start(ctx, cfg.PruneSchedule, &jobs.Pruner{
		DB: db, Clock: clk, Retention: cfg.SessionRetention, Log: log, LoginFailures: loginThrottle,
		OnRun: m.PruneRan,
	}, log)
	if err != nil {
		return fmt.Errorf("AUTHD_PRUNE_SCHEDULE: %w", err)
	}
	defer sched.Stop()

	// Serve until the context ends, then drain.
	servers := []*http.Server{srv}
	serveErr := make(chan error, 2)
	go func() { serveErr <- srv.Serve(ln) }()
	log.Info("listening", "addr", ln.Addr().String())
	if metricsSrv != nil {
		servers = append(servers, metricsSrv)
		go func() { serveErr <- metricsSrv.Serve(metricsLn) }()
		log.Info("metrics listening", "addr", metricsLn.Addr().String())
	}
	select {
	case err := <-serveErr:
		for _, s := range servers {
			s.Close()
		}
		return fmt.Errorf("serve: %w", err)
	case <-ctx.Done():
	}
	log.Info("shutting down")
	sctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), shutdownGrace)
	defer cancel()
	// The API drains first; metrics stay scrapeable while it does.
	for _, s := range servers {
		if err := s.Shutdown(sctx); err != nil {
			return fmt.Errorf("shutdown: %w", err)
		}
	}
	for range servers {
		if err := <-serveErr; err != nil && !errors.Is(err, http.ErrServerClosed) {
			return err
		}
	}
	log.Info("stopped")
	return nil
}

// newPublisher is the push wiring shared by serve and the admin commands:
// Redis when AUTHD_REDIS_URL is set, else nothing.
// onError, if not nil, counts failed publishes.
func newPublisher(cfg config.Config, log *slog.Logger, onError func()) (push.Publisher, func(), error) {
	if cfg.RedisURL == "" {
		return push.Nop{}, func() {}, nil
	}
	r, err := push.NewRedis(cfg.RedisURL, log, onError)
	if err != nil {
		return nil, nil, fmt.Errorf("AUTHD_REDIS_URL: %w", err)
	}
	return r, func() { _ = r.Close() }, nil
}

func throttleConfig(cfg config.Config) throttle.Config {
	return throttle.Config{
		MaxFailuresAccount: cfg.LoginMaxFailuresAccount, MaxFailuresIP: cfg.LoginMaxFailuresIP,
		Base: cfg.LoginBackoffBase, Max: cfg.LoginBackoffMax,
	}
}

func migrateUp(dbURL string) error {
	m, err := postgres.NewMigrator(dbURL)
	if err != nil {
		return err
	}
	defer m.Close()
	return m.Up()
}

func loadKeys(cfg config.Config, log *slog.Logger) (*keys.Set, error) {
	if len(cfg.SigningKeys) > 0 {
		ks, err := keys.LoadFiles(cfg.SigningKeys)
		if err != nil {
			return nil, fmt.Errorf("AUTHD_SIGNING_KEYS: %w", err)
		}
		log.Info("signing keys loaded", "signing_kid", ks.Signing().ID, "published", len(ks.All()))
		return ks, nil
	}
	k, err := keys.Generate(keys.EdDSA)
	if err != nil {
		return nil, err
	}
	log.Warn("AUTHD_SIGNING_KEYS is empty: signing with an EPHEMERAL key. FOR DEVELOPMENT ONLY: "+
		"every token dies at restart and replicas cannot verify each other's tokens. "+
		"Create a key with `authd keys generate --out FILE` and set AUTHD_SIGNING_KEYS.", "kid", k.ID)
	return keys.NewSet(k)
}

// bootstrapAdmin creates the user "admin" with a generated password the
// first time, when no enabled admin exists, and prints its credentials once.
func bootstrapAdmin(ctx context.Context, db *postgres.DB, accounts *account.Service, cfg config.Config, e env) error {
	has, err := db.HasAdmin(ctx)
	if err != nil {
		return err
	}
	login := fmt.Sprintf("curl -s -X POST %s/token -d grant_type=password -d username=admin --data-urlencode password=PASSWORD",
		localURL(cfg))
	if has {
		fmt.Fprintf(e.stdout, "an admin user exists; log in with:\n  %s\n", login)
		return nil
	}
	pw, err := account.GeneratePassword()
	if err != nil {
		return err
	}
	if _, err := accounts.Create(ctx, "admin", session.RoleAdmin, pw); err != nil {
		return fmt.Errorf("bootstrap admin: %w", err)
	}
	fmt.Fprintf(e.stdout, "created the first admin user; its password is shown only this once:\nusername: admin\npassword: %s\nlog in with:\n  %s\n",
		pw, "curl -s -X POST "+localURL(cfg)+"/token -d grant_type=password -d username=admin --data-urlencode password='"+pw+"'")
	return nil
}

// localURL is where a local curl reaches the listener.
func localURL(cfg config.Config) string {
	host, port, err := net.SplitHostPort(cfg.Addr)
	if err != nil {
		return cfg.Issuer
	}
	if host == "" || host == "0.0.0.0" || host == "::" {
		host = "127.0.0.1"
	}
	return "http://" + net.JoinHostPort(host, port)
}
