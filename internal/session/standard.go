package session

import (
	"cmp"
	"context"
	"errors"
	"strings"
	"time"

	"github.com/seedc5a8123e/authd/internal/postgres"
	"github.com/seedc5a8123e/authd/internal/throttle"
	"github.com/seedc5a8123e/authd/internal/token"
)

// The operations behind RFC 7009 (token revocation), RFC 7662 (token
// introspection) and the user's own control over their sessions. Every
// revocation here goes through revokeByID or RevokeUser, so it is announced
// like any other.

// LogoutOthers revokes every live session of the caller's user except the
// caller's own (ReasonUserLogoutOthers) and returns how many it revoked.
func (s *Service) LogoutOthers(ctx context.Context, p Principal) (int, error) {
	return s.RevokeUser(ctx, p.UserID, p.SID, ReasonUserLogoutOthers, &p.UserID)
}

// RevokeAs revokes session sid for caller p: an admin may revoke any session
// (reason as RevokeSession takes it), any other user only one of their own,
// and then the reason is ReasonUserRevoke whatever was given. A session of
// someone else, or none at all, is ErrForbidden for a non-admin, so the
// answer tells nobody which session ids exist.
func (s *Service) RevokeAs(ctx context.Context, p Principal, sid, reason string) (Revoked, error) {
	if p.Role == RoleAdmin {
		return s.RevokeSession(ctx, sid, reason, &p.UserID)
	}
	if err := checkSID(sid); err != nil {
		return Revoked{}, err
	}
	if err := CheckReason(reason); err != nil {
		return Revoked{}, err
	}
	a, err := s.db.SessionAuthByID(ctx, sid)
	if errors.Is(err, postgres.ErrNotFound) || (err == nil && a.UserID != p.UserID) {
		return Revoked{}, ErrForbidden
	}
	if err != nil {
		return Revoked{}, err
	}
	return s.revokeByID(ctx, sid, ReasonUserRevoke, ReasonUserRevoke, &p.UserID)
}

// Token type hints of RFC 7009 and RFC 7662.
const (
	HintAccessToken  = "access_token"
	HintRefreshToken = "refresh_token"
)

// isAccessToken tells authd's two kinds of token apart by their shape: an
// access token is a compact JWS (three dot-separated parts), a refresh token
// is one base64url string without dots. The shape decides, not the client's
// hint, so a wrong hint costs nothing and an unknown one is ignored.
func isAccessToken(tok string) bool { return strings.Count(tok, ".") == 2 }

// RevokeToken ends the session of an access or refresh token of authd
// (ReasonTokenRevoked, the session's user as the actor). A token that is not
// a live authd token (forged, expired, unknown, rotated away, already
// revoked) changes nothing and is no error: RFC 7009 section 2.2 answers
// every one alike.
func (s *Service) RevokeToken(ctx context.Context, tok string) error {
	a, ok, err := s.sessionOf(ctx, tok)
	if err != nil || !ok || a.RevokedAt != nil {
		return err
	}
	_, err = s.revokeByID(ctx, a.SID, ReasonTokenRevoked, ReasonTokenRevoked, &a.UserID)
	return err
}

// sessionOf finds the session of a token that verifies: an access token's
// signature and claims offline and its sid's row, or a refresh token's
// current hash. ok is false for anything else.
func (s *Service) sessionOf(ctx context.Context, tok string) (postgres.SessionAuth, bool, error) {
	var (
		a   postgres.SessionAuth
		err error
	)
	if isAccessToken(tok) {
		c, perr := s.signer.Parse(tok)
		if perr != nil {
			return a, false, nil
		}
		if a, err = s.db.SessionAuthByID(ctx, c.SID); err == nil && (a.UserID != c.Subject || a.CutOff(issuedAt(c))) {
			return a, false, nil
		}
	} else {
		a, err = s.db.SessionAuthByRefreshHash(ctx, token.RefreshSID(tok), token.HashRefresh(tok))
	}
	if errors.Is(err, postgres.ErrNotFound) {
		return a, false, nil
	}
	return a, err == nil, err
}

