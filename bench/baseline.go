package bench

import (
	"context"
	"fmt"
	"io"
	"math/rand/v2"
	"slices"
	"time"

	"github.com/google/uuid"
	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/prism-data/prism/namespaces"
	prismv1 "github.com/prism-data/prism/proto/prism/v1"
	"github.com/prism-data/prism/subjects"
)

// runBaselines measures the raw engines under Prism that cfg's scenario
// exercises, each for cfg.Duration with cfg's concurrency and rate:
//
//   - puts (write, mixed, e2e): JetStream publish, sync and async, of the
//     event message the gateway would build, to a stream configured like a
//     namespace stream; direct SQLite (and PostgreSQL) single-row upserts;
//   - gets (read, mixed): core NATS request-reply to an echo responder;
//     direct SQLite (and PostgreSQL) reads of one record;
//   - replay: an ordered JetStream consumer reading the namespace stream,
//     and bulk upserts of as many rows in transactions of 256.
func runBaselines(ctx context.Context, cfg Config, t *benchTarget, progress io.Writer) ([]RunResult, error) {
	if cfg.Scenario == ScenarioReplay {
		return replayBaselines(ctx, cfg, t, progress)
	}
	puts := cfg.Scenario != ScenarioRead
	gets := cfg.Scenario == ScenarioRead || cfg.Scenario == ScenarioMixed
	var out []RunResult
	add := func(r RunResult, err error) error {
		if err != nil {
			return err
		}
		out = append(out, r)
		return ctx.Err()
	}
	value := benchValue(cfg.ValueSize)
	if puts {
		if err := add(jsPublishBaseline(ctx, cfg, t, value, false, progress)); err != nil {
			return out, err
		}
		if err := add(jsPublishBaseline(ctx, cfg, t, value, true, progress)); err != nil {
			return out, err
		}
		if cfg.Rate == 0 {
			if err := add(bestAsyncBaseline(ctx, cfg, t, value, progress)); err != nil {
				return out, err
			}
		}
	}
	if gets {
		if err := add(echoBaseline(ctx, cfg, t, value, progress)); err != nil {
			return out, err
		}
	}
	engines, closeEngines, err := openRawEngines(ctx, cfg, t)
	if err != nil {
		return out, err
	}
	defer closeEngines()
	for _, e := range engines {
		if puts {
			if err := add(upsertBaseline(ctx, cfg, e, value, progress), nil); err != nil {
				return out, err
			}
		}
		if gets {
			if err := add(getBaseline(ctx, cfg, e, value, progress)); err != nil {
				return out, err
			}
		}
	}
	return out, nil
}

// rawStream creates a stream configured exactly like a namespace stream,
// for a namespace nobody serves, and returns a function that builds the
// message the gateway would publish for a put of value to record id, and
// one that deletes the stream.
func rawStream(ctx context.Context, t *benchTarget, js jetstream.JetStream, value []byte) (msgFor func(id []byte) (*nats.Msg, error), drop func(), err error) {
	ns := namespaces.Namespace{Name: t.namespace + "-raw", Abstraction: namespaces.AbstractionKeyValue, Backend: "sqlite"}
	if err := namespaces.EnsureStreams(ctx, js, ns); err != nil {
		return nil, nil, err
	}
	drop = func() {
		dctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 30*time.Second)
		defer cancel()
		_ = js.DeleteStream(dctx, subjects.Stream(ns.Name))
	}
	// The gateway stores the hash of the request with the event.
	hash, err := subjects.HashRequest(&prismv1.PutRequest{Id: []byte("bench-0"), Items: []*prismv1.Item{{Key: []byte("v"), Value: value}}})
	if err != nil {
		drop()
		return nil, nil, err
	}
	msgFor = func(id []byte) (*nats.Msg, error) {
		token := uuid.NewString()
		ev := &prismv1.KeyValueEvent{Id: id, Change: &prismv1.KeyValueEvent_Put{Put: &prismv1.KeyValuePut{Items: []*prismv1.Item{{Key: []byte("v"), Value: value}}}}}
		msg, err := subjects.NewKeyValueEvent(subjects.EventMeta{Namespace: ns.Name, IdempotencyToken: token, RequestHash: hash, Time: time.Now()}, ev)
		if err != nil {
			return nil, err
		}
		msg.Header.Set(subjects.HeaderMsgID, token)
		return msg, nil
	}
	return msgFor, drop, nil
}

