package main

import (
	"bufio"
	"context"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"time"

	"github.com/jackc/pgx/v5"
)

// private is an authd that authbench started for itself (-start-authd) on a
// database it created, and stops and drops when it is done.
type private struct {
	dir           string
	adminURL      string // where the database was created, to drop it
	dbName, dbURL string
	base          string
	pid           int
	cmd           *exec.Cmd
	exited        chan struct{}
	adminUser     string
	adminPassword string
	logPath       string
	droppable     bool
}

// startPrivate creates the database authd_bench_<random> on pgAdminURL, a
// signing key (authd keys generate), and starts `authd serve
// --bootstrap-admin` on a free 127.0.0.1 port with only the environment it
// needs, then waits for the admin's credentials on its stdout and for
// /readyz. On an error the returned *private (if not nil) must still be
// stopped.
func startPrivate(ctx context.Context, o options, stderr io.Writer) (*private, error) {
	logf := func(format string, args ...any) { fmt.Fprintf(stderr, "authbench: "+format+"\n", args...) }
	bin, err := filepath.Abs(o.startAuthd)
	if err != nil {
		return nil, err
	}
	if _, err := os.Stat(bin); err != nil {
		return nil, fmt.Errorf("-start-authd: %w", err)
	}
	p := &private{adminURL: o.pgAdminURL, dbName: "authd_bench_" + newRunID()}
	if p.dir, err = os.MkdirTemp("", "authbench-"); err != nil {
		return nil, err
	}

	// The database.
	if p.dbURL, err = withDatabase(o.pgAdminURL, p.dbName); err != nil {
		return p, err
	}
	if err := adminExec(ctx, o.pgAdminURL, "CREATE DATABASE "+pgx.Identifier{p.dbName}.Sanitize()); err != nil {
		return p, fmt.Errorf("create database %s on %s: %w", p.dbName, redactURL(o.pgAdminURL), err)
	}
	p.droppable = true
	logf("created database %s", p.dbName)

	// The signing key.
	keyFile := filepath.Join(p.dir, "signing.pem")
	kctx, cancel := context.WithTimeout(ctx, 30*time.Second)
	out, err := exec.CommandContext(kctx, bin, "keys", "generate", "--out", keyFile).CombinedOutput()
	cancel()
	if err != nil {
		return p, fmt.Errorf("authd keys generate: %w: %s", err, strings.TrimSpace(string(out)))
	}

	// The server.
	port, err := freePort()
	if err != nil {
		return p, err
	}
	addr := net.JoinHostPort("127.0.0.1", strconv.Itoa(port))
	p.base = "http://" + addr
	p.logPath = filepath.Join(p.dir, "authd.log")
	logFile, err := os.Create(p.logPath)
	if err != nil {
		return p, err
	}
	// Not CommandContext: the server is stopped by stop, with SIGTERM first.
	cmd := exec.Command(bin, "serve", "--bootstrap-admin")
	cmd.Env = append(cleanEnv(os.Environ()),
		"DATABASE_URL="+p.dbURL, "AUTHD_ADDR="+addr, "AUTHD_ISSUER="+p.base, "AUTHD_SIGNING_KEYS="+keyFile)
	cmd.Env = append(cmd.Env, o.authdEnv...)
	cmd.Stderr = logFile
	stdout, err := cmd.StdoutPipe()
	if err != nil {
		logFile.Close()
		return p, err
	}
	if err := cmd.Start(); err != nil {
		logFile.Close()
		return p, fmt.Errorf("start authd: %w", err)
	}
	p.cmd, p.pid, p.exited = cmd, cmd.Process.Pid, make(chan struct{})
	creds := make(chan [2]string, 1)
	go func() {
		// Read the bootstrap lines, then keep draining stdout into the log.
		sc := bufio.NewScanner(stdout)
		var user string
		sent := false
		for sc.Scan() {
			line := sc.Text()
			fmt.Fprintln(logFile, line)
			if v, ok := strings.CutPrefix(line, "username: "); ok {
				user = v
			}
			if v, ok := strings.CutPrefix(line, "password: "); ok && !sent {
				creds <- [2]string{user, v}
				sent = true
			}
		}
	}()
	go func() { _ = cmd.Wait(); logFile.Close(); close(p.exited) }()
	logf("started authd (pid %d) on %s, log %s", p.pid, p.base, p.logPath)

	wait, cancel := context.WithTimeout(ctx, 60*time.Second)
	defer cancel()
	select {
	case c := <-creds:
		p.adminUser, p.adminPassword = c[0], c[1]
	case <-p.exited:
		return p, fmt.Errorf("authd exited before printing the admin's credentials:\n%s", tail(p.logPath, 20))
	case <-wait.Done():
		return p, fmt.Errorf("authd printed no admin credentials within 60s:\n%s", tail(p.logPath, 20))
	}
	if p.adminUser == "" {
		p.adminUser = "admin"
	}
	hc := &http.Client{Timeout: 2 * time.Second}
	for {
		req, _ := http.NewRequestWithContext(wait, http.MethodGet, p.base+"/readyz", nil)
		if res, err := hc.Do(req); err == nil {
			res.Body.Close()
			if res.StatusCode == http.StatusOK {
				return p, nil
			}
		}
		select {
		case <-p.exited:
			return p, fmt.Errorf("authd exited before it was ready:\n%s", tail(p.logPath, 20))
		case <-wait.Done():
			return p, fmt.Errorf("authd not ready within 60s:\n%s", tail(p.logPath, 20))
		case <-time.After(100 * time.Millisecond):
		}
	}
}

