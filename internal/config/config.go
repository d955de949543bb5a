// Package config reads every AUTHD_* variable (and DATABASE_URL) once, applies
// defaults, and validates them, naming the variable in every error.
package config

import (
	"fmt"
	"log/slog"
	"net"
	"net/netip"
	"net/url"
	"strconv"
	"strings"
	"time"

	"github.com/robfig/cron/v3"

	"github.com/seedc5a8123e/authd/internal/redact"
)

// Names lists every environment variable authd reads, so deployment files
// can be checked against it.
var Names = []string{
	"DATABASE_URL", "AUTHD_ADDR", "AUTHD_METRICS_ADDR", "AUTHD_ISSUER", "AUTHD_AUDIENCE", "AUTHD_ACCESS_TTL",
	"AUTHD_SESSION_TTL", "AUTHD_SESSION_IDLE_TTL", "AUTHD_REFRESH_REUSE_GRACE", "AUTHD_SIGNING_KEYS", "AUTHD_PRUNE_SCHEDULE", "AUTHD_SESSION_RETENTION",
	"AUTHD_REDIS_URL", "AUTHD_TRUSTED_PROXIES", "AUTHD_LOG_LEVEL",
	"AUTHD_MAX_SESSIONS_PER_USER", "AUTHD_LOGIN_MAX_FAILURES_ACCOUNT", "AUTHD_LOGIN_MAX_FAILURES_IP", "AUTHD_LOGIN_BACKOFF_BASE", "AUTHD_LOGIN_BACKOFF_MAX",
	"AUTHD_LOGIN_MAX_FAILURES_ACCOUNT_ANY_IP", "AUTHD_LOGIN_MAX_IN_FLIGHT_IP",
	"AUTHD_STATUS_LIST", "AUTHD_STATUS_LIST_SIZE", "AUTHD_STATUS_LIST_TTL",
	"AUTHD_DATABASE_DIRECT_URL", "AUTHD_DATABASE_POOLER", "AUTHD_DATABASE_READ_URL", "AUTHD_READ_MAX_LAG",
	"AUTHD_DB_MAX_CONNS",
	"AUTHD_CONSOLE",
	"AUTHD_AUDIT_RETENTION",
	"AUTHD_KEY_ENCRYPTION_KEY", "AUTHD_KEY_ROTATION", "AUTHD_KEY_ALGORITHM",
}

// MinKeyRotationInterval is the shortest gap AUTHD_KEY_ROTATION may leave
// between two rotations: each key is published for a JWKS lifetime before
// it signs and stays one token lifetime after, and rotating faster than
// keys retire would only pile up published keys.
const MinKeyRotationInterval = time.Hour

// DefaultDBMaxConns is AUTHD_DB_MAX_CONNS's default. pgx's own default,
// max(4, CPUs), left 97-99% of requests waiting for a connection at 8
// clients (issue 14): every refresh and logout holds its connection across
// a commit's fsync, so the pool must cover the requests waiting on the disk,
// not the cores. 16 per replica leaves room under PostgreSQL's default
// max_connections of 100 for several replicas and the migration Job.
const DefaultDBMaxConns = 16

// DefaultAddr is AUTHD_ADDR's default: the loopback interface only, so a
// development server (`make run`) is not reachable from the network. A
// container must listen on every interface: the image and the deployment
// files set AUTHD_ADDR=:8080.
const DefaultAddr = "127.0.0.1:8080"

