// Package metrics holds authd's Prometheus collectors. Each server builds its
// own Metrics on its own registry (tests run several servers in one process),
// and the domain packages see only the small hooks they call: methods here
// are safe on a nil *Metrics, which records nothing.
package metrics

import (
	"net/http"
	"strconv"
	"time"

	"github.com/jackc/pgx/v5/pgxpool"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"
	"github.com/prometheus/client_golang/prometheus/promhttp"

	"github.com/seedc5a8123e/authd/internal/buildinfo"
)

// UnmatchedRoute is the route label of a request that matched no route, so a
// scan of random paths adds no series.
const UnmatchedRoute = "unmatched"

// Prune outcomes, the values of authd_prune_runs_total's result label.
const (
	PruneOK    = "ok"
	PruneError = "error"
)

// Metrics is one server's collectors.
type Metrics struct {
	reg *prometheus.Registry

	httpRequests   *prometheus.CounterVec
	httpDuration   *prometheus.HistogramVec
	tokensIssued   *prometheus.CounterVec
	refreshReuse   prometheus.Counter
	refreshRaced   prometheus.Counter
	refreshFull    prometheus.Counter
	revocations    *prometheus.CounterVec
	feedPolls      prometheus.Counter
	feedEntries    prometheus.Counter
	pushFailures   prometheus.Counter
	pruneRuns      *prometheus.CounterVec
	pruneDeleted   prometheus.Counter
	loginThrottled prometheus.Counter
	feedReads      *prometheus.CounterVec
	feedSource     *prometheus.GaugeVec
	feedLag        prometheus.Gauge
	clientPoll     *prometheus.GaugeVec
	clientLag      *prometheus.GaugeVec
	propagation    prometheus.Histogram
	keysRead       prometheus.Gauge
}

