// Command verifier-example is the smallest service protected by authd tokens:
// copy it. It verifies tokens offline with package verifier and keeps a
// revocation denylist fed by authd.
//
// Configuration (environment):
//
//	AUTHD_URL               where authd answers; default http://localhost:8080
//	AUTHD_ISSUER            expected iss; default AUTHD_URL
//	AUTHD_AUDIENCE          expected aud; default authd
//	VERIFIER_CLIENT_ID      service user name; required
//	VERIFIER_CLIENT_SECRET  its password; required
//	VERIFIER_REDIS_URL      optional redis:// URL for push revocations
//	VERIFIER_POLL_INTERVAL  feed poll interval; default 30s
//	VERIFIER_ADDR           listen address; default :8081
//
// Routes: GET /hello (any valid token), GET /admin (role admin), GET /healthz
// (503 when the revocation data is stale).
package main

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"os"
	"os/signal"
	"syscall"
	"time"

	"github.com/seedc5a8123e/authd/verifier"
)

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	if err := run(ctx, os.Getenv); err != nil {
		fmt.Fprintf(os.Stderr, "verifier-example: %v\n", err)
		os.Exit(1)
	}
}

func run(ctx context.Context, getenv func(string) string) error {
	log := slog.New(slog.NewTextHandler(os.Stderr, nil))
	poll := 30 * time.Second
	if s := getenv("VERIFIER_POLL_INTERVAL"); s != "" {
		d, err := time.ParseDuration(s)
		if err != nil {
			return fmt.Errorf("VERIFIER_POLL_INTERVAL: %w", err)
		}
		poll = d
	}
	v, err := verifier.New(ctx, verifier.Config{
		IssuerURL:    or(getenv("AUTHD_URL"), "http://localhost:8080"),
		Issuer:       getenv("AUTHD_ISSUER"),
		Audience:     getenv("AUTHD_AUDIENCE"),
		ClientID:     getenv("VERIFIER_CLIENT_ID"),
		ClientSecret: getenv("VERIFIER_CLIENT_SECRET"),
		RedisURL:     getenv("VERIFIER_REDIS_URL"),
		PollInterval: poll,
		Logger:       log,
	})
	if err != nil {
		return err
	}
	defer v.Close()

	srv := &http.Server{Addr: or(getenv("VERIFIER_ADDR"), ":8081"), Handler: routes(v), ReadHeaderTimeout: 10 * time.Second}
	errc := make(chan error, 1)
	go func() { errc <- srv.ListenAndServe() }()
	log.Info("verifier-example listening", "addr", srv.Addr)
	select {
	case err := <-errc:
		return err
	case <-ctx.Done():
	}
	sctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if err := srv.Shutdown(sctx); err != nil && !errors.Is(err, http.ErrServerClosed) {
		return err
	}
	return nil
}

// routes are the service's API, apart from run so that main_test.go can
// test them against verifiertest instead of authd.
func routes(v *verifier.Verifier) http.Handler {
	mux := http.NewServeMux()
	mux.Handle("GET /hello", verifier.Middleware(v)(http.HandlerFunc(hello)))
	mux.Handle("GET /admin", verifier.Middleware(v, verifier.RequireRole("admin"))(http.HandlerFunc(hello)))
	mux.HandleFunc("GET /healthz", func(w http.ResponseWriter, r *http.Request) {
		st := v.Stats()
		w.Header().Set("Content-Type", "application/json")
		if st.Stale {
			w.WriteHeader(http.StatusServiceUnavailable)
		}
		_ = json.NewEncoder(w).Encode(map[string]any{
			"last_sync": st.LastSync.UTC(), "stale": st.Stale, "denylist_size": st.DenylistSize,
			"polls": st.Polls, "poll_errors": st.PollErrors, "push_messages": st.PushMessages,
		})
	})
	return mux
}

func hello(w http.ResponseWriter, r *http.Request) {
	c, _ := verifier.ClaimsFromContext(r.Context())
	fmt.Fprintf(w, "hello %s: role %s, session %s, token expires %s\n",
		c.Subject, c.Role, c.SessionID, c.ExpiresAt.UTC().Format(time.RFC3339))
}

func or(s, def string) string {
	if s == "" {
		return def
	}
	return s
}