// Config is authd's whole configuration.
type Config struct {
	// DatabaseURL is DATABASE_URL: a PostgreSQL connection URL. Required.
	DatabaseURL string
	// DatabaseDirectURL is AUTHD_DATABASE_DIRECT_URL: the primary reached
	// without a transaction-mode pool, for what needs one server session
	// throughout (migrations take a session advisory lock). Default empty:
	// DATABASE_URL is used, which is refused when AUTHD_DATABASE_POOLER is
	// transaction (see MigrationURL).
	DatabaseDirectURL string
	// DatabasePooler is AUTHD_DATABASE_POOLER: "none" (default) when
	// DATABASE_URL reaches PostgreSQL or a session-mode pool, "transaction"
	// when it reaches PgBouncer with pool_mode = transaction; then no
	// statement relies on session state (postgres.Options.Pooler).
	DatabasePooler string
	// DatabaseReadURL is AUTHD_DATABASE_READ_URL: a hot standby (streaming
	// replica) that serves the revocation feed while its measured lag is
	// within AUTHD_READ_MAX_LAG, and session and user lists. Default empty:
	// everything reads the primary. Bearer checks and writes never use it.
	DatabaseReadURL string
	// ReadMaxLag is AUTHD_READ_MAX_LAG: beyond this replay lag (or when the
	// lag cannot be measured) the feed reads the primary. Default 5s, from
	// 1s to 1m; each poll served by the replica holds its cursor back by the
	// lag as well.
	ReadMaxLag time.Duration
	// DBMaxConns is AUTHD_DB_MAX_CONNS, the most connections the pool
	// opens. Default DefaultDBMaxConns (16), from 1 to 1000; 0 when unset
	// and DATABASE_URL names pgx's pool_max_conns, which then decides
	// (setting both is refused).
	DBMaxConns int
	// Addr is AUTHD_ADDR, the listen address. Default DefaultAddr
	// (127.0.0.1:8080); ":8080" listens on every interface.
	Addr string
	// MetricsAddr is AUTHD_METRICS_ADDR, host:port of a separate listener
	// for GET /metrics; then Addr does not serve /metrics. Default empty:
	// /metrics is served on Addr.
	MetricsAddr string
	// Issuer is AUTHD_ISSUER, the "iss" claim and the public base URL.
	// Default "http://localhost:8080".
	Issuer string
	// Audience is AUTHD_AUDIENCE, the "aud" claim. Default "authd".
	Audience string
	// AccessTTL is AUTHD_ACCESS_TTL, the access-token lifetime. Default 10m, at least 1s.
	AccessTTL time.Duration
	// SessionTTL is AUTHD_SESSION_TTL, a session's absolute lifetime: no
	// refresh extends it. Default 720h; must not be shorter than AccessTTL.
	SessionTTL time.Duration
	// SessionIdleTTL is AUTHD_SESSION_IDLE_TTL: a refresh of a session that
	// has been neither created nor refreshed for longer than this fails and
	// revokes the session ('idle_timeout'). Default 0, off; when set, at
	// least AUTHD_ACCESS_TTL.
	SessionIdleTTL time.Duration
	// RefreshReuseGrace is AUTHD_REFRESH_REUSE_GRACE: for this long after a
	// rotation, presenting the refresh token just rotated away is refused
	// without revoking the session, so two tabs that refresh at once do not
	// kill it. Default 0s (every reuse revokes), at most 1m.
	RefreshReuseGrace time.Duration
	// MaxSessionsPerUser is AUTHD_MAX_SESSIONS_PER_USER: a login that would
	// give a user more live sessions revokes the oldest ones
	// ('session_limit'). It bounds what revoking all of a user's sessions
	// must write in one transaction. Default 1000, from 1 to 100000.
	MaxSessionsPerUser int
	// SigningKeys is AUTHD_SIGNING_KEYS: comma-separated PKCS#8 PEM files;
	// the first signs. Empty means an ephemeral key (development only).
	SigningKeys []string
	// KeyEncryptionKey is AUTHD_KEY_ENCRYPTION_KEY: when set, signing keys
	// live in the database, sealed under this key (the base64 of 32 random
	// bytes, or the path of a file holding it; keys.ParseKEK), and rotate
	// by KeyRotation. A secret: never logged. Exclusive with SigningKeys.
	KeyEncryptionKey string
	// KeyRotation is AUTHD_KEY_ROTATION, the cron spec of database key
	// rotations. Default "@every 720h"; two runs at least
	// MinKeyRotationInterval, 2 x AUTHD_ACCESS_TTL and (with status lists)
	// 2 x their validity apart: faster would only pile up published keys.
	KeyRotation string
	// KeyAlgorithm is AUTHD_KEY_ALGORITHM, the algorithm of new database
	// keys: EdDSA (default) or ES256.
	KeyAlgorithm string
	// PruneSchedule is AUTHD_PRUNE_SCHEDULE, a cron spec for deleting old
	// sessions. Default "@every 1m".
	PruneSchedule string
	// SessionRetention is AUTHD_SESSION_RETENTION: sessions are deleted this
	// long after their absolute expiry. Default 720h, at least 1s.
	SessionRetention time.Duration
	// AuditRetention is AUTHD_AUDIT_RETENTION: audit events are deleted this
	// long after they happened, by the pruning job, independently of
	// SessionRetention. Default 2160h (90 days), at least 1h.
	AuditRetention time.Duration
	// RedisURL is AUTHD_REDIS_URL. When set, revocations are also pushed on
	// the Redis channel auth:revoked. Default empty (pull only).
	RedisURL string
	// TrustedProxies is AUTHD_TRUSTED_PROXIES: comma-separated CIDRs whose
	// X-Forwarded-For is believed. Default none.
	TrustedProxies []netip.Prefix
	// LogLevel is AUTHD_LOG_LEVEL: debug, info, warn or error. Default info.
	LogLevel slog.Level
	// LoginMaxFailuresAccount is AUTHD_LOGIN_MAX_FAILURES_ACCOUNT: failed
	// logins per account (username, existing or not) from one client IP
	// before the backoff starts for that IP. Default 5, from 1 to 1000.
	LoginMaxFailuresAccount int
	// LoginMaxFailuresAccountAnyIP is AUTHD_LOGIN_MAX_FAILURES_ACCOUNT_ANY_IP:
	// failed logins per account from all client IPs together before the
	// backoff starts for every IP. Default 50 (or
	// AUTHD_LOGIN_MAX_FAILURES_ACCOUNT when that is higher), from
	// AUTHD_LOGIN_MAX_FAILURES_ACCOUNT to 100000.
	LoginMaxFailuresAccountAnyIP int
	// LoginMaxFailuresIP is AUTHD_LOGIN_MAX_FAILURES_IP: failed logins per
	// client IP, whatever the accounts. Default 20, from 1 to 100000.
	LoginMaxFailuresIP int
	// LoginMaxInFlightIP is AUTHD_LOGIN_MAX_IN_FLIGHT_IP: logins from one
	// client IP checked at once, whatever the accounts; more are refused
	// with 429 and Retry-After 1. Default 200, from 1 to 100000.
	LoginMaxInFlightIP int
	// LoginBackoffBase is AUTHD_LOGIN_BACKOFF_BASE: the first backoff delay,
	// doubled by each further failure. Default 1s, at least 1s.
	LoginBackoffBase time.Duration
	// LoginBackoffMax is AUTHD_LOGIN_BACKOFF_MAX: the longest backoff delay.
	// Default 15m; at least AUTHD_LOGIN_BACKOFF_BASE, at most 24h.
	LoginBackoffMax time.Duration
	// StatusList is AUTHD_STATUS_LIST, on or off: whether access tokens carry
	// the IETF Token Status List claim and GET /statuslists/{id} serves the
	// lists (internal/statuslist). Default on.
	StatusList bool
	// StatusListSize is AUTHD_STATUS_LIST_SIZE: the entries (sessions) of
	// each list leased from now on; lists leased before keep their size. A
	// multiple of 8 from 8 to 16777216; default 1048576.
	StatusListSize int
	// StatusListTTL is AUTHD_STATUS_LIST_TTL: the ttl a list announces, its
	// Cache-Control max-age; the lists are brought up to date every sixth of
	// it. From 1s to 1h; default 30s.
	StatusListTTL time.Duration
	// Console is AUTHD_CONSOLE, on or off: whether the admin console is
	// served under /console/ (internal/console). Default on.
	Console bool
}

