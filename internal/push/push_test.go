package push_test

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"log/slog"
	"net"
	"reflect"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/google/uuid"
	"github.com/redis/go-redis/v9"

	"github.com/seedc5a8123e/authd/internal/authdtest"
	"github.com/seedc5a8123e/authd/internal/push"
	"github.com/seedc5a8123e/authd/verifier"
)

// deadline bounds every wait for an asynchronous outcome; tests never assert
// on how long something took, only that it happens before this.
const deadline = 30 * time.Second

func discard() *slog.Logger { return slog.New(slog.DiscardHandler) }

// entries returns n revocations unique to this test run, numbered by Exp.
func entries(n int) []verifier.Message {
	run := uuid.NewString()[:8]
	out := make([]verifier.Message, n)
	for i := range out {
		out[i] = verifier.Message{JTI: fmt.Sprintf("%s-%08d-jti", run, i), SID: uuid.NewString(), Exp: int64(1_800_000_000 + i)}
	}
	return out
}

// subscriber listens on verifier.PushChannel straight on Redis (not through
// any proxy) and yields the messages about the given entries.
type subscriber struct {
	ps   *redis.PubSub
	want map[string]bool // JTIs of this test's entries
}

func subscribe(t *testing.T, url string, es []verifier.Message) *subscriber {
	t.Helper()
	opt, err := redis.ParseURL(url)
	if err != nil {
		t.Fatal(err)
	}
	c := redis.NewClient(opt)
	t.Cleanup(func() { _ = c.Close() })
	ps := c.Subscribe(context.Background(), verifier.PushChannel)
	t.Cleanup(func() { _ = ps.Close() })
	ctx, cancel := context.WithTimeout(context.Background(), deadline)
	defer cancel()
	if _, err := ps.Receive(ctx); err != nil { // the subscription confirmation
		t.Fatal(err)
	}
	s := &subscriber{ps: ps, want: map[string]bool{}}
	for _, e := range es {
		s.want[e.JTI] = true
	}
	return s
}

// next returns the next message about this test's entries (other packages
// publish on the same channel at the same time), with its raw payload.
func (s *subscriber) next(t *testing.T) (verifier.Message, string) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), deadline)
	defer cancel()
	for {
		msg, err := s.ps.ReceiveMessage(ctx)
		if err != nil {
			t.Fatalf("no push message: %v", err)
		}
		var e verifier.Message
		if err := json.Unmarshal([]byte(msg.Payload), &e); err != nil {
			continue // not ours: someone else's test may publish anything
		}
		if s.want[e.JTI] {
			return e, msg.Payload
		}
	}
}

// expectInOrder reads until every entry of want has arrived, in order.
// Delivery is at least once, so a repeat of an entry already seen is allowed.
func (s *subscriber) expectInOrder(t *testing.T, want []verifier.Message) {
	t.Helper()
	seen := map[string]bool{}
	for i := 0; i < len(want); {
		got, payload := s.next(t)
		if seen[got.JTI] {
			continue
		}
		if !reflect.DeepEqual(got, want[i]) {
			t.Fatalf("message %d = %+v, want %+v", i, got, want[i])
		}
		// The wire format is unchanged: encoding/json of verifier.Message.
		if exp, _ := json.Marshal(want[i]); payload != string(exp) {
			t.Fatalf("payload %s, want %s", payload, exp)
		}
		seen[got.JTI] = true
		i++
	}
}

// eventually polls cond until it holds or the deadline passes.
func eventually(t *testing.T, what string, cond func() bool) {
	t.Helper()
	end := time.Now().Add(deadline)
	for !cond() {
		if time.Now().After(end) {
			t.Fatalf("timed out waiting for %s", what)
		}
		time.Sleep(5 * time.Millisecond)
	}
}

// closedPort is a 127.0.0.1 port nothing listens on.
func closedPort(t *testing.T) string {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := l.Addr().String()
	l.Close()
	return addr
}

func newPublisher(t *testing.T, cfg push.Config) *push.Redis {
	t.Helper()
	if cfg.Log == nil {
		cfg.Log = discard()
	}
	r, err := push.New(cfg)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = r.Close() })
	return r
}

// stepper is an injected push.Config.After: each wait the publisher starts
// is reported on waits and ends only when the test sends on fire.
type stepper struct {
	waits chan time.Duration
	fire  chan time.Time
}

