// Package session holds the rules over sessions: the three grants, refresh
// rotation with reuse detection (grant.go), authenticating bearer tokens
// against the session row (authenticate.go), and every way a session is
// revoked (revoke.go). This file holds the types, constants and constructor.
package session

import (
	"errors"
	"fmt"
	"log/slog"
	"slices"
	"time"

	"github.com/seedc5a8123e/authd/internal/clock"
	"github.com/seedc5a8123e/authd/internal/password"
	"github.com/seedc5a8123e/authd/internal/postgres"
	"github.com/seedc5a8123e/authd/internal/push"
	"github.com/seedc5a8123e/authd/internal/statuslist"
	"github.com/seedc5a8123e/authd/internal/throttle"
	"github.com/seedc5a8123e/authd/internal/token"
)

// Roles a user can hold.
const (
	RoleUser    = "user"
	RoleAdmin   = "admin"
	RoleService = "service"
)

// Revocation reasons written by this package.
const (
	ReasonUserLogout    = "user_logout"
	ReasonUserLogoutAll = "user_logout_all"
	ReasonAdminRevoke   = "admin_revoke"
	ReasonRefreshReuse  = "refresh_token_reuse"
	ReasonSessionLimit  = "session_limit"
	// ReasonUserLogoutOthers: the user ended every session but the current.
	ReasonUserLogoutOthers = "user_logout_others"
	// ReasonUserRevoke: the user ended one of their own sessions by id.
	ReasonUserRevoke = "user_revoke"
	// ReasonTokenRevoked: a client revoked a token of the session (RFC 7009).
	ReasonTokenRevoked = "token_revoked"
	// ReasonIdleTimeout: a refresh came after the session had been idle for
	// longer than Limits.IdleTTL.
	ReasonIdleTimeout = "idle_timeout"
)

// Roles lists every role, in the order error messages name them.
var Roles = []string{RoleUser, RoleAdmin, RoleService}

// ValidRole reports whether r is one of Roles.
func ValidRole(r string) bool { return slices.Contains(Roles, r) }

// Grant types, as the token endpoint names them.
const (
	GrantPassword          = "password"
	GrantRefreshToken      = "refresh_token"
	GrantClientCredentials = "client_credentials"
)

// Grants lists every grant type authd serves: the metadata's
// grant_types_supported and the metrics' grant label come from it.
var Grants = []string{GrantPassword, GrantRefreshToken, GrantClientCredentials}

// MaxUsernameLen is the longest username, in bytes: the limit at creation,
// and so the longest name a login can match.
const MaxUsernameLen = 256

// MaxReasonLen is the longest revocation reason accepted, in characters.
const MaxReasonLen = 200

// DefaultClientID is the client_id of a session whose password grant named
// no client: "authd". A client_id names a public client; authd does not
// register or authenticate public clients, it records the name the client
// gives and binds the session's refresh token to it.
const DefaultClientID = token.DefaultClientID

// MaxClientIDLen is the longest client_id a grant may name, in bytes: the
// longest username, which is what a service identity's client_id is.
const MaxClientIDLen = MaxUsernameLen

var (
	// ErrInvalidCredentials: unknown user, wrong password or disabled user,
	// deliberately indistinguishable.
	ErrInvalidCredentials = errors.New("invalid username or password")
	// ErrInvalidClient: client authentication failed.
	ErrInvalidClient = errors.New("client authentication failed")
	// ErrInvalidRefresh: the refresh token is unknown, expired or revoked.
	ErrInvalidRefresh = errors.New("refresh token is invalid, expired or revoked")
	// ErrRefreshReused: an already rotated refresh token was presented; the
	// session has been revoked.
	ErrRefreshReused = errors.New("refresh token was already used; the session has been revoked")
	// ErrRefreshRaced: the refresh token rotated away last was presented
	// within Limits.ReuseGrace of its rotation; the session lives on, and the
	// winner's newer token is the one to use.
	ErrRefreshRaced = errors.New("refresh token was already used by a concurrent refresh; use the newest refresh token")
	// ErrUnauthorizedClient: a service identity asked for a grant other
	// than client_credentials.
	ErrUnauthorizedClient = errors.New("service identities may use only the client_credentials grant")
	// ErrInvalidToken: the bearer token is not a live access token.
	ErrInvalidToken = errors.New("access token is invalid, expired or revoked")
	// ErrForbidden: the caller's role does not allow the operation.
	ErrForbidden = errors.New("the caller's role does not allow this operation")
	// ErrNotFound: no such session.
	ErrNotFound = errors.New("session not found")
	// ErrMalformedSID: a session id that is not a UUID.
	ErrMalformedSID = errors.New("session id must be a UUID")
	// ErrBadReason: a revocation reason that is too long or not text.
	ErrBadReason = fmt.Errorf("reason must be valid UTF-8 of at most %d characters", MaxReasonLen)
	// ErrBadClientID: a client_id that is not UTF-8 text without NUL of at
	// most MaxClientIDLen bytes.
	ErrBadClientID = fmt.Errorf("client_id must be valid UTF-8 without NUL of at most %d bytes", MaxClientIDLen)
	// ErrClientMismatch: a refresh named a client_id other than the one
	// the session was issued to (RFC 6749 section 6: the refresh token is
	// bound to its client). Nothing is written.
	ErrClientMismatch = errors.New("the refresh token was issued to another client_id")
)

