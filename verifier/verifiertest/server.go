package verifiertest

import (
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/seedc5a8123e/authd/verifier"
)

const (
	// DefaultIssuer is a Server's issuer unless WithIssuer says otherwise.
	// It resolves nowhere, like authd's public AUTHD_ISSUER seen from inside
	// a network: a Verifier calls the paths of the endpoints the metadata
	// names on IssuerURL, as it does with authd.
	DefaultIssuer = "http://authd.test"
	// ClientID and ClientSecret are the one service credential a Server's
	// token endpoint accepts; any other gets 401 invalid_client.
	ClientID     = "verifiertest-service"
	ClientSecret = "verifiertest-secret"
	// DefaultTokenLifetime is the lifetime of the tokens Mint signs and of
	// the service token, authd's default AUTHD_ACCESS_TTL.
	DefaultTokenLifetime = 10 * time.Minute
)

// Timings Config chooses; see there.
const (
	testPollInterval       = 20 * time.Millisecond
	testMaxStaleness       = time.Minute
	testKeyRefetchInterval = time.Nanosecond // shorter than any fetch: no rate limit
)

// Server is a stand-in for authd on a local httptest server. Its methods are
// safe for concurrent use, also while a Verifier polls it.
type Server struct {
	// URL is the server's base URL, e.g. "http://127.0.0.1:49152": what
	// a Verifier's Config.IssuerURL must be.
	URL string

	srv       *httptest.Server
	issuer    string
	audience  string
	clock     verifier.Clock // nil: the wall clock
	discovery bool

	mu       sync.Mutex
	keys     []*key // published in this order; keys[0] signs
	keySeq   int    // for the next key id
	revs     []verifier.Revocation
	sessions map[string]session
	feedDown bool
	svcToken string
	svcSeq   int

	discoveryHits, jwksHits, tokenHits, feedHits atomic.Int64
}

// session is what a Server remembers of the tokens Mint signed for one sid,
// for the Revocation that Revoke publishes.
type session struct {
	jti string // of the newest token
	exp int64  // the latest exp of any token
}

// An Option configures a Server.
type Option func(*Server)

// WithIssuer sets the Server's issuer: the "iss" of the tokens it mints and
// of its metadata document, whose endpoint URLs are built from it as authd
// builds them from AUTHD_ISSUER. Default DefaultIssuer.
func WithIssuer(issuer string) Option {
	return func(s *Server) { s.issuer = issuer }
}

// WithAudience sets the "aud" of the tokens the Server mints. Default
// "authd", the default of both authd and verifier.Config.
func WithAudience(aud string) Option {
	return func(s *Server) { s.audience = aud }
}

// WithClock makes the Server take the time from c: the iat, nbf and exp of
// the tokens it mints and the exp of sessions revoked before any token was
// minted for them. Give the Verifier the same clock (Config does), so that
// both agree on when a token expires. Default: the wall clock.
func WithClock(c verifier.Clock) Option {
	return func(s *Server) { s.clock = c }
}

// WithoutDiscovery makes the Server answer 404 at the metadata path, as an
// authd without discovery does. A Verifier then uses authd's fixed paths
// under IssuerURL and expects IssuerURL as the issuer unless Config.Issuer
// is set (Config sets it).
func WithoutDiscovery() Option {
	return func(s *Server) { s.discovery = false }
}

// NewServer starts a Server and closes it when tb's test ends (see
// testing.TB.Cleanup). Cleanups run last in, first out, so a Verifier
// created afterwards and closed with t.Cleanup stops polling before the
// Server goes away.
func NewServer(tb testing.TB, opts ...Option) *Server {
	tb.Helper()
	s := Start(opts...)
	tb.Cleanup(s.Close)
	return s
}

// Start starts a Server the caller must Close: NewServer for code that has
// no testing.TB, such as an Example.
func Start(opts ...Option) *Server {
	s := &Server{
		issuer:    DefaultIssuer,
		audience:  verifier.DefaultAudience,
		discovery: true,
		sessions:  make(map[string]session),
	}
	for _, o := range opts {
		o(s)
	}
	s.keys = []*key{s.newKey()}
	s.renewServiceToken()

	mux := http.NewServeMux()
	mux.HandleFunc("GET "+verifier.DiscoveryPath, s.serveMetadata)
	mux.HandleFunc("GET /.well-known/jwks.json", s.serveJWKS)
	mux.HandleFunc("POST /token", s.serveToken)
	mux.HandleFunc("GET /sessions/revoked", s.serveFeed)
	s.srv = httptest.NewServer(mux)
	s.URL = s.srv.URL
	return s
}

