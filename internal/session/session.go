// Package session holds the rules over sessions: the three grants, refresh
// rotation with reuse detection, authenticating bearer tokens against the
// session row, and every way a session is revoked.
package session

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"slices"
	"time"
	"unicode/utf8"

	"github.com/google/uuid"

	"github.com/seedc5a8123e/authd/internal/clock"
	"github.com/seedc5a8123e/authd/internal/password"
	"github.com/seedc5a8123e/authd/internal/postgres"
	"github.com/seedc5a8123e/authd/internal/push"
	"github.com/seedc5a8123e/authd/internal/throttle"
	"github.com/seedc5a8123e/authd/internal/token"
	"github.com/seedc5a8123e/authd/verifier"
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

// MaxReasonLen is the longest revocation reason accepted, in characters.
const MaxReasonLen = 200

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
)

// Meta describes the client a session is created for.
type Meta struct {
	UserAgent string
	IP        string
}

// Grant is a successful token response.
type Grant struct {
	AccessToken  string
	ExpiresIn    int64 // seconds
	RefreshToken string
	SID          string
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
	// Revoked: n sessions were revoked, each for the first time, for
	// reason, a constant of this package or of its callers.
	Revoked(reason string, n int)
}

type nopObserver struct{}

func (nopObserver) TokenIssued(string)  {}
func (nopObserver) RefreshReused()      {}
func (nopObserver) Revoked(string, int) {}

// Service applies the session rules.
type Service struct {
	db       *postgres.DB
	hasher   *password.Hasher
	signer   *token.Signer
	throttle *throttle.Throttle
	clock    clock.Clock
	limits   Limits
	pub      push.Publisher
	log      *slog.Logger
	obs      Observer
}

// Limits bound sessions.
type Limits struct {
	// SessionTTL is a session's absolute lifetime.
	SessionTTL time.Duration
	// MaxPerUser is how many live sessions a user may have; a login beyond
	// it revokes the oldest (ReasonSessionLimit). Zero means no limit.
	MaxPerUser int
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
		limits: d.Limits, pub: d.Publisher, log: d.Log, obs: d.Observer}
}

// checkPassword returns the user if username and pw match an enabled user,
// and whether the stored hash should be upgraded. Unknown users cost one
// dummy verification so timing reveals nothing.
func (s *Service) checkPassword(ctx context.Context, username, pw string) (postgres.User, bool, error) {
	u, err := s.db.UserByUsername(ctx, username)
	if errors.Is(err, postgres.ErrNotFound) {
		s.hasher.VerifyDummy(pw)
		return postgres.User{}, false, ErrInvalidCredentials
	}
	if err != nil {
		return postgres.User{}, false, err
	}
	ok, rehash, err := s.hasher.Verify(pw, u.PasswordHash)
	if err != nil {
		s.log.Error("stored password hash is unreadable", "user_id", u.ID, "err", err)
		return postgres.User{}, false, ErrInvalidCredentials
	}
	if !ok || u.DisabledAt != nil {
		return postgres.User{}, false, ErrInvalidCredentials
	}
	return u, rehash, nil
}

// rehash upgrades a hash made with older parameters. A failure only means the
// upgrade waits for the next login.
func (s *Service) rehash(ctx context.Context, u postgres.User, pw string) {
	h, err := s.hasher.Hash(pw)
	if err == nil {
		err = s.db.UpdatePasswordHash(ctx, u.ID, u.PasswordHash, h, s.clock.Now())
	}
	if err != nil {
		s.log.Warn("password rehash failed", "user_id", u.ID, "err", err)
	}
}

// PasswordGrant (RFC 6749 4.3) creates a session with a refresh token.
func (s *Service) PasswordGrant(ctx context.Context, username, pw string, m Meta) (Grant, error) {
	return s.login(ctx, username, pw, GrantPassword, m)
}

// ClientCredentialsGrant (RFC 6749 4.4) authenticates a service user and
// creates a session that lives exactly as long as its one access token.
func (s *Service) ClientCredentialsGrant(ctx context.Context, clientID, secret string, m Meta) (Grant, error) {
	g, err := s.login(ctx, clientID, secret, GrantClientCredentials, m)
	if errors.Is(err, ErrInvalidCredentials) {
		return Grant{}, ErrInvalidClient
	}
	return g, err
}

// login checks the password under the brute-force throttle, creates the
// session, then upgrades a hash made with older parameters (which does not
// change the credentials version the session insert is conditional on).
// Login keys live under "login:", and the name is taken as given, so unknown
// and known usernames count alike.
func (s *Service) login(ctx context.Context, username, pw, grant string, m Meta) (Grant, error) {
	var g Grant
	err := s.throttle.Guard(ctx, "login:"+username, m.IP, func() error {
		u, rehash, err := s.checkPassword(ctx, username, pw)
		if err != nil {
			return err
		}
		if grant == GrantClientCredentials && u.Role != RoleService {
			return ErrInvalidCredentials
		}
		if g, err = s.createSession(ctx, u, grant, m); err != nil {
			return err
		}
		if rehash {
			s.rehash(ctx, u, pw)
		}
		return nil
	}, func(err error) bool { return errors.Is(err, ErrInvalidCredentials) })
	return g, err
}

