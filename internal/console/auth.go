package console

import (
	"context"
	"crypto/rand"
	"errors"
	"net/http"
	"time"

	"github.com/labstack/echo/v4"

	"github.com/seedc5a8123e/authd/internal/session"
)

// Messages the sign-in page shows for ?m=, a fixed set, so no text of the
// query string is ever reflected.
var loginMessages = map[string]string{
	"ended":     "Your console session has ended; sign in again.",
	"signedout": "Signed out. The console's session is revoked.",
}

type loginData struct {
	Username string
	// Token is the sign-in form's CSRF token, also in loginCookie
	// (double submit: there is no console session yet to hold it).
	Token string
}

func (c *Console) loginPage(ec echo.Context) error {
	v := view{Title: "Sign in"}
	if m := loginMessages[ec.QueryParam("m")]; m != "" {
		v.Flash = &flash{Text: m}
	}
	return c.renderLogin(ec, http.StatusOK, v, "")
}

// renderLogin shows the sign-in form with a fresh CSRF token.
func (c *Console) renderLogin(ec echo.Context, status int, v view, username string) error {
	tok := rand.Text()
	setCookie(ec, loginCookie, tok, 3600)
	v.Title = "Sign in"
	v.Data = loginData{Username: username, Token: tok}
	return c.render(ec, status, "login", v)
}

// login runs the password grant with the form's credentials, under the
// login throttle as /token does, and keeps the tokens server-side. A
// non-admin gets no console session, and the authd session the grant made
// is revoked at once.
func (c *Console) login(ec echo.Context) error {
	name := ec.FormValue("username")
	ck, _ := ec.Cookie(loginCookie)
	if ck == nil || !sameToken(ec.FormValue("csrf"), ck.Value) {
		return c.renderLogin(ec, http.StatusForbidden,
			view{Error: "The sign-in form was stale or not from this console (CSRF token missing or wrong); try again."}, name)
	}
	ctx := ec.Request().Context()
	for _, old := range c.store.sweep() {
		c.end(ctx, old)
	}
	g, err := c.Sessions.PasswordGrant(ctx, name, ec.FormValue("password"), meta(ec))
	if err != nil {
		status, msg := c.describe(ec, err)
		return c.renderLogin(ec, status, view{Error: msg}, name)
	}
	p, err := c.Sessions.Authenticate(ctx, g.AccessToken, false)
	if err != nil {
		status, msg := c.describe(ec, err)
		return c.renderLogin(ec, status, view{Error: msg}, name)
	}
	if p.Role != session.RoleAdmin {
		if _, err := c.Sessions.Logout(ctx, p); err != nil {
			c.Log.WarnContext(ctx, "console: revoking a non-admin's sign-in failed", "sid", p.SID, "err", err)
		}
		return c.renderLogin(ec, http.StatusForbidden, view{Error: "Only admins can sign in to the console."}, name)
	}
	u, err := c.Accounts.User(ctx, p.UserID)
	if err != nil {
		return c.fail(ec, "error", view{Title: "Sign in"}, err)
	}
	e := &entry{
		access: g.AccessToken, refresh: g.RefreshToken, accessExp: c.Clock.Now().Add(time.Duration(g.ExpiresIn) * time.Second),
		csrf: rand.Text(), userID: p.UserID, username: u.Username, sid: p.SID,
	}
	id := c.store.put(e)
	if id == "" {
		c.end(ctx, e)
		return c.renderLogin(ec, http.StatusServiceUnavailable,
			view{Error: "Too many console sessions are signed in on this server; try again later."}, name)
	}
	setCookie(ec, loginCookie, "", -1)
	setCookie(ec, sessionCookie, id, 0)
	return ec.Redirect(http.StatusSeeOther, Prefix+"/users")
}

