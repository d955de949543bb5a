package verifier

import (
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"net/url"
	"strings"
	"time"
)

// Clock tells the time. Verify, the denylist's expiry, the staleness check
// and the JWKS's age (refetched before it outlives its max-age) read it;
// poll scheduling and the unknown-kid rate limit use real timers.
// *verifiertest.Clock, authd's own test clock and any other type with a Now
// method satisfy it.
type Clock interface {
	Now() time.Time
}

type realClock struct{}

func (realClock) Now() time.Time { return time.Now() }

// Defaults applied by New to zero Config fields.
const (
	DefaultPollInterval       = 30 * time.Second
	DefaultLeeway             = 30 * time.Second
	DefaultInitialTimeout     = 30 * time.Second
	DefaultKeyRefetchInterval = 10 * time.Second
	DefaultAudience           = "authd"
	// DefaultStalenessFactor: MaxStaleness defaults to this many poll
	// intervals, so two consecutive failed polls are tolerated and the third
	// turns Verify to ErrStale (90s with the default interval).
	DefaultStalenessFactor = 3
)

// defaultHTTPTimeout caps every request of the default HTTPClient, so a hung
// authd cannot stall the poll loop forever; it is generous because a full
// snapshot of a large denylist is one response.
const defaultHTTPTimeout = 30 * time.Second

// Config configures a Verifier. IssuerURL, ClientID and ClientSecret are
// required; every other zero field takes the default its comment states.
type Config struct {
	// IssuerURL is where authd answers, e.g. "https://auth.example.com".
	// New first reads authd's RFC 8414 metadata at IssuerURL +
	// DiscoveryPath ("/.well-known/oauth-authorization-server") and then
	// uses the paths of the token_endpoint, jwks_uri and
	// revoked_sessions_endpoint it names, always on IssuerURL's scheme and
	// host: authd builds those URLs from its public AUTHD_ISSUER, which a
	// service may not reach, and the client secret must never be sent to an
	// origin the document chose. Where IssuerURL answers that path with 404
	// (an authd without
	// discovery), the JWKS is read from IssuerURL + "/.well-known/jwks.json",
	// tokens are obtained from IssuerURL + "/token" and the feed is polled at
	// IssuerURL + "/sessions/revoked". Required.
	IssuerURL string
	// Issuer is the expected "iss" claim (authd's AUTHD_ISSUER). When set,
	// a discovery document naming any other issuer makes New fail (RFC 8414
	// section 3.3). Default: the discovery document's issuer, or IssuerURL
	// when there is no discovery document.
	Issuer string
	// Audience must appear in the "aud" claim (authd's AUTHD_AUDIENCE).
	// Default "authd", authd's own default.
	Audience string
	// ClientID and ClientSecret are the credentials of an authd user with
	// role "service", exchanged for a token with the OAuth 2.0 client
	// credentials grant; the token is renewed when it expires or the feed
	// answers 401. Required.
	ClientID     string
	ClientSecret string
	// PollInterval is the mean time between two polls of the feed; each wait
	// is jittered by ±10% so a fleet does not poll in step. Default 30s.
	PollInterval time.Duration
	// RedisURL (redis:// or rediss://), if set, subscribes to PushChannel so
	// revocations arrive within milliseconds. Push is best effort: a dead
	// Redis only means revocations arrive with the next poll. Default: none.
	RedisURL string
	// MaxStaleness is how old the last successful poll may be before Verify
	// fails closed with ErrStale (unless FailOpen). Push messages do not
	// count as a sync: only the feed proves nothing was missed. Default
	// DefaultStalenessFactor × PollInterval; it must be at least PollInterval.
	MaxStaleness time.Duration
	// FailOpen makes Verify accept otherwise valid tokens while the
	// revocation data is stale instead of failing with ErrStale. RISK: while
	// authd's feed is unreachable (or deliberately blocked by an attacker),
	// a session revoked during the outage keeps working on this service until
	// its access tokens expire. Default false (fail closed).
	FailOpen bool
	// HTTPClient makes every request to authd. Default: a client with a 30s
	// timeout. Its Timeout should exceed the time a full snapshot takes.
	HTTPClient *http.Client
	// Clock is the time source for token validation, denylist expiry and
	// staleness. Default: the wall clock.
	Clock Clock
	// Leeway is the clock skew tolerated on exp, nbf and iat. Default 30s;
	// a negative value means none.
	Leeway time.Duration
	// Logger receives poll failures and other operational events. Default:
	// slog.Default().
	Logger *slog.Logger
	// InitialTimeout bounds New: the discovery document, the JWKS and the
	// first full snapshot must load within it (and before the deadline of
	// New's context, if that comes first), retrying with backoff, or New
	// fails. Default 30s.
	InitialTimeout time.Duration
	// KeyRefetchInterval is the minimum wall-clock time between two JWKS
	// fetches triggered by unknown key ids; a token naming an unknown kid
	// within it fails with ErrSignature. Default 10s.
	KeyRefetchInterval time.Duration
	// GapTimeout is how long a push sequence number skipped by a later
	// message may stay unfilled before the verifier polls the feed at once
	// (RedisURL only), on the wall clock like PollInterval (not Clock,
	// which is the tokens' time). Default DefaultGapTimeout.
	GapTimeout time.Duration
}

func (c *Config) setDefaults() error {
	if c.IssuerURL == "" {
		return errors.New("verifier: Config.IssuerURL is required")
	}
	u, err := url.Parse(c.IssuerURL)
	if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
		return fmt.Errorf("verifier: Config.IssuerURL %q is not an absolute http(s) URL", c.IssuerURL)
	}
	c.IssuerURL = strings.TrimRight(c.IssuerURL, "/")
	if c.ClientID == "" || c.ClientSecret == "" {
		return errors.New("verifier: Config.ClientID and Config.ClientSecret are required")
	}
	if c.Audience == "" {
		c.Audience = DefaultAudience
	}
	if c.PollInterval <= 0 {
		c.PollInterval = DefaultPollInterval
	}
	if c.MaxStaleness == 0 {
		c.MaxStaleness = DefaultStalenessFactor * c.PollInterval
	}
	if c.MaxStaleness < c.PollInterval {
		return fmt.Errorf("verifier: Config.MaxStaleness %s is shorter than PollInterval %s", c.MaxStaleness, c.PollInterval)
	}
	if c.HTTPClient == nil {
		c.HTTPClient = &http.Client{Timeout: defaultHTTPTimeout}
	}
	if c.Clock == nil {
		c.Clock = realClock{}
	}
	if c.GapTimeout <= 0 {
		c.GapTimeout = DefaultGapTimeout
	}
	switch {
	case c.Leeway == 0:
		c.Leeway = DefaultLeeway
	case c.Leeway < 0:
		c.Leeway = 0
	}
	if c.Logger == nil {
		c.Logger = slog.Default()
	}
	if c.InitialTimeout <= 0 {
		c.InitialTimeout = DefaultInitialTimeout
	}
	if c.KeyRefetchInterval <= 0 {
		c.KeyRefetchInterval = DefaultKeyRefetchInterval
	}
	return nil
}