// Introspection describes a token for RFC 7662. Only Active is set for a
// token that is not live.
type Introspection struct {
	Active    bool
	TokenType string // HintAccessToken or HintRefreshToken
	Subject   string
	SID       string
	JTI       string // access tokens only
	Role      string // access tokens only
	ClientID  string // the client the token was issued to
	Issuer    string // access tokens only
	Audience  []string
	ExpiresAt time.Time // an access token's exp; a refresh token's session end
	IssuedAt  time.Time
	NotBefore time.Time
}

// Introspect tells whether tok is live, reading the same session row the
// bearer check reads (one query). Live means: it verifies (an access token)
// or is its session's current refresh token (a refresh token), its session
// is neither revoked, expired nor idle past Limits.IdleTTL, and its user is
// enabled. A refresh token of a service identity is never live.
//
// ClientID is an access token's client_id claim, and a refresh token's
// session's client; for a token or session from before authd recorded
// clients, the session's service identity or DefaultClientID.
func (s *Service) Introspect(ctx context.Context, tok string) (Introspection, error) {
	now := s.clock.Now()
	if isAccessToken(tok) {
		c, err := s.signer.Parse(tok)
		if err != nil {
			return Introspection{}, nil
		}
		a, err := s.db.SessionClientByID(ctx, c.SID)
		if errors.Is(err, postgres.ErrNotFound) {
			return Introspection{}, nil
		}
		if err != nil {
			return Introspection{}, err
		}
		if a.UserID != c.Subject || !live(a, now) || a.CutOff(issuedAt(c)) {
			return Introspection{}, nil
		}
		in := Introspection{
			Active: true, TokenType: HintAccessToken, Subject: c.Subject, SID: c.SID, JTI: c.ID,
			Role: c.Role, ClientID: cmp.Or(c.ClientID, a.ClientID, DefaultClientID),
			Issuer: c.Issuer, Audience: c.Audience, ExpiresAt: c.ExpiresAt.Time,
		}
		if c.IssuedAt != nil {
			in.IssuedAt = c.IssuedAt.Time
		}
		if c.NotBefore != nil {
			in.NotBefore = c.NotBefore.Time
		}
		return in, nil
	}
	a, err := s.db.SessionAuthByRefreshHash(ctx, token.RefreshSID(tok), token.HashRefresh(tok))
	if errors.Is(err, postgres.ErrNotFound) {
		return Introspection{}, nil
	}
	if err != nil {
		return Introspection{}, err
	}
	if !live(a, now) || a.Role == RoleService || s.limits.idle(a.LastActive, now) || a.RefreshCutOff() {
		return Introspection{}, nil
	}
	return Introspection{Active: true, TokenType: HintRefreshToken, Subject: a.UserID, SID: a.SID,
		ClientID: cmp.Or(a.ClientID, DefaultClientID), ExpiresAt: a.ExpiresAt}, nil
}

func live(a postgres.SessionAuth, now time.Time) bool {
	return a.RevokedAt == nil && !a.UserDisabled && now.Before(a.ExpiresAt)
}

// AuthenticateClient checks a confidential client's credentials: a service
// identity and its secret, under the same brute-force throttle as the
// client_credentials grant. It creates no session. ErrInvalidClient for
// anything else, a real user's right password included.
func (s *Service) AuthenticateClient(ctx context.Context, clientID, secret string, m Meta) (Principal, error) {
	var p Principal
	err := s.throttle.Guard(ctx, throttle.Attempt{Key: loginKey(clientID), IP: m.IP, Admit: s.hasher.Admit,
		Check: func(tx *postgres.Tx) error {
			u, _, err := s.checkPassword(ctx, tx, clientID, secret)
			if err != nil {
				return err
			}
			if u.Role != RoleService {
				return ErrInvalidCredentials
			}
			p = Principal{UserID: u.ID, Role: u.Role}
			return nil
		},
		Wrong: func(err error) bool { return errors.Is(err, ErrInvalidCredentials) },
	})
	if errors.Is(err, ErrInvalidCredentials) {
		return Principal{}, ErrInvalidClient
	}
	return p, err
}
