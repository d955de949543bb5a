package statuslist

import (
	"context"
	"errors"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/seedc5a8123e/authd/internal/clock"
	"github.com/seedc5a8123e/authd/internal/postgres"
	"github.com/seedc5a8123e/authd/verifier"
)

// Defaults and bounds of the list size (AUTHD_STATUS_LIST_SIZE) and ttl
// (AUTHD_STATUS_LIST_TTL).
const (
	DefaultSize = 1 << 20 // 128 KiB of bits: a million sessions per list
	MinSize     = 8
	MaxSize     = 1 << 24 // status_lists' CHECK
	DefaultTTL  = 30 * time.Second
)

// LeaseMaxAge is how long one lease hands out indexes: a list's sessions are
// all created within it of its lease, which bounds retire_after.
const LeaseMaxAge = 24 * time.Hour

// retireMargin covers clock skew between the replica that leased a list and
// the ones that stop serving it.
const retireMargin = 5 * time.Minute

// Path is where the lists are served: Path + "/" + id each, Path itself the
// aggregation (section 9).
const Path = "/statuslists"

// URI is the uri of list id under base (the issuer without its trailing
// slash): the sub of the list's token and the uri of the tokens naming it.
func URI(base string, id int64) string {
	return base + Path + "/" + strconv.FormatInt(id, 10)
}

// Base is the URL prefix of the lists for issuer.
func Base(issuer string) string { return strings.TrimRight(issuer, "/") }

// Entry is a session's place in a list.
type Entry struct {
	List int64
	Idx  int
}

// Ref is the access token's status_list member for e.
func (e Entry) Ref(base string) *verifier.StatusListRef {
	return &verifier.StatusListRef{Idx: int64(e.Idx), URI: URI(base, e.List)}
}

// Allocator hands out entries from lists this process leased; see the
// package comment. Safe for concurrent use.
type Allocator struct {
	db         *postgres.DB
	clock      clock.Clock
	size       int
	sessionTTL time.Duration
	base       string

	mu       sync.Mutex
	list     int64 // 0: none leased
	next     int
	leasedAt time.Time
	// noSchemaUntil: the last lease found no table (a replica ahead of the
	// migration Job); until then logins do not try again, so they do not
	// each pay a refused statement.
	noSchemaUntil time.Time
}

// noSchemaRetry is how long a replica on the schema before migration 000009
// waits before it tries to lease again.
const noSchemaRetry = time.Minute

// NewAllocator returns an Allocator leasing lists of size entries for
// sessions that live at most sessionTTL, named under issuer.
func NewAllocator(db *postgres.DB, c clock.Clock, issuer string, size int, sessionTTL time.Duration) *Allocator {
	return &Allocator{db: db, clock: c, size: size, sessionTTL: sessionTTL, base: Base(issuer)}
}

// Base is the URL prefix of the entries' URIs.
func (a *Allocator) Base() string { return a.base }

// Allocate returns a fresh entry, leasing a new list when the current one is
// full or older than LeaseMaxAge. postgres.ErrNoStatusLists on a schema
// before migration 000009: the session then goes without an entry. A lease
// is one short statement per list size calls; callers wait for it under the
// mutex, which is the point: one lease, not one per concurrent login.
func (a *Allocator) Allocate(ctx context.Context) (Entry, error) {
	a.mu.Lock()
	defer a.mu.Unlock()
	now := a.clock.Now()
	if a.list == 0 || a.next >= a.size || now.Sub(a.leasedAt) >= LeaseMaxAge || now.Before(a.leasedAt) {
		if now.Before(a.noSchemaUntil) {
			return Entry{}, postgres.ErrNoStatusLists
		}
		retire := now.Add(LeaseMaxAge + a.sessionTTL + retireMargin)
		id, err := a.db.LeaseStatusList(ctx, a.size, now, retire)
		if errors.Is(err, postgres.ErrNoStatusLists) {
			a.list, a.noSchemaUntil = 0, now.Add(noSchemaRetry)
		}
		if err != nil {
			return Entry{}, err
		}
		a.list, a.next, a.leasedAt = id, 0, now
	}
	e := Entry{List: a.list, Idx: a.next}
	a.next++
	return e, nil
}

// Forget drops the current lease and stops leasing for a while: the schema
// lost the status columns (a rollback) after the lease was taken.
func (a *Allocator) Forget() {
	a.mu.Lock()
	defer a.mu.Unlock()
	a.list, a.noSchemaUntil = 0, a.clock.Now().Add(noSchemaRetry)
}