// asyncWindows are the acks-pending windows bestAsyncBaseline tries, with
// the run's own concurrency, for asyncProbe each, before measuring the
// fastest for the whole duration.
var asyncWindows = []int{256, 1024, 4096}

const asyncProbe = 3 * time.Second

// stallWait is how long an async publish waits for room in a full window.
const stallWait = 10 * time.Second

// bestAsyncBaseline is the async publish baseline at its strongest: the
// acks-pending window of asyncWindows that published fastest in a short
// probe, measured for cfg.Duration as js-publish-async-best, so that the
// ratios do not flatter Prism with the window of its own concurrency.
func bestAsyncBaseline(ctx context.Context, cfg Config, t *benchTarget, value []byte, progress io.Writer) (RunResult, error) {
	best, bestRate := 0, 0.0
	windows := asyncWindows
	if !slices.Contains(windows, cfg.Concurrency) {
		windows = append([]int{cfg.Concurrency}, windows...)
	}
	for _, w := range windows {
		probe := cfg
		probe.Concurrency, probe.Duration = w, min(cfg.Duration, asyncProbe)
		r, err := jsPublishWindow(ctx, probe, t, value, "js-publish-async-probe", io.Discard)
		if err != nil {
			return RunResult{}, err
		}
		if rate := r.Series[0].OpsPerSecond; rate > bestRate {
			best, bestRate = w, rate
		}
		if ctx.Err() != nil {
			return RunResult{}, ctx.Err()
		}
	}
	run := cfg
	run.Concurrency = best
	r, err := jsPublishWindow(ctx, run, t, value, "js-publish-async-best", progress)
	if err == nil {
		r.Note += fmt.Sprintf(" (the fastest of %v in %v probes)", windows, min(cfg.Duration, asyncProbe))
	}
	return r, err
}

// jsPublishWindow is an async publish baseline, named name, with at most
// cfg.Concurrency acks pending.
func jsPublishWindow(ctx context.Context, cfg Config, t *benchTarget, value []byte, name string, progress io.Writer) (RunResult, error) {
	return withRawStream(ctx, t, value, func(js jetstream.JetStream, msgFor func([]byte) (*nats.Msg, error)) (RunResult, error) {
		return asyncPublish(ctx, cfg, js, msgFor, name, progress), nil
	}, jetstream.WithPublishAsyncMaxPending(cfg.Concurrency))
}

// withRawStream runs measure on a JetStream context with opts and a raw
// stream (rawStream) that it deletes afterwards.
func withRawStream(ctx context.Context, t *benchTarget, value []byte, measure func(jetstream.JetStream, func([]byte) (*nats.Msg, error)) (RunResult, error), opts ...jetstream.JetStreamOpt) (RunResult, error) {
	js, err := t.js(opts...)
	if err != nil {
		return RunResult{}, err
	}
	msgFor, drop, err := rawStream(ctx, t, js, value)
	if err != nil {
		return RunResult{}, fmt.Errorf("raw stream: %w", err)
	}
	defer drop()
	return measure(js, msgFor)
}

