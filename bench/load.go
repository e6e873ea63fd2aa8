package bench

import (
	"context"
	"errors"
	"fmt"
	"io"
	"math/rand/v2"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"time"

	hdrhistogram "github.com/HdrHistogram/hdrhistogram-go"
	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/prism-data/prism/client"
)

// Latencies are recorded in nanoseconds from 1µs to a minute with three
// significant digits; longer ones are recorded as a minute.
const (
	histLowest  = int64(time.Microsecond)
	histHighest = int64(time.Minute)
	histDigits  = 3
)

func newHist() *hdrhistogram.Histogram { return hdrhistogram.New(histLowest, histHighest, histDigits) }

// series accumulates one measured quantity (e.g. "put" latency): a
// histogram of the whole run, one of the current progress interval, and
// errors by code.
type series struct {
	total, interval *hdrhistogram.Histogram
	intervalErrs    int64
	errs            map[string]int64
	sample          map[string]string // one message per code
}

// recorder collects the series of a run. It is sharded so concurrent
// workers rarely contend; each shard has its own lock and histograms.
type recorder struct {
	names  []string
	shards []*shard
}

type shard struct {
	mu     sync.Mutex
	series map[string]*series
}

func newRecorder(names []string, shards int) *recorder {
	r := &recorder{names: names}
	for range shards {
		s := &shard{series: map[string]*series{}}
		for _, n := range names {
			s.series[n] = &series{total: newHist(), interval: newHist(), errs: map[string]int64{}, sample: map[string]string{}}
		}
		r.shards = append(r.shards, s)
	}
	return r
}

// observe records a latency of series name, from the shard of worker w.
func (r *recorder) observe(w int, name string, d time.Duration) {
	v := min(max(int64(d), histLowest), histHighest)
	s := r.shards[w%len(r.shards)]
	s.mu.Lock()
	se := s.series[name]
	_ = se.total.RecordValue(v)
	_ = se.interval.RecordValue(v)
	s.mu.Unlock()
}

// fail records a failed operation of series name.
func (r *recorder) fail(w int, name string, err error) {
	code := errorCode(err)
	s := r.shards[w%len(r.shards)]
	s.mu.Lock()
	se := s.series[name]
	se.errs[code]++
	se.intervalErrs++
	if _, ok := se.sample[code]; !ok {
		se.sample[code] = err.Error()
	}
	s.mu.Unlock()
}

// errorCode is a stable name for what went wrong: Prism's error code, a
// JetStream API error code, or a transport condition.
func errorCode(err error) string {
	var pe *client.Error
	var ae *jetstream.APIError
	switch {
	case errors.As(err, &pe):
		return pe.Code.String()
	case errors.As(err, &ae):
		return fmt.Sprintf("JETSTREAM_%d", ae.ErrorCode)
	case errors.Is(err, context.DeadlineExceeded), errors.Is(err, nats.ErrTimeout):
		return "DEADLINE_EXCEEDED"
	case errors.Is(err, nats.ErrNoResponders), errors.Is(err, jetstream.ErrNoStreamResponse):
		return "NO_RESPONDERS"
	}
	return "OTHER"
}

// tick returns, per series, the operations and errors since the last tick
// and the interval's p99, and starts a new interval.
func (r *recorder) tick() (ops, errs map[string]int64, p99 map[string]time.Duration) {
	ops, errs, p99 = map[string]int64{}, map[string]int64{}, map[string]time.Duration{}
	for _, n := range r.names {
		h := newHist()
		for _, s := range r.shards {
			s.mu.Lock()
			se := s.series[n]
			h.Merge(se.interval)
			se.interval.Reset()
			errs[n] += se.intervalErrs
			se.intervalErrs = 0
			s.mu.Unlock()
		}
		ops[n] = h.TotalCount()
		p99[n] = time.Duration(h.ValueAtQuantile(99))
	}
	return ops, errs, p99
}

// result summarizes the recorder over elapsed.
func (r *recorder) result(elapsed time.Duration) []SeriesResult {
	var out []SeriesResult
	for _, n := range r.names {
		h := newHist()
		errs, sample := map[string]int64{}, map[string]string{}
		for _, s := range r.shards {
			s.mu.Lock()
			se := s.series[n]
			h.Merge(se.total)
			for c, k := range se.errs {
				errs[c] += k
				if _, ok := sample[c]; !ok {
					sample[c] = se.sample[c]
				}
			}
			s.mu.Unlock()
		}
		out = append(out, summarize(n, h, elapsed, errs, sample))
	}
	return out
}