// end revokes e's authd session, for an entry the console forgets (idle,
// or refused for a full store). Through its refresh token (RFC 7009's
// revocation, ReasonTokenRevoked), which outlives the access token an idle
// entry holds.
func (c *Console) end(ctx context.Context, e *entry) {
	e.mu.Lock()
	refresh := e.refresh
	e.mu.Unlock()
	if err := c.Sessions.RevokeToken(ctx, refresh); err != nil {
		c.Log.WarnContext(ctx, "console: ending a console session failed", "sid", e.sid, "err", err)
	}
}

// logout revokes the console's authd session (it enters the feed as any
// logout does) and forgets it.
func (c *Console) logout(ec echo.Context) error {
	ck, _ := ec.Cookie(sessionCookie)
	if _, err := c.Sessions.Logout(ec.Request().Context(), principal(ec)); err != nil {
		return c.fail(ec, "error", view{Title: "Sign out"}, err)
	}
	c.store.drop(ck.Value)
	setCookie(ec, sessionCookie, "", -1)
	return ec.Redirect(http.StatusSeeOther, Prefix+"/login?m=signedout")
}

// requireSession admits a request with a live console session of an admin:
// the access token is refreshed when near its end and checked against the
// session row on every request, as the API checks a bearer, so a revoked
// console session, a disabled admin or a lost role signs the browser out at
// once. A state-changing request must carry the session's CSRF token.
func (c *Console) requireSession(next echo.HandlerFunc) echo.HandlerFunc {
	return func(ec echo.Context) error {
		ctx := ec.Request().Context()
		ck, _ := ec.Cookie(sessionCookie)
		var id string
		if ck != nil {
			id = ck.Value
		}
		e, live := c.store.get(id)
		if e != nil && !live {
			c.end(ctx, e)
		}
		if !live {
			return c.signedOut(ec, id != "")
		}
		p, err := c.authenticate(ctx, ec, e)
		if errors.Is(err, session.ErrInvalidToken) || errors.Is(err, session.ErrInvalidRefresh) ||
			errors.Is(err, session.ErrRefreshReused) || errors.Is(err, session.ErrClientMismatch) ||
			errors.Is(err, session.ErrForbidden) {
			c.store.drop(id)
			return c.signedOut(ec, true)
		}
		if err != nil {
			return c.fail(ec, "error", view{Title: "Error"}, err)
		}
		ec.Set(entryKey, e)
		ec.Set(principalKey, p)
		if ec.Request().Method != http.MethodGet && !sameToken(ec.FormValue("csrf"), e.csrf) {
			return c.render(ec, http.StatusForbidden, "error", view{Title: "Refused",
				Error: "The form was stale or not from this console (CSRF token missing or wrong), so nothing was changed. Reload the page and try again."})
		}
		if c.Actor != nil {
			ec.SetRequest(ec.Request().WithContext(c.Actor(ctx, p.UserID)))
		}
		return next(ec)
	}
}

func (c *Console) signedOut(ec echo.Context, ended bool) error {
	setCookie(ec, sessionCookie, "", -1)
	to := Prefix + "/login"
	if ended {
		to += "?m=ended"
	}
	return ec.Redirect(http.StatusSeeOther, to)
}

// authenticate refreshes e's access token when it is near its end, then
// checks it as the API checks a bearer, and requires the admin role.
func (c *Console) authenticate(ctx context.Context, ec echo.Context, e *entry) (session.Principal, error) {
	e.mu.Lock()
	defer e.mu.Unlock()
	now := c.Clock.Now()
	if !now.Before(e.accessExp.Add(-refreshAhead)) {
		g, err := c.Sessions.RefreshGrantWith(ctx, e.refresh, meta(ec))
		if err != nil {
			return session.Principal{}, err
		}
		e.access, e.refresh = g.AccessToken, g.RefreshToken
		e.accessExp = now.Add(time.Duration(g.ExpiresIn) * time.Second)
	}
	p, err := c.Sessions.Authenticate(ctx, e.access, false)
	if err != nil {
		return session.Principal{}, err
	}
	if p.Role != session.RoleAdmin {
		return session.Principal{}, session.ErrForbidden
	}
	return p, nil
}
