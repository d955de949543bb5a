package postgres

import (
	"context"
	"sync"
	"time"
)

// ReadSource decides where the revocation feed reads: the hot standby while
// its replay lag is measured and within MaxLag, else the primary. With the
// replica it also says how much further the feed must hold its cursor back.
//
// # How the lag is measured, and why this way
//
// The feed's cursor rule (internal/feed) needs a time T such that the
// snapshot it reads contains every transaction that committed before T; the
// cursor is then T - Holdback. On the primary T is the moment the poll read
// its clock. On a standby it is earlier by however far replay trails.
//
// pg_last_xact_replay_timestamp() is the commit time of the last replayed
// transaction, and now() minus it is the usual lag figure. It cannot serve
// here: when the primary is idle it grows without bound although the standby
// is fully caught up, and it is stamped by the primary's clock, not ours.
// Instead ReadSource samples the primary: it reads our clock (t) and then
// pg_current_wal_lsn() (L). Every transaction that committed before t wrote
// its commit record before L. When the standby's pg_last_wal_replay_lsn() is
// at least L, it has replayed all of them, so any snapshot taken on it later
// contains them: T = t. The lag is now - t for the newest sample the standby
// has reached. Idle, the LSN stops moving and the newest sample is reached at
// once, so the lag stays at the sampling interval; paused or behind, no new
// sample is reached and the lag grows with the clock until it passes MaxLag.
// The cost is two trivial queries per sampling interval, whatever the number
// of polls, and the lag is overstated by at most one interval.
type ReadSource struct {
	primary, replica *DB
	maxLag, every    time.Duration
	observe          func(source string, lag time.Duration, known bool)

	mu      sync.Mutex
	samples []walSample // oldest first, none older than maxLag
	// replayed is the standby's replay position read at replayedAt;
	// replayOK is false when the last read failed or was NULL.
	replayed   int64
	replayedAt time.Time
	replayOK   bool
	// reached is the time of the newest sample the standby was seen to
	// have replayed; it outlives the samples dropped for age, so a standby
	// far behind still has a measured lag.
	reached time.Time
}

type walSample struct {
	at  time.Time
	lsn int64
}

// Read source labels, as authd_feed_read_source reports them.
const (
	SourcePrimary = "primary"
	SourceReplica = "replica"
)

// NewReadSource measures replica against primary. maxLag is
// AUTHD_READ_MAX_LAG; observe (may be nil) is told each decision, with
// known false when the lag could not be measured.
func NewReadSource(primary, replica *DB, maxLag time.Duration, observe func(source string, lag time.Duration, known bool)) *ReadSource {
	if observe == nil {
		observe = func(string, time.Duration, bool) {}
	}
	return &ReadSource{primary: primary, replica: replica, maxLag: maxLag, every: 250 * time.Millisecond, observe: observe}
}

// Pick returns the database the feed should read for a poll whose clock
// read now (before this call), and the lag to add to the cursor's hold-back:
// zero for the primary. Any failure to measure picks the primary, so a
// broken standby costs load, never a missed revocation.
func (s *ReadSource) Pick(ctx context.Context, now time.Time) (*DB, time.Duration) {
	if s == nil || s.replica == nil {
		return s.primaryDB(), 0
	}
	s.sample(ctx, now)
	s.readReplay(ctx, now)
	s.mu.Lock()
	at, ok := s.reachedLocked()
	s.mu.Unlock()
	if !ok {
		s.observe(SourcePrimary, 0, false)
		return s.primary, 0
	}
	lag := max(now.Sub(at), 0)
	if lag > s.maxLag {
		s.observe(SourcePrimary, lag, true)
		return s.primary, 0
	}
	s.observe(SourceReplica, lag, true)
	return s.replica, lag
}

func (s *ReadSource) primaryDB() *DB {
	if s == nil {
		return nil
	}
	return s.primary
}

// sample records (now, the primary's WAL position) unless a sample younger
// than the interval exists. now was read before the query, which is what
// makes "committed before now" imply "LSN at most the sample's".
func (s *ReadSource) sample(ctx context.Context, now time.Time) {
	s.mu.Lock()
	fresh := len(s.samples) > 0 && now.Sub(s.samples[len(s.samples)-1].at) < s.every
	s.mu.Unlock()
	if fresh {
		return
	}
	qctx, cancel := context.WithTimeout(ctx, time.Second)
	defer cancel()
	var lsn int64
	if err := s.primary.pool.QueryRow(qctx, `SELECT (pg_current_wal_lsn() - '0/0'::pg_lsn)::bigint`).Scan(&lsn); err != nil {
		return // no new sample: older ones age, and Pick falls back when they pass maxLag
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	s.samples = append(s.samples, walSample{at: now, lsn: lsn})
	// Samples older than maxLag can only yield a lag beyond it.
	drop := 0
	for drop < len(s.samples)-1 && now.Sub(s.samples[drop].at) > s.maxLag {
		drop++
	}
	if len(s.samples)-drop > 1024 {
		drop = len(s.samples) - 1024
	}
	s.samples = s.samples[drop:]
}

// readReplay refreshes the standby's replay position at most once per
// interval. A stale position is safe: replay only moves forward, so the
// standby has replayed at least that much by the time the feed queries it.
func (s *ReadSource) readReplay(ctx context.Context, now time.Time) {
	s.mu.Lock()
	fresh := s.replayOK && now.Sub(s.replayedAt) < s.every && !now.Before(s.replayedAt)
	s.mu.Unlock()
	if fresh {
		return
	}
	qctx, cancel := context.WithTimeout(ctx, time.Second)
	defer cancel()
	// NULL when the server is not in recovery: a promoted or mistaken read
	// URL is not a standby of this primary, so its lag is unknown.
	var lsn *int64
	err := s.replica.pool.QueryRow(qctx, `SELECT (pg_last_wal_replay_lsn() - '0/0'::pg_lsn)::bigint`).Scan(&lsn)
	s.mu.Lock()
	defer s.mu.Unlock()
	s.replayOK = err == nil && lsn != nil
	if s.replayOK {
		s.replayed, s.replayedAt = *lsn, now
	}
}

// reachedLocked is the time of the newest sample the standby has replayed.
func (s *ReadSource) reachedLocked() (time.Time, bool) {
	if !s.replayOK {
		return time.Time{}, false
	}
	for i := len(s.samples) - 1; i >= 0; i-- {
		if s.samples[i].lsn <= s.replayed {
			if s.samples[i].at.After(s.reached) {
				s.reached = s.samples[i].at
			}
			break
		}
	}
	return s.reached, !s.reached.IsZero()
}
