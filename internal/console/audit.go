package console

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"net/url"
	"time"

	"github.com/labstack/echo/v4"
)

// AuditLog reads the audit log as GET /audit does: the same filters, newest
// first, a keyset cursor. The console declares it rather than importing the
// reader, so that the page is built and tested against this contract and
// internal/app passes an adapter of the audit package.
type AuditLog interface {
	AuditPage(ctx context.Context, f AuditFilter, cursor string, limit int) (AuditPage, error)
}

// AuditFilter selects rows; zero fields do not filter (GET /audit's user,
// session, type, since, until).
type AuditFilter struct {
	UserID, SessionID, Type string
	Since, Until            time.Time
}

// AuditEvent is one row.
type AuditEvent struct {
	ID            int64
	At            time.Time
	Type          string
	Actor         string
	SubjectUserID string
	SessionID     string
	IP            string
	UserAgent     string
	Detail        map[string]any
}

// AuditPage is a page of rows; NextCursor is empty on the last.
type AuditPage struct {
	Items      []AuditEvent
	NextCursor string
}

// ErrBadFilter: a filter field or cursor the page cannot read (the wrapper
// says which); an AuditLog wraps its own refusals of bad input in it, and
// the page shows them as a message.
var ErrBadFilter = errors.New("bad filter")

const auditPerPage = 50

type auditData struct {
	Available bool
	Form      url.Values
	Items     []AuditEvent
	// Next is the path of the next page, empty on the last.
	Next string
}

// audit shows the audit log with GET /audit's filters.
func (c *Console) audit(ec echo.Context) error {
	q := ec.QueryParams()
	d := auditData{Available: c.Audit != nil, Form: q}
	v := view{Title: "Audit log", Nav: "audit", Data: &d}
	if c.Audit == nil {
		return c.render(ec, http.StatusOK, "audit", v)
	}
	f := AuditFilter{UserID: q.Get("user"), SessionID: q.Get("session"), Type: q.Get("type")}
	var err error
	if f.Since, err = formTime(q.Get("since"), "since"); err != nil {
		return c.fail(ec, "audit", v, err)
	}
	if f.Until, err = formTime(q.Get("until"), "until"); err != nil {
		return c.fail(ec, "audit", v, err)
	}
	p, err := c.Audit.AuditPage(ec.Request().Context(), f, q.Get("cursor"), auditPerPage)
	if err != nil {
		return c.fail(ec, "audit", v, err)
	}
	d.Items = p.Items
	if p.NextCursor != "" {
		next := url.Values{}
		for k, vs := range q {
			next[k] = vs
		}
		next.Set("cursor", p.NextCursor)
		d.Next = Prefix + "/audit?" + next.Encode()
	}
	return c.render(ec, http.StatusOK, "audit", v)
}

// formTime reads a time as GET /audit does (RFC 3339), or as a browser's
// datetime-local field sends it (taken as UTC).
func formTime(s, name string) (time.Time, error) {
	if s == "" {
		return time.Time{}, nil
	}
	for _, layout := range []string{time.RFC3339Nano, "2006-01-02T15:04", "2006-01-02T15:04:05"} {
		if t, err := time.Parse(layout, s); err == nil {
			return t, nil
		}
	}
	return time.Time{}, fmt.Errorf("%w: %s must be a time such as 2026-01-02T15:04:05Z", ErrBadFilter, name)
}
