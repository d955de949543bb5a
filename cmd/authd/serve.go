package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"strings"
	"time"

	"github.com/seedc5a8123e/authd/internal/account"
	"github.com/seedc5a8123e/authd/internal/app"
	"github.com/seedc5a8123e/authd/internal/config"
	"github.com/seedc5a8123e/authd/internal/jobs"
	"github.com/seedc5a8123e/authd/internal/postgres"
	"github.com/seedc5a8123e/authd/internal/session"
)

// shutdownGrace is how long in-flight requests get after SIGTERM.
const shutdownGrace = 20 * time.Second

func serveCmd() *command {
	return &command{
		name:     "serve",
		synopsis: "[--no-migrate] [--bootstrap-admin]",
		summary:  "run the HTTP server",
		detail: `
Run the HTTP API until SIGTERM or SIGINT, then drain in-flight requests for
up to 20s. Applies pending migrations first unless --no-migrate. Logs JSON
lines on stderr.

Configuration comes from the environment (README.md, Configuration);
DATABASE_URL is required. The variables:
` + wrapList(config.Names, "  ", 76),
		define: func(fs *flag.FlagSet) runFunc {
			noMigrate := fs.Bool("no-migrate", false,
				"do not apply pending migrations (for replicas: run authd migrate up before the rollout)")
			bootstrap := fs.Bool("bootstrap-admin", false,
				"create the user admin if no enabled admin exists and print its password once, on stdout")
			return func(ctx context.Context, _ []string, e env) error { return serve(ctx, *noMigrate, *bootstrap, e) }
		},
	}
}

// wrapList joins words with ", " into lines of at most width characters,
// each starting with indent.
func wrapList(words []string, indent string, width int) string {
	var b strings.Builder
	line := indent
	for i, w := range words {
		if i < len(words)-1 {
			w += ","
		}
		if line != indent && len(line)+1+len(w) > width {
			b.WriteString(line + "\n")
			line = indent
		}
		if line != indent {
			line += " "
		}
		line += w
	}
	return b.String() + line + "\n"
}

func serve(ctx context.Context, noMigrate, bootstrap bool, e env) error {
	// Configuration and logging.
	cfg, err := config.Load(e.getenv)
	if err != nil {
		return err
	}
	log := slog.New(slog.NewJSONHandler(e.stderr, &slog.HandlerOptions{Level: cfg.LogLevel}))
	log.Info("starting", cfg.Redacted()...)

	// Schema, then the whole graph (internal/app).
	if !noMigrate {
		dbURL, err := cfg.MigrationURL()
		if err != nil {
			return err
		}
		if err := migrateUp(dbURL); err != nil {
			return err
		}
	}
	a, err := app.New(ctx, cfg, app.Deps{Log: log, CreateFirstKey: true})
	if err != nil {
		return err
	}
	defer a.Close()
	if a.EphemeralKey {
		log.Warn("neither AUTHD_KEY_ENCRYPTION_KEY nor AUTHD_SIGNING_KEYS is set: signing with an EPHEMERAL key. FOR DEVELOPMENT ONLY: "+
			"every token dies at restart and replicas cannot verify each other's tokens. "+
			"Set AUTHD_KEY_ENCRYPTION_KEY (from `authd keys kek`) for rotating keys in the database, "+
			"or create a key file with `authd keys generate --out FILE` and set AUTHD_SIGNING_KEYS.", "kid", a.Keys.Current().Signing().ID)
	} else {
		ks := a.Keys.Current()
		log.Info("signing keys loaded", "signing_kid", ks.Signing().ID, "published", len(ks.All()), "from_database", a.KeyRing != nil)
	}
	if bootstrap {
		if err := bootstrapAdmin(ctx, a, e); err != nil {
			return err
		}
	}

	// Listeners.
	srv := newHTTPServer(a.Handler, log)
	ln, err := net.Listen("tcp", cfg.Addr)
	if err != nil {
		return fmt.Errorf("AUTHD_ADDR: listen on %s: %w", cfg.Addr, err)
	}
	defer ln.Close() // after Shutdown, a no-op; before it, frees the port on an early return
	var metricsSrv *http.Server
	var metricsLn net.Listener
	if cfg.MetricsAddr != "" {
		mux := http.NewServeMux()
		mux.Handle("GET /metrics", a.Metrics.Handler())
		metricsSrv = newHTTPServer(mux, log)
		if metricsLn, err = net.Listen("tcp", cfg.MetricsAddr); err != nil {
			return fmt.Errorf("AUTHD_METRICS_ADDR: listen on %s: %w", cfg.MetricsAddr, err)
		}
		defer metricsLn.Close()
	}

	// Background jobs.
	sched, err := jobs.Start(ctx, cfg.PruneSchedule, a.Pruner, log)
	if err != nil {
		return fmt.Errorf("AUTHD_PRUNE_SCHEDULE: %w", err)
	}
	defer sched.Stop()
	if a.StatusLists != nil {
		a.StatusLists.Start() // a.Close stops it
	}
	// Flushes the verifiers' polls every few seconds; a.Close flushes the
	// last ones.
	a.Fleet.Start(context.WithoutCancel(ctx))
	if a.KeyRing != nil {
		// Re-reads the database keys and runs AUTHD_KEY_ROTATION; a.Close
		// stops it.
		a.KeyRing.Start()
	}

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

func migrateUp(dbURL string) error {
	m, err := postgres.NewMigrator(dbURL)
	if err != nil {
		return err
	}
	defer m.Close()
	return m.Up()
}

// bootstrapAdmin creates the user "admin" with a generated password the
// first time, when no enabled admin exists, and prints its credentials once.
func bootstrapAdmin(ctx context.Context, a *app.App, e env) error {
	cfg := a.Config
	has, err := a.DB.HasAdmin(ctx)
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
	if _, err := a.Accounts.Create(ctx, "admin", session.RoleAdmin, pw); err != nil {
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

// newHTTPServer is every listener's server, the API's and the metrics one
// alike: no listener of authd waits on a slow or idle client without bound.
func newHTTPServer(h http.Handler, log *slog.Logger) *http.Server {
	return &http.Server{
		Handler:           h,
		ReadHeaderTimeout: 5 * time.Second,
		ReadTimeout:       15 * time.Second,
		WriteTimeout:      30 * time.Second,
		IdleTimeout:       2 * time.Minute,
		ErrorLog:          slog.NewLogLogger(log.Handler(), slog.LevelWarn),
	}
}
