package config

import (
	"strings"
	"testing"
	"time"
)

func env(kv map[string]string) func(string) string {
	return func(k string) string { return kv[k] }
}

func TestDefaults(t *testing.T) {
	c, err := Load(env(map[string]string{"DATABASE_URL": "postgres://u@127.0.0.1/authd"}))
	if err != nil {
		t.Fatal(err)
	}
	if c.Addr != "127.0.0.1:8080" || c.MetricsAddr != "" || c.AccessTTL != 10*time.Minute || c.SessionTTL != 720*time.Hour ||
		c.PruneSchedule != "@every 1m" || c.SessionRetention != 720*time.Hour || len(c.SigningKeys) != 0 ||
		!c.StatusList || c.StatusListSize != 1<<20 || c.StatusListTTL != 30*time.Second || !c.Console {
		t.Fatalf("defaults = %+v", c)
	}
	if c, err := Load(env(map[string]string{"DATABASE_URL": "postgres://u@127.0.0.1/authd", "AUTHD_CONSOLE": "off"})); err != nil || c.Console {
		t.Fatalf("AUTHD_CONSOLE=off: Console = %t, err %v", c.Console, err)
	}
}

func TestErrorsNameTheVariable(t *testing.T) {
	base := map[string]string{"DATABASE_URL": "postgres://u@127.0.0.1/authd"}
	cases := []struct {
		name, key, val, want string
	}{
		{"missing database", "DATABASE_URL", "", "DATABASE_URL"},
		{"mysql database", "DATABASE_URL", "mysql://x", "DATABASE_URL"},
		{"bad duration", "AUTHD_ACCESS_TTL", "ten minutes", "AUTHD_ACCESS_TTL"},
		{"sub-second", "AUTHD_ACCESS_TTL", "500ms", "AUTHD_ACCESS_TTL"},
		{"session shorter than access", "AUTHD_SESSION_TTL", "1m", "AUTHD_SESSION_TTL"},
		{"bad issuer", "AUTHD_ISSUER", "authd", "AUTHD_ISSUER"},
		{"bad cron", "AUTHD_PRUNE_SCHEDULE", "every minute", "AUTHD_PRUNE_SCHEDULE"},
		{"bad retention", "AUTHD_SESSION_RETENTION", "-1h", "AUTHD_SESSION_RETENTION"},
		{"short audit retention", "AUTHD_AUDIT_RETENTION", "30m", "AUTHD_AUDIT_RETENTION"},
		{"bad audit retention", "AUTHD_AUDIT_RETENTION", "90d", "AUTHD_AUDIT_RETENTION"},
		{"bad proxy", "AUTHD_TRUSTED_PROXIES", "10.0.0.0/8, nope", "AUTHD_TRUSTED_PROXIES"},
		{"bad redis", "AUTHD_REDIS_URL", "http://x", "AUTHD_REDIS_URL"},
		{"bad log level", "AUTHD_LOG_LEVEL", "loud", "AUTHD_LOG_LEVEL"},
		{"metrics addr without port", "AUTHD_METRICS_ADDR", "127.0.0.1", "AUTHD_METRICS_ADDR"},
		{"metrics addr with bad port", "AUTHD_METRICS_ADDR", ":http-alt", "AUTHD_METRICS_ADDR"},
		{"metrics addr is a URL", "AUTHD_METRICS_ADDR", "http://127.0.0.1:9090", "AUTHD_METRICS_ADDR"},
		{"metrics addr is the main one", "AUTHD_METRICS_ADDR", "127.0.0.1:8080", "AUTHD_METRICS_ADDR"},
		{"metrics addr covers the main one", "AUTHD_METRICS_ADDR", ":8080", "AUTHD_METRICS_ADDR"},
		{"account-wide threshold below the per-address one", "AUTHD_LOGIN_MAX_FAILURES_ACCOUNT_ANY_IP", "4", "AUTHD_LOGIN_MAX_FAILURES_ACCOUNT_ANY_IP"},
		{"account-wide threshold not a number", "AUTHD_LOGIN_MAX_FAILURES_ACCOUNT_ANY_IP", "many", "AUTHD_LOGIN_MAX_FAILURES_ACCOUNT_ANY_IP"},
		{"no login in flight", "AUTHD_LOGIN_MAX_IN_FLIGHT_IP", "0", "AUTHD_LOGIN_MAX_IN_FLIGHT_IP"},
		{"too many logins in flight", "AUTHD_LOGIN_MAX_IN_FLIGHT_IP", "100001", "AUTHD_LOGIN_MAX_IN_FLIGHT_IP"},
		{"status list neither on nor off", "AUTHD_STATUS_LIST", "yes", "AUTHD_STATUS_LIST"},
		{"console neither on nor off", "AUTHD_CONSOLE", "true", "AUTHD_CONSOLE"},
		{"status list size not a multiple of 8", "AUTHD_STATUS_LIST_SIZE", "1000001", "AUTHD_STATUS_LIST_SIZE"},
		{"status list size too large", "AUTHD_STATUS_LIST_SIZE", "16777224", "AUTHD_STATUS_LIST_SIZE"},
		{"status list size zero", "AUTHD_STATUS_LIST_SIZE", "0", "AUTHD_STATUS_LIST_SIZE"},
		{"status list ttl too long", "AUTHD_STATUS_LIST_TTL", "2h", "AUTHD_STATUS_LIST_TTL"},
		{"status list ttl fractional", "AUTHD_STATUS_LIST_TTL", "1500ms", "AUTHD_STATUS_LIST_TTL"},
		{"read url not postgres", "AUTHD_DATABASE_READ_URL", "http://replica", "AUTHD_DATABASE_READ_URL"},
		{"direct url not postgres", "AUTHD_DATABASE_DIRECT_URL", "mysql://x", "AUTHD_DATABASE_DIRECT_URL"},
		{"unknown pooler", "AUTHD_DATABASE_POOLER", "session", "AUTHD_DATABASE_POOLER"},
		{"read lag too long", "AUTHD_READ_MAX_LAG", "2m", "AUTHD_READ_MAX_LAG"},
		{"read lag not a duration", "AUTHD_READ_MAX_LAG", "soon", "AUTHD_READ_MAX_LAG"},
		{"empty pool", "AUTHD_DB_MAX_CONNS", "0", "AUTHD_DB_MAX_CONNS"},
		{"huge pool", "AUTHD_DB_MAX_CONNS", "1001", "AUTHD_DB_MAX_CONNS"},
		{"pool not a number", "AUTHD_DB_MAX_CONNS", "lots", "AUTHD_DB_MAX_CONNS"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			kv := map[string]string{}
			for k, v := range base {
				kv[k] = v
			}
			kv[tc.key] = tc.val
			_, err := Load(env(kv))
			if err == nil || !strings.HasPrefix(err.Error(), tc.want) {
				t.Fatalf("Load err = %v, want one starting with %s", err, tc.want)
			}
		})
	}
}