// Meta describes the client a session is created for.
type Meta struct {
	UserAgent string
	IP        string
	// ClientID is the client_id the request named (a public client's
	// identifier), empty if none: a password grant then records
	// DefaultClientID, a refresh keeps the session's. The client_credentials
	// grant ignores it: its client is the service identity.
	ClientID string
}

// Grant is a successful token response.
type Grant struct {
	AccessToken  string
	ExpiresIn    int64 // seconds
	RefreshToken string
	SID          string
	ClientID     string // the access token's client_id
}

// Principal is an authenticated caller.
type Principal struct {
	UserID  string
	SID     string
	JTI     string
	Role    string
	Revoked bool // only ever true where the caller asked to accept revoked sessions
}

// Observer is told what the Service did, for metrics (*metrics.Metrics).
// Its methods must be cheap and safe for concurrent use.
type Observer interface {
	// TokenIssued: one access token was issued by grant (GrantPassword, ...).
	TokenIssued(grant string)
	// RefreshReused: a rotated refresh token was presented again.
	RefreshReused()
	// RefreshRaced: a just-rotated refresh token was presented again within
	// the reuse grace, and forgiven.
	RefreshRaced()
	// RefreshFullPath: a refresh the one-statement rotation did not serve
	// was decided by the full transaction (a rotated-away or unknown token,
	// a session to revoke or refuse, a cutoff, an older release's token).
	RefreshFullPath()
	// Revoked: n sessions were revoked, each for the first time, for
	// reason, a constant of this package or of its callers.
	Revoked(reason string, n int)
}

type nopObserver struct{}

func (nopObserver) TokenIssued(string)  {}
func (nopObserver) RefreshReused()      {}
func (nopObserver) RefreshRaced()       {}
func (nopObserver) RefreshFullPath()    {}
func (nopObserver) Revoked(string, int) {}

// Service applies the session rules.
type Service struct {
	db         *postgres.DB
	hasher     *password.Hasher
	signer     *token.Signer
	throttle   *throttle.Throttle
	clock      clock.Clock
	limits     Limits
	pub        push.Publisher
	log        *slog.Logger
	obs        Observer
	status     *statuslist.Allocator
	onRevoke   func()
	onAnnounce func()
}

// revoked tells the feed's follower that this replica committed a
// revocation.
func (s *Service) revoked() {
	if s.onRevoke != nil {
		s.onRevoke()
	}
}

// Limits bound sessions.
type Limits struct {
	// SessionTTL is a session's absolute lifetime.
	SessionTTL time.Duration
	// MaxPerUser is how many live sessions a user may have; a login beyond
	// it revokes the oldest (ReasonSessionLimit). Zero means no limit.
	MaxPerUser int
	// IdleTTL, when positive, ends a session at its first refresh after it
	// has been neither created nor refreshed for longer (ReasonIdleTimeout).
	IdleTTL time.Duration
	// ReuseGrace is how long after a rotation the token rotated away may be
	// presented again without revoking the session (ErrRefreshRaced).
	ReuseGrace time.Duration
}

// idle reports whether a session last active at last is past the idle
// timeout at now. At exactly IdleTTL it is not.
func (l Limits) idle(last, now time.Time) bool {
	return l.IdleTTL > 0 && now.Sub(last) > l.IdleTTL
}

// Deps is what a Service is made of. Throttle and Observer may be nil (no
// throttling, no observer); Publisher nil means push.Nop.
type Deps struct {
	DB        *postgres.DB
	Hasher    *password.Hasher
	Signer    *token.Signer
	Throttle  *throttle.Throttle
	Clock     clock.Clock
	Limits    Limits
	Publisher push.Publisher
	Log       *slog.Logger
	Observer  Observer
	// Revoked, when set, is called after every committed revocation this
	// service announces (feed.Service.Kick: the replica's own polls then see
	// it at once). It must not block.
	Revoked func()
	// Announced, when set, is called once per revoking transaction Announce
	// reports, right after its commit (fleet.Tracker.Revoked times its
	// propagation). It must not block.
	Announced func()
	// Status allocates each new session's status list entry, which its
	// tokens name (status.go). Nil: the status list is off, no token carries
	// the claim.
	Status *statuslist.Allocator
}

// NewService wires a Service.
func NewService(d Deps) *Service {
	if d.Observer == nil {
		d.Observer = nopObserver{}
	}
	if d.Publisher == nil {
		d.Publisher = push.Nop{}
	}
	return &Service{db: d.DB, hasher: d.Hasher, signer: d.Signer, throttle: d.Throttle, clock: d.Clock,
		limits: d.Limits, pub: d.Publisher, log: d.Log, obs: d.Observer, onRevoke: d.Revoked, onAnnounce: d.Announced, status: d.Status}
}