// Close shuts the Server down and waits for the requests in progress to
// end; a Verifier on it then fails to poll and, after MaxStaleness, answers
// ErrStale. Close may be called more than once.
func (s *Server) Close() { s.srv.Close() }

// Issuer is the "iss" of the Server's tokens (see WithIssuer).
func (s *Server) Issuer() string { return s.issuer }

// Audience is the "aud" of the Server's tokens (see WithAudience).
func (s *Server) Audience() string { return s.audience }

// Config returns a verifier.Config for a Verifier on s. IssuerURL, Issuer,
// Audience and the service credential are s's, and Clock is the one given
// WithClock, if any. The timings suit tests:
//   - PollInterval is 20ms, so a Revoke reaches the Verifier within a few
//     milliseconds;
//   - MaxStaleness is one minute, far beyond the scheduling delays of a
//     loaded test machine, so Verify never answers ErrStale by accident
//     (advance a Clock past it to test staleness);
//   - KeyRefetchInterval is 1ns, which lifts the rate limit on JWKS
//     fetches, so the tokens of a key RotateKey made are accepted at once.
//
// Change the fields you test, e.g. FailOpen, before calling verifier.New;
// raising PollInterval beyond a minute needs a MaxStaleness at least as
// long, or New refuses the Config.
func (s *Server) Config() verifier.Config {
	return verifier.Config{
		IssuerURL:          s.URL,
		Issuer:             s.issuer,
		Audience:           s.audience,
		ClientID:           ClientID,
		ClientSecret:       ClientSecret,
		PollInterval:       testPollInterval,
		MaxStaleness:       testMaxStaleness,
		KeyRefetchInterval: testKeyRefetchInterval,
		Clock:              s.clock,
	}
}

// Revoke revokes session sid as logging out or an administrator's
// revocation in authd does: it appends a verifier.Revocation to the feed,
// which a Verifier on s picks up with its next poll. The entry names the
// newest token Mint signed for sid and the latest exp of those tokens; for
// a session Mint signed nothing for, a new jti and an exp
// DefaultTokenLifetime from now.
func (s *Server) Revoke(sid string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	ses, ok := s.sessions[sid]
	if !ok {
		ses = session{jti: newUUID(), exp: s.now().Add(DefaultTokenLifetime).Unix()}
	}
	s.revs = append(s.revs, verifier.Revocation{JTI: ses.jti, SID: sid, Exp: ses.exp})
}

// SetFeedDown makes the feed answer 503 Service Unavailable while down is
// true, an outage of authd's feed; the other endpoints keep working. A
// Verifier keeps its denylist meanwhile and, once its last successful poll
// is older than MaxStaleness on its Clock, fails closed with ErrStale.
// Polls that fail are counted in the Verifier's Stats.PollErrors, so a test
// can wait for one before it advances a Clock.
func (s *Server) SetFeedDown(down bool) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.feedDown = down
}

// RenewServiceToken makes the feed refuse the service token the token
// endpoint issued so far with 401 invalid_token, as authd does once that
// token has expired on authd's clock or its signing key was removed; the
// token endpoint issues a new one from then on.
func (s *Server) RenewServiceToken() {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.renewServiceToken()
}

func (s *Server) renewServiceToken() {
	s.svcSeq++
	s.svcToken = fmt.Sprintf("verifiertest-service-token-%d", s.svcSeq)
}

// Requests counts the requests a Server received, per endpoint, refused
// ones included.
type Requests struct {
	Discovery int // GET /.well-known/oauth-authorization-server
	JWKS      int // GET /.well-known/jwks.json
	Token     int // POST /token
	Feed      int // GET /sessions/revoked
}

// Requests returns the counts so far.
func (s *Server) Requests() Requests {
	return Requests{
		Discovery: int(s.discoveryHits.Load()), JWKS: int(s.jwksHits.Load()),
		Token: int(s.tokenHits.Load()), Feed: int(s.feedHits.Load()),
	}
}

