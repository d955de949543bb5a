package account

import (
	"context"
	"encoding/base64"
	"errors"
	"fmt"
	"strings"
	"time"
	"unicode/utf8"

	"github.com/seedc5a8123e/authd/internal/keyset"

	"github.com/google/uuid"

	"github.com/seedc5a8123e/authd/internal/audit"
	"github.com/seedc5a8123e/authd/internal/clock"
	"github.com/seedc5a8123e/authd/internal/password"
	"github.com/seedc5a8123e/authd/internal/postgres"
	"github.com/seedc5a8123e/authd/internal/session"
	"github.com/seedc5a8123e/authd/internal/throttle"
	"github.com/seedc5a8123e/authd/internal/username"
)

// Revocation reasons written by this package.
const (
	ReasonPasswordChange = "password_change"
	ReasonUserDisabled   = "user_disabled"
	ReasonRoleChanged    = "role_changed"
	ReasonPasswordReset  = "password_reset"
	ReasonAdminRevokeAll = "admin_revoke_all"
)

// Page sizes of the lists.
const (
	DefaultLimit = 50
	MaxLimit     = 200
)

var (
	// ErrMalformedUserID: a user id that is not a UUID.
	ErrMalformedUserID = errors.New("user id must be a UUID")
	// ErrLastAdmin: the change would leave no enabled admin.
	ErrLastAdmin = errors.New("cannot disable or demote the last enabled admin")
	// ErrWrongPassword: the current password given to a password change is wrong.
	ErrWrongPassword = errors.New("the current password is wrong")
	// ErrBadCursor: a list cursor this server did not hand out.
	ErrBadCursor = errors.New("cursor is malformed")
	// ErrBadLimit: a page size out of range.
	ErrBadLimit = fmt.Errorf("limit must be an integer from 1 to %d", MaxLimit)
)

// Service creates users, changes existing ones (passwords, roles,
// disabling) and applies the session revocations each change implies, all
// announced through session.Service, so every one reaches the feed and the
// push channel with its own reason. by is the acting user, nil for an
// operator at the command line.
type Service struct {
	db       *postgres.DB
	hasher   *password.Hasher
	clock    clock.Clock
	sessions *session.Service
	throttle *throttle.Throttle
}

// Deps is what a Service is made of; Throttle may be nil (no throttling of
// password changes).
type Deps struct {
	DB       *postgres.DB
	Hasher   *password.Hasher
	Clock    clock.Clock
	Sessions *session.Service
	Throttle *throttle.Throttle
}

// NewService wires a Service.
func NewService(d Deps) *Service {
	return &Service{db: d.DB, hasher: d.Hasher, clock: d.Clock, sessions: d.Sessions, throttle: d.Throttle}
}

func checkUserID(id string) error {
	if _, err := uuid.Parse(id); err != nil || len(id) != 36 {
		return ErrMalformedUserID
	}
	return nil
}

func userErr(err error) error {
	if errors.Is(err, postgres.ErrNotFound) {
		return ErrUserNotFound
	}
	return err
}

// User returns the user id.
func (m *Service) User(ctx context.Context, id string) (postgres.User, error) {
	if err := checkUserID(id); err != nil {
		return postgres.User{}, err
	}
	u, err := m.db.UserByID(ctx, id)
	return u, userErr(err)
}

// UserByName returns the user called username in any letter case.
func (m *Service) UserByName(ctx context.Context, name string) (postgres.User, error) {
	mapped, err := username.Map(name)
	if err != nil {
		return postgres.User{}, ErrUserNotFound // no user can have it
	}
	u, err := m.db.UserByUsername(ctx, mapped)
	return u, userErr(err)
}

// UserPage is one page of users; NextCursor is empty on the last.
type UserPage struct {
	Items      []postgres.User
	NextCursor string
}

// CheckLimit turns an absent (zero) limit into DefaultLimit and refuses one
// out of range.
func CheckLimit(limit int) (int, error) {
	switch {
	case limit == 0:
		return DefaultLimit, nil
	case limit < 0 || limit > MaxLimit:
		return 0, ErrBadLimit
	}
	return limit, nil
}