// Load reads the configuration through getenv (os.Getenv in production).
func Load(getenv func(string) string) (Config, error) {
	c := Config{
		DatabaseURL:   getenv("DATABASE_URL"),
		Addr:          or(getenv("AUTHD_ADDR"), DefaultAddr),
		MetricsAddr:   getenv("AUTHD_METRICS_ADDR"),
		Issuer:        or(getenv("AUTHD_ISSUER"), "http://localhost:8080"),
		Audience:      or(getenv("AUTHD_AUDIENCE"), "authd"),
		PruneSchedule: or(getenv("AUTHD_PRUNE_SCHEDULE"), "@every 1m"),
		RedisURL:      getenv("AUTHD_REDIS_URL"),

		DatabaseDirectURL: getenv("AUTHD_DATABASE_DIRECT_URL"),
		DatabasePooler:    or(getenv("AUTHD_DATABASE_POOLER"), "none"),
		DatabaseReadURL:   getenv("AUTHD_DATABASE_READ_URL"),
	}
	var err error
	if c.ReadMaxLag, err = duration(getenv, "AUTHD_READ_MAX_LAG", 5*time.Second); err != nil {
		return Config{}, err
	}
	if c.AccessTTL, err = duration(getenv, "AUTHD_ACCESS_TTL", 10*time.Minute); err != nil {
		return Config{}, err
	}
	if c.SessionTTL, err = duration(getenv, "AUTHD_SESSION_TTL", 720*time.Hour); err != nil {
		return Config{}, err
	}
	if c.SessionIdleTTL, err = optionalDuration(getenv, "AUTHD_SESSION_IDLE_TTL"); err != nil {
		return Config{}, err
	}
	if c.RefreshReuseGrace, err = optionalDuration(getenv, "AUTHD_REFRESH_REUSE_GRACE"); err != nil {
		return Config{}, err
	}
	if c.SessionRetention, err = duration(getenv, "AUTHD_SESSION_RETENTION", 720*time.Hour); err != nil {
		return Config{}, err
	}
	if c.AuditRetention, err = duration(getenv, "AUTHD_AUDIT_RETENTION", 2160*time.Hour); err != nil {
		return Config{}, err
	}
	if c.MaxSessionsPerUser, err = integer(getenv, "AUTHD_MAX_SESSIONS_PER_USER", 1000, 1, 100000); err != nil {
		return Config{}, err
	}
	if c.LoginMaxFailuresAccount, err = integer(getenv, "AUTHD_LOGIN_MAX_FAILURES_ACCOUNT", 5, 1, 1000); err != nil {
		return Config{}, err
	}
	if c.LoginMaxFailuresAccountAnyIP, err = integer(getenv, "AUTHD_LOGIN_MAX_FAILURES_ACCOUNT_ANY_IP",
		max(50, c.LoginMaxFailuresAccount), 1, 100000); err != nil {
		return Config{}, err
	}
	if c.LoginMaxFailuresIP, err = integer(getenv, "AUTHD_LOGIN_MAX_FAILURES_IP", 20, 1, 100000); err != nil {
		return Config{}, err
	}
	if c.LoginMaxInFlightIP, err = integer(getenv, "AUTHD_LOGIN_MAX_IN_FLIGHT_IP", 200, 1, 100000); err != nil {
		return Config{}, err
	}
	if c.DBMaxConns, err = dbMaxConns(getenv, c.DatabaseURL); err != nil {
		return Config{}, err
	}
	if c.LoginBackoffBase, err = duration(getenv, "AUTHD_LOGIN_BACKOFF_BASE", time.Second); err != nil {
		return Config{}, err
	}
	if c.LoginBackoffMax, err = duration(getenv, "AUTHD_LOGIN_BACKOFF_MAX", 15*time.Minute); err != nil {
		return Config{}, err
	}
	switch v := getenv("AUTHD_STATUS_LIST"); v {
	case "", "on":
		c.StatusList = true
	case "off":
	default:
		return Config{}, fmt.Errorf("AUTHD_STATUS_LIST: %q is not on or off", v)
	}
	switch v := getenv("AUTHD_CONSOLE"); v {
	case "", "on":
		c.Console = true
	case "off":
	default:
		return Config{}, fmt.Errorf("AUTHD_CONSOLE: %q is not on or off", v)
	}
	if c.StatusListSize, err = integer(getenv, "AUTHD_STATUS_LIST_SIZE", 1<<20, 8, 1<<24); err != nil {
		return Config{}, err
	}
	if c.StatusListSize%8 != 0 {
		return Config{}, fmt.Errorf("AUTHD_STATUS_LIST_SIZE: %d is not a multiple of 8", c.StatusListSize)
	}
	if c.StatusListTTL, err = duration(getenv, "AUTHD_STATUS_LIST_TTL", 30*time.Second); err != nil {
		return Config{}, err
	}
	if c.StatusListTTL > time.Hour || c.StatusListTTL%time.Second != 0 {
		return Config{}, fmt.Errorf("AUTHD_STATUS_LIST_TTL: %s is not whole seconds from 1s to 1h", c.StatusListTTL)
	}
	c.SigningKeys = splitList(getenv("AUTHD_SIGNING_KEYS"))
	c.KeyEncryptionKey = getenv("AUTHD_KEY_ENCRYPTION_KEY")
	c.KeyRotation = or(getenv("AUTHD_KEY_ROTATION"), "@every 720h")
	c.KeyAlgorithm = or(getenv("AUTHD_KEY_ALGORITHM"), "EdDSA")
	for _, s := range splitList(getenv("AUTHD_TRUSTED_PROXIES")) {
		p, err := netip.ParsePrefix(s)
		if err != nil {
			return Config{}, fmt.Errorf("AUTHD_TRUSTED_PROXIES: %q is not a CIDR such as 10.0.0.0/8", s)
		}
		c.TrustedProxies = append(c.TrustedProxies, p.Masked())
	}
	if lv := getenv("AUTHD_LOG_LEVEL"); lv != "" {
		if err := c.LogLevel.UnmarshalText([]byte(lv)); err != nil {
			return Config{}, fmt.Errorf("AUTHD_LOG_LEVEL: %q is not one of debug, info, warn, error", lv)
		}
	}
	return c, c.Validate()
}

