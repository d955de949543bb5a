// Command authbench drives a running authd over HTTP with closed-loop
// workers and states every figure against its floor: the least the same
// work could cost, measured in the same run on the same machine and
// database (a durable UPDATE for refresh and logout, argon2id on all cores
// for login, the bare feed query for feed polls, bare golang-jwt for
// verify). With the pids of authd and of the postmaster it also reports
// their CPU time per operation, read from /proc.
//
//	authbench -url http://127.0.0.1:8080 -admin-file creds.txt \
//	    -database-url "$DATABASE_URL" -server-pid PID -pg-pid auto
//	authbench -start-authd ./authd     # make bench-load: a private authd on a fresh database
//
// It creates its users through authd's API (POST /users, as the admin
// given), never by writing authd's tables; its floors use a scratch table
// of their own, created and dropped in the run. Progress goes to stderr,
// the summary table to stdout (-json: JSON instead).
package main

import (
	"bufio"
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"net"
	"net/url"
	"os"
	"os/signal"
	"runtime"
	"strconv"
	"strings"
	"syscall"
	"time"

	"github.com/jackc/pgx/v5/pgxpool"
)

// options are the command line.
type options struct {
	url             string
	databaseURL     string
	scenarioFlag    string
	scenarios       []string
	concurrency     int
	duration        time.Duration
	warmup          time.Duration
	floorDuration   time.Duration
	maxOps          int64
	opTimeout       time.Duration
	setupTimeout    time.Duration
	fillTime        time.Duration
	serverPID       int
	pgPIDFlag       string
	adminUser       string
	adminPassword   string
	adminFile       string
	audience        string
	json            bool
	allowRemote     bool
	usersPerWorker  int
	logoutPool      int
	snapshotRevoked int
	mixFlag         string
	mix             mix
	progress        time.Duration
	rounds          int
	cleanup         bool
	startAuthd      string
	authdEnv        envList
	pgAdminURL      string
	procRoot        string
}

func defineFlags(fs *flag.FlagSet, o *options) {
	fs.StringVar(&o.url, "url", "http://127.0.0.1:8080", "authd's base `URL` (loopback only unless -allow-remote)")
	fs.StringVar(&o.databaseURL, "database-url", os.Getenv("DATABASE_URL"),
		"authd's PostgreSQL `URL`, for the floors (a scratch table, read-only feed query) and -pg-pid auto; default $DATABASE_URL")
	fs.StringVar(&o.scenarioFlag, "scenario", "standard",
		"`standard` or a comma-separated list of "+strings.Join(standardSet, ","))
	fs.IntVar(&o.concurrency, "c", 8, "closed-loop workers (each waits for its answer before sending again)")
	fs.DurationVar(&o.duration, "d", 5*time.Second, "measured window per scenario, in -rounds slices alternating with its floor's")
	fs.DurationVar(&o.warmup, "warmup", time.Second, "unmeasured run before each window (scenarios and floors)")
	fs.DurationVar(&o.floorDuration, "floor-d", 3*time.Second, "measured window per floor, in -rounds slices")
	fs.Int64Var(&o.maxOps, "max-ops", 2_000_000, "bound on the operations of one window")
	fs.DurationVar(&o.opTimeout, "op-timeout", 10*time.Second, "timeout of one operation")
	fs.DurationVar(&o.setupTimeout, "setup-timeout", 90*time.Second, "bound on each setup step that must finish (users, service identity, one session per worker)")
	fs.DurationVar(&o.fillTime, "fill-time", 20*time.Second, "bound on the logins that make sessions for logout and feed-snapshot (fewer, if it passes)")
	fs.IntVar(&o.serverPID, "server-pid", 0, "authd's `pid`, for its CPU time per operation")
	fs.StringVar(&o.pgPIDFlag, "pg-pid", "", "the postmaster's `pid`, or auto (the parent of a backend of -database-url), for PostgreSQL's CPU time per operation")
	fs.StringVar(&o.adminUser, "admin-user", "admin", "an admin's username, for the setup")
	fs.StringVar(&o.adminPassword, "admin-password", os.Getenv("AUTHBENCH_ADMIN_PASSWORD"), "that admin's password (default $AUTHBENCH_ADMIN_PASSWORD; prefer -admin-file)")
	fs.StringVar(&o.adminFile, "admin-file", "", "read the admin's credentials from `FILE`: lines \"username: …\" and \"password: …\" (what authd serve --bootstrap-admin prints)")
	fs.StringVar(&o.audience, "audience", "authd", "authd's AUTHD_AUDIENCE, for verify and its floor")
	fs.BoolVar(&o.json, "json", false, "print the summary as JSON on stdout instead of the table")
	fs.BoolVar(&o.allowRemote, "allow-remote", false, "allow a -url that is not a loopback address")
	fs.IntVar(&o.usersPerWorker, "users-per-worker", 4, "login pool: users per worker, none shared between workers")
	fs.IntVar(&o.logoutPool, "logout-pool", 1500, "sessions made for the logout scenario (it ends early when they run out)")
	fs.IntVar(&o.snapshotRevoked, "snapshot-revoked", 1000, "revocations the run makes sure exist before feed-snapshot")
	fs.StringVar(&o.mixFlag, "mix", "refresh=70,feed-delta=20,login=5,logout=5", "the mixed scenario's weights")
	fs.IntVar(&o.rounds, "rounds", 3, "slices each scenario and its floor alternate in, so both see the same background load")
	fs.DurationVar(&o.progress, "progress", time.Second, "progress line interval on stderr (0: none)")
	fs.BoolVar(&o.cleanup, "cleanup", true, "disable the users the run created when it ends (authd cannot delete users)")
	fs.StringVar(&o.startAuthd, "start-authd", "", "start a private authd from the binary `PATH` on a fresh database, bench it, stop it, drop the database (make bench-load)")
	fs.Var(&o.authdEnv, "authd-env", "with -start-authd: an `AUTHD_NAME=value` for the private authd (repeatable), e.g. AUTHD_DB_MAX_CONNS=4")
	defPG := os.Getenv("AUTHD_TEST_DATABASE_URL")
	if defPG == "" {
		defPG = "postgres://postgres@127.0.0.1:5432/postgres?sslmode=disable"
	}
	fs.StringVar(&o.pgAdminURL, "pg-admin-url", defPG, "with -start-authd: where to create the database authd_bench_<random>; default $AUTHD_TEST_DATABASE_URL, else the local PostgreSQL")
}

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	code := run(ctx, os.Args[1:], os.Stdout, os.Stderr)
	stop()
	os.Exit(code)
}

