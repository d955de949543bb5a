package session

import (
	"context"
	"errors"
	"fmt"
	"time"
	"unicode/utf8"

	"github.com/google/uuid"

	"github.com/seedc5a8123e/authd/internal/postgres"
	"github.com/seedc5a8123e/authd/verifier"
)

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
	s.Announce(ctx, ReasonUserLogout, []postgres.RevokedSession{e.Entry})
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
	return s.RevokeUserLabelled(ctx, userID, except, reason, reason, by)
}

// RevokeUserLabelled is RevokeUser with a free-text reason (an admin's,
// checked with CheckReason) announced under label, one of the bounded
// reason constants, so the metric's label values stay few.
func (s *Service) RevokeUserLabelled(ctx context.Context, userID, except, reason, label string, by *string) (int, error) {
	entries, err := s.db.RevokeUserSessions(ctx, userID, except, postgres.RevokeRequest{
		Reason: reason, By: by, At: s.clock.Now(),
	})
	if err != nil {
		return 0, err
	}
	s.Announce(ctx, label, entries)
	return len(entries), nil
}

// Announce reports committed revocations: to the observer and, as
// verifier.Revocation wire entries, on the push channel. Every revocation
// this package or its callers commit is announced here. Callers that revoke
// inside a transaction of their own (a user change and its revocations
// commit together) call it after the commit.
func (s *Service) Announce(ctx context.Context, reason string, entries []postgres.RevokedSession) {
	s.obs.Revoked(reason, len(entries))
	wire := make([]verifier.Revocation, len(entries))
	for i, e := range entries {
		wire[i] = verifier.Revocation{JTI: e.JTI, SID: e.SID, Exp: e.Exp}
	}
	s.pub.Publish(ctx, wire)
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
	if err := checkSID(sid); err != nil {
		return Revoked{}, err
	}
	if reason == "" {
		reason = ReasonAdminRevoke
	}
	if err := CheckReason(reason); err != nil {
		return Revoked{}, err
	}
	// Counted under ReasonAdminRevoke whatever text the admin gave, so the
	// metric's label stays bounded.
	return s.revokeByID(ctx, sid, reason, ReasonAdminRevoke, by)
}

func checkSID(sid string) error {
	if _, err := uuid.Parse(sid); err != nil || len(sid) != 36 {
		return ErrMalformedSID
	}
	return nil
}

// CheckReason refuses a revocation reason that is not valid UTF-8 or longer
// than MaxReasonLen characters (ErrBadReason).
func CheckReason(reason string) error {
	if !utf8.ValidString(reason) || utf8.RuneCountInString(reason) > MaxReasonLen {
		return ErrBadReason
	}
	return nil
}

// revokeByID revokes sid with reason (announced under label) and answers
// with its revocation, the first one if it was revoked before.
func (s *Service) revokeByID(ctx context.Context, sid, reason, label string, by *string) (Revoked, error) {
	r, err := s.db.RevokeSession(ctx, postgres.RevokeRequest{SID: sid, Reason: reason, By: by, At: s.clock.Now()})
	if err != nil {
		return Revoked{}, err
	}
	if r != nil {
		s.Announce(ctx, label, []postgres.RevokedSession{r.Entry})
		return Revoked{SID: sid, RevokedAt: r.RevokedAt, RevokedReason: r.RevokedReason, RevokedByUserID: r.RevokedByUserID}, nil
	}
	// Nothing changed: the session was revoked before, and its first
	// revocation is the answer, or it does not exist.
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
		RevokedByUserID: row.RevokedByUserID, AlreadyRevoked: true,
	}, nil
}