// Users lists users whose name contains query, ignoring case, in name order.
func (m *Service) Users(ctx context.Context, query, cursor string, limit int) (UserPage, error) {
	limit, err := CheckLimit(limit)
	if err != nil {
		return UserPage{}, err
	}
	// PostgreSQL refuses NUL and invalid UTF-8 in text with an error; refuse
	// them first so they are a 400, not a 500.
	if !plainText(query) || len(query) > MaxUsernameLen {
		return UserPage{}, &PolicyError{fmt.Sprintf("query must be UTF-8 text without NUL, at most %d bytes", MaxUsernameLen)}
	}
	after := ""
	if cursor != "" {
		b, err := base64.RawURLEncoding.DecodeString(cursor)
		if err != nil || len(b) == 0 || !plainText(string(b)) {
			return UserPage{}, ErrBadCursor
		}
		after = string(b)
	}
	users, err := m.db.ListUsers(ctx, query, after, limit+1)
	if err != nil {
		return UserPage{}, err
	}
	p := UserPage{Items: users}
	if len(users) > limit {
		p.Items = users[:limit]
		p.NextCursor = base64.RawURLEncoding.EncodeToString([]byte(p.Items[limit-1].Username))
	}
	return p, nil
}

// Change is a partial update of a user; nil fields stay as they are.
type Change struct {
	Disabled *bool
	Role     *string
}

// Update applies ch. Disabling revokes every session of the user
// (ReasonUserDisabled), even one that somehow survived an earlier disabling;
// a role change revokes them all too (ReasonRoleChanged), because the role is
// inside the tokens. Disabling or demoting the last enabled admin is
// ErrLastAdmin. It returns the user as written and how many sessions it
// revoked.
func (m *Service) Update(ctx context.Context, id string, ch Change, by *string) (postgres.User, int, error) {
	if err := checkUserID(id); err != nil {
		return postgres.User{}, 0, err
	}
	if ch.Role != nil && !session.ValidRole(*ch.Role) {
		return postgres.User{}, 0, errBadRole
	}
	now := m.clock.Now()
	var (
		u       postgres.User
		reason  string
		revoked postgres.Revocations
	)
	err := m.db.InRevokeTx(ctx, func(tx *postgres.Tx) error {
		// The enabled admins first, then the user, each locked until the
		// commit: concurrent demotions queue up here, so the last-admin
		// check below counts admins no other change can take away meanwhile.
		enabledAdmins, err := tx.LockEnabledAdmins()
		if err != nil {
			return err
		}
		cur, err := tx.LockUser(id)
		if err != nil {
			return err
		}
		disabledAt, role := cur.DisabledAt, cur.Role
		if ch.Disabled != nil {
			switch {
			case !*ch.Disabled:
				disabledAt = nil
			case cur.DisabledAt == nil:
				disabledAt = &now
			}
		}
		if ch.Role != nil {
			role = *ch.Role
		}
		wasAdmin := cur.Role == session.RoleAdmin && cur.DisabledAt == nil
		isAdmin := role == session.RoleAdmin && disabledAt == nil
		if wasAdmin && !isAdmin && enabledAdmins <= 1 {
			return ErrLastAdmin
		}
		if u, err = tx.UpdateUser(id, disabledAt, role, now); err != nil {
			return err
		}
		if err := auditUpdate(tx, cur, u, now); err != nil {
			return err
		}
		switch {
		case ch.Disabled != nil && *ch.Disabled:
			reason = ReasonUserDisabled
		case role != cur.Role:
			reason = ReasonRoleChanged
		default:
			return nil
		}
		// In the same transaction as the change: it never commits without
		// its revocations, so a retry has nothing to repair.
		revoked, err = tx.CutOffUser(postgres.UserCutoff{UserID: id, Reason: reason, By: by, Now: m.clock.Now})
		return err
	})
	if err != nil {
		return postgres.User{}, 0, userErr(err)
	}
	m.sessions.Announce(ctx, reason, revoked)
	return u, revoked.Len(), nil
}