// run is main without the process: 0 success, 1 failure, 2 usage.
func run(ctx context.Context, args []string, stdout, stderr io.Writer) int {
	fs := flag.NewFlagSet("authbench", flag.ContinueOnError)
	fs.SetOutput(stderr)
	var o options
	defineFlags(fs, &o)
	fs.Usage = func() {
		fmt.Fprintln(stderr, "usage: authbench [flags]   (load harness for authd; README.md, Load harness)")
		fs.PrintDefaults()
	}
	if err := fs.Parse(args); err != nil {
		if errors.Is(err, flag.ErrHelp) {
			return 0
		}
		return 2
	}
	if fs.NArg() > 0 {
		fmt.Fprintf(stderr, "authbench: unexpected arguments %q\n", fs.Args())
		return 2
	}
	o.procRoot = "/proc"
	if err := o.check(); err != nil {
		fmt.Fprintln(stderr, "authbench:", err)
		return 2
	}
	if err := runBench(ctx, o, stdout, stderr); err != nil {
		fmt.Fprintln(stderr, "authbench:", err)
		return 1
	}
	return 0
}

// check validates the options that need no network.
func (o *options) check() error {
	var err error
	if o.scenarios, err = parseScenarios(o.scenarioFlag); err != nil {
		return err
	}
	if o.mix, err = parseMix(o.mixFlag); err != nil {
		return err
	}
	switch {
	case o.concurrency < 1 || o.concurrency > 1024:
		return errors.New("-c must be between 1 and 1024")
	case o.duration <= 0 || o.floorDuration <= 0 || o.fillTime <= 0 || o.setupTimeout <= 0:
		return errors.New("-d, -floor-d, -fill-time and -setup-timeout must be positive")
	case o.warmup < 0:
		return errors.New("-warmup must not be negative")
	case o.maxOps < 1:
		return errors.New("-max-ops must be positive")
	case o.rounds < 1 || o.rounds > 100:
		return errors.New("-rounds must be between 1 and 100")
	case o.usersPerWorker < 1:
		return errors.New("-users-per-worker must be positive")
	case o.logoutPool < 1 || o.snapshotRevoked < 0:
		return errors.New("-logout-pool must be positive and -snapshot-revoked not negative")
	case o.pgPIDFlag != "" && o.pgPIDFlag != "auto":
		if n, err := strconv.Atoi(o.pgPIDFlag); err != nil || n <= 0 {
			return errors.New("-pg-pid must be a pid or auto")
		}
	}
	if o.startAuthd != "" {
		return nil // the rest is set by startPrivate
	}
	return o.checkTarget()
}

