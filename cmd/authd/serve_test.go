package main

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"net/http"
	"net/url"
	"os"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/seedc5a8123e/authd/internal/authdtest"
	"github.com/seedc5a8123e/authd/internal/pgtest"
	"github.com/seedc5a8123e/authd/internal/postgres"
	"github.com/seedc5a8123e/authd/migrations"
)

// syncBuffer is a bytes.Buffer safe to write from the server goroutine
// while the test reads it.
type syncBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (s *syncBuffer) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}

func (s *syncBuffer) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.String()
}

func envOf(kv map[string]string) func(string) string { return func(k string) string { return kv[k] } }

// startTimeout bounds the wait for a server start and its effects.
const startTimeout = 20 * time.Second

func TestServeEndToEnd(t *testing.T) {
	dbURL := pgtest.URL(t)
	keyFile := filepath.Join(t.TempDir(), "signing.pem")
	var out bytes.Buffer
	if err := run(context.Background(), []string{"keys", "generate", "--out", keyFile, "--alg", "ES256"}, envOf(nil), nil, &out, io.Discard); err != nil {
		t.Fatal(err)
	}
	kid := regexp.MustCompile(`kid: (\S+)`).FindStringSubmatch(out.String())

	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	stdout, stderr := &syncBuffer{}, &syncBuffer{}
	done := make(chan error, 1)
	go func() {
		done <- run(ctx, []string{"serve", "--bootstrap-admin"}, envOf(map[string]string{
			"DATABASE_URL": dbURL, "AUTHD_ADDR": "127.0.0.1:0", "AUTHD_SIGNING_KEYS": keyFile,
			"AUTHD_ISSUER": "http://authd.example", "AUTHD_PRUNE_SCHEDULE": "@every 1h",
		}), nil, stdout, stderr)
	}()
	addrRe := regexp.MustCompile(`"msg":"listening","addr":"([^"]+)"`)
	authdtest.Eventually(t, startTimeout, func() bool { return addrRe.MatchString(stderr.String()) }, "the listening log line")
	base := "http://" + addrRe.FindStringSubmatch(stderr.String())[1]

	authdtest.Eventually(t, startTimeout, func() bool {
		res, err := http.Get(base + "/readyz")
		if err != nil {
			return false
		}
		res.Body.Close()
		return res.StatusCode == 200
	}, "/readyz")
	creds := regexp.MustCompile(`(?m)^username: (\S+)\npassword: (\S+)$`).FindStringSubmatch(stdout.String())
	if creds == nil || !strings.Contains(stdout.String(), "curl -s -X POST") {
		t.Fatalf("bootstrap output = %q", stdout.String())
	}
	res, err := http.PostForm(base+"/token", url.Values{"grant_type": {"password"}, "username": {creds[1]}, "password": {creds[2]}})
	if err != nil {
		t.Fatal(err)
	}
	var tr struct {
		AccessToken string `json:"access_token"`
	}
	json.NewDecoder(res.Body).Decode(&tr)
	res.Body.Close()
	if res.StatusCode != 200 || tr.AccessToken == "" {
		t.Fatalf("login with the bootstrap admin: %d", res.StatusCode)
	}
	res, err = http.Get(base + "/.well-known/jwks.json")
	if err != nil {
		t.Fatal(err)
	}
	body, _ := io.ReadAll(res.Body)
	res.Body.Close()
	if !strings.Contains(string(body), kid[1]) || !strings.Contains(string(body), `"alg":"ES256"`) {
		t.Fatalf("JWKS %s lacks the configured key %s", body, kid[1])
	}
	for _, secret := range []string{creds[2], tr.AccessToken} {
		if strings.Contains(stderr.String(), secret) {
			t.Fatal("a secret reached the log")
		}
	}

	cancel() // SIGTERM's effect: graceful shutdown
	select {
	case err := <-done:
		if err != nil {
			t.Fatalf("serve returned %v after shutdown", err)
		}
	case <-time.After(30 * time.Second):
		t.Fatal("serve did not stop")
	}

	// A second start does not create another admin.
	stdout2 := &syncBuffer{}
	ctx2, cancel2 := context.WithCancel(context.Background())
	done2 := make(chan error, 1)
	go func() {
		done2 <- run(ctx2, []string{"serve", "--bootstrap-admin", "--no-migrate"}, envOf(map[string]string{
			"DATABASE_URL": dbURL, "AUTHD_ADDR": "127.0.0.1:0"}), nil, stdout2, io.Discard)
	}()
	authdtest.Eventually(t, startTimeout, func() bool { return strings.Contains(stdout2.String(), "an admin user exists") },
		"the second start")
	cancel2()
	if err := <-done2; err != nil {
		t.Fatal(err)
	}
}