// stop sends authd SIGTERM (SIGKILL after 25 s), drops the database and
// removes the temporary directory. It runs even when ctx was interrupted.
func (p *private) stop(stderr io.Writer) {
	logf := func(format string, args ...any) { fmt.Fprintf(stderr, "authbench: "+format+"\n", args...) }
	if p.cmd != nil {
		_ = p.cmd.Process.Signal(syscall.SIGTERM)
		select {
		case <-p.exited:
			logf("stopped authd (pid %d)", p.pid)
		case <-time.After(25 * time.Second):
			_ = p.cmd.Process.Kill()
			<-p.exited
			logf("killed authd (pid %d): it did not stop within 25s of SIGTERM", p.pid)
		}
	}
	if p.droppable {
		ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
		defer cancel()
		if err := adminExec(ctx, p.adminURL, "DROP DATABASE IF EXISTS "+pgx.Identifier{p.dbName}.Sanitize()+" WITH (FORCE)"); err != nil {
			logf("drop database %s: %v (drop it by hand)", p.dbName, err)
		} else {
			logf("dropped database %s", p.dbName)
		}
	}
	if p.dir != "" {
		_ = os.RemoveAll(p.dir)
	}
}

// envList is the repeatable -authd-env flag: AUTHD_* settings only, so it
// cannot override what startPrivate itself sets for the private server.
type envList []string

func (l *envList) String() string { return strings.Join(*l, " ") }

func (l *envList) Set(kv string) error {
	k, _, ok := strings.Cut(kv, "=")
	switch k {
	case "AUTHD_ADDR", "AUTHD_ISSUER", "AUTHD_SIGNING_KEYS":
		return fmt.Errorf("%s is set by -start-authd itself", k)
	}
	if !ok || !strings.HasPrefix(k, "AUTHD_") {
		return fmt.Errorf("want AUTHD_NAME=value, got %q", kv)
	}
	*l = append(*l, kv)
	return nil
}

// cleanEnv drops DATABASE_URL and every AUTHD_* variable, so the private
// authd runs on defaults plus what startPrivate sets, whatever the
// caller's shell exports.
func cleanEnv(env []string) []string {
	out := make([]string, 0, len(env))
	for _, kv := range env {
		k, _, _ := strings.Cut(kv, "=")
		if k == "DATABASE_URL" || strings.HasPrefix(k, "AUTHD_") {
			continue
		}
		out = append(out, kv)
	}
	return out
}

// withDatabase returns the URL u with its database replaced by name.
func withDatabase(u, name string) (string, error) {
	pu, err := url.Parse(u)
	if err != nil || (pu.Scheme != "postgres" && pu.Scheme != "postgresql") {
		return "", fmt.Errorf("-pg-admin-url must be a postgres:// URL, not %q", redactURL(u))
	}
	pu.Path = "/" + name
	pu.RawPath = ""
	return pu.String(), nil
}

func redactURL(u string) string {
	pu, err := url.Parse(u)
	if err != nil {
		return "(unparseable URL)"
	}
	return pu.Redacted()
}

// adminExec runs one statement on its own connection.
func adminExec(ctx context.Context, connURL, sql string) error {
	cctx, cancel := context.WithTimeout(ctx, 30*time.Second)
	defer cancel()
	conn, err := pgx.Connect(cctx, connURL)
	if err != nil {
		return err
	}
	defer conn.Close(context.WithoutCancel(ctx))
	_, err = conn.Exec(cctx, sql)
	return err
}

// freePort asks the kernel for a free port on 127.0.0.1. Another process
// could take it before authd listens; authd would then fail to start and
// say so.
func freePort() (int, error) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return 0, err
	}
	defer ln.Close()
	return ln.Addr().(*net.TCPAddr).Port, nil
}

// tail returns the last n lines of a file, for error messages.
func tail(name string, n int) string {
	b, err := os.ReadFile(name)
	if err != nil {
		return "(no log: " + err.Error() + ")"
	}
	lines := strings.Split(strings.TrimRight(string(b), "\n"), "\n")
	if len(lines) > n {
		lines = lines[len(lines)-n:]
	}
	return strings.Join(lines, "\n")
}