func newStepper() *stepper {
	return &stepper{waits: make(chan time.Duration, 100), fire: make(chan time.Time)}
}

func (s *stepper) after(d time.Duration) <-chan time.Time {
	s.waits <- d
	return s.fire
}

func (s *stepper) nextWait(t *testing.T) time.Duration {
	t.Helper()
	select {
	case d := <-s.waits:
		return d
	case <-time.After(deadline):
		t.Fatal("the publisher never started a backoff wait")
		return 0
	}
}

// (a) Publishes arrive in order, in the documented format.
func TestPublishesArriveInOrder(t *testing.T) {
	url := authdtest.RedisURL(t)
	es := entries(1000)
	sub := subscribe(t, url, es)
	pub := newPublisher(t, push.Config{URL: url, BatchSize: 64})
	for i := 0; i < len(es); {
		n := min(1+i%7, len(es)-i) // batches of assorted sizes
		pub.Publish(context.Background(), es[i:i+n])
		i += n
	}
	sub.expectInOrder(t, es)
	eventually(t, "every message acknowledged", func() bool { return pub.Stats().Published == uint64(len(es)) })
	if s := pub.Stats(); s.Dropped != 0 || s.Queued != 0 || s.Open {
		t.Fatalf("stats = %+v", s)
	}
}

// The legacy constructor still works and its callback counts drops.
func TestNewRedisKeepsItsSignature(t *testing.T) {
	url := authdtest.RedisURL(t)
	es := entries(3)
	sub := subscribe(t, url, es)
	var drops atomic.Int64
	pub, err := push.NewRedis(url, discard(), func() { drops.Add(1) })
	if err != nil {
		t.Fatal(err)
	}
	pub.Publish(context.Background(), es)
	sub.expectInOrder(t, es)
	// Subscribers get a message before the publisher gets Redis's answer;
	// until then it is still queued, and a Close that ran out of time under
	// load would count it as dropped.
	eventually(t, "Redis's acknowledgements", func() bool { return pub.Stats().Published == uint64(len(es)) })
	if err := pub.Close(); err != nil {
		t.Fatal(err)
	}
	pub.Publish(context.Background(), entries(2)) // after Close: counted, not sent
	if drops.Load() != 2 || pub.Stats().Dropped != 2 {
		t.Fatalf("drops = %d, stats %+v; want 2", drops.Load(), pub.Stats())
	}
	if err := pub.Close(); err != nil { // twice is fine
		t.Fatal(err)
	}
}

// (b) With Redis unreachable Publish returns at once, the queue keeps what
// fits, and every message beyond its capacity is counted as dropped.
func TestUnreachableRedis(t *testing.T) {
	st := newStepper()
	var drops atomic.Int64
	pub := newPublisher(t, push.Config{
		URL: "redis://" + closedPort(t) + "/0", QueueSize: 10, CloseTimeout: 50 * time.Millisecond,
		After: st.after, OnDrop: func() { drops.Add(1) },
	})
	es := entries(25)
	for _, e := range es {
		pub.Publish(context.Background(), []verifier.Message{e})
	}
	st.nextWait(t) // the first send failed and the publisher is backing off
	if s := pub.Stats(); s.Queued != 10 || s.Dropped != 15 || drops.Load() != 15 || s.Published != 0 {
		t.Fatalf("stats %+v, OnDrop calls %d; want 10 queued, 15 dropped", s, drops.Load())
	}
	if err := pub.Close(); err != nil {
		t.Fatal(err)
	}
	// Close could not send the 10 queued ones: they are counted too.
	if s := pub.Stats(); s.Queued != 0 || s.Dropped != 25 || drops.Load() != 25 {
		t.Fatalf("after Close: stats %+v, OnDrop calls %d; want all 25 dropped", s, drops.Load())
	}
}

