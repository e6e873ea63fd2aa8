package projectors

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/nats-io/nats.go/jetstream"
	"go.opentelemetry.io/otel/trace"

	prismv1 "github.com/prism-data/prism/proto/prism/v1"
	"github.com/prism-data/prism/subjects"
)

// KeyValueTarget is what a KeyValue projection target must do.
//
// Contract: ApplyKeyValue applies changes (in slice order, which is stream
// order) and sets the checkpoint to through in one atomic transaction: after
// it returns, either all of it is durable or none of it is. It skips changes
// whose Seq is at or below the stored checkpoint, so applying a batch twice
// has the effect of applying it once. through is at least the Seq of every
// change and may be higher (markers and dead letters advance it without a
// change); changes may be empty. A call with through at or below the
// checkpoint must change nothing: after failures the projector calls
// ApplyKeyValue(ctx, nil, checkpoint) to tell a sick backend from a bad
// change. An error that implements PermanentError with Permanent() == true
// blames the changes, not the backend. Checkpoint returns the stored
// checkpoint, 0 for a new target.
//
// Both methods are called from one goroutine at a time.
type KeyValueTarget interface {
	Checkpoint(ctx context.Context) (uint64, error)
	ApplyKeyValue(ctx context.Context, changes []*prismv1.KeyValueChange, through uint64) error
}

// TimeSeriesTarget is what a TimeSeries projection target must do.
//
// Contract: the same as KeyValueTarget's, with ApplyTimeSeries in place of
// ApplyKeyValue. ApplyTimeSeries appends the events of changes (in slice
// order, which is stream order) and sets the checkpoint to through in one
// atomic transaction, skips changes whose Seq is at or below the stored
// checkpoint, changes nothing when through is at or below the checkpoint
// (ApplyTimeSeries(ctx, nil, checkpoint) is how the projector probes a
// sick backend), and blames the changes with an error that implements
// PermanentError with Permanent() == true. An event already stored under
// the same (series id, event time, event id) is left as it is, so a target
// whose apply is not atomic with its checkpoint still converges
// (at-least-once delivery, idempotent effect). Checkpoint returns the
// stored checkpoint, 0 for a new target.
//
// Both methods are called from one goroutine at a time.
type TimeSeriesTarget interface {
	Checkpoint(ctx context.Context) (uint64, error)
	ApplyTimeSeries(ctx context.Context, changes []*prismv1.TimeSeriesChange, through uint64) error
}

// EntityTarget is what an Entity projection target must do.
//
// Contract: the same as KeyValueTarget's, with ApplyEntity in place of
// ApplyKeyValue: a put replaces the record of its id and its index
// entries, a delete removes both, in slice order, atomically with the
// checkpoint.
type EntityTarget interface {
	Checkpoint(ctx context.Context) (uint64, error)
	ApplyEntity(ctx context.Context, changes []*prismv1.EntityChange, through uint64) error
}

// Projector applies the events of one namespace's stream to one target
// through the durable consumer subjects.Consumer(target). Create it with New
// (KeyValue) or NewTimeSeries, run it with Start, end it with Stop. Applied,
// WaitApplied, Done, Lag and ApplyLatency are safe for concurrent use. A
// Projector runs once.
type Projector struct {
	js       jetstream.JetStream
	ns       string
	target   string
	stream   string
	consumer string
	a        applier
	opts     options
	log      *slog.Logger
	m        *metrics
	tracer   trace.Tracer

	// traceParents is the loop goroutine's scratch space for the
	// traceparents of a batch.
	traceParents []string

	mu       sync.Mutex // guards started, cancel
	started  bool
	cancel   context.CancelFunc
	stopOnce sync.Once
	stopping chan struct{} // closed by Stop: drain and return
	done     chan struct{} // closed when the loop goroutine has returned

	// cons is the durable consumer once a session opened it (pin.go).
	cons jetstream.Consumer
	// pins follows which client the server pins, and unpositioned says
	// the last ensureConsumer left the consumer under another pinned
	// client; only Start and the loop goroutine touch them.
	pins         pinWatch
	unpositioned bool
	// lost is why the loop ended by itself, another process projecting
	// the target now (Lost); nil otherwise.
	lost atomic.Pointer[error]

	applied    atomic.Uint64
	streamLast atomic.Uint64 // highest stream sequence seen, for the lag gauge
	// applyEWMA is the moving average of the commit time of the last
	// batches, in nanoseconds (ApplyLatency).
	applyEWMA atomic.Int64
	waitMu    sync.Mutex
	advanced  chan struct{} // closed and replaced each time applied grows
}

