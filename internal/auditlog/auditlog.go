// Package auditlog reads the audit log for GET /audit and `authd audit
// list`: it checks the filters, and pages through the rows newest first
// with a keyset cursor, as the other lists do. The rows are written by
// internal/postgres inside the transactions they record (internal/audit).
package auditlog

import (
	"context"
	"errors"
	"fmt"
	"strconv"
	"strings"
	"time"

	"github.com/seedc5a8123e/authd/internal/keyset"

	"github.com/google/uuid"

	"github.com/seedc5a8123e/authd/internal/audit"
	"github.com/seedc5a8123e/authd/internal/postgres"
)

// Page sizes.
const (
	DefaultLimit = 50
	MaxLimit     = 200
	// exportBatch is how many rows one query of Export reads.
	exportBatch = 1000
)

var (
	// ErrBadCursor: a cursor this server did not hand out.
	ErrBadCursor = errors.New("cursor is malformed; use next_cursor from the previous page")
	// ErrBadLimit: a page size out of range.
	ErrBadLimit = fmt.Errorf("limit must be an integer from 1 to %d", MaxLimit)
	// ErrBadFilter: a filter that cannot match (the error says which).
	ErrBadFilter = errors.New("bad audit filter")
)

// Filter selects rows; zero fields do not filter.
type Filter struct {
	// UserID matches rows about the user or done by the user.
	UserID    string
	SessionID string
	Type      string
	Since     time.Time // inclusive
	Until     time.Time // exclusive
}

// Check refuses a filter naming a malformed id, an unknown type or an empty
// time range.
func (f Filter) Check() error {
	if f.UserID != "" && !isUUID(f.UserID) {
		return fmt.Errorf("%w: user must be a user id (UUID)", ErrBadFilter)
	}
	if f.SessionID != "" && !isUUID(f.SessionID) {
		return fmt.Errorf("%w: session must be a session id (UUID)", ErrBadFilter)
	}
	if f.Type != "" && !audit.ValidType(f.Type) {
		return fmt.Errorf("%w: type must be one of %s", ErrBadFilter, strings.Join(audit.Types, ", "))
	}
	if !f.Since.IsZero() && !f.Until.IsZero() && !f.Since.Before(f.Until) {
		return fmt.Errorf("%w: since must be before until", ErrBadFilter)
	}
	return nil
}

func isUUID(s string) bool {
	_, err := uuid.Parse(s)
	return err == nil && len(s) == 36
}

// Service reads the log.
type Service struct {
	db *postgres.DB
}

// New returns the Service reading db.
func New(db *postgres.DB) *Service { return &Service{db: db} }

// Page is one page of rows, newest first; NextCursor is empty on the last.
type Page struct {
	Items      []postgres.AuditEvent
	NextCursor string
}

// List returns the page of f's rows after cursor (empty: the newest).
// limit 0 is DefaultLimit.
func (s *Service) List(ctx context.Context, f Filter, cursor string, limit int) (Page, error) {
	if err := f.Check(); err != nil {
		return Page{}, err
	}
	if limit == 0 {
		limit = DefaultLimit
	}
	if limit < 1 || limit > MaxLimit {
		return Page{}, ErrBadLimit
	}
	q := query(f, limit+1)
	if cursor != "" {
		var err error
		if q.BeforeAt, q.BeforeID, err = decodeCursor(cursor); err != nil {
			return Page{}, err
		}
	}
	rows, err := s.db.AuditEvents(ctx, q)
	if err != nil {
		return Page{}, err
	}
	p := Page{Items: rows}
	if len(rows) > limit {
		p.Items = rows[:limit]
		last := p.Items[limit-1]
		p.NextCursor = encodeCursor(last.At, last.ID)
	}
	return p, nil
}

// Export calls fn with every row f selects, newest first, reading a batch
// per query, so an export of any size holds one batch in memory. It stops
// at fn's first error.
func (s *Service) Export(ctx context.Context, f Filter, fn func(postgres.AuditEvent) error) error {
	if err := f.Check(); err != nil {
		return err
	}
	q := query(f, exportBatch)
	for {
		rows, err := s.db.AuditEvents(ctx, q)
		if err != nil {
			return err
		}
		for _, e := range rows {
			if err := fn(e); err != nil {
				return err
			}
		}
		if len(rows) < exportBatch {
			return nil
		}
		last := rows[len(rows)-1]
		q.BeforeAt, q.BeforeID = last.At, last.ID
	}
}

func query(f Filter, limit int) postgres.AuditQuery {
	return postgres.AuditQuery{UserID: f.UserID, SessionID: f.SessionID, Type: f.Type, Since: f.Since, Until: f.Until, Limit: limit}
}

// A cursor is the (at, id) of the last row of a page, at in microseconds,
// PostgreSQL's precision, so the keyset is exact.
func encodeCursor(at time.Time, id int64) string {
	return keyset.Encode(at, strconv.FormatInt(id, 10))
}

func decodeCursor(c string) (time.Time, int64, error) {
	at, key, ok := keyset.Decode(c)
	id, err := strconv.ParseInt(key, 10, 64)
	if !ok || err != nil || id < 1 {
		return time.Time{}, 0, ErrBadCursor
	}
	return at, id, nil
}