// TestDBMaxConns: DefaultDBMaxConns unless set; a DATABASE_URL naming
// pgx's pool_max_conns decides when the variable is unset (0), and setting
// both is refused rather than one silently winning.
func TestDBMaxConns(t *testing.T) {
	const plain, withPool = "postgres://u@127.0.0.1/authd", "postgres://u@127.0.0.1/authd?pool_max_conns=7"
	for _, tc := range []struct {
		url, v string
		want   int
		err    bool
	}{
		{plain, "", DefaultDBMaxConns, false},
		{plain, "40", 40, false},
		{withPool, "", 0, false},
		{withPool, "40", 0, true},
	} {
		c, err := Load(env(map[string]string{"DATABASE_URL": tc.url, "AUTHD_DB_MAX_CONNS": tc.v}))
		if tc.err {
			if err == nil || !strings.HasPrefix(err.Error(), "AUTHD_DB_MAX_CONNS") {
				t.Errorf("%s with %q: err %v, want one naming AUTHD_DB_MAX_CONNS", tc.url, tc.v, err)
			}
			continue
		}
		if err != nil || c.DBMaxConns != tc.want {
			t.Errorf("%s with %q: DBMaxConns %d, %v; want %d", tc.url, tc.v, c.DBMaxConns, err, tc.want)
		}
	}
}

