// Package push publishes revocations on Redis pub/sub, the optional fast path
// beside the pulled feed. It is best effort by design: verifiers catch up
// from the feed on their next poll, so a slow or dead Redis must never cost a
// logout anything.
//
// Redis therefore never publishes inside the request. Publish only appends
// to a bounded in-memory queue; one background goroutine drains it in
// pipelines. After FailureThreshold consecutive failures the circuit opens:
// the goroutine stops sending and probes Redis (PING) with exponential
// backoff, and sends the queue, in order, once a probe answers. A revocation
// is never dropped while the queue has room; every one that is dropped
// (queue full, published after Close, still queued when Close gave up) is
// counted through Config.OnDrop and in Stats.
//
// Delivery is at least once per message handed over: a pipeline that failed
// part way is sent again whole, and a verifier's denylist treats a repeated
// entry as one.
package push

import (
	"context"
	"encoding/json"
	"errors"
	"log/slog"
	"net"
	"sync"
	"sync/atomic"
	"syscall"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/seedc5a8123e/authd/verifier"
)

// Defaults for the zero fields of Config.
const (
	DefaultQueueSize        = 10000
	DefaultBatchSize        = 256
	DefaultSendTimeout      = 2 * time.Second
	DefaultCloseTimeout     = 2 * time.Second
	DefaultFailureThreshold = 3
	DefaultMinBackoff       = 100 * time.Millisecond
	DefaultMaxBackoff       = 10 * time.Second
)

// Publisher announces committed revocations. Implementations must not block
// and must not return errors: pull is the contract.
type Publisher interface {
	Publish(ctx context.Context, entries []verifier.Message)
}

// Nop publishes nothing; it is used when AUTHD_REDIS_URL is empty.
type Nop struct{}

// Publish does nothing.
func (Nop) Publish(context.Context, []verifier.Message) {}

// Config configures a Redis publisher. Only URL and Log are required.
type Config struct {
	// URL is the server (redis:// or rediss://); the connection is lazy.
	URL string
	Log *slog.Logger
	// QueueSize caps the revocations waiting to be sent, the batch in
	// flight included. Default DefaultQueueSize.
	QueueSize int
	// BatchSize caps the messages of one pipeline. Default DefaultBatchSize.
	BatchSize int
	// SendTimeout bounds one pipeline or probe, dial included. Default
	// DefaultSendTimeout.
	SendTimeout time.Duration
	// CloseTimeout bounds how long Close keeps trying to send what is
	// queued. Default DefaultCloseTimeout.
	CloseTimeout time.Duration
	// FailureThreshold is how many consecutive failures open the circuit.
	// Default DefaultFailureThreshold.
	FailureThreshold int
	// MinBackoff is the wait after the first failure; each further
	// consecutive failure doubles it, up to MaxBackoff. Defaults
	// DefaultMinBackoff and DefaultMaxBackoff.
	MinBackoff, MaxBackoff time.Duration
	// OnDrop is called once for every revocation that will never be pushed.
	// metrics.PushFailed fits. May be nil.
	OnDrop func()
	// After is the timer every backoff waits on; default time.After. Tests
	// inject one to step through the backoff without sleeping.
	After func(time.Duration) <-chan time.Time
}

// Stats is a snapshot of a publisher's counters.
type Stats struct {
	Queued    int    // waiting to be sent, the batch in flight included
	Published uint64 // messages Redis acknowledged
	Dropped   uint64 // messages given up on (one OnDrop call each)
	Failures  uint64 // failed pipelines and probes
	Open      bool   // the circuit is open: Redis is probed, not sent to
}

// Redis publishes each entry as one JSON message on verifier.PushChannel,
// from a background goroutine.
type Redis struct {
	client *redis.Client
	log    *slog.Logger
	cfg    Config
	q      queue
	wake   chan struct{} // one pending signal: the queue grew

	closing   chan struct{}      // closed by Close: drain, then stop
	hardStop  context.Context    // cancelled CloseTimeout after Close
	stop      context.CancelFunc // cancels hardStop
	done      chan struct{}      // closed when the goroutine has returned
	closeOnce sync.Once
	closeErr  error

	open                         atomic.Bool
	dropping                     atomic.Bool // a drop was logged and no send has succeeded since
	published, dropped, failures atomic.Uint64
}

// NewRedis is New with the defaults; onDrop (may be nil) is called once for
// every revocation that will never be pushed.
func NewRedis(url string, log *slog.Logger, onDrop func()) (*Redis, error) {
	return New(Config{URL: url, Log: log, OnDrop: onDrop})
}