// Validate checks the relations between values.
func (c Config) Validate() error {
	if c.DatabaseURL == "" {
		return fmt.Errorf("DATABASE_URL: required (for example postgres://user@127.0.0.1:5432/authd)")
	}
	if u, err := url.Parse(c.DatabaseURL); err != nil || (u.Scheme != "postgres" && u.Scheme != "postgresql") {
		return fmt.Errorf("DATABASE_URL: want a postgres:// URL")
	}
	for _, v := range []struct{ name, url string }{
		{"AUTHD_DATABASE_DIRECT_URL", c.DatabaseDirectURL}, {"AUTHD_DATABASE_READ_URL", c.DatabaseReadURL},
	} {
		if u, err := url.Parse(v.url); v.url != "" && (err != nil || (u.Scheme != "postgres" && u.Scheme != "postgresql")) {
			return fmt.Errorf("%s: want a postgres:// URL", v.name)
		}
	}
	if c.DatabasePooler != "none" && c.DatabasePooler != "transaction" {
		return fmt.Errorf("AUTHD_DATABASE_POOLER: %q is not none or transaction", c.DatabasePooler)
	}
	if c.ReadMaxLag > time.Minute {
		return fmt.Errorf("AUTHD_READ_MAX_LAG: %s is longer than the maximum of 1m", c.ReadMaxLag)
	}
	if u, err := url.Parse(c.Issuer); err != nil || (u.Scheme != "https" && u.Scheme != "http") || u.Host == "" {
		return fmt.Errorf("AUTHD_ISSUER: %q is not an absolute http(s) URL", c.Issuer)
	}
	if c.MetricsAddr != "" {
		_, port, err := net.SplitHostPort(c.MetricsAddr)
		if _, perr := strconv.ParseUint(port, 10, 16); err != nil || perr != nil {
			return fmt.Errorf("AUTHD_METRICS_ADDR: %q is not host:port such as :9090 or 127.0.0.1:9090", c.MetricsAddr)
		}
		if collide(c.MetricsAddr, c.Addr) {
			return fmt.Errorf("AUTHD_METRICS_ADDR: %q overlaps AUTHD_ADDR %q; use another port, or leave it empty to serve /metrics there",
				c.MetricsAddr, c.Addr)
		}
	}
	if c.SessionTTL < c.AccessTTL {
		return fmt.Errorf("AUTHD_SESSION_TTL: %s is shorter than AUTHD_ACCESS_TTL %s", c.SessionTTL, c.AccessTTL)
	}
	if c.SessionIdleTTL != 0 && c.SessionIdleTTL < c.AccessTTL {
		return fmt.Errorf("AUTHD_SESSION_IDLE_TTL: %s is shorter than AUTHD_ACCESS_TTL %s (0 turns the idle timeout off)", c.SessionIdleTTL, c.AccessTTL)
	}
	if c.RefreshReuseGrace > time.Minute {
		return fmt.Errorf("AUTHD_REFRESH_REUSE_GRACE: %s is longer than the maximum of 1m", c.RefreshReuseGrace)
	}
	if c.LoginMaxFailuresAccountAnyIP < c.LoginMaxFailuresAccount {
		return fmt.Errorf("AUTHD_LOGIN_MAX_FAILURES_ACCOUNT_ANY_IP: %d is below AUTHD_LOGIN_MAX_FAILURES_ACCOUNT %d",
			c.LoginMaxFailuresAccountAnyIP, c.LoginMaxFailuresAccount)
	}
	if c.LoginBackoffMax < c.LoginBackoffBase || c.LoginBackoffMax > 24*time.Hour {
		return fmt.Errorf("AUTHD_LOGIN_BACKOFF_MAX: %s must be from AUTHD_LOGIN_BACKOFF_BASE %s to 24h", c.LoginBackoffMax, c.LoginBackoffBase)
	}
	if c.AuditRetention < time.Hour {
		return fmt.Errorf("AUTHD_AUDIT_RETENTION: %s is shorter than the minimum of 1h", c.AuditRetention)
	}
	if len(c.SigningKeys) > 0 && c.KeyEncryptionKey != "" {
		return fmt.Errorf("AUTHD_KEY_ENCRYPTION_KEY: set together with AUTHD_SIGNING_KEYS; choose database keys or key files " +
			"(to move file keys into the database: authd keys import, then unset AUTHD_SIGNING_KEYS)")
	}
	if c.KeyAlgorithm != "EdDSA" && c.KeyAlgorithm != "ES256" {
		return fmt.Errorf("AUTHD_KEY_ALGORITHM: %q is not EdDSA or ES256", c.KeyAlgorithm)
	}
	rot, err := cron.ParseStandard(c.KeyRotation)
	if err != nil {
		return fmt.Errorf("AUTHD_KEY_ROTATION: %q: %v", c.KeyRotation, err)
	}
	// The narrowest gap of the next year of runs (a monthly spec's February
	// is shorter than its other months).
	minGap := max(MinKeyRotationInterval, 2*c.AccessTTL)
	if c.StatusList {
		// A replaced key also stays published for a signed status list's
		// validity (statuslist.ValidityFor: ten ttls).
		minGap = max(minGap, 2*10*c.StatusListTTL)
	}
	for t, i := rot.Next(time.Unix(0, 0).UTC()), 0; i < 400; i++ {
		n := rot.Next(t)
		if n.Sub(t) < minGap {
			return fmt.Errorf("AUTHD_KEY_ROTATION: %q rotates %s apart; the minimum is %s (1h, and twice AUTHD_ACCESS_TTL)", c.KeyRotation, n.Sub(t), minGap)
		}
		t = n
	}
	if _, err := cron.ParseStandard(c.PruneSchedule); err != nil {
		return fmt.Errorf("AUTHD_PRUNE_SCHEDULE: %q: %v", c.PruneSchedule, err)
	}
	if c.RedisURL != "" {
		if u, err := url.Parse(c.RedisURL); err != nil || (u.Scheme != "redis" && u.Scheme != "rediss") {
			return fmt.Errorf("AUTHD_REDIS_URL: want a redis:// or rediss:// URL")
		}
	}
	return nil
}