// Publish never waits for Redis: here the publisher's only connection is
// stuck on a server that never answers, with no timeout that could free it,
// and Publish must still return while the queue has room.
func TestPublishDoesNotWaitForRedis(t *testing.T) {
	px := newProxy(t, closedPort(t)) // the upstream is never reached
	px.cut(blackhole)
	pub := newPublisher(t, push.Config{
		URL: "redis://" + px.addr() + "/0", SendTimeout: time.Hour, CloseTimeout: 50 * time.Millisecond,
	})
	pub.Publish(context.Background(), entries(1))
	eventually(t, "the publisher to be stuck on the silent server", func() bool { return px.held() > 0 })
	returned := make(chan struct{})
	go func() {
		for range 100 {
			pub.Publish(context.Background(), entries(5))
		}
		close(returned)
	}()
	select {
	case <-returned:
	case <-time.After(deadline):
		t.Fatal("Publish blocked while the queue had room")
	}
	if s := pub.Stats(); s.Queued != 501 || s.Dropped != 0 {
		t.Fatalf("stats = %+v, want 501 queued and none dropped", s)
	}
}

// The circuit opens after FailureThreshold consecutive failures, and the
// waits between attempts double from MinBackoff up to MaxBackoff.
func TestBackoffAndCircuit(t *testing.T) {
	st := newStepper()
	pub := newPublisher(t, push.Config{
		URL: "redis://" + closedPort(t) + "/0", FailureThreshold: 3,
		MinBackoff: 100 * time.Millisecond, MaxBackoff: time.Second, CloseTimeout: 50 * time.Millisecond,
		After: st.after,
	})
	pub.Publish(context.Background(), entries(1))
	ms := time.Millisecond
	for i, want := range []time.Duration{100 * ms, 200 * ms, 400 * ms, 800 * ms, time.Second, time.Second, time.Second} {
		if got := st.nextWait(t); got != want {
			t.Fatalf("wait %d = %v, want %v", i+1, got, want)
		}
		s := pub.Stats()
		if failures := i + 1; s.Failures != uint64(failures) || s.Open != (failures >= 3) {
			t.Fatalf("after %d failures: %+v", failures, s)
		}
		if s.Queued != 1 || s.Dropped != 0 {
			t.Fatalf("a message was dropped while the queue had room: %+v", s)
		}
		st.fire <- time.Time{}
	}
}

// (c) Redis cut between publisher and server: what is published meanwhile
// is queued, and delivered, in order, once the path is restored.
func TestCutAndRestore(t *testing.T) {
	for _, mode := range []cutMode{reset, blackhole} {
		t.Run(mode.String(), func(t *testing.T) {
			url := authdtest.RedisURL(t)
			opt, _ := redis.ParseURL(url)
			px := newProxy(t, opt.Addr)
			warm, es := entries(1), entries(200)
			sub := subscribe(t, url, append(append([]verifier.Message{}, warm...), es...))
			pub := newPublisher(t, push.Config{
				URL: "redis://" + px.addr() + "/" + fmt.Sprint(opt.DB), BatchSize: 16,
				SendTimeout: 300 * time.Millisecond, MinBackoff: 10 * time.Millisecond, MaxBackoff: 100 * time.Millisecond,
			})
			pub.Publish(context.Background(), warm) // the path works
			sub.expectInOrder(t, warm)
			eventually(t, "the warm-up acknowledged", func() bool { return pub.Stats().Published == 1 })

			px.cut(mode)
			for i := 0; i < len(es); i += 10 {
				pub.Publish(context.Background(), es[i:i+10])
			}
			eventually(t, "the circuit to open", func() bool { return pub.Stats().Open })
			if s := pub.Stats(); s.Queued != len(es) || s.Dropped != 0 {
				t.Fatalf("while cut: %+v, want all %d queued", s, len(es))
			}
			px.restore()
			sub.expectInOrder(t, es)
			eventually(t, "the queue to empty", func() bool { return pub.Stats().Queued == 0 })
			if s := pub.Stats(); s.Dropped != 0 || s.Open {
				t.Fatalf("after restore: %+v", s)
			}
		})
	}
}

// Close sends what is queued before it returns.
func TestCloseDrains(t *testing.T) {
	url := authdtest.RedisURL(t)
	es := entries(500)
	sub := subscribe(t, url, es)
	pub := newPublisher(t, push.Config{URL: url, BatchSize: 32})
	pub.Publish(context.Background(), es)
	if err := pub.Close(); err != nil {
		t.Fatal(err)
	}
	if s := pub.Stats(); s.Published != uint64(len(es)) || s.Dropped != 0 || s.Queued != 0 {
		t.Fatalf("after Close: %+v", s)
	}
	sub.expectInOrder(t, es)
}

