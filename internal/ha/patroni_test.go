package ha_test

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/seedc5a8123e/authd/internal/authdtest"
	"github.com/seedc5a8123e/authd/internal/postgres"
	"github.com/seedc5a8123e/authd/verifier"
)

// patroniCluster is etcd and two Patroni nodes, each with its PostgreSQL.
type patroniCluster struct {
	nodes []*patroniNode
}

type patroniNode struct {
	name            string
	pgPort, apiPort int
	dataDir         string
}

// patroniYAML is one node's configuration: a primary and a synchronous
// standby (synchronous_mode), short timings so a failover takes seconds,
// and primary_start_timeout 0 so that a crashed primary is failed over at
// once instead of being restarted in place (master_start_timeout is its
// name before Patroni 3).
const patroniYAML = `scope: authd-ha
name: %[1]s
restapi:
  listen: 127.0.0.1:%[2]d
  connect_address: 127.0.0.1:%[2]d
etcd:
  host: 127.0.0.1:%[3]d
bootstrap:
  dcs:
    ttl: 10
    loop_wait: 1
    retry_timeout: 3
    maximum_lag_on_failover: 1048576
    synchronous_mode: true
    primary_start_timeout: 0
    master_start_timeout: 0
    postgresql:
      use_pg_rewind: false
      parameters:
        wal_level: replica
        hot_standby: "on"
        max_wal_senders: 10
        max_replication_slots: 10
        wal_keep_size: 64MB
        fsync: "off"
  initdb:
    - encoding: UTF8
    - auth: trust
  pg_hba:
    - local all all trust
    - host all all 127.0.0.1/32 trust
    - host replication all 127.0.0.1/32 trust
postgresql:
  listen: 127.0.0.1:%[4]d
  connect_address: 127.0.0.1:%[4]d
  data_dir: %[5]s
  bin_dir: %[6]s
  pgpass: %[7]s
  authentication:
    superuser:
      username: postgres
    replication:
      username: postgres
  parameters:
    unix_socket_directories: %[8]s
tags:
  nofailover: false
  noloadbalance: false
  clonefrom: false
  nosync: false
`

// startPatroni starts etcd, then node1 (which bootstraps the primary), then
// node2 (cloned from it), and waits until node2 is the synchronous standby.
func startPatroni(t *testing.T) *patroniCluster {
	t.Helper()
	etcdBin := lookPath(t, "etcd")
	patroniBin := lookPath(t, "patroni")
	bin := pgBinDir(t)
	dir := workDir(t)

	clientPort, peerPort := freePort(t), freePort(t)
	client, peer := fmt.Sprintf("http://127.0.0.1:%d", clientPort), fmt.Sprintf("http://127.0.0.1:%d", peerPort)
	start(t, "etcd", command(t, etcdBin, "--name", "ha", "--data-dir", filepath.Join(dir, "etcd"),
		"--listen-client-urls", client, "--advertise-client-urls", client,
		"--listen-peer-urls", peer, "--initial-advertise-peer-urls", peer, "--initial-cluster", "ha="+peer,
		"--enable-v2=true", "--log-level", "warn"), syscall.SIGTERM)
	authdtest.Eventually(t, 30*time.Second, func() bool { return httpStatus(client+"/health") == http.StatusOK },
		"etcd on %s", client)

	c := &patroniCluster{}
	for i, name := range []string{"node1", "node2"} {
		n := &patroniNode{name: name, pgPort: freePort(t), apiPort: freePort(t), dataDir: filepath.Join(dir, name)}
		cfg := filepath.Join(dir, name+".yml")
		body := fmt.Sprintf(patroniYAML, name, n.apiPort, clientPort, n.pgPort, n.dataDir, bin,
			filepath.Join(dir, name+".pgpass"), dir)
		if err := os.WriteFile(cfg, []byte(body), 0o644); err != nil {
			t.Fatal(err)
		}
		// Patroni stops its PostgreSQL when it gets SIGTERM.
		start(t, "patroni "+name, command(t, patroniBin, cfg), syscall.SIGTERM)
		c.nodes = append(c.nodes, n)
		want := "/primary"
		if i > 0 {
			want = "/replica"
		}
		authdtest.EventuallyEvery(t, 90*time.Second, 200*time.Millisecond, func() bool {
			return httpStatus(n.api(want)) == http.StatusOK
		}, "patroni %s answering 200 on %s", name, want)
	}
	authdtest.EventuallyEvery(t, 60*time.Second, 200*time.Millisecond, func() bool {
		_, standby := c.roles()
		return standby != ""
	}, "a synchronous standby")
	return c
}