// Redacted returns the configuration for the start-up log line, with the
// credentials inside URLs masked.
func (c Config) Redacted() []any {
	return []any{
		"database_url", RedactURL(c.DatabaseURL), "database_direct_url", RedactURL(c.DatabaseDirectURL),
		"database_pooler", c.DatabasePooler, "database_read_url", RedactURL(c.DatabaseReadURL),
		"read_max_lag", c.ReadMaxLag.String(), "db_max_conns", c.DBMaxConns,
		"addr", c.Addr, "metrics_addr", c.MetricsAddr, "issuer", c.Issuer, "audience", c.Audience,
		"access_ttl", c.AccessTTL.String(), "session_ttl", c.SessionTTL.String(),
		"session_idle_ttl", c.SessionIdleTTL.String(), "refresh_reuse_grace", c.RefreshReuseGrace.String(),
		"max_sessions_per_user", c.MaxSessionsPerUser,
		"signing_keys", c.SigningKeys, "key_encryption_key_set", c.KeyEncryptionKey != "",
		"key_rotation", c.KeyRotation, "key_algorithm", c.KeyAlgorithm, "prune_schedule", c.PruneSchedule,
		"session_retention", c.SessionRetention.String(), "audit_retention", c.AuditRetention.String(), "redis_url", RedactURL(c.RedisURL),
		"trusted_proxies", fmt.Sprint(c.TrustedProxies), "log_level", c.LogLevel.String(),
		"login_max_failures_account", c.LoginMaxFailuresAccount, "login_max_failures_account_any_ip", c.LoginMaxFailuresAccountAnyIP,
		"login_max_failures_ip", c.LoginMaxFailuresIP, "login_max_in_flight_ip", c.LoginMaxInFlightIP,
		"login_backoff_base", c.LoginBackoffBase.String(), "login_backoff_max", c.LoginBackoffMax.String(),
		"status_list", c.StatusList, "console", c.Console, "status_list_size", c.StatusListSize, "status_list_ttl", c.StatusListTTL.String(),
	}
}

