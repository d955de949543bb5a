package session

import (
	"context"
	"errors"

	"github.com/seedc5a8123e/authd/internal/postgres"
	"github.com/seedc5a8123e/authd/internal/token"
)

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
	// A cutoff denies the token at once, before the issuer-wide one's sweep
	// has marked the session. Logout still accepts it, as a revoked session.
	if a.CutOff(issuedAt(c)) && !allowRevoked {
		return Principal{}, ErrInvalidToken
	}
	return Principal{UserID: a.UserID, SID: c.SID, JTI: c.ID, Role: a.Role, Revoked: a.RevokedAt != nil}, nil
}

// issuedAt is the token's iat in Unix seconds, 0 when it has none (so that
// every cutoff denies it).
func issuedAt(c *token.Claims) int64 {
	if c.IssuedAt == nil {
		return 0
	}
	return c.IssuedAt.Unix()
}
