package ha_test

import (
	"bytes"
	"context"
	"fmt"
	"io"
	"net"
	"os"
	"os/exec"
	"os/user"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/seedc5a8123e/authd/internal/authdtest"
	"github.com/seedc5a8123e/authd/internal/postgres"
)

// requireHA skips t unless AUTHD_TEST_HA is set.
func requireHA(t *testing.T) {
	t.Helper()
	if os.Getenv("AUTHD_TEST_HA") == "" {
		t.Skip("HA tests run with AUTHD_TEST_HA=1 (make test-ha)")
	}
}

// missing skips t, or fails it in CI, for a binary that is not installed.
func missing(t *testing.T, what string) {
	t.Helper()
	if os.Getenv("CI") != "" {
		t.Fatalf("%s not found (CI=true and AUTHD_TEST_HA=1: install it, e.g. apt-get install pgbouncer patroni etcd-server postgresql)", what)
	}
	t.Skipf("%s not found: install it or unset AUTHD_TEST_HA", what)
}

// lookPath finds a program on PATH, or missing(t).
func lookPath(t *testing.T, name string) string {
	t.Helper()
	p, err := exec.LookPath(name)
	if err != nil {
		missing(t, name)
	}
	return p
}

// pgBinDir is the directory of initdb and postgres: PATH's, or Debian's
// /usr/lib/postgresql/<newest>/bin.
func pgBinDir(t *testing.T) string {
	t.Helper()
	// PATH may hold symlinks to a few of the binaries only: resolve them.
	if p, err := exec.LookPath("initdb"); err == nil {
		if real, err := filepath.EvalSymlinks(p); err == nil {
			p = real
		}
		if _, err := os.Stat(filepath.Join(filepath.Dir(p), "pg_basebackup")); err == nil {
			return filepath.Dir(p)
		}
	}
	dirs, _ := filepath.Glob("/usr/lib/postgresql/*/bin")
	for i := len(dirs) - 1; i >= 0; i-- {
		if _, err := os.Stat(filepath.Join(dirs[i], "initdb")); err == nil {
			return dirs[i]
		}
	}
	missing(t, "initdb (PostgreSQL server binaries)")
	return ""
}

// asRoot reports whether the test runs as root: PostgreSQL refuses to, so
// its processes are then started as the postgres user (as internal/devdb
// does for the development database).
func asRoot() bool { return os.Geteuid() == 0 }

// command builds a command that runs as the postgres user when the test is
// root. The credential is set on the process itself, not through runuser,
// so the pid the test holds is the program's and a signal reaches it as
// sent.
func command(t *testing.T, name string, args ...string) *exec.Cmd {
	t.Helper()
	cmd := exec.Command(name, args...)
	if asRoot() {
		uid, gid := postgresUser(t)
		cmd.SysProcAttr = &syscall.SysProcAttr{Credential: &syscall.Credential{Uid: uint32(uid), Gid: uint32(gid)}}
		cmd.Env = append(os.Environ(), "HOME="+os.TempDir(), "USER=postgres", "LOGNAME=postgres")
	}
	return cmd
}

func postgresUser(t *testing.T) (uid, gid int) {
	t.Helper()
	u, err := user.Lookup("postgres")
	if err != nil {
		missing(t, "the postgres OS user")
	}
	uid, _ = strconv.Atoi(u.Uid)
	gid, _ = strconv.Atoi(u.Gid)
	return uid, gid
}

// workDir is a fresh directory the postgres user owns, removed when t ends
// (t.TempDir's parents are not traversable by another user).
func workDir(t *testing.T) string {
	t.Helper()
	dir, err := os.MkdirTemp("", "authd-ha-")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = os.RemoveAll(dir) })
	if asRoot() {
		uid, gid := postgresUser(t)
		if err := os.Chown(dir, uid, gid); err != nil {
			t.Fatal(err)
		}
	}
	return dir
}

// run runs a short command to completion, failing t with its output.
func run(t *testing.T, cmd *exec.Cmd) {
	t.Helper()
	out, err := cmd.CombinedOutput()
	if err != nil {
		t.Fatalf("%s: %v\n%s", strings.Join(cmd.Args, " "), err, out)
	}
}