// MigrationURL is where migrations run: AUTHD_DATABASE_DIRECT_URL when set,
// else DATABASE_URL. golang-migrate holds a session advisory lock from the
// first statement to the last, so through a transaction-mode pool the lock
// and its unlock could land on different server sessions, leaving the lock
// held for good; that combination is refused with what to do instead.
func (c Config) MigrationURL() (string, error) {
	if c.DatabaseDirectURL != "" {
		return c.DatabaseDirectURL, nil
	}
	if c.DatabasePooler == "transaction" {
		return "", fmt.Errorf("AUTHD_DATABASE_DIRECT_URL: required to migrate when AUTHD_DATABASE_POOLER=transaction: " +
			"migrations hold a session advisory lock, which a transaction-mode pool (PgBouncer pool_mode = transaction) cannot keep; " +
			"set it to the primary's own address, or start with --no-migrate and run authd migrate up with a direct DATABASE_URL")
	}
	return c.DatabaseURL, nil
}

// dbMaxConns reads AUTHD_DB_MAX_CONNS: 0 when it is unset and dbURL names
// pool_max_conns, an error when both are set.
func dbMaxConns(getenv func(string) string, dbURL string) (int, error) {
	inURL := false
	if u, err := url.Parse(dbURL); err == nil {
		inURL = u.Query().Has("pool_max_conns")
	}
	if getenv("AUTHD_DB_MAX_CONNS") == "" && inURL {
		return 0, nil
	}
	if inURL {
		return 0, fmt.Errorf("AUTHD_DB_MAX_CONNS: set, and DATABASE_URL names pool_max_conns too; set one of them")
	}
	return integer(getenv, "AUTHD_DB_MAX_CONNS", DefaultDBMaxConns, 1, 1000)
}