// auditUpdate records what an update changed, one row per change, in its
// transaction.
func auditUpdate(tx *postgres.Tx, before, after postgres.User, at time.Time) error {
	var events []postgres.AuditEvent
	switch {
	case before.DisabledAt == nil && after.DisabledAt != nil:
		events = append(events, postgres.AuditEvent{Type: audit.UserDisabled})
	case before.DisabledAt != nil && after.DisabledAt == nil:
		events = append(events, postgres.AuditEvent{Type: audit.UserEnabled})
	}
	if before.Role != after.Role {
		events = append(events, postgres.AuditEvent{Type: audit.UserRoleChanged,
			Detail: map[string]any{"from": before.Role, "to": after.Role}})
	}
	for _, e := range events {
		e.At, e.SubjectUserID = at, after.ID
		if err := tx.Audit(e); err != nil {
			return err
		}
	}
	return nil
}

// ResetPassword sets the password of user id after checking the policy and
// revokes all its sessions (ReasonPasswordReset).
func (m *Service) ResetPassword(ctx context.Context, id, pw string, by *string) (int, error) {
	u, err := m.User(ctx, id)
	if err != nil {
		return 0, err
	}
	if err := CheckPassword(u.Username, pw); err != nil {
		return 0, err
	}
	hash, err := m.hasher.Hash(pw)
	if err != nil {
		return 0, err
	}
	now := m.clock.Now()
	_, revoked, err := m.db.SetPasswordHash(ctx, postgres.PasswordChange{UserID: id, Hash: hash, At: now, Event: audit.PasswordReset,
		Revoke: &postgres.RevokeRequest{Reason: ReasonPasswordReset, By: by, At: now, Now: m.clock.Now}})
	if err != nil {
		return 0, userErr(err)
	}
	m.sessions.Announce(ctx, ReasonPasswordReset, revoked)
	return revoked.Len(), nil
}

// ChangePassword changes the caller's password when current is right and
// revokes every other session of the caller (ReasonPasswordChange); the
// caller's session stays live. A wrong current password changes nothing.
// Wrong current passwords are counted by the login throttle, under a key of
// their own ("me-password:" and the user id), so a stolen access token cannot
// be used to guess the password without limit. ip is the client's address.
func (m *Service) ChangePassword(ctx context.Context, p session.Principal, current, next, ip string) (int, error) {
	var n int
	// The change commits in transactions of its own (SetPasswordHash), not
	// in the throttle's: a success here is rare, and its revocations have
	// their own bounded transaction.
	err := m.throttle.Guard(ctx, throttle.Attempt{Key: "me-password:" + p.UserID, IP: ip, Admit: m.hasher.Admit,
		Check: func(*postgres.Tx) error {
			var err error
			n, err = m.changePassword(ctx, p, current, next)
			return err
		},
		Wrong: func(err error) bool { return errors.Is(err, ErrWrongPassword) },
	})
	return n, err
}

func (m *Service) changePassword(ctx context.Context, p session.Principal, current, next string) (int, error) {
	u, err := m.db.UserByID(ctx, p.UserID)
	if err != nil {
		return 0, userErr(err)
	}
	ok, _, err := m.hasher.Verify(current, u.PasswordHash)
	if err != nil || !ok {
		return 0, ErrWrongPassword
	}
	if err := CheckPassword(u.Username, next); err != nil {
		return 0, err
	}
	hash, err := m.hasher.Hash(next)
	if err != nil {
		return 0, err
	}
	// Only over the hash just verified: a concurrent change wins, and this
	// one's current password is no longer current.
	now := m.clock.Now()
	changed, revoked, err := m.db.SetPasswordHash(ctx, postgres.PasswordChange{
		UserID: u.ID, Expected: &u.PasswordHash, Hash: hash, At: now, Event: audit.PasswordChanged,
		Revoke: &postgres.RevokeRequest{Reason: ReasonPasswordChange, By: &p.UserID, At: now}, KeepSID: p.SID,
	})
	if err != nil {
		return 0, userErr(err)
	}
	if !changed {
		return 0, ErrWrongPassword
	}
	m.sessions.Announce(ctx, ReasonPasswordChange, revoked)
	return revoked.Len(), nil
}