// TestLoginThrottleVariables: the per-address, account-wide and in-flight
// thresholds default to 5, 50 and 200; the account-wide one follows a
// higher per-address one unless set.
func TestLoginThrottleVariables(t *testing.T) {
	for _, tc := range []struct {
		env                          map[string]string
		account, anyIP, ip, inFlight int
	}{
		{map[string]string{}, 5, 50, 20, 200},
		{map[string]string{"AUTHD_LOGIN_MAX_FAILURES_ACCOUNT": "100"}, 100, 100, 20, 200},
		{map[string]string{"AUTHD_LOGIN_MAX_FAILURES_ACCOUNT": "3", "AUTHD_LOGIN_MAX_FAILURES_ACCOUNT_ANY_IP": "3",
			"AUTHD_LOGIN_MAX_FAILURES_IP": "7", "AUTHD_LOGIN_MAX_IN_FLIGHT_IP": "9"}, 3, 3, 7, 9},
	} {
		tc.env["DATABASE_URL"] = "postgres://u@127.0.0.1/authd"
		c, err := Load(env(tc.env))
		if err != nil {
			t.Fatalf("%v: %v", tc.env, err)
		}
		if c.LoginMaxFailuresAccount != tc.account || c.LoginMaxFailuresAccountAnyIP != tc.anyIP ||
			c.LoginMaxFailuresIP != tc.ip || c.LoginMaxInFlightIP != tc.inFlight {
			t.Errorf("%v: account %d, any IP %d, IP %d, in flight %d; want %d, %d, %d, %d", tc.env,
				c.LoginMaxFailuresAccount, c.LoginMaxFailuresAccountAnyIP, c.LoginMaxFailuresIP, c.LoginMaxInFlightIP,
				tc.account, tc.anyIP, tc.ip, tc.inFlight)
		}
	}
}

// TestListenersCollide: AUTHD_METRICS_ADDR is refused when one of the two
// listeners would take the other's port.
func TestListenersCollide(t *testing.T) {
	for _, tc := range []struct {
		addr, metrics string
		collide       bool
	}{
		{":8080", ":8080", true},
		{":8080", "127.0.0.1:8080", true},
		{"127.0.0.1:8080", "0.0.0.0:8080", true},
		{"[::]:8080", "[::1]:8080", true},
		{"127.0.0.1:8080", "127.0.0.1:8080", true},
		{":8080", ":9090", false},
		{"127.0.0.1:8080", "10.0.0.1:8080", false},
		{"127.0.0.1:0", "127.0.0.1:0", false},
	} {
		_, err := Load(env(map[string]string{"DATABASE_URL": "postgres://u@127.0.0.1/authd",
			"AUTHD_ADDR": tc.addr, "AUTHD_METRICS_ADDR": tc.metrics}))
		if got := err != nil; got != tc.collide {
			t.Errorf("AUTHD_ADDR=%s AUTHD_METRICS_ADDR=%s: err = %v, want collision %t", tc.addr, tc.metrics, err, tc.collide)
		}
	}
}

func TestMetricsAddr(t *testing.T) {
	for _, v := range []string{"", ":9090", "127.0.0.1:9090", "[::1]:0", "127.0.0.1:0"} {
		c, err := Load(env(map[string]string{"DATABASE_URL": "postgres://u@127.0.0.1/authd", "AUTHD_METRICS_ADDR": v,
			"AUTHD_ADDR": "127.0.0.1:0"}))
		if err != nil {
			t.Fatalf("AUTHD_METRICS_ADDR=%q: %v", v, err)
		}
		if c.MetricsAddr != v {
			t.Fatalf("AUTHD_METRICS_ADDR=%q: MetricsAddr = %q", v, c.MetricsAddr)
		}
	}
}

