// Package audit names the events of the audit log and carries who caused
// them. The rows themselves are written by internal/postgres, inside the
// transaction of the change each one records, so a change never commits
// without its row nor a row without its change.
//
// Who and from where (the actor, the client address, the User-Agent) travel
// in the context, as the request id does: they are facts of the request,
// known at its edge (internal/httpapi's middleware, cmd/authd's --actor),
// and threading them as parameters through every account, session and
// postgres call between the edge and the transaction would change dozens of
// signatures for data none of those layers decides on.
package audit

import (
	"context"
	"slices"
)

// Event types, the values of audit_events.type.
const (
	LoginSucceeded = "login_succeeded"
	// LoginFailed records the throttle key of the account (never the
	// password).
	LoginFailed = "login_failed"
	// RefreshReuse: an already rotated refresh token was presented.
	RefreshReuse   = "refresh_reuse_detected"
	SessionRevoked = "session_revoked"
	// UserCutoff: every session of a user revoked at once.
	UserCutoff = "user_cutoff"
	// IssuerCutoff: every token of every user before a time is denied.
	IssuerCutoff    = "issuer_cutoff"
	UserCreated     = "user_created"
	UserDisabled    = "user_disabled"
	UserEnabled     = "user_enabled"
	UserRoleChanged = "user_role_changed"
	// PasswordChanged: the user changed their own password.
	PasswordChanged = "password_changed"
	// PasswordReset: an admin or operator set a user's password.
	PasswordReset = "password_reset"
	SecretAdded   = "service_secret_added"
	SecretRemoved = "service_secret_removed"
	KeyRotated    = "signing_key_rotated"
)

// Types lists every event type, for validating a filter.
var Types = []string{
	LoginSucceeded, LoginFailed, RefreshReuse, SessionRevoked, UserCutoff, IssuerCutoff,
	UserCreated, UserDisabled, UserEnabled, UserRoleChanged, PasswordChanged, PasswordReset,
	SecretAdded, SecretRemoved, KeyRotated,
}

// ValidType reports whether t is one of Types.
func ValidType(t string) bool { return slices.Contains(Types, t) }

// Actors that are not a user id.
const (
	// ActorCLI: an operator at the command line who named no --actor.
	ActorCLI = "cli"
	// ActorSystem: authd itself (a job, a rule such as reuse detection), or
	// an unauthenticated request.
	ActorSystem = "system"
)

// Origin is who caused a change and from where.
type Origin struct {
	// Actor is a user id, ActorCLI or ActorSystem; empty is ActorSystem.
	Actor     string
	IP        string // empty when unknown
	UserAgent string
}

type originKey struct{}

// With returns ctx carrying o.
func With(ctx context.Context, o Origin) context.Context {
	return context.WithValue(ctx, originKey{}, o)
}

// WithActor returns ctx with its origin's actor replaced by actor.
func WithActor(ctx context.Context, actor string) context.Context {
	o := From(ctx)
	o.Actor = actor
	return With(ctx, o)
}

// From is the origin ctx carries, its Actor ActorSystem when none was set.
func From(ctx context.Context) Origin {
	o, _ := ctx.Value(originKey{}).(Origin)
	if o.Actor == "" {
		o.Actor = ActorSystem
	}
	return o
}