// RevokeAll revokes every live session of user id (ReasonAdminRevokeAll).
// An admin may give a reason (checked as a single-session revocation's
// is); without one it is ReasonAdminRevokeAll. Either way it is counted
// under ReasonAdminRevokeAll.
func (m *Service) RevokeAll(ctx context.Context, id, reason string, by *string) (int, error) {
	if reason == "" {
		reason = ReasonAdminRevokeAll
	}
	if err := session.CheckReason(reason); err != nil {
		return 0, err
	}
	if _, err := m.User(ctx, id); err != nil {
		return 0, err
	}
	return m.sessions.RevokeUserLabelled(ctx, id, "", reason, ReasonAdminRevokeAll, by)
}

// RevokeSession revokes one session for an operator without a token: the
// same rules as session.Service.AdminRevoke (an empty reason is
// session.ReasonAdminRevoke, a revoked session keeps its first revocation),
// with by as revoked_by_user_id (nil: NULL). already reports an earlier
// revocation.
func (m *Service) RevokeSession(ctx context.Context, sid, reason string, by *string) (already bool, err error) {
	r, err := m.sessions.RevokeSession(ctx, sid, reason, by)
	return r.AlreadyRevoked, err
}

// Session returns one session by id, whoever's it is, for an admin who
// looks it up (the console's session page): session.ErrMalformedSID or
// session.ErrNotFound when there is none.
func (m *Service) Session(ctx context.Context, sid string) (postgres.Session, error) {
	if _, err := uuid.Parse(sid); err != nil || len(sid) != 36 {
		return postgres.Session{}, session.ErrMalformedSID
	}
	s, err := m.db.SessionByID(ctx, sid)
	if errors.Is(err, postgres.ErrNotFound) {
		return postgres.Session{}, session.ErrNotFound
	}
	return s, err
}

// SessionPage is one page of sessions; NextCursor is empty on the last.
type SessionPage struct {
	Items      []postgres.Session
	NextCursor string
}

// Sessions lists the sessions of user id, newest first: live ones only
// unless includeRevoked (then revoked and expired ones too).
func (m *Service) Sessions(ctx context.Context, id string, includeRevoked bool, cursor string, limit int) (SessionPage, error) {
	if err := checkUserID(id); err != nil {
		return SessionPage{}, err
	}
	limit, err := CheckLimit(limit)
	if err != nil {
		return SessionPage{}, err
	}
	q := postgres.SessionQuery{UserID: id, IncludeRevoked: includeRevoked, Now: m.clock.Now(), Limit: limit + 1}
	if cursor != "" {
		if q.AfterCreatedAt, q.AfterID, err = decodeSessionCursor(cursor); err != nil {
			return SessionPage{}, err
		}
	}
	rows, err := m.db.UserSessions(ctx, q)
	if err != nil {
		return SessionPage{}, err
	}
	p := SessionPage{Items: rows}
	if len(rows) > limit {
		p.Items = rows[:limit]
		last := p.Items[limit-1]
		p.NextCursor = encodeSessionCursor(last.CreatedAt, last.ID)
	}
	return p, nil
}

// A session cursor is the (created_at, id) of the last session of a page, in
// microseconds, which is PostgreSQL's precision, so the keyset is exact.
func encodeSessionCursor(t time.Time, id string) string { return keyset.Encode(t, id) }

func decodeSessionCursor(c string) (time.Time, string, error) {
	at, id, ok := keyset.Decode(c)
	if !ok || checkUserID(id) != nil {
		return time.Time{}, "", ErrBadCursor
	}
	return at, id, nil
}

// plainText reports whether s is valid UTF-8 without NUL bytes: what
// PostgreSQL's text type accepts.
func plainText(s string) bool {
	return utf8.ValidString(s) && !strings.ContainsRune(s, 0)
}
