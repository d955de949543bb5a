package main

import (
	"context"
	"errors"
	"sync"
	"sync/atomic"
	"time"
)

// errExhausted, returned by an operation, stops its worker without counting
// the attempt: the scenario ran out of what it consumes (logout sessions).
var errExhausted = errors.New("nothing left to consume")

// op is one operation of a closed-loop worker. label names it (mixed runs
// several kinds; others return ""), err is nil on success.
type op func(ctx context.Context, worker int) (label string, err error)

// loopConfig bounds a closed-loop run in time and in count.
type loopConfig struct {
	Concurrency int
	// Warmup runs before the measured window; its operations are not
	// counted. At most WarmupMaxOps of them (0: no count bound besides MaxOps).
	Warmup       time.Duration
	WarmupMaxOps int64
	// Duration is the measured window; 0 means no time bound, and MaxOps
	// must then be set (tests).
	Duration time.Duration
	// MaxOps bounds the operations of the measured window (and of the
	// warmup when WarmupMaxOps is 0). Required.
	MaxOps int64
	// OnMeasureStart and OnMeasureEnd run on the coordinating goroutine
	// just before the first and just after the last measured operation
	// (CPU sampling).
	OnMeasureStart, OnMeasureEnd func()
	// Progress, if set, is called every ProgressEvery during the measured
	// window with the time elapsed and the counts so far.
	Progress      func(elapsed time.Duration, ok, failed int64)
	ProgressEvery time.Duration
}

// labelRecord is what one worker saw of one label.
type labelRecord struct {
	ok   []time.Duration // latencies of successful operations
	errs map[string]int64
	// firstErr is one example per kind, for the notes.
	firstErr map[string]string
}

func newLabelRecord() *labelRecord {
	return &labelRecord{errs: map[string]int64{}, firstErr: map[string]string{}}
}

func (r *labelRecord) merge(o *labelRecord) {
	r.ok = append(r.ok, o.ok...)
	for k, n := range o.errs {
		r.errs[k] += n
	}
	for k, s := range o.firstErr {
		if _, ok := r.firstErr[k]; !ok {
			r.firstErr[k] = s
		}
	}
}

// loopResult is the outcome of a closed-loop run.
type loopResult struct {
	Window    time.Duration // first measured start to last measured end
	Exhausted bool          // a worker ran out before the window ended
	All       *labelRecord
	ByLabel   map[string]*labelRecord
}

// add merges a later slice of the same measurement.
func (r *loopResult) add(o *loopResult) {
	r.Window += o.Window
	r.Exhausted = r.Exhausted || o.Exhausted
	r.All.merge(o.All)
	for label, rec := range o.ByLabel {
		if r.ByLabel[label] == nil {
			r.ByLabel[label] = newLabelRecord()
		}
		r.ByLabel[label].merge(rec)
	}
}

func (r *loopResult) OK() int64 { return int64(len(r.All.ok)) }

func (r *loopResult) Failed() int64 {
	var n int64
	for _, c := range r.All.errs {
		n += c
	}
	return n
}

