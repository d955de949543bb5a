package verifier

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"math/rand/v2"
	"net/http"
	"net/url"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/golang-jwt/jwt/v5"
	"github.com/redis/go-redis/v9"
)

// Type is the JWT "typ" header every authd access token carries (RFC 9068).
const Type = "at+jwt"

// MaxTokenBytes bounds the size of a token Verify will look at; longer
// input fails with ErrMalformed before any parsing. authd's tokens are about
// 600 bytes.
const MaxTokenBytes = 8 << 10

// Clock tells the time. Verify, the denylist's expiry and the staleness
// check read it; poll scheduling and the JWKS rate limit use real timers.
// *clock.Manual from authd's tests and any type with a Now method satisfy it.
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
	// InitialTimeout bounds New: the JWKS and the first full snapshot must
	// load within it, retrying with backoff, or New fails. Default 30s.
	InitialTimeout time.Duration
	// KeyRefetchInterval is the minimum wall-clock time between two JWKS
	// fetches triggered by unknown key ids; a token naming an unknown kid
	// within it fails with ErrSignature. Default 10s.
	KeyRefetchInterval time.Duration
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
		c.HTTPClient = &http.Client{Timeout: 30 * time.Second}
	}
	if c.Clock == nil {
		c.Clock = realClock{}
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

// Claims are the claims of a verified access token.
type Claims struct {
	Subject   string    // "sub": the user id
	SessionID string    // "sid": the session the token belongs to
	ID        string    // "jti": the token id
	Role      string    // "role": the user's role when the token was minted
	Issuer    string    // "iss"
	Audience  []string  // "aud"
	ExpiresAt time.Time // "exp"
	IssuedAt  time.Time // "iat"; zero if absent
	NotBefore time.Time // "nbf"; zero if absent
}

// tokenClaims is the wire form golang-jwt decodes into.
type tokenClaims struct {
	jwt.RegisteredClaims
	SID  string `json:"sid"`
	Role string `json:"role"`
}

// Verifier checks access tokens and keeps the denylist current. It is safe
// for concurrent use. Create it with New and stop it with Close.
type Verifier struct {
	cfg    Config
	log    *slog.Logger
	parser *jwt.Parser
	keys   *keyCache
	deny   *denylist
	feed   *feedClient
	redis  *redis.Client

	lastSync     atomic.Int64 // Clock time of the last good poll, Unix nanoseconds
	polls        atomic.Uint64
	pollErrors   atomic.Uint64
	pushMessages atomic.Uint64

	cancel    context.CancelFunc
	wg        sync.WaitGroup
	closeOnce sync.Once
	closed    atomic.Bool
}

// New validates cfg, loads the JWKS and the full revocation snapshot, and
// starts polling (and, with RedisURL, listening). It returns once the
// snapshot is loaded, so the Verifier never accepts a token revoked before
// it started, or fails after cfg.InitialTimeout with the last error.
//
// ctx bounds the background goroutines for the Verifier's whole life (they
// also stop on Close); bound the start-up with InitialTimeout, not with a
// deadline on ctx, or the denylist stops updating when the deadline passes.
func New(ctx context.Context, cfg Config) (*Verifier, error) {
	if err := cfg.setDefaults(); err != nil {
		return nil, err
	}
	v := &Verifier{
		cfg: cfg,
		log: cfg.Logger,
		keys: &keyCache{
			client: cfg.HTTPClient, minInterval: cfg.KeyRefetchInterval, log: cfg.Logger,
		},
		deny: newDenylist(),
		feed: newFeedClient(cfg),
	}
	runCtx, cancel := context.WithCancel(ctx)
	v.cancel = cancel

	var ps *redis.PubSub
	if cfg.RedisURL != "" {
		opt, err := redis.ParseURL(cfg.RedisURL)
		if err != nil {
			cancel()
			return nil, fmt.Errorf("verifier: Config.RedisURL: %w", err)
		}
		v.redis = redis.NewClient(opt)
		// Subscribe before the snapshot, so nothing falls between the two.
		ps = v.redis.Subscribe(runCtx, PushChannel)
	}

	if err := v.initialLoad(runCtx); err != nil {
		cancel()
		if ps != nil {
			_ = ps.Close()
			_ = v.redis.Close()
		}
		return nil, err
	}
	if ps != nil {
		sctx, scancel := context.WithTimeout(runCtx, min(cfg.InitialTimeout, 5*time.Second))
		if _, err := ps.Receive(sctx); err != nil {
			v.log.Warn("verifier: Redis subscription not confirmed; revocations arrive by polling until it recovers",
				"channel", PushChannel, "err", err)
		}
		scancel()
		v.wg.Add(1)
		go v.listen(runCtx, ps)
	}
	v.wg.Add(1)
	go v.pollLoop(runCtx)
	return v, nil
}

// initialLoad reads the discovery document, then fetches the JWKS and the
// full snapshot, retrying with backoff until all three succeeded or
// InitialTimeout passed. An unusable discovery document (another issuer,
// a malformed endpoint) fails at once.
func (v *Verifier) initialLoad(ctx context.Context) error {
	ctx, cancel := context.WithTimeout(ctx, v.cfg.InitialTimeout)
	defer cancel()
	discovered, keysOK, feedOK := false, false, false
	var lastErr error
	for attempt := 0; ; attempt++ {
		if !discovered {
			ep, issuer, found, err := discover(ctx, v.cfg.HTTPClient, v.cfg.IssuerURL, v.cfg.Issuer)
			switch {
			case errors.Is(err, errBadDocument):
				return fmt.Errorf("verifier: %w", err)
			case err != nil:
				lastErr = err
			default:
				discovered = true
				if !found {
					issuer = v.cfg.IssuerURL
					v.log.Info("verifier: no discovery document; using authd's fixed paths", "issuer_url", v.cfg.IssuerURL)
				}
				v.use(ep, issuer)
			}
		}
		if discovered && !keysOK {
			if err := v.keys.refresh(ctx, true); err != nil {
				lastErr = err
			} else {
				keysOK = true
			}
		}
		if keysOK && !feedOK {
			if err := v.poll(ctx); err != nil {
				lastErr = err
			} else {
				feedOK = true
			}
		}
		if keysOK && feedOK {
			return nil
		}
		t := time.NewTimer(v.backoff(attempt + 1))
		select {
		case <-ctx.Done():
			t.Stop()
			return fmt.Errorf("verifier: initial load from %s did not complete within %s: %w",
				v.cfg.IssuerURL, v.cfg.InitialTimeout, lastErr)
		case <-t.C:
		}
	}
}

// use points the Verifier at ep and expects issuer when Config.Issuer is
// empty. It runs before any goroutine of the Verifier reads these fields.
func (v *Verifier) use(ep endpoints, issuer string) {
	if v.cfg.Issuer == "" {
		v.cfg.Issuer = issuer
	}
	v.keys.url = ep.jwks
	v.feed.url = ep.feed
	v.feed.cc.TokenURL = ep.token
	v.parser = jwt.NewParser(
		// Pinned algorithms (RFC 8725 3.1): no "none", no HMAC.
		jwt.WithValidMethods([]string{algEdDSA, algES256}),
		jwt.WithIssuer(v.cfg.Issuer),
		jwt.WithAudience(v.cfg.Audience),
		jwt.WithExpirationRequired(),
		jwt.WithIssuedAt(),
		jwt.WithLeeway(v.cfg.Leeway),
		jwt.WithTimeFunc(v.cfg.Clock.Now),
	)
}

// backoff is the wait after the n-th consecutive failure: 100ms doubling,
// capped at PollInterval, jittered.
func (v *Verifier) backoff(n int) time.Duration {
	d := 100 * time.Millisecond
	for i := 1; i < n && d < v.cfg.PollInterval; i++ {
		d *= 2
	}
	return jitter(min(d, v.cfg.PollInterval))
}

// jitter spreads d by ±10%.
func jitter(d time.Duration) time.Duration {
	return time.Duration(float64(d) * (0.9 + 0.2*rand.Float64()))
}

func (v *Verifier) pollLoop(ctx context.Context) {
	defer v.wg.Done()
	failures := 0
	var lastSweep int64
	for {
		wait := jitter(v.cfg.PollInterval)
		if failures > 0 {
			wait = v.backoff(failures)
		}
		t := time.NewTimer(wait)
		select {
		case <-ctx.Done():
			t.Stop()
			return
		case <-t.C:
		}
		if err := v.poll(ctx); err != nil {
			if ctx.Err() != nil {
				return
			}
			failures++
			v.log.Warn("verifier: revocation feed poll failed; keeping the current denylist",
				"err", err, "consecutive_failures", failures, "last_sync", v.LastSync())
		} else {
			failures = 0
		}
		// At most one sweep per Clock second: a pass over a large list is
		// not free, and entries only expire with whole seconds.
		if now := v.cfg.Clock.Now().Unix(); now > lastSweep {
			lastSweep = now
			v.deny.sweep(v.sweepCutoff())
		}
	}
}

// sweepCutoff is the exp before which an entry can be dropped: a token with
// exp < cutoff fails the exp check even with the leeway.
func (v *Verifier) sweepCutoff() int64 {
	return v.cfg.Clock.Now().Add(-v.cfg.Leeway).Unix() - 1
}

// poll runs one feed request and merges its entries.
func (v *Verifier) poll(ctx context.Context) error {
	v.polls.Add(1)
	cutoff := v.sweepCutoff()
	err := v.feed.poll(ctx, func(r Revocation) {
		if r.Exp < cutoff {
			return // every token of the session has expired already
		}
		if !v.deny.add(r) {
			v.log.Warn("verifier: feed entry with a malformed sid ignored", "sid", r.SID)
		}
	})
	if err != nil {
		v.pollErrors.Add(1)
		return err
	}
	v.lastSync.Store(v.cfg.Clock.Now().UnixNano())
	return nil
}

// Close stops polling and listening and waits for every goroutine the
// Verifier started to end. Afterwards Verify returns ErrClosed, so a closed
// Verifier is never trusted by mistake. Close is idempotent; it returns the
// error of closing the Redis client, if any.
func (v *Verifier) Close() error {
	var err error
	v.closeOnce.Do(func() {
		v.closed.Store(true)
		v.cancel()
		v.wg.Wait()
		if v.redis != nil {
			err = v.redis.Close()
		}
	})
	return err
}

// LastSync is the Clock time of the last successful feed poll, for health
// checks: time.Since(v.LastSync()) > MaxStaleness means Verify answers
// ErrStale.
func (v *Verifier) LastSync() time.Time {
	return time.Unix(0, v.lastSync.Load())
}

// DenylistSize is the number of revoked, not yet expired sessions held.
func (v *Verifier) DenylistSize() int { return v.deny.len() }

// Stats are counters for metrics. All counts are since New.
type Stats struct {
	LastSync     time.Time // as LastSync
	Stale        bool      // the last good poll is older than MaxStaleness
	DenylistSize int       // as DenylistSize
	Polls        uint64    // feed requests made, failed ones included
	PollErrors   uint64    // feed requests that failed
	PushMessages uint64    // Redis messages received
}

// Stats returns a snapshot of the Verifier's counters.
func (v *Verifier) Stats() Stats {
	return Stats{
		LastSync: v.LastSync(), Stale: v.stale(), DenylistSize: v.deny.len(),
		Polls: v.polls.Load(), PollErrors: v.pollErrors.Load(), PushMessages: v.pushMessages.Load(),
	}
}

func (v *Verifier) stale() bool {
	return v.cfg.Clock.Now().UnixNano()-v.lastSync.Load() > int64(v.cfg.MaxStaleness)
}

// Verify checks token and returns its claims. It makes no network call
// unless the token names a key id the Verifier has not seen, which triggers
// one shared, rate-limited JWKS fetch bounded by ctx.
//
// Failures wrap one of ErrMalformed, ErrSignature, ErrExpired,
// ErrNotYetValid, ErrIssuer, ErrAudience, ErrRevoked, ErrStale or ErrClosed.
// The checks run in that order of cost, so a forged token never reaches the
// denylist and ErrStale is only returned for an otherwise valid token.
func (v *Verifier) Verify(ctx context.Context, token string) (*Claims, error) {
	if v.closed.Load() {
		return nil, ErrClosed
	}
	if len(token) > MaxTokenBytes {
		return nil, fmt.Errorf("%w: longer than %d bytes", ErrMalformed, MaxTokenBytes)
	}
	var tc tokenClaims
	if _, err := v.parser.ParseWithClaims(token, &tc, func(t *jwt.Token) (any, error) {
		return v.keyFor(ctx, t)
	}); err != nil {
		return nil, mapError(err)
	}
	sid, ok := parseID(tc.SID)
	if !ok || tc.ID == "" || tc.Subject == "" {
		return nil, fmt.Errorf("%w: sid must be a UUID, jti and sub must be set", ErrMalformed)
	}
	if !v.cfg.FailOpen && v.stale() {
		return nil, fmt.Errorf("%w: last successful poll at %s", ErrStale, v.LastSync().UTC().Format(time.RFC3339))
	}
	if v.deny.denied(sid) {
		return nil, fmt.Errorf("%w: session %s", ErrRevoked, tc.SID)
	}
	return tc.claims(), nil
}

func (tc *tokenClaims) claims() *Claims {
	c := &Claims{
		Subject: tc.Subject, SessionID: tc.SID, ID: tc.ID, Role: tc.Role,
		Issuer: tc.Issuer, Audience: tc.Audience, ExpiresAt: tc.ExpiresAt.Time,
	}
	if tc.IssuedAt != nil {
		c.IssuedAt = tc.IssuedAt.Time
	}
	if tc.NotBefore != nil {
		c.NotBefore = tc.NotBefore.Time
	}
	return c
}

// keyFor chooses the verification key: the kid names it, the key's type
// fixes the algorithm, and the token's alg must agree (no key confusion).
func (v *Verifier) keyFor(ctx context.Context, t *jwt.Token) (any, error) {
	if typ, _ := t.Header["typ"].(string); typ != Type {
		return nil, fmt.Errorf("%w: typ %q is not %s", ErrMalformed, typ, Type)
	}
	kid, _ := t.Header["kid"].(string)
	if kid == "" || len(kid) > 128 {
		return nil, fmt.Errorf("%w: missing or oversized kid", ErrMalformed)
	}
	k, err := v.keys.get(ctx, kid)
	if err != nil {
		if errors.Is(err, ErrSignature) {
			return nil, err
		}
		return nil, fmt.Errorf("%w: fetch keys for kid %q: %w", ErrSignature, kid, err)
	}
	if t.Method.Alg() != k.alg {
		return nil, fmt.Errorf("%w: alg %s does not match key %s (%s)", ErrSignature, t.Method.Alg(), kid, k.alg)
	}
	return k.key, nil
}

// mapError turns golang-jwt's errors into this package's sentinels, keeping
// the original for the message.
func mapError(err error) error {
	for _, own := range []error{ErrMalformed, ErrSignature} {
		if errors.Is(err, own) {
			return fmt.Errorf("%w: %v", own, err)
		}
	}
	var want error
	switch {
	case errors.Is(err, jwt.ErrTokenMalformed), errors.Is(err, jwt.ErrTokenRequiredClaimMissing):
		want = ErrMalformed
	case errors.Is(err, jwt.ErrTokenSignatureInvalid), errors.Is(err, jwt.ErrTokenUnverifiable):
		want = ErrSignature
	case errors.Is(err, jwt.ErrTokenExpired):
		want = ErrExpired
	case errors.Is(err, jwt.ErrTokenNotValidYet), errors.Is(err, jwt.ErrTokenUsedBeforeIssued):
		want = ErrNotYetValid
	case errors.Is(err, jwt.ErrTokenInvalidIssuer):
		want = ErrIssuer
	case errors.Is(err, jwt.ErrTokenInvalidAudience):
		want = ErrAudience
	default:
		want = ErrMalformed
	}
	return fmt.Errorf("%w: %v", want, err)
}