// createSession makes the session of a password grant (with a refresh token)
// or a client_credentials grant (without). A user whose password, role or
// state changed since checkPassword gets ErrInvalidCredentials, as if the
// change had come first.
func (s *Service) createSession(ctx context.Context, u postgres.User, grant string, m Meta) (Grant, error) {
	withRefresh := grant == GrantPassword
	now := s.clock.Now()
	sid := uuid.NewString()
	end := now.Add(s.limits.SessionTTL)
	minted, err := s.signer.Mint(u.ID, sid, u.Role, end)
	if err != nil {
		return Grant{}, err
	}
	ns := postgres.NewSession{
		ID: sid, UserID: u.ID, CreatedAt: now, ExpiresAt: end,
		JTI: minted.JTI, AccessExp: minted.ExpiresAt, UserAgent: m.UserAgent, IP: m.IP,
		UserCredentialsVersion: u.CredentialsVersion, UserRole: u.Role,
		MaxLive: s.limits.MaxPerUser, LimitReason: ReasonSessionLimit,
	}
	g := Grant{AccessToken: minted.Token, ExpiresIn: expiresIn(minted, now), SID: sid}
	if withRefresh {
		if g.RefreshToken, err = token.NewRefresh(); err != nil {
			return Grant{}, err
		}
		ns.RefreshTokenHash = token.HashRefresh(g.RefreshToken)
	} else {
		ns.ExpiresAt = minted.ExpiresAt
	}
	evicted, err := s.db.CreateSession(ctx, ns)
	if err != nil {
		if errors.Is(err, postgres.ErrUserChanged) {
			return Grant{}, ErrInvalidCredentials
		}
		return Grant{}, err
	}
	s.Announce(ctx, ReasonSessionLimit, evicted)
	s.obs.TokenIssued(grant)
	return g, nil
}

func expiresIn(m token.Minted, now time.Time) int64 {
	return int64(m.ExpiresAt.Sub(now).Round(time.Second) / time.Second)
}

// RefreshGrant (RFC 6749 6) rotates the refresh token. The old token stops
// working; presenting it again revokes the session as a presumed theft.
func (s *Service) RefreshGrant(ctx context.Context, refresh string) (Grant, error) {
	var g Grant
	revoked, err := s.db.RefreshSession(ctx, token.HashRefresh(refresh), func(st postgres.RefreshState) (postgres.RefreshWrite, error) {
		now := s.clock.Now()
		if st.Reused {
			s.log.Warn("refresh token reuse detected; revoking session", "sid", st.SessionID, "user_id", st.UserID)
			if st.Revoked {
				return postgres.RefreshWrite{}, ErrRefreshReused
			}
			return postgres.RefreshWrite{Revoke: &postgres.RevokeRequest{
				SID: st.SessionID, Reason: ReasonRefreshReuse, At: now,
			}}, ErrRefreshReused
		}
		if st.Revoked || st.UserDisabled || !now.Before(st.ExpiresAt) {
			return postgres.RefreshWrite{}, ErrInvalidRefresh
		}
		minted, err := s.signer.Mint(st.UserID, st.SessionID, st.Role, st.ExpiresAt)
		if err != nil {
			return postgres.RefreshWrite{}, ErrInvalidRefresh // the session ends within the second
		}
		rt, err := token.NewRefresh()
		if err != nil {
			return postgres.RefreshWrite{}, err
		}
		g = Grant{AccessToken: minted.Token, ExpiresIn: expiresIn(minted, now), RefreshToken: rt, SID: st.SessionID}
		return postgres.RefreshWrite{Rotate: &postgres.Rotation{
			NewHash: token.HashRefresh(rt), JTI: minted.JTI, AccessExp: minted.ExpiresAt, At: now,
		}}, nil
	})
	if revoked != nil {
		s.obs.Revoked(ReasonRefreshReuse, 1)
		s.pub.Publish(ctx, []verifier.Revocation{*revoked})
	}
	if errors.Is(err, ErrRefreshReused) {
		s.obs.RefreshReused()
	}
	if errors.Is(err, postgres.ErrNotFound) {
		return Grant{}, ErrInvalidRefresh
	}
	if err != nil {
		return Grant{}, err
	}
	s.obs.TokenIssued(GrantRefreshToken)
	return g, nil
}