// checkTarget validates -url and reads -admin-file.
func (o *options) checkTarget() error {
	u, err := url.Parse(o.url)
	if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
		return fmt.Errorf("-url %q is not an http(s) URL", o.url)
	}
	if !o.allowRemote && !isLoopback(u.Hostname()) {
		return fmt.Errorf("-url %s is not a loopback address: authbench creates users and logs them in and out there; pass -allow-remote if you mean it", u.Host)
	}
	o.url = strings.TrimRight(o.url, "/")
	if o.adminFile != "" {
		f, err := os.Open(o.adminFile)
		if err != nil {
			return fmt.Errorf("-admin-file: %w", err)
		}
		defer f.Close()
		user, pw, err := parseCredentials(f)
		if err != nil {
			return fmt.Errorf("-admin-file %s: %w", o.adminFile, err)
		}
		if user != "" {
			o.adminUser = user
		}
		o.adminPassword = pw
	}
	if o.adminPassword == "" {
		return errors.New("the admin's password is needed for the setup: -admin-file, -admin-password or $AUTHBENCH_ADMIN_PASSWORD")
	}
	return nil
}

func isLoopback(host string) bool {
	if host == "localhost" {
		return true
	}
	ip := net.ParseIP(host)
	return ip != nil && ip.IsLoopback()
}

// parseCredentials reads "username: X" and "password: Y" lines (other
// lines are ignored), as authd serve --bootstrap-admin prints them.
func parseCredentials(r io.Reader) (user, pw string, err error) {
	sc := bufio.NewScanner(io.LimitReader(r, 1<<20))
	for sc.Scan() {
		line := strings.TrimSpace(sc.Text())
		if v, ok := strings.CutPrefix(line, "username:"); ok && user == "" {
			user = strings.TrimSpace(v)
		}
		if v, ok := strings.CutPrefix(line, "password:"); ok && pw == "" {
			pw = strings.TrimSpace(v)
		}
	}
	if err := sc.Err(); err != nil {
		return "", "", err
	}
	if pw == "" {
		return "", "", errors.New(`no "password: …" line`)
	}
	return user, pw, nil
}

func readFileString(name string) (string, error) {
	b, err := os.ReadFile(name)
	return string(b), err
}