// New starts a publisher; Close stops it.
func New(cfg Config) (*Redis, error) {
	opt, err := redis.ParseURL(cfg.URL)
	if err != nil {
		return nil, err
	}
	if cfg.Log == nil {
		return nil, errors.New("push: Config.Log is required")
	}
	setDefault(&cfg.QueueSize, DefaultQueueSize)
	setDefault(&cfg.BatchSize, DefaultBatchSize)
	setDefault(&cfg.SendTimeout, DefaultSendTimeout)
	setDefault(&cfg.CloseTimeout, DefaultCloseTimeout)
	setDefault(&cfg.FailureThreshold, DefaultFailureThreshold)
	setDefault(&cfg.MinBackoff, DefaultMinBackoff)
	setDefault(&cfg.MaxBackoff, DefaultMaxBackoff)
	if cfg.MaxBackoff < cfg.MinBackoff {
		cfg.MaxBackoff = cfg.MinBackoff
	}
	if cfg.After == nil {
		cfg.After = time.After
	}
	// The goroutine is the retry, with its own backoff: one attempt each,
	// and one connection shared by pipelines and probes, so a probe tests
	// what the next send will use.
	opt.MaxRetries = -1
	opt.DialerRetries = 1
	opt.DialTimeout = cfg.SendTimeout
	opt.ReadTimeout = cfg.SendTimeout
	opt.WriteTimeout = cfg.SendTimeout
	opt.PoolSize = 1
	opt.PipelinePoolSize = -1
	opt.ContextTimeoutEnabled = true
	hardStop, stop := context.WithCancel(context.Background())
	// A read blocked on a server that never answers ignores cancellation
	// (go-redis turns only deadlines into socket deadlines), so Close's bound
	// closes every connection itself.
	dial := redis.NewDialer(opt)
	opt.Dialer = func(ctx context.Context, network, addr string) (net.Conn, error) {
		c, err := dial(ctx, network, addr)
		if err != nil {
			return nil, err
		}
		return closeOnStop(hardStop, c), nil
	}

	r := &Redis{
		client: redis.NewClient(opt), log: cfg.Log, cfg: cfg,
		q:    queue{limit: cfg.QueueSize},
		wake: make(chan struct{}, 1), closing: make(chan struct{}),
		hardStop: hardStop, stop: stop, done: make(chan struct{}),
	}
	go r.run()
	return r, nil
}

func setDefault[T int | time.Duration](v *T, def T) {
	if *v <= 0 {
		*v = def
	}
}

// Publish queues the entries and returns at once. Entries that do not fit
// are dropped and counted.
func (r *Redis) Publish(_ context.Context, entries []verifier.Message) {
	if len(entries) == 0 {
		return
	}
	dropped, closed := r.q.push(entries)
	if dropped < len(entries) {
		select {
		case r.wake <- struct{}{}:
		default: // a signal is already pending
		}
	}
	if dropped > 0 {
		if closed {
			r.log.Warn("push: publisher closed; revocations not pushed (verifiers see them on their next poll)",
				"dropped", dropped)
		} else if r.dropping.CompareAndSwap(false, true) {
			r.log.Warn("push: queue full; dropping revocations until Redis catches up (verifiers see them on their next poll)",
				"queue_size", r.cfg.QueueSize)
		}
		r.drop(dropped)
	}
}

// Stats returns the publisher's counters.
func (r *Redis) Stats() Stats {
	return Stats{
		Queued: r.q.len(), Published: r.published.Load(), Dropped: r.dropped.Load(),
		Failures: r.failures.Load(), Open: r.open.Load(),
	}
}

// Close stops accepting entries, sends what is queued within CloseTimeout,
// counts what could not be sent as dropped, and closes the connection. It is
// safe to call more than once.
func (r *Redis) Close() error {
	r.closeOnce.Do(func() {
		r.q.close()
		close(r.closing)
		t := time.AfterFunc(r.cfg.CloseTimeout, r.stop)
		<-r.done
		t.Stop()
		r.stop()
		// A connection the stop above already closed (a command cut short
		// by hardStop) makes the pool's Close report net.ErrClosed: that
		// connection is released as Close was asked to, so it is no error.
		if err := r.client.Close(); !errors.Is(err, net.ErrClosed) {
			r.closeErr = err
		}
	})
	return r.closeErr
}

func (r *Redis) drop(n int) {
	r.dropped.Add(uint64(n))
	if r.cfg.OnDrop != nil {
		for range n {
			r.cfg.OnDrop()
		}
	}
}