// RedactURL masks the secrets of a connection URL (redact.URL).
func RedactURL(s string) string { return redact.URL(s) }

// URLSecrets returns the secrets RedactURL masks, escaped forms included
// (redact.URLSecrets).
func URLSecrets(s string) []string { return redact.URLSecrets(s) }

// collide reports whether listening on a and on b would conflict: the same
// port (not 0, which picks a free one each time) on the same host, or on
// any host when either is a wildcard (empty, 0.0.0.0 or ::).
func collide(a, b string) bool {
	ha, pa, errA := net.SplitHostPort(a)
	hb, pb, errB := net.SplitHostPort(b)
	if errA != nil || errB != nil {
		return a == b
	}
	if pa != pb || pa == "0" {
		return false
	}
	wildcard := func(h string) bool { return h == "" || h == "0.0.0.0" || h == "::" }
	return ha == hb || wildcard(ha) || wildcard(hb)
}

func duration(getenv func(string) string, name string, def time.Duration) (time.Duration, error) {
	v := getenv(name)
	if v == "" {
		return def, nil
	}
	d, err := time.ParseDuration(v)
	if err != nil {
		return 0, fmt.Errorf("%s: %q is not a duration such as 30s, 10m or 720h", name, v)
	}
	if d < time.Second {
		return 0, fmt.Errorf("%s: %s is below the minimum of 1s", name, d)
	}
	return d, nil
}

// optionalDuration is a duration whose default, 0, means "off"; a value
// given must be 0 or at least one second.
func optionalDuration(getenv func(string) string, name string) (time.Duration, error) {
	v := getenv(name)
	if v == "" {
		return 0, nil
	}
	d, err := time.ParseDuration(v)
	if err != nil || d < 0 {
		return 0, fmt.Errorf("%s: %q is not a duration such as 0, 30s or 12h", name, v)
	}
	if d != 0 && d < time.Second {
		return 0, fmt.Errorf("%s: %s is below the minimum of 1s (0 turns it off)", name, d)
	}
	return d, nil
}

func integer(getenv func(string) string, name string, def, lo, hi int) (int, error) {
	v := getenv(name)
	if v == "" {
		return def, nil
	}
	n, err := strconv.Atoi(v)
	if err != nil || n < lo || n > hi {
		return 0, fmt.Errorf("%s: %q is not an integer from %d to %d", name, v, lo, hi)
	}
	return n, nil
}

func splitList(s string) []string {
	var out []string
	for _, p := range strings.Split(s, ",") {
		if p = strings.TrimSpace(p); p != "" {
			out = append(out, p)
		}
	}
	return out
}

func or(v, def string) string {
	if v == "" {
		return def
	}
	return v
}
