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
	s.Announce(ctx, ReasonUserLogout, postgres.Revocations{Sessions: []postgres.RevokedSession{e.Entry}})
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
// Without an exception it is a user cutoff (postgres.Tx.CutOffUser): the
// feed's v2 form serves it as one entry, whatever the number of sessions.
func (s *Service) RevokeUser(ctx context.Context, userID, except, reason string, by *string) (int, error) {
	return s.RevokeUserLabelled(ctx, userID, except, reason, reason, by)
}

// RevokeUserLabelled is RevokeUser with a free-text reason (an admin's,
// checked with CheckReason) announced under label, one of the bounded
// reason constants, so the metric's label values stay few.
func (s *Service) RevokeUserLabelled(ctx context.Context, userID, except, reason, label string, by *string) (int, error) {
	var r postgres.Revocations
	var err error
	if except == "" {
		r, err = s.db.CutOffUser(ctx, postgres.UserCutoff{UserID: userID, Reason: reason, By: by, Now: s.clock.Now})
		if errors.Is(err, postgres.ErrNotFound) {
			return 0, nil // no such user, so no session of it either
		}
	} else {
		r.Sessions, err = s.db.RevokeUserSessions(ctx, userID, except, postgres.RevokeRequest{
			Reason: reason, By: by, At: s.clock.Now(),
		})
	}
	if err != nil {
		return 0, err
	}
	s.Announce(ctx, label, r)
	return r.Len(), nil
}

// ReasonIssuerCutoff is the reason of an issuer-wide cutoff whose admin gave
// none.
const ReasonIssuerCutoff = "issuer_cutoff"

// RevokeAll records an issuer-wide cutoff: every access and refresh token
// minted before it, of every user, is denied at once by authd and by every
// verifier that reads the v2 feed; the sessions are marked revoked
// afterwards, in batches, by SweepCutoffs. It returns the cutoff's nbf.
// An empty reason means ReasonIssuerCutoff.
func (s *Service) RevokeAll(ctx context.Context, reason string, by *string) (postgres.Cutoff, error) {
	if reason == "" {
		reason = ReasonIssuerCutoff
	}
	if err := CheckReason(reason); err != nil {
		return postgres.Cutoff{}, err
	}
	c, err := s.db.CutOffIssuer(ctx, postgres.IssuerCutoff{
		Reason: reason, By: by, Now: s.clock.Now, AccessTTL: s.signer.TTL(),
	})
	if err != nil {
		return postgres.Cutoff{}, err
	}
	s.log.Warn("issuer-wide cutoff: every token minted before it is denied", "nbf", c.NBF, "reason", reason)
	s.Announce(ctx, ReasonIssuerCutoff, postgres.Revocations{Cutoff: &c})
	return c, nil
}

// SweepBatch is how many sessions one transaction of SweepCutoffs marks.
const SweepBatch = 1000

// SweepCutoffs marks the sessions an issuer-wide cutoff covers revoked, a
// batch per transaction, until none is left or ctx ends, and returns how
// many it marked. The cutoff itself already denies their tokens; the marks
// make session lists and the v1 feed tell the same story. Nothing is
// pushed: the cutoff's own message covers them.
func (s *Service) SweepCutoffs(ctx context.Context) (int, error) {
	total := 0
	for ctx.Err() == nil {
		n, err := s.db.SweepIssuerCutoff(ctx, s.clock.Now(), SweepBatch)
		total += n
		if err != nil || n == 0 {
			if total > 0 {
				s.revoked()
			}
			return total, err
		}
	}
	return total, ctx.Err()
}

// Announce reports committed revocations: to the observer, to the feed's
// follower (Deps.Revoked) and, as verifier.Message wire messages, on the
// push channel: one per session, then one for the cutoff. Every revocation
// this package or its callers commit is announced here. Callers that revoke
// inside a transaction of their own (a user change and its revocations
// commit together) call it after the commit.
func (s *Service) Announce(ctx context.Context, reason string, r postgres.Revocations) {
	if len(r.Sessions) == 0 && r.Cutoff == nil {
		return
	}
	s.obs.Revoked(reason, len(r.Sessions))
	s.revoked()
	if s.onAnnounce != nil {
		s.onAnnounce()
	}
	wire := make([]verifier.Message, 0, len(r.Sessions)+1)
	for _, e := range r.Sessions {
		wire = append(wire, verifier.Message{JTI: e.JTI, SID: e.SID, Exp: e.Exp, Seq: e.Seq})
	}
	if c := r.Cutoff; c != nil {
		m := verifier.Message{Seq: c.Seq}
		if c.UserID == "" {
			m.Issuer = &verifier.IssuerCutoff{NBF: c.NBF, Exp: c.Exp}
		} else {
			m.Users = []verifier.UserCutoff{{Sub: c.UserID, NBF: c.NBF, Exp: c.Exp}}
		}
		wire = append(wire, m)
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
		s.Announce(ctx, label, postgres.Revocations{Sessions: []postgres.RevokedSession{r.Entry}})
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