// jsPublishBaseline publishes to the raw stream: synchronously from
// cfg.Concurrency workers, or asynchronously from one publisher with at most
// cfg.Concurrency acks pending.
func jsPublishBaseline(ctx context.Context, cfg Config, t *benchTarget, value []byte, async bool, progress io.Writer) (RunResult, error) {
	if async {
		return jsPublishWindow(ctx, cfg, t, value, "js-publish-async", progress)
	}
	return withRawStream(ctx, t, value, func(js jetstream.JetStream, msgFor func([]byte) (*nats.Msg, error)) (RunResult, error) {
		return syncPublish(ctx, cfg, js, msgFor, progress), nil
	})
}

// syncPublish is the sync publish baseline: cfg.Concurrency workers, each
// waiting for its ack.
func syncPublish(ctx context.Context, cfg Config, js jetstream.JetStream, msgFor func([]byte) (*nats.Msg, error), progress io.Writer) RunResult {
	l := newLoad("js-publish-sync", cfg)
	l.series = []string{"publish"}
	l.op = func(ctx context.Context, w *worker, start time.Time) {
		msg, err := msgFor(benchID(w.key()))
		if err == nil {
			_, err = js.PublishMsg(ctx, msg)
		}
		if ctx.Err() != nil {
			return
		}
		if err != nil {
			w.fail("publish", err)
			return
		}
		w.observe("publish", time.Since(start))
	}
	r := l.run(ctx, progress)
	r.Baseline = true
	return r
}

// asyncPublish is the async publish baseline: one goroutine publishes
// (on cfg.Rate's schedule, or as fast as the pending limit allows) and one
// waits for the acks in order; latency runs from the due time to the ack.
func asyncPublish(ctx context.Context, cfg Config, js jetstream.JetStream, msgFor func([]byte) (*nats.Msg, error), name string, progress io.Writer) RunResult {
	rec := newRecorder([]string{"publish"}, 1)
	rng := rand.New(rand.NewPCG(uint64(time.Now().UnixNano()), 1))
	w := &worker{rng: rng, keys: cfg.Keys, rec: rec}
	if cfg.KeyDist == "zipf" {
		w.zipf = rand.NewZipf(rng, cfg.ZipfS, 1, uint64(cfg.Keys-1))
	}
	type pending struct {
		fut jetstream.PubAckFuture
		due time.Time
	}
	acks := make(chan pending, cfg.Concurrency)
	collected := make(chan struct{})
	go func() {
		defer close(collected)
		for p := range acks {
			select {
			case <-p.fut.Ok():
				rec.observe(0, "publish", time.Since(p.due))
			case err := <-p.fut.Err():
				rec.fail(0, "publish", err)
			}
		}
	}()
	cpu0 := processCPU()
	start := time.Now()
	end := start.Add(cfg.Duration)
	var interval time.Duration
	if cfg.Rate > 0 {
		interval = time.Duration(float64(time.Second) / cfg.Rate)
	}
	stop := tickProgressRecorder(progress, name, rec, start)
	for i := 0; ctx.Err() == nil; i++ {
		due := time.Now()
		if interval > 0 {
			due = start.Add(time.Duration(i) * interval)
			if d := time.Until(due); d > 0 {
				sleepCtx(ctx, d)
			}
		}
		if !due.Before(end) {
			break
		}
		msg, err := msgFor(benchID(w.key()))
		var fut jetstream.PubAckFuture
		if err == nil {
			// A full window waits for room, as the gateway's publishes
			// do, instead of failing after the default 200 ms.
			fut, err = js.PublishMsgAsync(msg, jetstream.WithStallWait(stallWait))
		}
		if err != nil {
			rec.fail(0, "publish", err)
			continue
		}
		acks <- pending{fut, due}
	}
	close(acks)
	<-collected
	stop()
	elapsed := time.Since(start)
	return RunResult{Name: name, Baseline: true, ElapsedSeconds: elapsed.Seconds(), CPUSeconds: (processCPU() - cpu0).Seconds(), Series: rec.result(elapsed),
		Note: fmt.Sprintf("one publisher, at most %d acks pending", cfg.Concurrency)}
}