// New registers authd's collectors on reg, with the Go runtime and process
// collectors, authd_build_info and, when pool is not nil, the database pool's
// statistics. grants are the known values of the grant label, started at zero.
func New(reg *prometheus.Registry, pool *pgxpool.Pool, grants []string) *Metrics {
	m := &Metrics{
		reg: reg,
		httpRequests: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "authd_http_requests_total", Help: "HTTP requests answered, by route template and status code.",
		}, []string{"route", "code"}),
		httpDuration: prometheus.NewHistogramVec(prometheus.HistogramOpts{
			Name: "authd_http_request_duration_seconds", Help: "Time to answer an HTTP request, by route template and status code.",
			Buckets: prometheus.DefBuckets,
		}, []string{"route", "code"}),
		tokensIssued: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "authd_tokens_issued_total", Help: "Access tokens issued, by grant type.",
		}, []string{"grant"}),
		refreshReuse: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "authd_refresh_reuse_detected_total", Help: "Presentations of an already rotated refresh token.",
		}),
		refreshRaced: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "authd_refresh_reuse_grace_total",
			Help: "Presentations of the just-rotated refresh token within AUTHD_REFRESH_REUSE_GRACE, refused without revoking the session.",
		}),
		refreshFull: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "authd_refresh_full_path_total",
			Help: "Refresh requests decided by the full transaction rather than the one-statement rotation: rotated-away or unknown tokens, sessions refused or revoked, cutoffs, tokens of older releases.",
		}),
		revocations: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "authd_revocations_total", Help: "Sessions revoked, by reason.",
		}, []string{"reason"}),
		feedPolls: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "authd_feed_polls_total", Help: "Revocation feed polls answered.",
		}),
		feedEntries: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "authd_feed_entries_returned_total", Help: "Entries returned by revocation feed polls.",
		}),
		pushFailures: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "authd_push_failures_total", Help: "Revocations never pushed to Redis (queue full, or still queued at shutdown); verifiers see them on their next poll.",
		}),
		pruneRuns: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "authd_prune_runs_total", Help: "Runs of the pruning job, by result (ok, error).",
		}, []string{"result"}),
		pruneDeleted: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "authd_prune_deleted_total", Help: "Sessions deleted by the pruning job.",
		}),
		loginThrottled: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "authd_login_throttled_total", Help: "Password attempts refused by the brute-force throttle (429).",
		}),
		feedReads: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "authd_feed_follower_reads_total",
			Help: "Reads of the database by the revocation feed's in-memory follower, by result (ok, error); polls themselves read nothing.",
		}, []string{"result"}),
		feedSource: prometheus.NewGaugeVec(prometheus.GaugeOpts{
			Name: "authd_feed_read_source",
			Help: "Where the last revocation feed poll read: 1 for the source used (primary or replica), 0 for the other.",
		}, []string{"source"}),
		feedLag: prometheus.NewGauge(prometheus.GaugeOpts{
			Name: "authd_feed_read_lag_seconds",
			Help: "The read replica's replay lag measured at the last feed poll; -1 when it could not be measured.",
		}),
		// One series per service identity that polls: as many as there are
		// verifier deployments, which an admin creates.
		clientPoll: prometheus.NewGaugeVec(prometheus.GaugeOpts{
			Name: "authd_feed_client_last_poll_timestamp_seconds",
			Help: "When the service identity (client) last polled the revocation feed, on any replica, in Unix seconds.",
		}, []string{"client"}),
		clientLag: prometheus.NewGaugeVec(prometheus.GaugeOpts{
			Name: "authd_feed_client_lag_seconds",
			Help: "Now minus the feed cursor the service identity (client) last received: how far behind its denylist may be.",
		}, []string{"client"}),
		propagation: prometheus.NewHistogram(prometheus.HistogramOpts{
			Name: "authd_revocation_propagation_seconds",
			Help: "From a revoking transaction's commit until every verifier active in the last 5 minutes has received a feed cursor past it.",
			// The floor is the feed's hold-back (15 s); a verifier's default
			// poll interval is 30 s.
			Buckets: []float64{1, 5, 10, 15, 20, 25, 30, 40, 50, 60, 90, 120, 180, 300, 600},
		}),
		keysRead: prometheus.NewGauge(prometheus.GaugeOpts{
			Name: "authd_signing_keys_read_timestamp_seconds",
			Help: "When this replica last read the database signing keys (AUTHD_KEY_ENCRYPTION_KEY), in Unix seconds; 0 with key files. Alert when it falls a minute behind: the replica would miss a rotation.",
		}),
	}
	reg.MustRegister(m.httpRequests, m.httpDuration, m.tokensIssued, m.refreshReuse, m.refreshRaced, m.refreshFull, m.revocations,
		m.feedPolls, m.feedEntries, m.pushFailures, m.pruneRuns, m.pruneDeleted, m.loginThrottled,
		m.feedReads, m.feedSource, m.feedLag, m.clientPoll, m.clientLag, m.propagation, m.keysRead,
		collectors.NewGoCollector(), collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}),
		buildInfoGauge(buildinfo.Read()))
	if pool != nil {
		reg.MustRegister(poolCollector{pool})
	}
	// Known label values start at zero, so rate() sees their first increment.
	for _, g := range grants {
		m.tokensIssued.WithLabelValues(g)
	}
	m.feedSource.WithLabelValues("primary").Set(1)
	m.feedSource.WithLabelValues("replica")
	m.pruneRuns.WithLabelValues(PruneOK)
	m.pruneRuns.WithLabelValues(PruneError)
	m.feedReads.WithLabelValues(PruneOK)
	m.feedReads.WithLabelValues(PruneError)
	return m
}

// FeedClient sets the feed gauges of the service identity client
// (fleet.Observer).
func (m *Metrics) FeedClient(client string, lastPoll time.Time, lag time.Duration) {
	if m == nil {
		return
	}
	m.clientPoll.WithLabelValues(client).Set(float64(lastPoll.UnixMilli()) / 1000)
	m.clientLag.WithLabelValues(client).Set(lag.Seconds())
}