func TestMigrateCommands(t *testing.T) {
	dbURL := pgtest.URL(t)
	env := envOf(map[string]string{"DATABASE_URL": dbURL})
	latest, err := postgres.Latest()
	if err != nil {
		t.Fatal(err)
	}
	// The step before the latest: numbers may have gaps while branches
	// that each took one are merged.
	var previous uint
	files, _ := fs.Glob(migrations.FS, "*.up.sql")
	for _, f := range files {
		if n, err := strconv.ParseUint(f[:6], 10, 32); err == nil && uint(n) < latest {
			previous = max(previous, uint(n))
		}
	}
	v := func(n uint) string { return fmt.Sprintf("version: %d", n) }
	for _, step := range []struct{ args, want string }{
		{"migrate version", v(latest)}, // pgtest databases come migrated
		{"migrate up", v(latest)},      // nothing pending is success
		{"migrate down", v(previous)},
		{"migrate up", v(latest)},
	} {
		var out bytes.Buffer
		if err := run(context.Background(), strings.Fields(step.args), env, nil, &out, io.Discard); err != nil {
			t.Fatalf("%s: %v", step.args, err)
		}
		if !strings.HasPrefix(out.String(), step.want+"\n") {
			t.Fatalf("%s printed %q, want %q", step.args, out.String(), step.want)
		}
	}
}

func TestCommandErrorsAndExitCodes(t *testing.T) {
	keyFile := filepath.Join(t.TempDir(), "k.pem")
	cases := []struct {
		name string
		args []string
		env  map[string]string
		code int
		want string
	}{
		{"NoCommand", nil, nil, 2, "no command"},
		{"UnknownCommand", []string{"frobnicate"}, nil, 2, "unknown command"},
		{"KeysNoOut", []string{"keys", "generate"}, nil, 2, "--out is required"},
		{"KeysBadAlg", []string{"keys", "generate", "--out", keyFile, "--alg", "HS256"}, nil, 2, "EdDSA or ES256"},
		{"MigrateNoDatabase", []string{"migrate", "up"}, nil, 1, "DATABASE_URL"},
		{"ServeBadTTL", []string{"serve"}, map[string]string{"DATABASE_URL": "postgres://x@127.0.0.1/x", "AUTHD_ACCESS_TTL": "soon"}, 1, "AUTHD_ACCESS_TTL"},
		{"ServeSessionShorter", []string{"serve"}, map[string]string{"DATABASE_URL": "postgres://x@127.0.0.1/x", "AUTHD_SESSION_TTL": "1m"}, 1, "AUTHD_SESSION_TTL"},
		{"ServeBadFlag", []string{"serve", "--nope"}, nil, 2, "flag provided but not defined"},
		// Migrations hold a session advisory lock a transaction-mode pool cannot keep.
		{"ServeMigrateThroughPooler", []string{"serve"}, map[string]string{"DATABASE_URL": "postgres://x@127.0.0.1:6432/x", "AUTHD_DATABASE_POOLER": "transaction"}, 1, "AUTHD_DATABASE_DIRECT_URL"},
		{"MigrateThroughPooler", []string{"migrate", "up"}, map[string]string{"DATABASE_URL": "postgres://x@127.0.0.1:6432/x", "AUTHD_DATABASE_POOLER": "transaction"}, 1, "AUTHD_DATABASE_DIRECT_URL"},
		{"ServeBadReadURL", []string{"serve"}, map[string]string{"DATABASE_URL": "postgres://x@127.0.0.1/x", "AUTHD_DATABASE_READ_URL": "replica:5432"}, 1, "AUTHD_DATABASE_READ_URL"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			err := run(context.Background(), tc.args, envOf(tc.env), strings.NewReader(""), io.Discard, io.Discard)
			if err == nil || exitCode(err) != tc.code || !strings.Contains(err.Error(), tc.want) {
				t.Fatalf("err = %v (exit %d), want exit %d mentioning %q", err, exitCode(err), tc.code, tc.want)
			}
		})
	}
	t.Run("ServeUnreachableReadURL", func(t *testing.T) {
		env := map[string]string{"DATABASE_URL": pgtest.URL(t), "AUTHD_ADDR": "127.0.0.1:0",
			"AUTHD_DATABASE_READ_URL": "postgres://authd:s3cret@127.0.0.1:1/authd?sslmode=disable"}
		err := run(context.Background(), []string{"serve", "--no-migrate"}, envOf(env), strings.NewReader(""), io.Discard, io.Discard)
		if err == nil || exitCode(err) != 1 || !strings.HasPrefix(err.Error(), "AUTHD_DATABASE_READ_URL") || strings.Contains(err.Error(), "s3cret") {
			t.Fatalf("err = %v, want exit 1 naming AUTHD_DATABASE_READ_URL without its password", err)
		}
	})
	t.Run("KeysGenerateMode0600", func(t *testing.T) {
		if err := run(context.Background(), []string{"keys", "generate", "--out", keyFile}, envOf(nil), nil, io.Discard, io.Discard); err != nil {
			t.Fatal(err)
		}
		st, err := os.Stat(keyFile)
		if err != nil || st.Mode().Perm() != 0o600 {
			t.Fatalf("key file mode = %v, %v", st.Mode(), err)
		}
		err = run(context.Background(), []string{"keys", "generate", "--out", keyFile}, envOf(nil), nil, io.Discard, io.Discard)
		if err == nil || !errors.Is(err, os.ErrExist) {
			t.Fatalf("overwriting a key: %v, want an error", err)
		}
	})
}