// New returns a Projector of namespace's KeyValue events into t, known as
// target (e.g. "sqlite"; it names the durable consumer and labels metrics).
// Every other event of the namespace stream, TimeSeries ones included, is
// poison to it and is dead-lettered. It does no I/O. Errors:
// subjects.ErrInvalidNamespace, ErrInvalidOption, or an error for a nil js
// or t or an unusable target name.
func New(js jetstream.JetStream, namespace, target string, t KeyValueTarget, opts ...Option) (*Projector, error) {
	if t == nil {
		return nil, errors.New("new projector: nil target")
	}
	return newProjector(js, namespace, target, keyValue{t}, opts)
}

// NewTimeSeries returns a Projector of namespace's TimeSeries appends into
// t, known as target, exactly as New does for KeyValue events: the same
// options, consumer, checkpoints, dead letters and metrics. Every other
// event of the namespace stream, KeyValue ones included, is poison to it
// and is dead-lettered. It does no I/O. Errors: as New's.
func NewTimeSeries(js jetstream.JetStream, namespace, target string, t TimeSeriesTarget, opts ...Option) (*Projector, error) {
	if t == nil {
		return nil, errors.New("new projector: nil target")
	}
	return newProjector(js, namespace, target, timeSeries{t}, opts)
}

// NewEntity returns a projector of Entity namespace namespace into t, like
// New.
func NewEntity(js jetstream.JetStream, namespace, target string, t EntityTarget, opts ...Option) (*Projector, error) {
	if t == nil {
		return nil, errors.New("new projector: nil target")
	}
	return newProjector(js, namespace, target, entity{t}, opts)
}

func newProjector(js jetstream.JetStream, namespace, target string, a applier, opts []Option) (*Projector, error) {
	if js == nil {
		return nil, errors.New("new projector: nil JetStream")
	}
	if err := subjects.ValidateNamespace(namespace); err != nil {
		return nil, fmt.Errorf("new projector: %w", err)
	}
	if target == "" || strings.ContainsAny(target, ".*> /\\\t\r\n") {
		return nil, fmt.Errorf("new projector: target name %q: must be non-empty, without '.', '*', '>', '/', '\\' or whitespace", target)
	}
	o := defaultOptions()
	for _, opt := range opts {
		if err := opt(&o); err != nil {
			return nil, fmt.Errorf("new projector: %w", err)
		}
	}
	m, err := newMetrics(o.registerer, namespace, target)
	if err != nil {
		return nil, fmt.Errorf("new projector: %w", err)
	}
	return &Projector{
		js:       js,
		ns:       namespace,
		target:   target,
		stream:   subjects.Stream(namespace),
		consumer: subjects.Consumer(target),
		a:        a,
		opts:     o,
		log:      o.logger.With("namespace", namespace, "target", target),
		m:        m,
		tracer:   newTracer(o.tracerProvider),
		stopping: make(chan struct{}),
		done:     make(chan struct{}),
		advanced: make(chan struct{}),
	}, nil
}