func TestRedactedHidesPasswords(t *testing.T) {
	c, err := Load(env(map[string]string{
		"DATABASE_URL":     "postgres://u:hunter2hunter2@127.0.0.1/authd",
		"AUTHD_REDIS_URL":  "redis://:s3cret@127.0.0.1:6379/0",
		"AUTHD_ACCESS_TTL": "30s", "AUTHD_SESSION_TTL": "1h",
		"AUTHD_TRUSTED_PROXIES": "10.1.2.3/8",
	}))
	if err != nil {
		t.Fatal(err)
	}
	if c.TrustedProxies[0].String() != "10.0.0.0/8" {
		t.Fatalf("proxy = %v", c.TrustedProxies)
	}
	for _, v := range c.Redacted() {
		if s, ok := v.(string); ok && (strings.Contains(s, "hunter2") || strings.Contains(s, "s3cret")) {
			t.Fatalf("Redacted leaks a secret: %s", s)
		}
	}
}

func TestRedactURLMasksQueryPasswords(t *testing.T) {
	for _, raw := range []string{
		"postgres://authd@db:5432/authd?sslmode=require&password=s3cr3t-pw",
		"postgres://authd:s3cr3t-pw@db:5432/authd?sslpassword=s3cr3t-pw",
		"postgres://authd@db/authd?PASSWORD=s3cr3t-pw",
	} {
		if got := RedactURL(raw); strings.Contains(got, "s3cr3t-pw") {
			t.Errorf("RedactURL(%q) = %q leaks the password", raw, got)
		}
		secrets := URLSecrets(raw)
		if len(secrets) == 0 || secrets[0] != "s3cr3t-pw" {
			t.Errorf("URLSecrets(%q) = %q", raw, secrets)
		}
	}
	if got := RedactURL("postgres://authd@db/authd?sslmode=disable"); got != "postgres://authd@db/authd?sslmode=disable" {
		t.Errorf("a URL without secrets changed: %q", got)
	}
}

func TestURLSecretsIncludeEscapedForms(t *testing.T) {
	got := URLSecrets("postgres://authd:p%40ss%2Fw0rd@db/authd")
	for _, want := range []string{"p@ss/w0rd", "p%40ss%2Fw0rd"} {
		found := false
		for _, g := range got {
			found = found || g == want
		}
		if !found {
			t.Errorf("URLSecrets = %q, lacks %q", got, want)
		}
	}
}

func TestMigrationURL(t *testing.T) {
	const db, direct = "postgres://u@pgbouncer:6432/authd", "postgres://u@primary:5432/authd"
	cases := []struct {
		name, pooler, direct, want, wantErr string
	}{
		{"direct connection", "", "", db, ""},
		{"direct url wins", "", direct, direct, ""},
		{"pooler with direct url", "transaction", direct, direct, ""},
		{"pooler without direct url", "transaction", "", "", "AUTHD_DATABASE_DIRECT_URL"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			c, err := Load(env(map[string]string{"DATABASE_URL": db, "AUTHD_DATABASE_POOLER": tc.pooler, "AUTHD_DATABASE_DIRECT_URL": tc.direct}))
			if err != nil {
				t.Fatal(err)
			}
			got, err := c.MigrationURL()
			if tc.wantErr != "" {
				if err == nil || !strings.HasPrefix(err.Error(), tc.wantErr) || !strings.Contains(err.Error(), "transaction") {
					t.Fatalf("MigrationURL err = %v, want one naming %s", err, tc.wantErr)
				}
				return
			}
			if err != nil || got != tc.want {
				t.Fatalf("MigrationURL = %q, %v; want %q", got, err, tc.want)
			}
		})
	}
}
