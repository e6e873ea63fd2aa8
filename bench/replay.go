package bench

import (
	"context"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"sync"
	"sync/atomic"
	"time"

	"github.com/nats-io/nats.go/jetstream"

	"github.com/prism-data/prism/backends/postgres"
	"github.com/prism-data/prism/backends/sqlite"
	"github.com/prism-data/prism/client"
	"github.com/prism-data/prism/projectors"
	"github.com/prism-data/prism/subjects"
)

// runReplay puts cfg.Events events on the namespace stream through Prism,
// then times fresh projectors (a new target each, into an empty backend of
// the namespace's kind) catching up from the start of the stream, round
// after round until cfg.Duration is used up. It reports "events" (applied
// per second of catch-up) and "catchup" (the time of each round, from
// Start to the last event applied).
func runReplay(ctx context.Context, cfg Config, t *benchTarget, items []client.Item, progress io.Writer) (RunResult, error) {
	if err := fillStream(ctx, cfg, t, items, progress); err != nil {
		return RunResult{}, err
	}
	stream, info, err := t.stream(ctx)
	if err != nil {
		return RunResult{}, err
	}
	last, msgs := info.State.LastSeq, int64(info.State.Msgs)

	rec := newRecorder([]string{"catchup"}, 1)
	var total time.Duration
	var applied int64
	began := time.Now()
	for round := 1; ctx.Err() == nil && (round == 1 || time.Since(began) < cfg.Duration); round++ {
		d, err := replayRound(ctx, cfg, t, stream, round, last, progress)
		if err != nil {
			if ctx.Err() != nil {
				break
			}
			return RunResult{}, fmt.Errorf("replay round %d: %w", round, err)
		}
		rec.observe(0, "catchup", d)
		total += d
		applied += msgs
		fmt.Fprintf(progress, "replay round %d: %d events in %s (%s events/s)\n", round, msgs, d.Round(time.Millisecond), humanCount(float64(msgs)/d.Seconds()))
	}
	res := RunResult{Name: "prism", ElapsedSeconds: time.Since(began).Seconds(), Series: []SeriesResult{eventsSeries("events", applied, total)}}
	res.Series = append(res.Series, rec.result(total)...)
	res.Note = fmt.Sprintf("replay: fresh %s projectors caught up with %d events (stream seq 1..%d)", t.backend, msgs, last)
	return res, nil
}

// eventsSeries is a throughput-only series: n items in d.
func eventsSeries(name string, n int64, d time.Duration) SeriesResult {
	s := SeriesResult{Name: name, Ops: n, Errors: map[string]int64{}}
	if d > 0 {
		s.OpsPerSecond = float64(n) / d.Seconds()
	}
	return s
}

// fillStream puts cfg.Events single-item puts through Prism, cfg.Concurrency at
// a time, then waits until the namespace's own projector applied them all,
// so it does not compete with the timed one.
func fillStream(ctx context.Context, cfg Config, t *benchTarget, items []client.Item, progress io.Writer) error {
	started := time.Now()
	var next, done atomic.Int64
	var maxSeq atomic.Uint64
	var wg sync.WaitGroup
	pctx, fail := context.WithCancelCause(ctx)
	defer fail(nil)
	stop := tickProgress(progress, func() string { return fmt.Sprintf("replay: filling the stream, %d/%d events", done.Load(), cfg.Events) })
	for range cfg.Concurrency {
		wg.Go(func() {
			for pctx.Err() == nil {
				i := next.Add(1) - 1
				if i >= int64(cfg.Events) {
					return
				}
				seq, err := t.kv.Put(pctx, benchID(int(i)%cfg.Keys), items)
				if err != nil {
					fail(fmt.Errorf("fill the stream: %w", err))
					return
				}
				storeMax(&maxSeq, seq)
				done.Add(1)
			}
		})
	}
	wg.Wait()
	stop()
	if err := ctx.Err(); err != nil {
		return err
	}
	if err := context.Cause(pctx); err != nil {
		return err
	}
	if err := waitVisible(ctx, t.kv, benchID(0), maxSeq.Load()); err != nil {
		return fmt.Errorf("fill the stream: %w", err)
	}
	fmt.Fprintf(progress, "replay: %d events on the stream and projected in %s\n", cfg.Events, time.Since(started).Round(time.Millisecond))
	return nil
}

// replayRound starts a projector for a new target into an empty store and
// returns how long it took to apply the stream through last. It removes
// the target's consumer and store afterwards.
func replayRound(ctx context.Context, cfg Config, t *benchTarget, stream jetstream.Stream, round int, last uint64, progress io.Writer) (time.Duration, error) {
	target := fmt.Sprintf("bench-replay-%d", round)
	store, cleanup, err := openReplayStore(ctx, cfg, t, round)
	if err != nil {
		return 0, err
	}
	defer cleanup()
	p, err := projectors.New(t.prism.JetStream(), t.namespace, target, projectors.ResolveChunks(t.prism.JetStream(), t.namespace, store), projectors.WithLogger(t.log))
	if err != nil {
		return 0, err
	}
	defer func() {
		sctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 30*time.Second)
		defer cancel()
		_ = p.Stop(sctx)
		_ = stream.DeleteConsumer(sctx, subjects.Consumer(target))
	}()
	stop := tickProgress(progress, func() string {
		return fmt.Sprintf("replay round %d: applied %d/%d", round, p.Applied(), last)
	})
	defer stop()
	start := time.Now()
	if err := p.Start(ctx); err != nil {
		return 0, err
	}
	if err := p.WaitApplied(ctx, last); err != nil {
		return 0, err
	}
	return time.Since(start), nil
}

// replayStore is a backend a replay projector writes to.
type replayStore interface {
	projectors.KeyValueTarget
	Close() error
}

// openReplayStore opens an empty store of the bench namespace's backend
// and returns how to close and remove it.
func openReplayStore(ctx context.Context, cfg Config, t *benchTarget, round int) (replayStore, func(), error) {
	if cfg.Backend == "postgres" {
		name := fmt.Sprintf("%s_replay%d", t.namespace, round)
		schema, err := postgres.SchemaName(name)
		if err != nil {
			return nil, nil, err
		}
		dropSchemas(ctx, cfg.PostgresDSN, []string{schema}, t.log) // left over from an interrupted run
		st, err := postgres.Open(ctx, cfg.PostgresDSN, name)
		if err != nil {
			return nil, nil, err
		}
		return st, func() {
			_ = st.Close()
			dropSchemas(context.WithoutCancel(ctx), cfg.PostgresDSN, []string{schema}, t.log)
		}, nil
	}
	dir, err := t.scratchDir()
	if err != nil {
		return nil, nil, err
	}
	path := filepath.Join(dir, fmt.Sprintf("replay-%d.db", round))
	st, err := sqlite.Open(ctx, path)
	if err != nil {
		return nil, nil, err
	}
	return st, func() {
		_ = st.Close()
		for _, suffix := range []string{"", "-wal", "-shm"} {
			_ = os.Remove(path + suffix)
		}
	}, nil
}