// runBench runs the chosen scenarios, with a private authd first if asked.
func runBench(ctx context.Context, o options, stdout, stderr io.Writer) error {
	if o.startAuthd != "" {
		p, err := startPrivate(ctx, o, stderr)
		if p != nil {
			defer p.stop(stderr)
		}
		if err != nil {
			return err
		}
		o.url, o.databaseURL, o.serverPID, o.pgPIDFlag = p.base, p.dbURL, p.pid, "auto"
		o.adminUser, o.adminPassword, o.cleanup = p.adminUser, p.adminPassword, false
		if err := o.checkTarget(); err != nil {
			return err
		}
	}
	b := &bench{
		o: o, api: newAPI(o.url, o.concurrency, o.opTimeout), log: stderr, runID: newRunID(),
		floors: map[string]*result{},
	}
	defer b.api.close()
	m := meta{
		Started: time.Now(), URL: o.url, Concurrency: o.concurrency, Duration: o.duration.String(),
		Warmup: o.warmup.String(), FloorDuration: o.floorDuration.String(), CPUs: runtime.NumCPU(),
		GoVersion: runtime.Version(), ServerPID: o.serverPID, PrivateAuthd: o.startAuthd != "",
		ClockTicksPerS: userHZ, RunID: b.runID, ScenariosChosen: o.scenarios,
		LoadAvgStart: loadAvg(o.procRoot),
	}
	pgPID := 0
	if o.pgPIDFlag != "" && o.pgPIDFlag != "auto" {
		pgPID, _ = strconv.Atoi(o.pgPIDFlag)
	}
	if o.databaseURL != "" {
		pool, err := openFloorPool(ctx, o.databaseURL, o.concurrency)
		if err != nil {
			return err
		}
		defer pool.Close()
		b.pool = pool
		b.describeDatabase(ctx, &m)
		if o.pgPIDFlag == "auto" {
			if pgPID, err = postmasterPID(ctx, pool, o.procRoot); err != nil {
				m.Notes = append(m.Notes, "no PostgreSQL CPU: "+err.Error())
			}
		}
	} else {
		m.Notes = append(m.Notes, "no -database-url: no UPDATE or feed-query floor")
		if o.pgPIDFlag == "auto" {
			m.Notes = append(m.Notes, "-pg-pid auto needs -database-url")
		}
	}
	m.PGPID = pgPID
	if o.serverPID == 0 {
		m.Notes = append(m.Notes, "no -server-pid: no authd CPU per operation")
	} else if _, err := readStat(o.procRoot, o.serverPID); err != nil {
		m.Notes = append(m.Notes, fmt.Sprintf("-server-pid %d unreadable: %v", o.serverPID, err))
	}
	b.meter = &cpuMeter{root: o.procRoot, serverPID: o.serverPID, pgPID: pgPID}
	b.logf("run %s against %s, -c %d, scenarios %s", b.runID, o.url, o.concurrency, strings.Join(o.scenarios, ","))

	if err := b.setup(ctx); err != nil {
		if o.cleanup {
			b.cleanup(ctx)
		}
		return fmt.Errorf("setup: %w", err)
	}
	var runErr error
	for _, s := range o.scenarios {
		if runErr = b.run(ctx, s); runErr != nil {
			break
		}
	}
	if o.cleanup {
		b.cleanup(ctx)
	}
	m.LoadAvgEnd = loadAvg(o.procRoot)
	floors := b.floorResults
	if len(b.results) > 0 {
		if o.json {
			if err := writeJSON(stdout, m, b.results, floors); err != nil {
				return err
			}
		} else {
			writeTable(stdout, m, b.results, floors)
		}
	}
	return runErr
}

// describeDatabase records the server's version and durability settings
// and how many client backends of other databases share it (their CPU is
// in pg/op too).
func (b *bench) describeDatabase(ctx context.Context, m *meta) {
	qctx, cancel := context.WithTimeout(ctx, 10*time.Second)
	defer cancel()
	row := b.pool.QueryRow(qctx, `SELECT current_setting('server_version'), current_setting('synchronous_commit'),
		current_setting('fsync'), (SELECT count(*) FROM pg_stat_activity
			WHERE backend_type = 'client backend' AND datname IS DISTINCT FROM current_database())`)
	var others int64
	if err := row.Scan(&m.PGVersion, &m.SyncCommit, &m.Fsync, &others); err != nil {
		m.Notes = append(m.Notes, "could not read the server's settings: "+err.Error())
		return
	}
	m.OtherBackends = int(others)
	if m.SyncCommit != "on" || m.Fsync != "on" {
		m.Notes = append(m.Notes, fmt.Sprintf("the server runs synchronous_commit=%s fsync=%s: authd's commits are not durable, the UPDATE floor's are (it sets synchronous_commit=on)", m.SyncCommit, m.Fsync))
	}
	if others > 0 {
		m.Notes = append(m.Notes, fmt.Sprintf("%d client backends of other databases were connected at the start; whatever they do is counted in pg/op", others))
	}
}

// postmasterPID finds the postmaster as the parent of one of the pool's
// backends, which works when PostgreSQL runs on this host and in this pid
// namespace.
func postmasterPID(ctx context.Context, pool *pgxpool.Pool, root string) (int, error) {
	qctx, cancel := context.WithTimeout(ctx, 10*time.Second)
	defer cancel()
	var backend int32
	if err := pool.QueryRow(qctx, `SELECT pg_backend_pid()`).Scan(&backend); err != nil {
		return 0, fmt.Errorf("pg_backend_pid: %w", err)
	}
	st, err := readStat(root, int(backend))
	if err != nil {
		return 0, fmt.Errorf("backend %d is not visible in %s (PostgreSQL on another host or in a container?): %w", backend, root, err)
	}
	pm, err := readStat(root, st.PPID)
	if err != nil {
		return 0, fmt.Errorf("the postmaster (pid %d): %w", st.PPID, err)
	}
	if !strings.HasPrefix(pm.Comm, "postgres") && !strings.HasPrefix(pm.Comm, "postmaster") {
		return 0, fmt.Errorf("the parent of backend %d is %q (pid %d), not a postmaster", backend, pm.Comm, pm.PID)
	}
	return pm.PID, nil
}