// Close gives up within CloseTimeout on a server that never answers, even
// with a send in flight whose own timeout is far away.
func TestCloseIsBounded(t *testing.T) {
	px := newProxy(t, closedPort(t))
	px.cut(blackhole)
	var drops atomic.Int64
	pub := newPublisher(t, push.Config{
		URL: "redis://" + px.addr() + "/0", SendTimeout: time.Hour, CloseTimeout: 50 * time.Millisecond,
		OnDrop: func() { drops.Add(1) },
	})
	pub.Publish(context.Background(), entries(3))
	eventually(t, "the send to be in flight", func() bool { return px.held() > 0 })
	closed := make(chan error, 1)
	go func() { closed <- pub.Close() }()
	select {
	case <-closed:
	case <-time.After(deadline):
		t.Fatal("Close did not return")
	}
	if drops.Load() != 3 {
		t.Fatalf("drops = %d, want 3", drops.Load())
	}
}

// BenchmarkPublishRedisDown measures what a logout pays to publish while
// Redis is unreachable: an append to the queue.
func BenchmarkPublishRedisDown(b *testing.B) {
	l, _ := net.Listen("tcp", "127.0.0.1:0")
	addr := l.Addr().String()
	l.Close()
	pub, err := push.New(push.Config{URL: "redis://" + addr + "/0", Log: discard(), QueueSize: 1 << 30,
		CloseTimeout: time.Millisecond})
	if err != nil {
		b.Fatal(err)
	}
	defer pub.Close()
	e := []verifier.Message{{JTI: uuid.NewString(), SID: uuid.NewString(), Exp: 1_800_000_000}}
	ctx := context.Background()
	b.ReportAllocs()
	for b.Loop() {
		pub.Publish(ctx, e)
	}
}

// proxy is a TCP proxy the test controls, between publisher and Redis.
type proxy struct {
	t        *testing.T
	l        net.Listener
	upstream string

	mu    sync.Mutex
	mode  cutMode
	conns map[net.Conn]bool // every accepted and every upstream connection
	hold  map[net.Conn]bool // accepted while blackholed: read from by nobody
}

type cutMode int

const (
	forward   cutMode = iota
	reset             // connections are closed at once, like a dead server
	blackhole         // connections are accepted and never answered
)

func (m cutMode) String() string { return [...]string{"Forward", "Reset", "Blackhole"}[m] }

func newProxy(t *testing.T, upstream string) *proxy {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	p := &proxy{t: t, l: l, upstream: upstream, conns: map[net.Conn]bool{}, hold: map[net.Conn]bool{}}
	t.Cleanup(func() {
		l.Close()
		p.closeAll()
	})
	go p.serve()
	return p
}

func (p *proxy) addr() string { return p.l.Addr().String() }

func (p *proxy) held() int {
	p.mu.Lock()
	defer p.mu.Unlock()
	return len(p.hold)
}

// cut breaks every open connection and answers new ones as mode says.
func (p *proxy) cut(mode cutMode) {
	p.closeAll()
	p.mu.Lock()
	p.mode = mode
	p.mu.Unlock()
}

// restore forwards again; what was held during a blackhole is closed
// unforwarded, as a dead path would have lost it.
func (p *proxy) restore() {
	p.closeAll()
	p.mu.Lock()
	p.mode = forward
	p.mu.Unlock()
}

func (p *proxy) closeAll() {
	p.mu.Lock()
	defer p.mu.Unlock()
	for c := range p.conns {
		c.Close()
	}
	clear(p.conns)
	clear(p.hold)
}

func (p *proxy) serve() {
	for {
		c, err := p.l.Accept()
		if err != nil {
			return
		}
		p.mu.Lock()
		mode := p.mode
		switch mode {
		case reset:
			c.Close()
		case blackhole:
			p.conns[c], p.hold[c] = true, true
		case forward:
			p.conns[c] = true
		}
		p.mu.Unlock()
		if mode == forward {
			go p.pipe(c)
		}
	}
}

func (p *proxy) pipe(c net.Conn) {
	up, err := net.Dial("tcp", p.upstream)
	if err != nil {
		c.Close()
		return
	}
	p.mu.Lock()
	p.conns[up] = true
	p.mu.Unlock()
	done := make(chan struct{}, 2)
	cp := func(dst, src net.Conn) {
		_, _ = io.Copy(dst, src)
		done <- struct{}{}
	}
	go cp(up, c)
	go cp(c, up)
	<-done
	c.Close()
	up.Close()
}