// Propagated observes n revoking transactions that took d to reach every
// active verifier (fleet.Observer).
func (m *Metrics) Propagated(d time.Duration, n int) {
	if m == nil {
		return
	}
	for range n {
		m.propagation.Observe(d.Seconds())
	}
}

// FeedRead counts one read of the database by the feed's follower.
func (m *Metrics) FeedRead(err error) {
	if m == nil {
		return
	}
	if err != nil {
		m.feedReads.WithLabelValues(PruneError).Inc()
		return
	}
	m.feedReads.WithLabelValues(PruneOK).Inc()
}

// buildInfoGauge is authd_build_info: always 1, its labels say which build
// runs, so a query can join on them (count by (version) (authd_build_info)
// shows a rollout's progress).
func buildInfoGauge(in buildinfo.Info) prometheus.Gauge {
	g := prometheus.NewGauge(prometheus.GaugeOpts{
		Name: "authd_build_info",
		Help: "The running build: version, VCS revision (-dirty for uncommitted changes) and Go version; always 1.",
		ConstLabels: prometheus.Labels{
			"version": in.Version, "revision": in.Revision, "goversion": in.GoVersion,
		},
	})
	g.Set(1)
	return g
}

// Handler serves the registry in the Prometheus exposition formats.
func (m *Metrics) Handler() http.Handler {
	return promhttp.HandlerFor(m.reg, promhttp.HandlerOpts{})
}

// HTTPRequest records one answered request; route is the route template,
// never the raw path.
func (m *Metrics) HTTPRequest(route string, code int, d time.Duration) {
	if m == nil {
		return
	}
	c := strconv.Itoa(code)
	m.httpRequests.WithLabelValues(route, c).Inc()
	m.httpDuration.WithLabelValues(route, c).Observe(d.Seconds())
}

// TokenIssued counts one access token issued by grant.
func (m *Metrics) TokenIssued(grant string) {
	if m == nil {
		return
	}
	m.tokensIssued.WithLabelValues(grant).Inc()
}

// RefreshReused counts one presentation of a rotated refresh token.
func (m *Metrics) RefreshReused() {
	if m == nil {
		return
	}
	m.refreshReuse.Inc()
}

// RefreshRaced counts a just-rotated refresh token forgiven within the grace.
func (m *Metrics) RefreshRaced() {
	if m == nil {
		return
	}
	m.refreshRaced.Inc()
}

// RefreshFullPath counts a refresh the one-statement rotation left to the
// full transaction.
func (m *Metrics) RefreshFullPath() {
	if m == nil {
		return
	}
	m.refreshFull.Inc()
}

// Revoked counts n sessions revoked for reason. Callers pass one of their
// reason constants, never text a client chose, to keep the label bounded.
func (m *Metrics) Revoked(reason string, n int) {
	if m == nil || n <= 0 {
		return
	}
	m.revocations.WithLabelValues(reason).Add(float64(n))
}

// FeedPolled counts one answered feed poll that returned entries entries.
func (m *Metrics) FeedPolled(entries int) {
	if m == nil {
		return
	}
	m.feedPolls.Inc()
	m.feedEntries.Add(float64(entries))
}

// FeedReadFrom records where a feed poll read (postgres.SourcePrimary or
// SourceReplica) and the replica's lag, known false when unmeasured; it fits
// postgres.NewReadSource's observe.
func (m *Metrics) FeedReadFrom(source string, lag time.Duration, known bool) {
	if m == nil {
		return
	}
	for _, s := range []string{"primary", "replica"} {
		v := 0.0
		if s == source {
			v = 1
		}
		m.feedSource.WithLabelValues(s).Set(v)
	}
	if !known {
		m.feedLag.Set(-1)
		return
	}
	m.feedLag.Set(lag.Seconds())
}

// PushFailed counts one revocation that will never be pushed; it fits
// push.NewRedis's onDrop.
func (m *Metrics) PushFailed() {
	if m == nil {
		return
	}
	m.pushFailures.Inc()
}

