// Package jobs runs authd's periodic work on robfig/cron: the pruning of
// sessions long past their absolute expiry and of audit events past their
// retention, and the issuer-wide cutoff's sweep.
package jobs

import (
	"context"
	"log/slog"
	"time"

	"github.com/robfig/cron/v3"

	"github.com/seedc5a8123e/authd/internal/clock"
	"github.com/seedc5a8123e/authd/internal/postgres"
)

// pruneBatch is how many rows one DELETE removes, to keep lock times short.
const pruneBatch = 5000

// pruneTimeout bounds one pruning run.
const pruneTimeout = 5 * time.Minute

// Pruner deletes sessions whose absolute expiry is older than the retention.
// Every replica may run it: the DELETE is idempotent and skips rows another
// replica is deleting.
type Pruner struct {
	DB        *postgres.DB
	Clock     clock.Clock
	Retention time.Duration
	Log       *slog.Logger
	// OnRun, if set, is told each run's outcome (for metrics).
	OnRun func(deleted int64, err error)
	// LoginFailures, if set, also forgets login-failure counts that have
	// been quiet long enough (the throttle decides what that means).
	LoginFailures interface {
		Prune(ctx context.Context) (int64, error)
	}
	// Sweep, if set, marks the sessions an issuer-wide cutoff covers
	// revoked (session.Service.SweepCutoffs); Start runs it every
	// SweepInterval.
	Sweep func(ctx context.Context) (int, error)
	// AuditRetention, when positive, is how long audit rows are kept
	// (AUTHD_AUDIT_RETENTION), counted from each row's time and
	// independent of Retention: the log must outlive the sessions it tells
	// about.
	AuditRetention time.Duration
}

// SweepInterval is how often the issuer-wide cutoff's sweep runs: the delay
// before session lists and the v1 feed show what the cutoff already denies.
const SweepInterval = 10 * time.Second

// Run prunes once. The retention is counted from each session's absolute
// expiry, so nothing a verifier could still need is removed: every token of a
// session expires by then.
func (p *Pruner) Run(ctx context.Context) (int64, error) {
	ctx, cancel := context.WithTimeout(ctx, pruneTimeout)
	defer cancel()
	before := p.Clock.Now().Add(-p.Retention)
	n, err := p.DB.DeleteSessionsExpiredBefore(ctx, before, pruneBatch)
	if err == nil {
		// Cutoffs are kept as long as the sessions they revoked.
		_, err = p.DB.DeleteCutoffsExpiredBefore(ctx, before)
	}
	if p.OnRun != nil {
		p.OnRun(n, err)
	}
	if err != nil {
		p.Log.Error("prune: failed; will retry on the next tick", "deleted", n, "err", err)
		return n, err
	}
	attrs := []any{"deleted", n, "expired_before", before.UTC().Format(time.RFC3339)}
	if p.LoginFailures != nil {
		m, err := p.LoginFailures.Prune(ctx)
		if err != nil {
			p.Log.Error("prune: login failures failed; will retry on the next tick", "err", err)
			return n, err
		}
		attrs = append(attrs, "login_failures_deleted", m)
	}
	// A verifier silent for a whole session retention is gone from the
	// fleet: its row would only ever show as silent.
	m, err := p.DB.DeleteFeedClients(ctx, before)
	if err != nil {
		p.Log.Error("prune: feed clients failed; will retry on the next tick", "err", err)
		return n, err
	}
	attrs = append(attrs, "feed_clients_deleted", m)
	if p.AuditRetention > 0 {
		m, err := p.pruneAudit(ctx)
		if err != nil {
			p.Log.Error("prune: audit events failed; will retry on the next tick", "deleted", m, "err", err)
			return n, err
		}
		attrs = append(attrs, "audit_events_deleted", m)
	}
	p.Log.Info("prune: done", attrs...)
	return n, nil
}

// pruneAudit deletes audit rows past AuditRetention, a batch per statement,
// until a batch comes back short.
func (p *Pruner) pruneAudit(ctx context.Context) (int64, error) {
	before := p.Clock.Now().Add(-p.AuditRetention)
	var total int64
	for {
		n, err := p.DB.DeleteAuditEventsBefore(ctx, before, pruneBatch)
		total += n
		if err != nil || n < pruneBatch {
			return total, err
		}
	}
}

// Scheduler runs jobs on their cron schedules.
type Scheduler struct {
	c *cron.Cron
}

// Start schedules p on spec. Runs never overlap (a tick that finds the
// previous run still going is skipped), a panic is recovered and logged, and
// each run's context derives from ctx, so shutdown cancels a run in flight.
func Start(ctx context.Context, spec string, p *Pruner, log *slog.Logger) (*Scheduler, error) {
	logger := cronLogger{log}
	c := cron.New(cron.WithChain(cron.Recover(logger), cron.SkipIfStillRunning(logger)), cron.WithLogger(logger))
	if _, err := c.AddFunc(spec, func() { _, _ = p.Run(ctx) }); err != nil {
		return nil, err
	}
	if p.Sweep != nil {
		c.Schedule(cron.Every(SweepInterval), cron.FuncJob(func() {
			if n, err := p.Sweep(ctx); err != nil {
				log.Error("sweep: failed; will retry on the next tick", "marked", n, "err", err)
			} else if n > 0 {
				log.Info("sweep: sessions of the issuer-wide cutoff marked revoked", "marked", n)
			}
		}))
	}
	c.Start()
	return &Scheduler{c: c}, nil
}

// Stop stops scheduling and waits for a running job to return.
func (s *Scheduler) Stop() { <-s.c.Stop().Done() }

// cronLogger adapts slog to cron's logger; cron's Info chatter is debug here.
type cronLogger struct{ log *slog.Logger }

func (l cronLogger) Info(msg string, kv ...any) { l.log.Debug("cron: "+msg, kv...) }
func (l cronLogger) Error(err error, msg string, kv ...any) {
	l.log.Error("cron: "+msg, append(kv, "err", err)...)
}