func (n *patroniNode) api(path string) string {
	return fmt.Sprintf("http://127.0.0.1:%d%s", n.apiPort, path)
}

func httpStatus(u string) int {
	cl := http.Client{Timeout: 2 * time.Second}
	res, err := cl.Get(u)
	if err != nil {
		return 0
	}
	_, _ = io.Copy(io.Discard, res.Body)
	res.Body.Close()
	return res.StatusCode
}

// roles asks any node's REST API for the cluster: the leader's name and the
// synchronous standby's, empty when there is none.
func (c *patroniCluster) roles() (leader, standby string) {
	for _, n := range c.nodes {
		cl := http.Client{Timeout: 2 * time.Second}
		res, err := cl.Get(n.api("/cluster"))
		if err != nil {
			continue
		}
		var body struct {
			Members []struct {
				Name  string `json:"name"`
				Role  string `json:"role"`
				State string `json:"state"`
			} `json:"members"`
		}
		err = json.NewDecoder(res.Body).Decode(&body)
		res.Body.Close()
		if err != nil {
			continue
		}
		for _, m := range body.Members {
			switch m.Role {
			case "leader", "master", "primary":
				if m.State == "running" {
					leader = m.Name
				}
			case "sync_standby":
				if m.State == "running" || m.State == "streaming" {
					standby = m.Name
				}
			}
		}
		return leader, standby
	}
	return "", ""
}

func (c *patroniCluster) node(name string) *patroniNode {
	for _, n := range c.nodes {
		if n.name == name {
			return n
		}
	}
	return nil
}

// hosts is the multi-host part of a URL naming every node.
func (c *patroniCluster) hosts() string {
	var hs []string
	for _, n := range c.nodes {
		hs = append(hs, fmt.Sprintf("127.0.0.1:%d", n.pgPort))
	}
	return strings.Join(hs, ",")
}

type rotated struct{ sid, token string }

// loadResult is what the load saw, for the checks after the failover.
type loadResult struct {
	mu sync.Mutex
	// revoked: sessions whose revocation (logout or admin revoke) was
	// acknowledged with 2xx.
	revoked []string
	// rotatedAway: refresh tokens a 2xx refresh replaced.
	rotatedAway []rotated
	// writesBack is when the first write (login or refresh) that started
	// after the kill succeeded.
	writesBack time.Time
	statuses   map[int]int
	// bad lists answers that break the contract during a failover: a 5xx
	// other than 503, a 503 without Retry-After, a transport error.
	bad []string
}

func (r *loadResult) saw(code int, res *http.Response, what string, err error) {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.statuses[code]++
	switch {
	case err != nil:
		r.bad = append(r.bad, fmt.Sprintf("%s: %v", what, err))
	case code == http.StatusServiceUnavailable && res.Header.Get("Retry-After") == "":
		r.bad = append(r.bad, what+": 503 without Retry-After")
	case code >= 500 && code != http.StatusServiceUnavailable:
		r.bad = append(r.bad, fmt.Sprintf("%s: %d", what, code))
	}
}

