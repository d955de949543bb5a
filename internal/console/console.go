// Package console is authd's admin console: server-rendered pages under
// /console/ (html/template, embedded; no script) where an admin finds a
// user or a session and ends it, reads the audit log and watches the
// verifier fleet. Every action is a call of the same domain services the
// HTTP API calls (internal/account, internal/session), with the signed-in
// admin as the actor, so it is checked, audited and published to the feed
// exactly as the API's would be. The console signs in through the password
// grant and its own authd session is an ordinary one (client_id
// ClientID): it is throttled like any login, listed with the admin's
// sessions, and enters the feed when it ends.
package console

import (
	"context"
	"crypto/subtle"
	"embed"
	"errors"
	"fmt"
	"html/template"
	"io/fs"
	"log/slog"
	"net"
	"net/http"
	"strconv"
	"strings"
	"time"

	"github.com/labstack/echo/v4"

	"github.com/seedc5a8123e/authd/internal/account"
	"github.com/seedc5a8123e/authd/internal/clock"
	"github.com/seedc5a8123e/authd/internal/postgres"
	"github.com/seedc5a8123e/authd/internal/session"
	"github.com/seedc5a8123e/authd/internal/throttle"
)

// ClientID is the client_id of the console's authd sessions.
const ClientID = "authd-console"

// Prefix is the path every console page lives under.
const Prefix = "/console"

// Defaults of Deps.
const (
	DefaultIdleTimeout = 30 * time.Minute
	DefaultMaxSessions = 1000
)

// refreshAhead is how long before its access token expires a console
// session refreshes it, so that a request never starts with a token that
// expires while it runs.
const refreshAhead = 30 * time.Second

// Cookie names. The session cookie holds an opaque id only (store.go).
const (
	sessionCookie = "authd_console"
	loginCookie   = "authd_console_login" // the sign-in form's CSRF token
)

// csp allows the console's own stylesheet and nothing else: no script at
// all, no inline style, forms posting only to authd, never framed.
const csp = "default-src 'none'; style-src 'self'; img-src 'self'; form-action 'self'; " +
	"frame-ancestors 'none'; base-uri 'none'"

//go:embed templates/*.html static/*
var files embed.FS

// Deps is what a Console calls. Audit and Fleet are optional: without one
// its page says it is not available.
type Deps struct {
	Sessions *session.Service
	Accounts *account.Service
	Clock    clock.Clock
	Log      *slog.Logger
	Audit    AuditLog
	Fleet    Fleet
	// Actor, when set, returns ctx naming userID as the actor of what the
	// request changes, as the API's authentication does for a bearer (the
	// audit log's origin).
	Actor func(ctx context.Context, userID string) context.Context
	// IdleTimeout ends a console session unused for longer; default
	// DefaultIdleTimeout. Its authd session is revoked then.
	IdleTimeout time.Duration
	// MaxSessions bounds the signed-in console sessions this replica holds;
	// default DefaultMaxSessions. Sign-in is refused beyond it.
	MaxSessions int
}

// Console serves the pages.
type Console struct {
	Deps
	store *store
	pages map[string]*template.Template
}

// New parses the templates and returns the console.
func New(d Deps) (*Console, error) {
	if d.IdleTimeout <= 0 {
		d.IdleTimeout = DefaultIdleTimeout
	}
	if d.MaxSessions <= 0 {
		d.MaxSessions = DefaultMaxSessions
	}
	c := &Console{Deps: d, store: newStore(d.Clock, d.IdleTimeout, d.MaxSessions), pages: map[string]*template.Template{}}
	names, err := fs.Glob(files, "templates/*.html")
	if err != nil {
		return nil, err
	}
	for _, n := range names {
		page := strings.TrimSuffix(strings.TrimPrefix(n, "templates/"), ".html")
		if page == "layout" {
			continue
		}
		t, err := template.New(page).Funcs(funcs).ParseFS(files, "templates/layout.html", n)
		if err != nil {
			return nil, fmt.Errorf("console template %s: %w", page, err)
		}
		c.pages[page] = t
	}
	return c, nil
}

var funcs = template.FuncMap{
	"when": func(t any) string {
		switch v := t.(type) {
		case time.Time:
			if v.IsZero() {
				return "—"
			}
			return v.UTC().Format("2006-01-02 15:04:05Z")
		case *time.Time:
			if v == nil {
				return "—"
			}
			return v.UTC().Format("2006-01-02 15:04:05Z")
		}
		return "—"
	},
	"str": func(s *string) string {
		if s == nil {
			return ""
		}
		return *s
	},
	"secs": func(d time.Duration) string { return d.Round(100 * time.Millisecond).String() },
}