// proc is a long-running process this test started; stop ends it by pid.
type proc struct {
	name string
	sig  syscall.Signal
	cmd  *exec.Cmd
	out  *bytes.Buffer
	done chan struct{}
}

// start starts cmd and makes sure it is ended by pid, with sig, when t
// ends. Its output is kept and logged if t fails.
func start(t *testing.T, name string, cmd *exec.Cmd, sig syscall.Signal) *proc {
	t.Helper()
	p := &proc{name: name, sig: sig, cmd: cmd, out: &bytes.Buffer{}, done: make(chan struct{})}
	lw := &lockedWriter{w: p.out}
	cmd.Stdout, cmd.Stderr = lw, lw
	if err := cmd.Start(); err != nil {
		t.Fatalf("start %s: %v", name, err)
	}
	go func() { _ = cmd.Wait(); close(p.done) }()
	t.Cleanup(func() {
		p.stop(p.sig, 20*time.Second)
		if t.Failed() {
			t.Logf("--- output of %s ---\n%s", name, p.output())
		}
	})
	return p
}

// stop signals the process and waits up to grace before killing it.
func (p *proc) stop(sig syscall.Signal, grace time.Duration) {
	select {
	case <-p.done:
		return
	default:
	}
	_ = p.cmd.Process.Signal(sig)
	select {
	case <-p.done:
	case <-time.After(grace):
		_ = p.cmd.Process.Kill()
		<-p.done
	}
}

func (p *proc) output() string {
	lw := p.cmd.Stdout.(*lockedWriter)
	lw.mu.Lock()
	defer lw.mu.Unlock()
	return p.out.String()
}

type lockedWriter struct {
	mu sync.Mutex
	w  io.Writer
}

func (l *lockedWriter) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.w.Write(p)
}

// freePort is a TCP port on 127.0.0.1 nobody listens on right now.
func freePort(t *testing.T) int {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	return ln.Addr().(*net.TCPAddr).Port
}

// pgURL is the URL of database db on port.
func pgURL(port int, db string) string {
	return fmt.Sprintf("postgres://postgres@127.0.0.1:%d/%s?sslmode=disable", port, db)
}

// waitSQL waits until the server on port answers a query.
func waitSQL(t *testing.T, port int, within time.Duration) {
	t.Helper()
	authdtest.Eventually(t, within, func() bool {
		ctx, cancel := context.WithTimeout(context.Background(), time.Second)
		defer cancel()
		c, err := pgx.Connect(ctx, pgURL(port, "postgres"))
		if err != nil {
			return false
		}
		defer c.Close(ctx)
		return c.Ping(ctx) == nil
	}, "PostgreSQL on 127.0.0.1:%d", port)
}

// execSQL runs one statement on the database at url.
func execSQL(t *testing.T, url, sql string, args ...any) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	c, err := pgx.Connect(ctx, url)
	if err != nil {
		t.Fatalf("connect %s: %v", url, err)
	}
	defer c.Close(ctx)
	if _, err := c.Exec(ctx, sql, args...); err != nil {
		t.Fatalf("%s: %v", sql, err)
	}
}

// migrate creates database authd on the server at port and migrates it.
func migrate(t *testing.T, port int) string {
	t.Helper()
	execSQL(t, pgURL(port, "postgres"), `CREATE DATABASE authd`)
	m, err := postgres.NewMigrator(pgURL(port, "authd"))
	if err != nil {
		t.Fatal(err)
	}
	defer m.Close()
	if err := m.Up(); err != nil {
		t.Fatal(err)
	}
	return pgURL(port, "authd")
}

// postmasterPID reads the postmaster's pid from its data directory.
func postmasterPID(t *testing.T, dataDir string) int {
	t.Helper()
	b, err := os.ReadFile(filepath.Join(dataDir, "postmaster.pid"))
	if err != nil {
		t.Fatalf("postmaster.pid: %v", err)
	}
	pid, err := strconv.Atoi(strings.TrimSpace(strings.SplitN(string(b), "\n", 2)[0]))
	if err != nil {
		t.Fatalf("postmaster.pid: %v", err)
	}
	return pid
}