// Authenticate checks a bearer access token: signature and claims offline,
// then the session row, so a revoked session, a disabled user or a changed
// role takes effect at once on authd itself. With allowRevoked a revoked (but
// unexpired) session is accepted and marked, for idempotent logout.
func (s *Service) Authenticate(ctx context.Context, bearer string, allowRevoked bool) (Principal, error) {
	c, err := s.signer.Parse(bearer)
	if err != nil {
		s.log.Debug("bearer token refused", "err", err)
		return Principal{}, ErrInvalidToken
	}
	a, err := s.db.SessionAuthByID(ctx, c.SID)
	if errors.Is(err, postgres.ErrNotFound) {
		return Principal{}, ErrInvalidToken
	}
	if err != nil {
		return Principal{}, err
	}
	if a.UserID != c.Subject || a.UserDisabled || (a.RevokedAt != nil && !allowRevoked) {
		return Principal{}, ErrInvalidToken
	}
	return Principal{UserID: a.UserID, SID: c.SID, JTI: c.ID, Role: a.Role, Revoked: a.RevokedAt != nil}, nil
}

// Logout revokes the caller's session. already is true, and nothing is
// written, when the session was revoked before.
func (s *Service) Logout(ctx context.Context, p Principal) (already bool, err error) {
	if p.Revoked {
		return true, nil
	}
	e, err := s.db.RevokeSession(ctx, postgres.RevokeRequest{
		SID: p.SID, Reason: ReasonUserLogout, By: &p.UserID, At: s.clock.Now(),
	})
	if err != nil {
		return false, err
	}
	if e == nil { // revoked by someone else since Authenticate
		return true, nil
	}
	s.obs.Revoked(ReasonUserLogout, 1)
	s.pub.Publish(ctx, []verifier.Revocation{*e})
	return false, nil
}

// LogoutAll revokes every live session of the caller's user, the caller's
// included, in one statement, and returns how many it revoked.
func (s *Service) LogoutAll(ctx context.Context, p Principal) (int, error) {
	return s.RevokeUser(ctx, p.UserID, "", ReasonUserLogoutAll, &p.UserID)
}

// RevokeUser revokes every live session of userID except the session except
// (empty: none) with reason, recording by as the actor (nil: the system), and
// publishes each revocation. It is the one path every bulk revocation takes.
func (s *Service) RevokeUser(ctx context.Context, userID, except, reason string, by *string) (int, error) {
	entries, err := s.db.RevokeUserSessions(ctx, userID, except, postgres.RevokeRequest{
		Reason: reason, By: by, At: s.clock.Now(),
	})
	if err != nil {
		return 0, err
	}
	s.Announce(ctx, reason, entries)
	return len(entries), nil
}

// Announce reports committed revocations: to the observer and on the push
// channel. Callers that revoke inside a transaction of their own (a user
// change and its revocations commit together) call it after the commit.
func (s *Service) Announce(ctx context.Context, reason string, entries []verifier.Revocation) {
	s.obs.Revoked(reason, len(entries))
	s.pub.Publish(ctx, entries)
}

// Revoked describes a session's revocation.
type Revoked struct {
	SID             string
	RevokedAt       time.Time
	RevokedReason   string
	RevokedByUserID *string
	AlreadyRevoked  bool
}

// RevokeSession revokes one session by id, recording by as the actor (nil:
// an operator at the command line). An empty reason means ReasonAdminRevoke.
// A session revoked before keeps its first time, reason and actor, and
// AlreadyRevoked is set.
func (s *Service) RevokeSession(ctx context.Context, sid, reason string, by *string) (Revoked, error) {
	if _, err := uuid.Parse(sid); err != nil || len(sid) != 36 {
		return Revoked{}, ErrMalformedSID
	}
	if reason == "" {
		reason = ReasonAdminRevoke
	}
	if !utf8.ValidString(reason) || utf8.RuneCountInString(reason) > MaxReasonLen {
		return Revoked{}, ErrBadReason
	}
	e, err := s.db.RevokeSession(ctx, postgres.RevokeRequest{SID: sid, Reason: reason, By: by, At: s.clock.Now()})
	if err != nil {
		return Revoked{}, err
	}
	if e != nil {
		// Counted under ReasonAdminRevoke whatever text the admin gave, so
		// the metric's label stays bounded.
		s.obs.Revoked(ReasonAdminRevoke, 1)
		s.pub.Publish(ctx, []verifier.Revocation{*e})
	}
	row, err := s.db.SessionByID(ctx, sid)
	if errors.Is(err, postgres.ErrNotFound) {
		return Revoked{}, ErrNotFound
	}
	if err != nil {
		return Revoked{}, err
	}
	if row.RevokedAt == nil || row.RevokedReason == nil {
		return Revoked{}, fmt.Errorf("session %s: not revoked after revoke", sid)
	}
	return Revoked{
		SID: sid, RevokedAt: *row.RevokedAt, RevokedReason: *row.RevokedReason,
		RevokedByUserID: row.RevokedByUserID, AlreadyRevoked: e == nil,
	}, nil
}