// PruneRan records one pruning run; it fits jobs.Pruner's OnRun.
func (m *Metrics) PruneRan(deleted int64, err error) {
	if m == nil {
		return
	}
	result := PruneOK
	if err != nil {
		result = PruneError
	}
	m.pruneRuns.WithLabelValues(result).Inc()
	m.pruneDeleted.Add(float64(deleted))
}

// LoginThrottled counts one attempt refused by the throttle.
func (m *Metrics) LoginThrottled() {
	if m == nil {
		return
	}
	m.loginThrottled.Inc()
}

// poolCollector reads the pgx pool's statistics at each scrape.
type poolCollector struct{ pool *pgxpool.Pool }

var (
	poolAcquired = prometheus.NewDesc("authd_db_pool_acquired_conns",
		"Connections currently acquired from the database pool.", nil, nil)
	poolIdle = prometheus.NewDesc("authd_db_pool_idle_conns",
		"Idle connections in the database pool.", nil, nil)
	poolConstructing = prometheus.NewDesc("authd_db_pool_constructing_conns",
		"Connections being opened by the database pool.", nil, nil)
	poolTotal = prometheus.NewDesc("authd_db_pool_total_conns",
		"Connections in the database pool: acquired, idle and being opened.", nil, nil)
	poolMax = prometheus.NewDesc("authd_db_pool_max_conns",
		"The database pool's maximum size.", nil, nil)
	poolAcquires = prometheus.NewDesc("authd_db_pool_acquires_total",
		"Successful acquires of a database connection.", nil, nil)
	poolEmptyAcquires = prometheus.NewDesc("authd_db_pool_empty_acquires_total",
		"Acquires that had to wait for a connection because none was idle.", nil, nil)
	poolCanceledAcquires = prometheus.NewDesc("authd_db_pool_canceled_acquires_total",
		"Acquires canceled by their context.", nil, nil)
	poolAcquireSeconds = prometheus.NewDesc("authd_db_pool_acquire_duration_seconds_total",
		"Total time spent in successful acquires.", nil, nil)
	poolWaitSeconds = prometheus.NewDesc("authd_db_pool_empty_acquire_wait_seconds_total",
		"Total time acquires waited because the pool had no idle connection.", nil, nil)
)

func (poolCollector) Describe(ch chan<- *prometheus.Desc) {
	for _, d := range []*prometheus.Desc{poolAcquired, poolIdle, poolConstructing, poolTotal, poolMax,
		poolAcquires, poolEmptyAcquires, poolCanceledAcquires, poolAcquireSeconds, poolWaitSeconds} {
		ch <- d
	}
}

func (c poolCollector) Collect(ch chan<- prometheus.Metric) {
	s := c.pool.Stat()
	gauge := func(d *prometheus.Desc, v float64) { ch <- prometheus.MustNewConstMetric(d, prometheus.GaugeValue, v) }
	counter := func(d *prometheus.Desc, v float64) {
		ch <- prometheus.MustNewConstMetric(d, prometheus.CounterValue, v)
	}
	gauge(poolAcquired, float64(s.AcquiredConns()))
	gauge(poolIdle, float64(s.IdleConns()))
	gauge(poolConstructing, float64(s.ConstructingConns()))
	gauge(poolTotal, float64(s.TotalConns()))
	gauge(poolMax, float64(s.MaxConns()))
	counter(poolAcquires, float64(s.AcquireCount()))
	counter(poolEmptyAcquires, float64(s.EmptyAcquireCount()))
	counter(poolCanceledAcquires, float64(s.CanceledAcquireCount()))
	counter(poolAcquireSeconds, s.AcquireDuration().Seconds())
	counter(poolWaitSeconds, s.EmptyAcquireWaitTime().Seconds())
}

// SigningKeysRead records a successful read of the database signing keys.
func (m *Metrics) SigningKeysRead(at time.Time) {
	if m == nil {
		return
	}
	m.keysRead.Set(float64(at.Unix()))
}
