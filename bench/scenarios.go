package bench

import (
	"context"
	crand "crypto/rand"
	"errors"
	"fmt"
	"io"
	"sync"
	"sync/atomic"
	"time"

	"github.com/prism-data/prism/client"
)

// benchID is the record id of key index i.
func benchID(i int) []byte { return fmt.Appendf(nil, "bench-%d", i) }

// benchValue is a random value of n bytes, so compression flatters nothing.
func benchValue(n int) []byte {
	v := make([]byte, n)
	_, _ = crand.Read(v)
	return v
}

// newLoad is the load cfg describes, with no series or op yet.
func newLoad(name string, cfg Config) load {
	return load{name: name, concurrency: cfg.Concurrency, rate: cfg.Rate, duration: cfg.Duration, keys: cfg.Keys, keyDist: cfg.KeyDist, zipfS: cfg.ZipfS}
}

// runScenario measures Prism with cfg's scenario.
func runScenario(ctx context.Context, cfg Config, t *benchTarget, progress io.Writer) (RunResult, error) {
	kv := t.kv
	items := []client.Item{{Key: []byte("v"), Value: benchValue(cfg.ValueSize)}}
	put := func(ctx context.Context, w *worker, start time.Time) {
		_, err := kv.Put(ctx, benchID(w.key()), items)
		if ctx.Err() != nil {
			return
		}
		if err != nil {
			w.fail("put", err)
			return
		}
		w.observe("put", time.Since(start))
	}
	get := func(ctx context.Context, w *worker, start time.Time) {
		_, err := kv.Get(ctx, benchID(w.key()))
		if ctx.Err() != nil {
			return
		}
		if err != nil { // NOT_FOUND too: every id was written first
			w.fail("get", err)
			return
		}
		w.observe("get", time.Since(start))
	}

	l := newLoad("prism", cfg)
	switch cfg.Scenario {
	case ScenarioWrite:
		l.series, l.op = []string{"put"}, put
	case ScenarioRead:
		if err := prefill(ctx, t, cfg, items, progress); err != nil {
			return RunResult{}, err
		}
		l.series, l.op = []string{"get"}, get
	case ScenarioMixed:
		if err := prefill(ctx, t, cfg, items, progress); err != nil {
			return RunResult{}, err
		}
		l.series = []string{"put", "get"}
		l.op = func(ctx context.Context, w *worker, start time.Time) {
			if w.rng.Float64() < cfg.ReadRatio {
				get(ctx, w, start)
			} else {
				put(ctx, w, start)
			}
		}
	case ScenarioE2E:
		l.series = []string{"put", seriesAckToVisible, seriesWriteToVisible}
		l.op = func(ctx context.Context, w *worker, start time.Time) { e2eOp(ctx, kv, w, start, items) }
	case ScenarioReplay:
		return runReplay(ctx, cfg, t, items, progress)
	case ScenarioMigrate:
		return runMigrate(ctx, cfg, t, items, progress)
	case ScenarioEntity:
		return runEntity(ctx, cfg, t, items, progress)
	}
	return l.run(ctx, progress), nil
}

// The e2e scenario's visibility series: each times the put it follows,
// so neither counts as an operation of its own (RunResult.cpuPerOp).
const (
	seriesAckToVisible   = "ack_to_visible"
	seriesWriteToVisible = "write_to_visible"
)

// e2eOp puts a record, then reads it with min_seq (asking again while the
// gateway answers NOT_CONSISTENT_YET) until the read returns the write.
func e2eOp(ctx context.Context, kv *client.KeyValue, w *worker, start time.Time, items []client.Item) {
	id := benchID(w.key())
	seq, err := kv.Put(ctx, id, items)
	if ctx.Err() != nil {
		return
	}
	if err != nil {
		w.fail("put", err)
		return
	}
	ack := time.Now()
	w.observe("put", ack.Sub(start))
	deadline := ack.Add(time.Minute)
	for {
		rec, err := kv.Get(ctx, id, client.MinSeq(seq))
		if ctx.Err() != nil {
			return
		}
		if err == nil && rec.Revision >= seq {
			break
		}
		if err != nil && !errors.Is(err, client.ErrNotConsistentYet) {
			w.fail(seriesAckToVisible, err)
			return
		}
		if time.Now().After(deadline) {
			w.fail(seriesAckToVisible, &client.Error{Op: "get", Code: client.ErrDeadlineExceeded.Code, Message: fmt.Sprintf("seq %d not visible a minute after its ack", seq)})
			return
		}
	}
	visible := time.Now()
	w.observe(seriesAckToVisible, visible.Sub(ack))
	w.observe(seriesWriteToVisible, visible.Sub(start))
}