// run is the one goroutine that talks to Redis.
func (r *Redis) run() {
	defer close(r.done)
	closing := false
	failures := 0 // consecutive
	for r.hardStop.Err() == nil {
		batch := r.q.peek(r.cfg.BatchSize)
		if len(batch) == 0 {
			if closing {
				break
			}
			select {
			case <-r.wake:
			case <-r.closing:
				closing = true
			}
			continue
		}
		var err error
		if r.open.Load() {
			if err = r.probe(); err == nil {
				r.open.Store(false)
				r.log.Info("push: Redis answers again; sending the queued revocations", "queued", r.q.len())
			}
		}
		if err == nil {
			if err = r.send(batch); err == nil {
				r.q.pop(len(batch))
				r.published.Add(uint64(len(batch)))
				r.dropping.Store(false)
				failures = 0
				continue
			}
		}
		failures++
		r.failures.Add(1)
		r.log.Debug("push: Redis failed", "consecutive", failures, "err", err)
		if failures >= r.cfg.FailureThreshold && r.open.CompareAndSwap(false, true) {
			r.log.Warn("push: Redis unreachable; queueing revocations and probing it (verifiers see them on their next poll)",
				"failures", failures, "queued", r.q.len(), "err", err)
		}
		select {
		case <-r.cfg.After(r.backoff(failures)):
		case <-r.closing:
			if !closing { // try once more at once, then keep backing off until the deadline
				closing = true
			} else {
				select {
				case <-r.cfg.After(r.backoff(failures)):
				case <-r.hardStop.Done():
				}
			}
		case <-r.hardStop.Done():
		}
	}
	if n := r.q.drain(); n > 0 {
		r.log.Warn("push: closing with revocations still queued; not pushed (verifiers see them on their next poll)",
			"dropped", n)
		r.drop(n)
	}
}

// backoff is the wait after the n-th consecutive failure (n >= 1).
func (r *Redis) backoff(n int) time.Duration {
	d := r.cfg.MinBackoff
	for i := 1; i < n && d < r.cfg.MaxBackoff; i++ {
		d *= 2
	}
	return min(d, r.cfg.MaxBackoff)
}

func (r *Redis) probe() error {
	ctx, cancel := context.WithTimeout(r.hardStop, r.cfg.SendTimeout)
	defer cancel()
	return r.client.Ping(ctx).Err()
}

// send publishes batch in one pipeline; the message format is the one
// verifier.PushChannel documents (one verifier.Message as JSON).
func (r *Redis) send(batch []verifier.Message) error {
	ctx, cancel := context.WithTimeout(r.hardStop, r.cfg.SendTimeout)
	defer cancel()
	pipe := r.client.Pipeline()
	for _, e := range batch {
		msg, _ := json.Marshal(e) // a struct of strings and an int always marshals
		pipe.Publish(ctx, verifier.PushChannel, msg)
	}
	_, err := pipe.Exec(ctx)
	return err
}

// queue is the bounded FIFO between Publish and the goroutine. Entries
// leave it only once Redis acknowledged them, so its length is exactly what
// is not yet pushed.
type queue struct {
	mu     sync.Mutex
	items  []verifier.Message
	limit  int
	closed bool
}

// push appends what fits and reports how many entries did not.
func (q *queue) push(es []verifier.Message) (dropped int, closed bool) {
	q.mu.Lock()
	defer q.mu.Unlock()
	if q.closed {
		return len(es), true
	}
	n := min(len(es), q.limit-len(q.items))
	q.items = append(q.items, es[:n]...)
	return len(es) - n, false
}

// peek copies up to n entries from the head.
func (q *queue) peek(n int) []verifier.Message {
	q.mu.Lock()
	defer q.mu.Unlock()
	return append([]verifier.Message(nil), q.items[:min(n, len(q.items))]...)
}

// pop removes n entries from the head. Reslicing keeps append amortized;
// the array is replaced, and the sent entries freed, when append grows it.
func (q *queue) pop(n int) {
	q.mu.Lock()
	defer q.mu.Unlock()
	clear(q.items[:n])
	q.items = q.items[n:]
	if len(q.items) == 0 {
		q.items = nil
	}
}

func (q *queue) len() int {
	q.mu.Lock()
	defer q.mu.Unlock()
	return len(q.items)
}

// close refuses further entries.
func (q *queue) close() {
	q.mu.Lock()
	defer q.mu.Unlock()
	q.closed = true
}

// drain closes the queue and empties it, returning how many entries it held.
func (q *queue) drain() int {
	q.mu.Lock()
	defer q.mu.Unlock()
	q.closed = true
	n := len(q.items)
	q.items = nil
	return n
}

// closeOnStop closes c when stop is done. The wrapper keeps syscall.Conn
// visible for plain TCP, as go-redis's idle-connection health check needs.
func closeOnStop(stop context.Context, c net.Conn) net.Conn {
	unregister := context.AfterFunc(stop, func() { _ = c.Close() })
	sc := stoppableConn{Conn: c, unregister: unregister}
	if _, ok := c.(syscall.Conn); ok {
		return &stoppableSyscallConn{sc}
	}
	return &sc
}

type stoppableConn struct {
	net.Conn
	unregister func() bool
}

func (c *stoppableConn) Close() error {
	c.unregister()
	return c.Conn.Close()
}

type stoppableSyscallConn struct{ stoppableConn }

func (c *stoppableSyscallConn) SyscallConn() (syscall.RawConn, error) {
	return c.Conn.(syscall.Conn).SyscallConn()
}
