package console

import (
	"context"
	"fmt"
	"net/http"
	"net/url"

	"github.com/labstack/echo/v4"

	"github.com/seedc5a8123e/authd/internal/account"
	"github.com/seedc5a8123e/authd/internal/postgres"
	"github.com/seedc5a8123e/authd/internal/session"
)

// Page sizes of the console's lists.
const (
	usersPerPage    = 25
	sessionsPerPage = 50
)

type usersData struct {
	Query      string
	Users      []postgres.User
	NextCursor string
	// Searched is true once a search ran, so an empty list says "none".
	Searched bool
	Roles    []string
}

// users lists users whose name matches the search (account.Service.Users,
// as GET /users: a name that contains the text in any letter case, so
// every name starting with it), a page at a time, with the form that
// creates one.
func (c *Console) users(ec echo.Context) error {
	q, cursor := ec.QueryParam("q"), ec.QueryParam("cursor")
	d := usersData{Query: q, Searched: true, Roles: session.Roles}
	v := view{Title: "Users", Nav: "users", Data: &d}
	p, err := c.Accounts.Users(ec.Request().Context(), q, cursor, usersPerPage)
	if err != nil {
		return c.fail(ec, "users", v, err)
	}
	d.Users, d.NextCursor = p.Items, p.NextCursor
	return c.render(ec, http.StatusOK, "users", v)
}

// createUser makes a user as POST /users does: without a password one is
// generated and shown once, on the next page.
func (c *Console) createUser(ec echo.Context) error {
	pw := ec.FormValue("password")
	generated := ""
	if pw == "" {
		var err error
		if generated, err = account.GeneratePassword(); err != nil {
			return c.sayErr(ec, Prefix+"/users", err)
		}
		pw = generated
	}
	u, err := c.Accounts.Create(ec.Request().Context(), ec.FormValue("username"), ec.FormValue("role"), pw)
	if err != nil {
		return c.sayErr(ec, Prefix+"/users", err)
	}
	f := flash{Text: fmt.Sprintf("Created %s (%s).", u.Username, u.Role)}
	if generated != "" {
		f.Text += " Its generated password is shown only this once:"
		f.Secret = generated
	}
	return say(ec, userPath(u.ID), f)
}

func userPath(id string) string { return Prefix + "/users/" + url.PathEscape(id) }

// sessionRow is a session with the names of its revoker.
type sessionRow struct {
	postgres.Session
	Live      bool
	RevokedBy string
}

type userData struct {
	User       postgres.User
	Sessions   []sessionRow
	NextCursor string
	Roles      []string
	// Self is the signed-in admin's own account.
	Self bool
}

// user shows one user and their sessions, live and ended, newest first.
func (c *Console) user(ec echo.Context) error {
	ctx := ec.Request().Context()
	id := ec.Param("id")
	v := view{Title: "User", Nav: "users"}
	u, err := c.Accounts.User(ctx, id)
	if err != nil {
		return c.fail(ec, "error", v, err)
	}
	v.Title = "User " + u.Username
	p, err := c.Accounts.Sessions(ctx, id, true, ec.QueryParam("cursor"), sessionsPerPage)
	if err != nil {
		return c.fail(ec, "error", v, err)
	}
	names := c.names(ctx)
	d := userData{User: u, NextCursor: p.NextCursor, Roles: session.Roles, Self: u.ID == principal(ec).UserID}
	for _, s := range p.Items {
		d.Sessions = append(d.Sessions, c.row(s, names))
	}
	v.Data = d
	return c.render(ec, http.StatusOK, "user", v)
}

// names resolves revoker ids to usernames, each once per page.
func (c *Console) names(ctx context.Context) func(*string) string {
	seen := map[string]string{}
	return func(id *string) string {
		if id == nil {
			return "an operator or authd itself"
		}
		if n, ok := seen[*id]; ok {
			return n
		}
		n := *id
		if u, err := c.Accounts.User(ctx, *id); err == nil {
			n = u.Username
		}
		seen[*id] = n
		return n
	}
}

func (c *Console) row(s postgres.Session, names func(*string) string) sessionRow {
	r := sessionRow{Session: s, Live: s.RevokedAt == nil && c.Clock.Now().Before(s.ExpiresAt)}
	if s.RevokedAt != nil {
		r.RevokedBy = names(s.RevokedByUserID)
	}
	return r
}