// prefill writes every id of cfg.Keys once, in mutations of 100, and waits
// until the projection shows them, so reads find what they ask for.
func prefill(ctx context.Context, t *benchTarget, cfg Config, items []client.Item, progress io.Writer) error {
	return fillIDs(ctx, cfg, progress, "ids", 100, min(cfg.Concurrency, 16), func(ctx context.Context, from, to int) (uint64, error) {
		muts := make([]client.Mutation, 0, to-from)
		for i := from; i < to; i++ {
			muts = append(muts, client.Mutation{ID: benchID(i), Items: items})
		}
		seqs, err := t.kv.Mutate(ctx, muts)
		if err != nil {
			return 0, err
		}
		return seqs[len(seqs)-1], nil
	}, func(ctx context.Context, seq uint64) error { return waitVisible(ctx, t.kv, benchID(cfg.Keys-1), seq) })
}

// fillIDs writes ids 0 to cfg.Keys-1 with write, batch ids a call, from
// workers goroutines, then waits with visible until the projection
// applied the highest sequence write returned. It prints progress as
// "prefill n/keys <what>".
func fillIDs(ctx context.Context, cfg Config, progress io.Writer, what string, batch, workers int,
	write func(ctx context.Context, from, to int) (uint64, error), visible func(ctx context.Context, seq uint64) error) error {
	started := time.Now()
	var (
		next, done atomic.Int64
		maxSeq     atomic.Uint64
		wg         sync.WaitGroup
	)
	pctx, fail := context.WithCancelCause(ctx)
	defer fail(nil)
	stopTick := tickProgress(progress, func() string {
		return fmt.Sprintf("prefill %d/%d %s", done.Load(), cfg.Keys, what)
	})
	for range workers {
		wg.Go(func() {
			for pctx.Err() == nil {
				from := int(next.Add(int64(batch))) - batch
				if from >= cfg.Keys {
					return
				}
				to := min(from+batch, cfg.Keys)
				seq, err := write(pctx, from, to)
				if err != nil {
					fail(fmt.Errorf("prefill: %w", err))
					return
				}
				storeMax(&maxSeq, seq)
				done.Add(int64(to - from))
			}
		})
	}
	wg.Wait()
	stopTick()
	if err := ctx.Err(); err != nil {
		return err
	}
	if err := context.Cause(pctx); err != nil {
		return err
	}
	if err := visible(ctx, maxSeq.Load()); err != nil {
		return fmt.Errorf("prefill: %w", err)
	}
	fmt.Fprintf(progress, "prefill: %d %s written and projected in %s\n", cfg.Keys, what, time.Since(started).Round(time.Millisecond))
	return nil
}

// storeMax raises m to v unless it is higher already.
func storeMax(m *atomic.Uint64, v uint64) {
	for {
		cur := m.Load()
		if v <= cur || m.CompareAndSwap(cur, v) {
			return
		}
	}
}

// waitVisible waits until the namespace's projection has applied seq.
func waitVisible(ctx context.Context, kv *client.KeyValue, id []byte, seq uint64) error {
	for {
		_, err := kv.Get(ctx, id, client.MinSeq(seq))
		if err == nil || errors.Is(err, client.ErrNotFound) {
			return nil
		}
		if !errors.Is(err, client.ErrNotConsistentYet) {
			return err
		}
	}
}

// tickProgress prints line() to w every second until the returned stop is
// called.
func tickProgress(w io.Writer, line func() string) (stop func()) {
	done := make(chan struct{})
	var wg sync.WaitGroup
	wg.Go(func() {
		tk := time.NewTicker(time.Second)
		defer tk.Stop()
		for {
			select {
			case <-done:
				return
			case <-tk.C:
				fmt.Fprintln(w, line())
			}
		}
	})
	return func() { close(done); wg.Wait() }
}