func TestUserCreate(t *testing.T) {
	dbURL := pgtest.URL(t)
	env := envOf(map[string]string{"DATABASE_URL": dbURL})
	var out bytes.Buffer
	err := run(context.Background(), []string{"user", "create", "--username", "svc", "--role", "service", "--generate-password"}, env, nil, &out, io.Discard)
	if err != nil {
		t.Fatal(err)
	}
	lines := bufio.NewScanner(strings.NewReader(out.String()))
	lines.Scan()
	if !regexp.MustCompile(`^[0-9a-f-]{36}$`).MatchString(lines.Text()) {
		t.Fatalf("first line %q is not the user id", lines.Text())
	}
	lines.Scan()
	if !strings.HasPrefix(lines.Text(), "password: ") || len(lines.Text()) < 30 {
		t.Fatalf("second line %q is not the generated password", lines.Text())
	}
	out.Reset()
	err = run(context.Background(), []string{"user", "create", "--username", "ann", "--role", "user"}, env, strings.NewReader("a long enough password\nignored\n"), &out, io.Discard)
	if err != nil || strings.Count(out.String(), "\n") != 1 {
		t.Fatalf("create from stdin: %v, %q", err, out.String())
	}
	for name, tc := range map[string]struct {
		args  []string
		stdin string
		want  string
	}{
		"Taken":     {[]string{"user", "create", "--username", "ANN"}, "another long password\n", "taken"},
		"Short":     {[]string{"user", "create", "--username", "bo"}, "short\n", "at least 12"},
		"NoStdin":   {[]string{"user", "create", "--username", "cy"}, "", "stdin"},
		"BadRole":   {[]string{"user", "create", "--username", "di", "--role", "root"}, "a long enough password\n", "role"},
		"NoUser":    {[]string{"user", "create"}, "", "--username is required"},
		"EqualName": {[]string{"user", "create", "--username", "averylongname"}, "AVERYLONGNAME\n", "username"},
	} {
		t.Run(name, func(t *testing.T) {
			err := run(context.Background(), tc.args, env, strings.NewReader(tc.stdin), io.Discard, io.Discard)
			if err == nil || !strings.Contains(err.Error(), tc.want) {
				t.Fatalf("err = %v, want one mentioning %q", err, tc.want)
			}
		})
	}
}