// Start checks that the namespace stream and the dead-letter stream exist,
// reads the target's checkpoint, creates or updates the durable consumer and
// positions it right after the checkpoint (DeliverAll for a new target,
// DeliverByStartSequence checkpoint+1 otherwise), then starts the loop
// goroutine. ctx bounds this startup only; the projector runs until Stop.
//
// Errors: ErrMissingStream (wrapping jetstream.ErrStreamNotFound),
// ErrCheckpointAhead, ErrConsumerInUse (a projector of another owner is
// consuming the consumer), ErrAlreadyStarted, and target or JetStream
// errors. A failed Start may be retried.
func (p *Projector) Start(ctx context.Context) error {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.started {
		return ErrAlreadyStarted
	}
	for _, name := range []string{p.stream, subjects.DeadLetterStream} {
		s, err := p.js.Stream(ctx, name)
		if errors.Is(err, jetstream.ErrStreamNotFound) {
			return fmt.Errorf("start projector %s/%s: %w: %s (created when the namespace is applied): %w", p.ns, p.target, ErrMissingStream, name, err)
		}
		if err != nil {
			return fmt.Errorf("start projector %s/%s: stream %s: %w", p.ns, p.target, name, err)
		}
		if name == p.stream {
			p.observeStreamLast(s.CachedInfo().State.LastSeq)
		}
	}
	cp, err := p.a.checkpoint(ctx)
	if err != nil {
		return fmt.Errorf("start projector %s/%s: read checkpoint: %w", p.ns, p.target, err)
	}
	if last := p.streamLast.Load(); cp > last {
		return fmt.Errorf("start projector %s/%s: %w: target checkpoint %d is beyond the last sequence %d of stream %s (was the stream recreated?)",
			p.ns, p.target, ErrCheckpointAhead, cp, last, p.stream)
	}
	p.advance(cp, 0)
	if p.reachedStop() {
		p.started, p.cancel = true, func() {}
		close(p.done)
		p.log.Info("projector already at its stop sequence", "checkpoint", cp, "stop_at", p.opts.stopAt)
		return nil
	}
	sess, err := p.openSession(ctx, cp)
	if err != nil {
		return fmt.Errorf("start projector %s/%s: %w", p.ns, p.target, err)
	}
	loopCtx, cancel := context.WithCancel(context.Background())
	p.cancel = cancel
	p.started = true
	go func() {
		defer close(p.done)
		p.run(loopCtx, sess)
	}()
	p.log.Info("projector started", "abstraction", p.a.abstraction(), "checkpoint", cp, "stream", p.stream, "consumer", p.consumer)
	return nil
}

// Stop stops fetching, applies, commits and acknowledges the messages
// already in hand, and waits for the loop goroutine to return. If ctx ends
// first, Stop aborts the projector (nothing more is acknowledged; the next
// projector re-reads from the checkpoint) and returns ErrStopTimeout
// wrapping ctx's error; a later Stop waits again for the goroutine to exit.
// Stop is idempotent and returns nil on a projector that was never started.
func (p *Projector) Stop(ctx context.Context) error {
	p.mu.Lock()
	started, cancel := p.started, p.cancel
	p.mu.Unlock()
	if !started {
		return nil
	}
	p.stopOnce.Do(func() { close(p.stopping) })
	select {
	case <-p.done:
		return nil
	default:
	}
	select {
	case <-p.done:
		return nil
	case <-ctx.Done():
		cancel()
		return fmt.Errorf("stop projector %s/%s: %w: %w", p.ns, p.target, ErrStopTimeout, ctx.Err())
	}
}

// Lost returns an error wrapping ErrConsumerInUse once the projector
// stopped by itself because the server pins another client of its
// consumer (ADR 026): another process projects the target now. Done is
// closed then. It returns nil while the projector runs and after any other
// end.
func (p *Projector) Lost() error {
	if err := p.lost.Load(); err != nil {
		return *err
	}
	return nil
}

// lostTo records that another process projects the target now; only the
// loop goroutine calls it, as it returns.
func (p *Projector) lostTo(err error) {
	p.lost.Store(&err)
	p.log.Warn("another process projects the target now; this projector stops (unacknowledged messages go to it)", "applied", p.Applied(), "reason", err)
}

// Applied returns the target's checkpoint as last committed (or read by
// Start): every event with a stream sequence at or below it is applied.
func (p *Projector) Applied() uint64 { return p.applied.Load() }

// Done is closed when the projector has stopped: after Stop, an abort, or
// once it applied everything up to its stop sequence (WithStopAt; then
// Applied() is at least that sequence). A projector never started is not
// done.
func (p *Projector) Done() <-chan struct{} { return p.done }