// TestHAPatroniFailoverLosesNoAcknowledgedRevocation runs logins, refreshes,
// logouts and admin revokes against authd on a Patroni pair, SIGKILLs the
// primary's postmaster, and checks what the issue asks: writes come back
// without restarting authd (the time is logged, goal under 30 s), every
// answer meanwhile is a 503 with Retry-After or a normal answer, every
// acknowledged revocation is in the feed afterwards, and no refresh token
// rotated away works again.
func TestHAPatroniFailoverLosesNoAcknowledgedRevocation(t *testing.T) {
	requireHA(t)
	c := startPatroni(t)
	leader, standby := c.roles()
	t.Logf("patroni: leader %s, synchronous standby %s", leader, standby)
	migrate(t, c.node(leader).pgPort)
	// target_session_attrs=read-write: pgx tries each host and keeps the one
	// that accepts writes, on every new connection.
	dbURL := "postgres://postgres@" + c.hosts() + "/authd?sslmode=disable&target_session_attrs=read-write&connect_timeout=2"
	db, err := postgres.Open(context.Background(), dbURL, postgres.Options{})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(db.Close)
	env := authdtest.Start(t, authdtest.Options{DB: db})
	env.CreateUser(t, "verifier-svc", "service", "verifier service secret")
	env.CreateUser(t, "root", "admin", pw)
	const workers = 4
	for i := range workers {
		env.CreateUser(t, fmt.Sprintf("user%d", i), "user", pw)
	}

	r := &loadResult{statuses: map[int]int{}}
	client := &http.Client{Timeout: 15 * time.Second}
	var killedAt time.Time
	var killMu sync.Mutex
	killTime := func() time.Time { killMu.Lock(); defer killMu.Unlock(); return killedAt }
	stop := make(chan struct{})
	var wg sync.WaitGroup
	for i := range workers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			load(env.URL, client, fmt.Sprintf("user%d", i), i%2 == 1, r, killTime, stop)
		}()
	}

	time.Sleep(3 * time.Second) // steady load before the kill: a duration of load, not a wait for an effect
	pid := postmasterPID(t, c.node(leader).dataDir)
	killMu.Lock()
	killedAt = time.Now()
	killMu.Unlock()
	if err := syscall.Kill(pid, syscall.SIGKILL); err != nil {
		t.Fatalf("kill the primary's postmaster %d: %v", pid, err)
	}
	t.Logf("SIGKILLed the postmaster (pid %d) of %s", pid, leader)
	authdtest.EventuallyEvery(t, 90*time.Second, 100*time.Millisecond, func() bool {
		r.mu.Lock()
		defer r.mu.Unlock()
		return !r.writesBack.IsZero()
	}, "a write to succeed after the kill")
	time.Sleep(3 * time.Second) // steady load after the failover
	close(stop)
	wg.Wait()

	newLeader, _ := c.roles()
	back := r.writesBack.Sub(killedAt)
	t.Logf("failover: writes succeeded again %.1f s after the kill (goal < 30 s); leader now %s; answers by status %v",
		back.Seconds(), newLeader, r.statuses)
	if back > 30*time.Second {
		t.Errorf("writes came back %.1f s after the kill, goal under 30 s", back.Seconds())
	}
	if len(r.bad) > 0 {
		t.Errorf("%d answers broke the contract, e.g. %q", len(r.bad), r.bad[:min(5, len(r.bad))])
	}
	if len(r.revoked) == 0 || len(r.rotatedAway) == 0 {
		t.Fatalf("the load acknowledged %d revocations and %d rotations: nothing to check", len(r.revoked), len(r.rotatedAway))
	}

	// Every acknowledged revocation is in the full feed.
	svc := env.ServiceToken(t, "verifier-svc", "verifier service secret")
	res, body := env.Do(t, http.MethodGet, "/sessions/revoked", svc.AccessToken, "", nil)
	if res.StatusCode != http.StatusOK {
		t.Fatalf("feed: %d %s", res.StatusCode, body)
	}
	var entries []verifier.Revocation
	if err := json.Unmarshal(body, &entries); err != nil {
		t.Fatal(err)
	}
	inFeed := map[string]bool{}
	for _, e := range entries {
		inFeed[e.SID] = true
	}
	lost := 0
	for _, sid := range r.revoked {
		if !inFeed[sid] {
			lost++
			t.Errorf("revocation of session %s was acknowledged but is not in the feed", sid)
		}
	}
	t.Logf("revocations acknowledged: %d, lost: %d; feed entries: %d", len(r.revoked), lost, len(entries))

	// No refresh token rotated away works again. Those of sessions still
	// live are the telling ones (a revoked session refuses every token);
	// each is tried, and a spread of the others (each try is logged as a
	// reuse).
	revoked := map[string]bool{}
	for _, sid := range r.revoked {
		revoked[sid] = true
	}
	var try []string
	for i, rt := range r.rotatedAway {
		if !revoked[rt.sid] || i%20 == 0 {
			try = append(try, rt.token)
		}
	}
	works := 0
	for _, rt := range try {
		res, _ := env.PostForm(t, "/token", url.Values{"grant_type": {"refresh_token"}, "refresh_token": {rt}})
		if res.StatusCode == http.StatusOK {
			works++
		}
	}
	if works > 0 {
		t.Errorf("%d of %d refresh tokens rotated away were accepted again", works, len(try))
	}
	t.Logf("rotated-away refresh tokens: %d, tried again: %d, accepted: %d", len(r.rotatedAway), len(try), works)
}