// Register adds the console's routes to g, which must be Prefix.
func (c *Console) Register(g *echo.Group) {
	g.Use(headers)
	g.GET("", redirectTo(Prefix+"/users"))
	g.GET("/", redirectTo(Prefix+"/users"))
	g.GET("/static/*", c.static)
	g.GET("/login", c.loginPage)
	g.POST("/login", c.login)

	a := g.Group("", c.requireSession)
	a.POST("/logout", c.logout)
	a.GET("/users", c.users)
	a.POST("/users", c.createUser)
	a.GET("/users/:id", c.user)
	a.POST("/users/:id/state", c.setState)
	a.POST("/users/:id/role", c.setRole)
	a.POST("/users/:id/password", c.resetPassword)
	a.POST("/users/:id/revoke", c.revokeUser)
	a.GET("/sessions", c.sessionLookup)
	a.POST("/sessions/:sid/revoke", c.revokeSession)
	a.GET("/audit", c.audit)
	a.GET("/fleet", c.fleet)
	g.RouteNotFound("/*", func(ec echo.Context) error {
		return c.render(ec, http.StatusNotFound, "error", view{Title: "Not found", Error: "There is no such console page."})
	})
}

func redirectTo(path string) echo.HandlerFunc {
	return func(ec echo.Context) error { return ec.Redirect(http.StatusSeeOther, path) }
}

// headers replaces the API's Content-Security-Policy with the console's,
// which lets the page load its stylesheet. The other security headers
// (X-Frame-Options DENY, Referrer-Policy no-referrer, nosniff) are the
// API's, set before; they are set again here so the console keeps them if
// it is ever mounted elsewhere.
func headers(next echo.HandlerFunc) echo.HandlerFunc {
	return func(ec echo.Context) error {
		h := ec.Response().Header()
		h.Set("Content-Security-Policy", csp)
		h.Set("X-Frame-Options", "DENY")
		h.Set("Referrer-Policy", "no-referrer")
		h.Set("X-Content-Type-Options", "nosniff")
		h.Set("Cache-Control", "no-store")
		return next(ec)
	}
}

func (c *Console) static(ec echo.Context) error {
	name := ec.Param("*")
	b, err := files.ReadFile("static/" + name)
	if err != nil || strings.Contains(name, "/") {
		return c.render(ec, http.StatusNotFound, "error", view{Title: "Not found", Error: "There is no such file."})
	}
	ctype := "application/octet-stream"
	switch {
	case strings.HasSuffix(name, ".css"):
		ctype = "text/css; charset=utf-8"
	case strings.HasSuffix(name, ".png"):
		ctype = "image/png"
	}
	ec.Response().Header().Set("Cache-Control", "public, max-age=3600")
	return ec.Blob(http.StatusOK, ctype, b)
}

// view is what every page template receives.
type view struct {
	Title string
	// Nav names the menu entry to mark current.
	Nav   string
	Admin string
	CSRF  string
	Flash *flash
	// Error is shown instead of (or above) the page's content.
	Error string
	Data  any
}

// render writes page with v; the admin's name, CSRF token and pending
// flash come from the request's console session, when there is one.
func (c *Console) render(ec echo.Context, status int, page string, v view) error {
	if e := current(ec); e != nil {
		v.Admin, v.CSRF = e.username, e.csrf
		e.mu.Lock()
		if v.Flash == nil {
			v.Flash, e.flash = e.flash, nil
		}
		e.mu.Unlock()
	}
	t := c.pages[page]
	var b strings.Builder
	if err := t.ExecuteTemplate(&b, "layout", v); err != nil {
		c.Log.ErrorContext(ec.Request().Context(), "console: render", "page", page, "err", err)
		return ec.String(http.StatusInternalServerError, "The page could not be rendered; the server log has the details.")
	}
	return ec.HTML(status, b.String())
}

// fail renders err on page as a message: a known domain error says what is
// wrong, anything else is logged with the request id and shown as a generic
// message naming it, never as a stack.
func (c *Console) fail(ec echo.Context, page string, v view, err error) error {
	status, msg := c.describe(ec, err)
	v.Error = msg
	return c.render(ec, status, page, v)
}