// setState disables or enables a user (PATCH /users/{id} with disabled):
// disabling revokes every session of the user.
func (c *Console) setState(ec echo.Context) error {
	disabled := ec.FormValue("disabled") == "true"
	by := principal(ec).UserID
	u, n, err := c.Accounts.Update(ec.Request().Context(), ec.Param("id"), account.Change{Disabled: &disabled}, &by)
	if err != nil {
		return c.sayErr(ec, userPath(ec.Param("id")), err)
	}
	text := fmt.Sprintf("%s is enabled.", u.Username)
	if disabled {
		text = fmt.Sprintf("%s is disabled; %d sessions revoked.", u.Username, n)
	}
	return say(ec, userPath(u.ID), flash{Text: text})
}

// setRole changes a user's role (PATCH /users/{id} with role), which
// revokes every session of the user: the role is inside their tokens.
func (c *Console) setRole(ec echo.Context) error {
	role := ec.FormValue("role")
	by := principal(ec).UserID
	u, n, err := c.Accounts.Update(ec.Request().Context(), ec.Param("id"), account.Change{Role: &role}, &by)
	if err != nil {
		return c.sayErr(ec, userPath(ec.Param("id")), err)
	}
	return say(ec, userPath(u.ID), flash{Text: fmt.Sprintf("%s is now %s; %d sessions revoked.", u.Username, u.Role, n)})
}

// resetPassword sets a user's password (PUT /users/{id}/password); every
// session of the user is revoked.
func (c *Console) resetPassword(ec echo.Context) error {
	by := principal(ec).UserID
	n, err := c.Accounts.ResetPassword(ec.Request().Context(), ec.Param("id"), ec.FormValue("password"), &by)
	if err != nil {
		return c.sayErr(ec, userPath(ec.Param("id")), err)
	}
	return say(ec, userPath(ec.Param("id")), flash{Text: fmt.Sprintf("Password reset; %d sessions revoked.", n)})
}

// revokeUser revokes every live session of a user with the admin's reason
// (POST /users/{id}/sessions/revoke).
func (c *Console) revokeUser(ec echo.Context) error {
	by := principal(ec).UserID
	n, err := c.Accounts.RevokeAll(ec.Request().Context(), ec.Param("id"), ec.FormValue("reason"), &by)
	if err != nil {
		return c.sayErr(ec, userPath(ec.Param("id")), err)
	}
	return say(ec, userPath(ec.Param("id")), flash{Text: fmt.Sprintf("%d sessions revoked.", n)})
}

type sessionData struct {
	SID     string
	Session *sessionRow
	User    *postgres.User
}

// sessionLookup finds a session by the sid pasted from a log line.
func (c *Console) sessionLookup(ec echo.Context) error {
	ctx := ec.Request().Context()
	sid := ec.QueryParam("sid")
	d := sessionData{SID: sid}
	v := view{Title: "Session", Nav: "sessions", Data: &d}
	if sid == "" {
		return c.render(ec, http.StatusOK, "session", v)
	}
	s, err := c.Accounts.Session(ctx, sid)
	if err != nil {
		return c.fail(ec, "session", v, err)
	}
	r := c.row(s, c.names(ctx))
	d.Session = &r
	if u, err := c.Accounts.User(ctx, s.UserID); err == nil {
		d.User = &u
	}
	return c.render(ec, http.StatusOK, "session", v)
}

func sessionPath(sid string) string { return Prefix + "/sessions?sid=" + url.QueryEscape(sid) }

// revokeSession revokes one session with the admin's reason, as POST
// /sessions/{sid}/revoke does for an admin's bearer.
func (c *Console) revokeSession(ec echo.Context) error {
	sid := ec.Param("sid")
	r, err := c.Sessions.RevokeAs(ec.Request().Context(), principal(ec), sid, ec.FormValue("reason"))
	if err != nil {
		return c.sayErr(ec, sessionPath(sid), err)
	}
	text := "Session revoked (" + r.RevokedReason + "); verifiers drop it with their next poll."
	if r.AlreadyRevoked {
		text = "The session was already revoked (" + r.RevokedReason + "); nothing changed."
	}
	return say(ec, sessionPath(sid), flash{Text: text})
}