// tickProgressRecorder prints rec's progress line every second.
func tickProgressRecorder(w io.Writer, name string, rec *recorder, start time.Time) (stop func()) {
	last := start
	return tickProgress(w, func() string {
		now := time.Now()
		ops, errs, p99 := rec.tick()
		var b bytesLine
		printProgress(&b, name, now.Sub(start), now.Sub(last), rec.names, ops, errs, p99)
		last = now
		return string(b.trimmed())
	})
}

// bytesLine collects one progress line.
type bytesLine []byte

func (b *bytesLine) Write(p []byte) (int, error) { *b = append(*b, p...); return len(p), nil }
func (b bytesLine) trimmed() []byte {
	if n := len(b); n > 0 && b[n-1] == '\n' {
		return b[:n-1]
	}
	return b
}

// echoBaseline is core NATS request-reply: a responder that returns the
// request (value-size bytes) on a connection of its own, in-process like
// the embedded gateway's, or to --nats-url.
func echoBaseline(ctx context.Context, cfg Config, t *benchTarget, value []byte, progress io.Writer) (RunResult, error) {
	opts := slices.Clip(cfg.NATSOptions)
	url := t.url
	if t.prism != nil && t.prism.Server() != nil {
		url, opts = "", append([]nats.Option{nats.InProcessServer(t.prism.Server())}, t.svcOpts...)
	}
	rc, err := nats.Connect(url, append(opts, nats.Name("prism-bench-echo"))...)
	if err != nil {
		return RunResult{}, fmt.Errorf("echo responder: %w", err)
	}
	defer rc.Close()
	subject := "_prism_bench.echo." + nats.NewInbox()[len(nats.InboxPrefix):]
	if _, err := rc.Subscribe(subject, func(m *nats.Msg) { _ = m.Respond(m.Data) }); err != nil {
		return RunResult{}, err
	}
	if err := rc.Flush(); err != nil {
		return RunResult{}, err
	}
	l := newLoad("nats-echo", cfg)
	l.series = []string{"request"}
	l.op = func(ctx context.Context, w *worker, start time.Time) {
		_, err := t.svc.RequestWithContext(ctx, subject, value)
		if ctx.Err() != nil {
			return
		}
		if err != nil {
			w.fail("request", err)
			return
		}
		w.observe("request", time.Since(start))
	}
	r := l.run(ctx, progress)
	r.Baseline = true
	return r, nil
}

// rawStore is a database driven directly, without Prism: a table of
// (id, key) → value.
type rawStore interface {
	name() string // sqlite or postgres
	upsertRow(ctx context.Context, id, value []byte) error
	getRecord(ctx context.Context, id []byte) error
	// bulkUpsert upserts n rows (ids i % keys) in transactions of batch.
	bulkUpsert(ctx context.Context, n, keys, batch int, value []byte) error
	close()
}

func upsertBaseline(ctx context.Context, cfg Config, s rawStore, value []byte, progress io.Writer) RunResult {
	l := newLoad(s.name()+"-upsert", cfg)
	l.series = []string{"upsert"}
	l.op = func(ctx context.Context, w *worker, start time.Time) {
		err := s.upsertRow(ctx, benchID(w.key()), value)
		if ctx.Err() != nil {
			return
		}
		if err != nil {
			w.fail("upsert", err)
			return
		}
		w.observe("upsert", time.Since(start))
	}
	r := l.run(ctx, progress)
	r.Baseline = true
	r.Note = "one row per statement, autocommit"
	return r
}

func getBaseline(ctx context.Context, cfg Config, s rawStore, value []byte, progress io.Writer) (RunResult, error) {
	if err := s.bulkUpsert(ctx, cfg.Keys, cfg.Keys, 256, value); err != nil {
		return RunResult{}, fmt.Errorf("%s: prefill: %w", s.name(), err)
	}
	l := newLoad(s.name()+"-get", cfg)
	l.series = []string{"get"}
	l.op = func(ctx context.Context, w *worker, start time.Time) {
		err := s.getRecord(ctx, benchID(w.key()))
		if ctx.Err() != nil {
			return
		}
		if err != nil {
			w.fail("get", err)
			return
		}
		w.observe("get", time.Since(start))
	}
	r := l.run(ctx, progress)
	r.Baseline = true
	return r, nil
}