// runLoop runs cfg.Concurrency workers, each calling fn back to back (a
// closed loop: a worker's next operation starts when its last one ends),
// first for the warmup, then for the measured window. An operation counts
// when it started inside the window; the window ends when the last worker
// has finished the operation it was in at the deadline, or earlier when
// every worker stopped (MaxOps reached, errExhausted, ctx done).
func runLoop(ctx context.Context, cfg loopConfig, fn op) *loopResult {
	if cfg.Concurrency < 1 {
		cfg.Concurrency = 1
	}
	if cfg.MaxOps <= 0 {
		panic("authbench: runLoop needs MaxOps")
	}
	warmupMax := cfg.WarmupMaxOps
	if warmupMax <= 0 {
		warmupMax = cfg.MaxOps
	}
	var (
		measureFrom atomic.Int64 // UnixNano of the window's start; 0 during warmup
		stop        atomic.Bool
		warmTickets atomic.Int64
		tickets     atomic.Int64
		okCount     atomic.Int64
		errCount    atomic.Int64
		exhausted   atomic.Bool
	)
	var t0 time.Time
	openWindow := func() {
		if cfg.OnMeasureStart != nil {
			cfg.OnMeasureStart()
		}
		t0 = time.Now()
		measureFrom.Store(t0.UnixNano())
	}
	if cfg.Warmup <= 0 {
		openWindow() // before any worker starts, so no operation is a warmup one
	}
	records := make([]map[string]*labelRecord, cfg.Concurrency)
	var wg sync.WaitGroup
	allDone := make(chan struct{})
	for w := range cfg.Concurrency {
		records[w] = map[string]*labelRecord{}
		wg.Add(1)
		go func() {
			defer wg.Done()
			for !stop.Load() && ctx.Err() == nil {
				from := measureFrom.Load()
				if from == 0 {
					if warmTickets.Add(1) > warmupMax {
						// Warmup budget spent: wait for the window to open.
						if !waitFor(ctx, &stop, func() bool { return measureFrom.Load() != 0 }) {
							return
						}
						continue
					}
				} else if tickets.Add(1) > cfg.MaxOps {
					return
				}
				start := time.Now()
				label, err := fn(ctx, w)
				elapsed := time.Since(start)
				if errors.Is(err, errExhausted) {
					exhausted.Store(true)
					return
				}
				if from == 0 {
					continue // a warmup operation
				}
				rec := records[w][label]
				if rec == nil {
					rec = newLabelRecord()
					records[w][label] = rec
				}
				if err == nil {
					rec.ok = append(rec.ok, elapsed)
					okCount.Add(1)
					continue
				}
				kind := classify(err)
				if ctx.Err() != nil && kind == "canceled" {
					return // interrupted, not a failure of authd
				}
				rec.errs[kind]++
				if _, seen := rec.firstErr[kind]; !seen {
					rec.firstErr[kind] = truncateString(err.Error(), 200)
				}
				errCount.Add(1)
			}
		}()
	}
	go func() { wg.Wait(); close(allDone) }()

	if cfg.Warmup > 0 {
		sleepOr(ctx, cfg.Warmup, allDone)
		openWindow()
	}

	// The measured window, with progress.
	var deadline <-chan time.Time
	if cfg.Duration > 0 {
		t := time.NewTimer(cfg.Duration)
		defer t.Stop()
		deadline = t.C
	}
	var tick <-chan time.Time
	if cfg.Progress != nil && cfg.ProgressEvery > 0 {
		tk := time.NewTicker(cfg.ProgressEvery)
		defer tk.Stop()
		tick = tk.C
	}
wait:
	for {
		select {
		case <-deadline:
			break wait
		case <-allDone:
			break wait
		case <-ctx.Done():
			break wait
		case <-tick:
			cfg.Progress(time.Since(t0), okCount.Load(), errCount.Load())
		}
	}
	stop.Store(true)
	<-allDone
	window := time.Since(t0)
	if cfg.OnMeasureEnd != nil {
		cfg.OnMeasureEnd()
	}

	res := &loopResult{Window: window, Exhausted: exhausted.Load(), All: newLabelRecord(), ByLabel: map[string]*labelRecord{}}
	for _, byLabel := range records {
		for label, rec := range byLabel {
			res.All.merge(rec)
			if res.ByLabel[label] == nil {
				res.ByLabel[label] = newLabelRecord()
			}
			res.ByLabel[label].merge(rec)
		}
	}
	return res
}

// sleepOr sleeps for d, or until done closes or ctx ends.
func sleepOr(ctx context.Context, d time.Duration, done <-chan struct{}) {
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-t.C:
	case <-done:
	case <-ctx.Done():
	}
}

// waitFor polls cond every millisecond until it holds (true) or stop is set
// or ctx ends (false).
func waitFor(ctx context.Context, stop *atomic.Bool, cond func() bool) bool {
	for !cond() {
		if stop.Load() || ctx.Err() != nil {
			return false
		}
		time.Sleep(time.Millisecond)
	}
	return true
}

func truncateString(s string, n int) string {
	if len(s) <= n {
		return s
	}
	return s[:n] + "…"
}