func (s *Server) now() time.Time {
	if s.clock == nil {
		return time.Now()
	}
	return s.clock.Now()
}

// metadata has the members and order of authd's discovery document.
type metadata struct {
	Issuer                            string   `json:"issuer"`
	TokenEndpoint                     string   `json:"token_endpoint"`
	JWKSURI                           string   `json:"jwks_uri"`
	ResponseTypesSupported            []string `json:"response_types_supported"`
	GrantTypesSupported               []string `json:"grant_types_supported"`
	TokenEndpointAuthMethodsSupported []string `json:"token_endpoint_auth_methods_supported"`
	AccessTokenSigningAlgsSupported   []string `json:"access_token_signing_alg_values_supported"`
	RevokedSessionsEndpoint           string   `json:"revoked_sessions_endpoint"`
}

func (s *Server) serveMetadata(w http.ResponseWriter, r *http.Request) {
	s.discoveryHits.Add(1)
	if !s.discovery {
		http.NotFound(w, r)
		return
	}
	base := strings.TrimRight(s.issuer, "/")
	s.mu.Lock()
	var algs []string
	for _, k := range s.keys {
		if !slices.Contains(algs, k.alg) {
			algs = append(algs, k.alg)
		}
	}
	s.mu.Unlock()
	writeJSON(w, http.StatusOK, metadata{
		Issuer:                            s.issuer,
		TokenEndpoint:                     base + "/token",
		JWKSURI:                           base + "/.well-known/jwks.json",
		ResponseTypesSupported:            []string{},
		GrantTypesSupported:               []string{"client_credentials"},
		TokenEndpointAuthMethodsSupported: []string{"client_secret_basic", "client_secret_post"},
		AccessTokenSigningAlgsSupported:   algs,
		RevokedSessionsEndpoint:           base + "/sessions/revoked",
	})
}

func (s *Server) serveJWKS(w http.ResponseWriter, _ *http.Request) {
	s.jwksHits.Add(1)
	s.mu.Lock()
	ks := make([]map[string]string, 0, len(s.keys))
	for _, k := range s.keys {
		ks = append(ks, k.jwk)
	}
	s.mu.Unlock()
	writeJSON(w, http.StatusOK, map[string]any{"keys": ks})
}

func (s *Server) serveToken(w http.ResponseWriter, r *http.Request) {
	s.tokenHits.Add(1)
	id, secret, ok := r.BasicAuth()
	if !ok {
		id, secret = r.PostFormValue("client_id"), r.PostFormValue("client_secret")
	}
	if r.PostFormValue("grant_type") != "client_credentials" || id != ClientID || secret != ClientSecret {
		w.Header().Set("Content-Type", "application/json")
		w.WriteHeader(http.StatusUnauthorized)
		_, _ = io.WriteString(w, `{"error":"invalid_client"}`)
		return
	}
	s.mu.Lock()
	tok := s.svcToken
	s.mu.Unlock()
	writeJSON(w, http.StatusOK, map[string]any{
		"access_token": tok, "token_type": "Bearer", "expires_in": int(DefaultTokenLifetime / time.Second),
	})
}

// serveFeed answers like authd's feed: the entries after the cursor since
// (all of them without it) and the new cursor in verifier.CursorHeader.
func (s *Server) serveFeed(w http.ResponseWriter, r *http.Request) {
	s.feedHits.Add(1)
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.feedDown {
		http.Error(w, "revocation feed down (verifiertest.Server.SetFeedDown)", http.StatusServiceUnavailable)
		return
	}
	if r.Header.Get("Authorization") != "Bearer "+s.svcToken {
		w.Header().Set("WWW-Authenticate", `Bearer error="invalid_token"`)
		w.WriteHeader(http.StatusUnauthorized)
		return
	}
	since, _ := strconv.Atoi(r.URL.Query().Get("since"))
	since = min(max(since, 0), len(s.revs))
	w.Header().Set(verifier.CursorHeader, strconv.Itoa(len(s.revs)))
	writeJSON(w, http.StatusOK, append([]verifier.Revocation{}, s.revs[since:]...))
}

func writeJSON(w http.ResponseWriter, status int, v any) {
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(status)
	_ = json.NewEncoder(w).Encode(v)
}