// load is one worker: log in, refresh twice, then end the session by
// logout, or, when admin is set, by an admin revoke, until stop closes.
func load(base string, client *http.Client, username string, admin bool, r *loadResult,
	killedAt func() time.Time, stop <-chan struct{}) {
	post := func(path, bearer string, form url.Values) (int, []byte) {
		req, _ := http.NewRequest(http.MethodPost, base+path, strings.NewReader(form.Encode()))
		if form != nil {
			req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
		}
		if bearer != "" {
			req.Header.Set("Authorization", "Bearer "+bearer)
		}
		res, err := client.Do(req)
		if err != nil {
			r.saw(0, nil, path, err)
			return 0, nil
		}
		defer res.Body.Close()
		b, _ := io.ReadAll(res.Body)
		r.saw(res.StatusCode, res, path, nil)
		return res.StatusCode, b
	}
	var tr authdtest.TokenResponse
	wrote := func(started time.Time) {
		if k := killedAt(); !k.IsZero() && started.After(k) {
			r.mu.Lock()
			if r.writesBack.IsZero() {
				r.writesBack = time.Now()
			}
			r.mu.Unlock()
		}
	}
	login := func(user string) (authdtest.TokenResponse, bool) {
		started := time.Now()
		code, b := post("/token", "", url.Values{"grant_type": {"password"}, "username": {user}, "password": {pw}})
		var out authdtest.TokenResponse
		if code != http.StatusOK || json.Unmarshal(b, &out) != nil {
			return out, false
		}
		wrote(started)
		return out, true
	}
	var adminTok authdtest.TokenResponse
	for {
		select {
		case <-stop:
			return
		default:
		}
		var ok bool
		if tr, ok = login(username); !ok {
			time.Sleep(100 * time.Millisecond) // back off as Retry-After asks, briefly
			continue
		}
		for range 2 {
			started := time.Now()
			code, b := post("/token", "", url.Values{"grant_type": {"refresh_token"}, "refresh_token": {tr.RefreshToken}})
			var next authdtest.TokenResponse
			if code != http.StatusOK || json.Unmarshal(b, &next) != nil {
				break
			}
			wrote(started)
			r.mu.Lock()
			r.rotatedAway = append(r.rotatedAway, rotated{sid: tr.SID, token: tr.RefreshToken})
			r.mu.Unlock()
			tr = next
		}
		var code int
		if admin {
			if adminTok.AccessToken == "" {
				if adminTok, ok = login("root"); !ok {
					continue
				}
			}
			code, _ = post("/sessions/"+tr.SID+"/revoke", adminTok.AccessToken, nil)
			if code == http.StatusUnauthorized {
				adminTok = authdtest.TokenResponse{}
			}
		} else {
			code, _ = post("/logout", tr.AccessToken, nil)
		}
		if code/100 == 2 {
			r.mu.Lock()
			r.revoked = append(r.revoked, tr.SID)
			r.mu.Unlock()
		}
	}
}