func (c *Console) describe(ec echo.Context, err error) (int, string) {
	var pe *account.PolicyError
	var le *throttle.LimitedError
	switch {
	case errors.As(err, &pe):
		return http.StatusBadRequest, capitalize(pe.Rule) + "."
	case errors.As(err, &le):
		ec.Response().Header().Set("Retry-After", strconv.FormatInt(le.RetryAfterSeconds(), 10))
		return http.StatusTooManyRequests, capitalize(le.Error()) + "."
	case errors.Is(err, session.ErrInvalidCredentials):
		return http.StatusUnauthorized, "Invalid username or password."
	case errors.Is(err, session.ErrUnauthorizedClient):
		return http.StatusForbidden, "Only admins can sign in to the console."
	case errors.Is(err, account.ErrUserNotFound):
		return http.StatusNotFound, "No such user."
	case errors.Is(err, session.ErrNotFound):
		return http.StatusNotFound, "No session has this id."
	case errors.Is(err, account.ErrMalformedUserID), errors.Is(err, session.ErrMalformedSID),
		errors.Is(err, session.ErrBadReason), errors.Is(err, account.ErrBadCursor),
		errors.Is(err, account.ErrBadLimit), errors.Is(err, ErrBadFilter),
		errors.Is(err, account.ErrLastAdmin), errors.Is(err, account.ErrUsernameTaken):
		return http.StatusBadRequest, capitalize(err.Error()) + "."
	case errors.Is(err, context.DeadlineExceeded), postgres.Unavailable(err):
		c.Log.WarnContext(ec.Request().Context(), "console: database unavailable", "request_id", requestID(ec), "err", err)
		return http.StatusServiceUnavailable, "The database is not answering; try again in a moment."
	}
	c.Log.ErrorContext(ec.Request().Context(), "console: internal error", "request_id", requestID(ec),
		"path", ec.Request().URL.Path, "err", err)
	return http.StatusInternalServerError, "Something went wrong on the server (request id " + requestID(ec) + ")."
}

func requestID(ec echo.Context) string { return ec.Response().Header().Get(echo.HeaderXRequestID) }

func capitalize(s string) string {
	if s == "" {
		return s
	}
	return strings.ToUpper(s[:1]) + strings.TrimSuffix(s[1:], ".")
}

// say leaves a message for the next page and redirects there (POST, then
// redirect, then GET, so a reload never repeats an action).
func say(ec echo.Context, to string, f flash) error {
	if e := current(ec); e != nil {
		e.mu.Lock()
		e.flash = &f
		e.mu.Unlock()
	}
	return ec.Redirect(http.StatusSeeOther, to)
}

// sayErr is say with err described as on a page.
func (c *Console) sayErr(ec echo.Context, to string, err error) error {
	_, msg := c.describe(ec, err)
	return say(ec, to, flash{Text: msg, Error: true})
}

const (
	entryKey     = "console.entry"
	principalKey = "console.principal"
)

func current(ec echo.Context) *entry {
	e, _ := ec.Get(entryKey).(*entry)
	return e
}

func principal(ec echo.Context) session.Principal {
	p, _ := ec.Get(principalKey).(session.Principal)
	return p
}

// meta describes the browser to the password and refresh grants.
func meta(ec echo.Context) session.Meta {
	return session.Meta{UserAgent: ec.Request().UserAgent(), IP: ec.RealIP(), ClientID: ClientID}
}

// secureCookies reports whether cookies must be Secure: always, except on
// plain http to a loopback name, where a browser could not send them back
// from a development server otherwise.
func secureCookies(r *http.Request) bool {
	if r.TLS != nil {
		return true
	}
	host := r.Host
	if h, _, err := net.SplitHostPort(host); err == nil {
		host = h
	}
	host = strings.Trim(host, "[]")
	if host == "localhost" {
		return false
	}
	ip := net.ParseIP(host)
	return ip == nil || !ip.IsLoopback()
}

func setCookie(ec echo.Context, name, value string, maxAge int) {
	ec.SetCookie(&http.Cookie{
		Name: name, Value: value, Path: Prefix + "/", MaxAge: maxAge,
		HttpOnly: true, Secure: secureCookies(ec.Request()), SameSite: http.SameSiteStrictMode,
	})
}

// sameToken compares a form's CSRF token with the expected one in constant
// time; an empty expected token never matches.
func sameToken(got, want string) bool {
	return want != "" && subtle.ConstantTimeCompare([]byte(got), []byte(want)) == 1
}