// Lag returns how many stream sequences the target is behind the last
// sequence of the stream the projector has seen (at Start, then with every
// batch delivered): 0 when caught up. It is the prism_projector_lag gauge.
func (p *Projector) Lag() uint64 {
	last, applied := p.streamLast.Load(), p.applied.Load()
	if last <= applied {
		return 0
	}
	return last - applied
}

// ApplyLatency returns the moving average (EWMA, weight applyEWMAWeight
// for the newest batch) of the time the target took to apply and commit
// the last batches, failed attempts left out; 0 before the first commit. An
// adaptive throttle watches it to slow a backfill when the target is slow.
func (p *Projector) ApplyLatency() time.Duration { return time.Duration(p.applyEWMA.Load()) }

// applyEWMAWeight is the weight of the newest batch in ApplyLatency: about
// the last ten batches count.
const applyEWMAWeight = 0.2

// observeApplyTime records the commit time of a batch. Only the loop
// goroutine calls it.
func (p *Projector) observeApplyTime(d time.Duration) {
	p.m.applyTime.Observe(d.Seconds())
	prev := p.applyEWMA.Load()
	if prev == 0 {
		p.applyEWMA.Store(max(int64(d), 1))
		return
	}
	p.applyEWMA.Store(max(int64(applyEWMAWeight*float64(d)+(1-applyEWMAWeight)*float64(prev)), 1))
}

// reachedStop says whether the projector has applied its stop sequence
// (WithStopAt).
func (p *Projector) reachedStop() bool {
	return p.opts.stopAt > 0 && p.Applied() >= p.opts.stopAt
}

// WaitApplied returns nil once Applied() >= seq, or ctx.Err() when ctx ends
// first. It does not poll; any number of concurrent waiters is cheap. It
// does not return early when the projector stops: bound it with ctx.
func (p *Projector) WaitApplied(ctx context.Context, seq uint64) error {
	for {
		// Take the channel before reading applied: an advance after the
		// read closes this very channel, so no wake-up is missed.
		p.waitMu.Lock()
		ch := p.advanced
		p.waitMu.Unlock()
		if p.applied.Load() >= seq {
			return nil
		}
		select {
		case <-ch:
		case <-ctx.Done():
			return ctx.Err()
		}
	}
}

// advance records a committed checkpoint and the number of changes the
// commit applied, and wakes the waiters. Only the loop goroutine (and Start,
// before it) calls it.
func (p *Projector) advance(seq uint64, changes int) {
	p.m.applied.Add(float64(changes))
	if seq <= p.applied.Load() {
		return
	}
	p.applied.Store(seq)
	p.m.appliedSeq.Set(float64(seq))
	p.observeStreamLast(seq)
	if seq >= p.streamLast.Load() {
		p.m.lagSeconds.set(time.Time{})
	}
	p.waitMu.Lock()
	close(p.advanced)
	p.advanced = make(chan struct{})
	p.waitMu.Unlock()
}

// observeStreamLast notes that the stream holds at least seq and updates the
// lag gauges. The first time the projector learns that it is behind, the
// age of its oldest unapplied event starts at now, a lower bound until the
// event itself arrives with its stored time (see observePending).
func (p *Projector) observeStreamLast(seq uint64) {
	for {
		cur := p.streamLast.Load()
		if seq <= cur || p.streamLast.CompareAndSwap(cur, seq) {
			break
		}
	}
	last, applied := p.streamLast.Load(), p.applied.Load()
	if last >= applied {
		p.m.lag.Set(float64(last - applied))
	}
	if last > applied {
		p.m.lagSeconds.setIfUnset(time.Now())
	}
}

// observePending notes the time JetStream stored the oldest event of the
// batch in hand that the target has not applied: every event before it is
// applied, so it is the oldest unapplied event of the stream, and
// prism_projector_lag_seconds is its age until a commit moves past it.
func (p *Projector) observePending(stored time.Time) {
	p.m.lagSeconds.set(stored)
}