// worker is one load goroutine's state: its random source, id chooser and
// shard of the recorder.
type worker struct {
	n    int
	rng  *rand.Rand
	zipf *rand.Zipf
	keys int
	rec  *recorder
}

// key picks a record index by the configured distribution.
func (w *worker) key() int {
	if w.zipf != nil {
		return int(w.zipf.Uint64())
	}
	return w.rng.IntN(w.keys)
}

func (w *worker) observe(name string, d time.Duration) { w.rec.observe(w.n, name, d) }
func (w *worker) fail(name string, err error)          { w.rec.fail(w.n, name, err) }

// opFunc runs one operation that was due at start (the scheduled time in
// open loop, the send time in closed loop) and records what it measured
// with w.observe and w.fail. An error it gets only because ctx ended must
// not be recorded.
type opFunc func(ctx context.Context, w *worker, start time.Time)

// load is one measured run.
type load struct {
	name        string   // of the run, e.g. "prism" or "js-publish-sync"
	series      []string // what op records, in report order
	concurrency int
	rate        float64
	duration    time.Duration
	keys        int
	keyDist     string
	zipfS       float64
	op          opFunc
}

// run drives l.op until l.duration has passed (or ctx ends): closed loop
// with l.rate 0, else open loop on a fixed schedule. Operations in flight
// at the end finish and count. It prints a progress line every second.
func (l load) run(ctx context.Context, progress io.Writer) RunResult {
	rec := newRecorder(l.series, min(l.concurrency, 16))
	cpu0 := processCPU()
	start := time.Now()
	end := start.Add(l.duration)
	var interval time.Duration
	if l.rate > 0 {
		interval = time.Duration(float64(time.Second) / l.rate)
	}
	var next atomic.Int64
	var wg sync.WaitGroup
	seed := uint64(start.UnixNano())
	for i := range l.concurrency {
		w := &worker{n: i, rng: rand.New(rand.NewPCG(seed, uint64(i))), keys: l.keys, rec: rec}
		if l.keyDist == "zipf" {
			w.zipf = rand.NewZipf(w.rng, l.zipfS, 1, uint64(l.keys-1))
		}
		wg.Go(func() {
			for ctx.Err() == nil {
				var due time.Time
				if interval > 0 {
					due = start.Add(time.Duration(next.Add(1)-1) * interval)
					if !due.Before(end) {
						return
					}
					if d := time.Until(due); d > 0 {
						sleepCtx(ctx, d)
					}
				} else {
					due = time.Now()
					if !due.Before(end) {
						return
					}
				}
				l.op(ctx, w, due)
			}
		})
	}
	done := make(chan struct{})
	go func() { wg.Wait(); close(done) }()
	tk := time.NewTicker(time.Second)
	defer tk.Stop()
	last := start
	for running := true; running; {
		select {
		case <-done:
			running = false
		case now := <-tk.C:
			ops, errs, p99 := rec.tick()
			printProgress(progress, l.name, now.Sub(start), now.Sub(last), l.series, ops, errs, p99)
			last = now
		}
	}
	elapsed := time.Since(start)
	return RunResult{Name: l.name, ElapsedSeconds: elapsed.Seconds(), CPUSeconds: (processCPU() - cpu0).Seconds(), Series: rec.result(elapsed)}
}

func printProgress(w io.Writer, name string, at, window time.Duration, names []string, ops, errs map[string]int64, p99 map[string]time.Duration) {
	var b strings.Builder
	fmt.Fprintf(&b, "%-18s %4.0fs", name, at.Seconds())
	for _, n := range names {
		fmt.Fprintf(&b, "  %s %s/s p99 %s", n, humanCount(float64(ops[n])/window.Seconds()), fmtDur(p99[n]))
		if errs[n] > 0 {
			fmt.Fprintf(&b, " errors %d", errs[n])
		}
	}
	fmt.Fprintln(w, b.String())
}

func sleepCtx(ctx context.Context, d time.Duration) {
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-ctx.Done():
	case <-t.C:
	}
}

// processCPU is the CPU time (user and system) the process has used: with
// the embedded stack, Prism's, the NATS server's and the load's together.
// Per operation it varies far less than throughput on a shared machine.
func processCPU() time.Duration {
	var ru syscall.Rusage
	if err := syscall.Getrusage(syscall.RUSAGE_SELF, &ru); err != nil {
		return 0
	}
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}