// replayBaselines reads the namespace stream with an ordered consumer and
// bulk-upserts as many rows into each raw database.
func replayBaselines(ctx context.Context, cfg Config, t *benchTarget, progress io.Writer) ([]RunResult, error) {
	var out []RunResult
	r, err := consumeBaseline(ctx, t, progress)
	if err != nil {
		return nil, err
	}
	out = append(out, r)
	engines, closeEngines, err := openRawEngines(ctx, cfg, t)
	if err != nil {
		return out, err
	}
	defer closeEngines()
	value := benchValue(cfg.ValueSize)
	for _, e := range engines {
		start := time.Now()
		if err := e.bulkUpsert(ctx, cfg.Events, cfg.Keys, 256, value); err != nil {
			return out, fmt.Errorf("%s bulk upsert: %w", e.name(), err)
		}
		d := time.Since(start)
		fmt.Fprintf(progress, "%s-bulk-upsert: %d rows in %s\n", e.name(), cfg.Events, d.Round(time.Millisecond))
		out = append(out, RunResult{Name: e.name() + "-bulk-upsert", Baseline: true, ElapsedSeconds: d.Seconds(),
			Series: []SeriesResult{eventsSeries("rows", int64(cfg.Events), d)}, Note: "prepared single-row upserts, 256 per transaction"})
	}
	return out, nil
}

// consumeBaseline reads the whole namespace stream with an ordered
// consumer (no acks, no durable state), on the stack's in-process
// connection as the replay projectors do.
func consumeBaseline(ctx context.Context, t *benchTarget, progress io.Writer) (RunResult, error) {
	stream, info, err := t.stream(ctx)
	if err != nil {
		return RunResult{}, err
	}
	last := info.State.LastSeq
	start := time.Now()
	cons, err := stream.OrderedConsumer(ctx, jetstream.OrderedConsumerConfig{})
	if err != nil {
		return RunResult{}, err
	}
	it, err := cons.Messages(jetstream.PullMaxMessages(1024))
	if err != nil {
		return RunResult{}, err
	}
	defer it.Stop()
	defer context.AfterFunc(ctx, it.Stop)()
	var n int64
	for {
		m, err := it.Next()
		if err != nil {
			return RunResult{}, fmt.Errorf("consume: %w", err)
		}
		n++
		md, err := m.Metadata()
		if err != nil {
			return RunResult{}, err
		}
		if md.Sequence.Stream >= last {
			break
		}
	}
	d := time.Since(start)
	fmt.Fprintf(progress, "js-consume: %d events in %s\n", n, d.Round(time.Millisecond))
	return RunResult{Name: "js-consume", Baseline: true, ElapsedSeconds: d.Seconds(),
		Series: []SeriesResult{eventsSeries("events", n, d)}, Note: "ordered consumer reading the namespace stream in-process, no acks"}, nil
}

// openRawEngines opens the raw SQLite store, and the PostgreSQL one when
// --postgres-dsn is set; close closes what was opened.
func openRawEngines(ctx context.Context, cfg Config, t *benchTarget) (engines []rawStore, close func(), err error) {
	sq, err := openRawSQLite(ctx, t)
	if err != nil {
		return nil, nil, err
	}
	engines = []rawStore{sq}
	if cfg.PostgresDSN != "" {
		pg, err := openRawPostgres(ctx, cfg.PostgresDSN, t)
		if err != nil {
			sq.close()
			return nil, nil, err
		}
		engines = append(engines, pg)
	}
	return engines, func() {
		for _, e := range engines {
			e.close()
		}
	}, nil
}
