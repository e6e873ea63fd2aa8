package replay

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"slices"
	"time"

	"github.com/nats-io/nats.go/jetstream"

	"github.com/prism-data/prism/projectors"
	"github.com/prism-data/prism/subjects"
)

// Store is the store of a projection target a Job writes: its checkpoint,
// and for the namespace's abstraction a projectors.KeyValueTarget, a
// projectors.TimeSeriesTarget, a projectors.EntityTarget or a
// projectors.GraphTarget. The SQLite and PostgreSQL stores serve all four;
// a NATS KV store serves keyvalue.
type Store interface {
	Checkpoint(ctx context.Context) (uint64, error)
}

// ErrInterrupted is returned by Job.Run when a bounded replay stopped (its
// context ended) before it reached its last sequence. Run it again without
// Reset and From to resume from the target's checkpoint.
var ErrInterrupted = errors.New("replay interrupted")

// ErrNothingToReplay is returned by Job.Start when a bounded replay has
// nothing to apply: the stream holds no event, or the target's checkpoint
// is at or past the last sequence. Job.Run reports it in its Result.
var ErrNothingToReplay = errors.New("nothing to replay")

// ErrInvalidJob is wrapped by NewJob's errors for a config it refuses.
var ErrInvalidJob = errors.New("invalid replay job")

// JobConfig is what a Job projects, from where to where, and how fast.
type JobConfig struct {
	// JetStream is the connection to the namespace's stream. Required.
	JetStream jetstream.JetStream
	// Namespace is the namespace whose stream is replayed. Required.
	Namespace string
	// Abstraction is the namespace's: subjects.AbstractionKeyValue (the
	// default), subjects.AbstractionTimeSeries,
	// subjects.AbstractionEntity or subjects.AbstractionGraph.
	Abstraction string
	// Target is the projection target's name: the projector's durable
	// consumer is subjects.Consumer(Target). Required.
	Target string
	// Storage is where the target keeps its data. Required.
	Storage Target
	// Owner is the projector's owner (projectors.WithOwner): a consumer
	// another owner consumes right now is refused (projectors.InUseBy).
	Owner string

	// From starts a new target (checkpoint 0) at this stream sequence:
	// its checkpoint is set to From−1 first. 0, or the target's
	// checkpoint+1, starts at the target's checkpoint; any other value is
	// refused on a target that has one.
	From uint64
	// To is the last sequence to apply; 0 is the stream's last message
	// when the job starts (unless Follow). It excludes Follow.
	To uint64
	// Follow keeps projecting the stream's tail until the context ends.
	Follow bool
	// Reset drops the target's data and consumer first (Storage must be a
	// Dropper), after ConfirmReset agreed.
	Reset bool
	// ConfirmReset is asked before Reset drops anything, once the in-use
	// check and the lock passed; nil agrees.
	ConfirmReset func() bool

	// BatchSize is the projector's batch size; 0 is its default.
	BatchSize int
	// Throttle paces the projector; the zero value does not.
	Throttle ThrottleConfig
	// Logger receives the projector's and the throttle's logs; nil
	// discards them.
	Logger *slog.Logger
	// ProjectorOptions are added to the projector's (metrics, tracing, an
	// applied hook).
	ProjectorOptions []projectors.Option
	// Events are told what the job does, for output; each may be nil.
	Events JobEvents
}

// ThrottleConfig paces a Job's projector with a Throttle.
type ThrottleConfig struct {
	// MaxRate caps the events per second (0: no cap).
	MaxRate float64
	// Adaptive slows the replay down while LagProbe reads more than MaxLag
	// or the target's batches take longer than MaxLatency to apply.
	Adaptive   bool
	MaxLag     uint64
	MaxLatency time.Duration
	// LagProbe reads the live lag; nil is LiveLagProbe of the namespace's
	// stream, without the job's own consumer.
	LagProbe LagProbe
}

func (c ThrottleConfig) enabled() bool { return c.MaxRate > 0 || c.Adaptive }

// JobEvents are called by a Job as it goes, on the job's goroutine.
type JobEvents struct {
	// Dropped: Reset dropped the target's data at where.
	Dropped func(where string)
	// Skipped: a new target starts at sequence from; the events before it
	// are skipped.
	Skipped func(from uint64)
	// Started: the projector runs; r samples its progress until the job
	// returns.
	Started func(r *Running)
	// ConsumerKept: a finished replay could not delete its consumer,
	// which then holds compaction back until deleted.
	ConsumerKept func(consumer string, err error)
}

// Result is what Job.Run did.
type Result struct {
	// Start is the target's checkpoint the projector started from; StopAt
	// the last sequence it was to apply (0 while following).
	Start, StopAt uint64
	// Applied is the target's checkpoint at the end; Head the stream's
	// last sequence as last seen.
	Applied, Head uint64
	// EmptyStream: the stream held no event, so nothing ran.
	EmptyStream bool
	// UpToDate: the target's checkpoint was at or past StopAt, so nothing
	// ran.
	UpToDate bool
}

// Job projects a range of a namespace's stream into one projection target
// through the namespace's normal projector (projectors.New or
// NewTimeSeries), resumable from the target's own checkpoint: every batch
// is committed together with the checkpoint, so a job stopped anywhere
// continues where its last commit stopped when run again. It refuses a
// target that another owner projects right now, and locks the target
// (Storage a Locker) against a second job. prism replay and a migration's
// backfill both run one.
type Job struct {
	c   JobConfig
	log *slog.Logger
}

// NewJob checks c and returns its Job. Its errors wrap ErrInvalidJob.
func NewJob(c JobConfig) (*Job, error) {
	if c.Abstraction == "" {
		c.Abstraction = subjects.AbstractionKeyValue
	}
	bad := func(format string, a ...any) (*Job, error) {
		return nil, fmt.Errorf("%w: %s", ErrInvalidJob, fmt.Sprintf(format, a...))
	}
	switch {
	case c.JetStream == nil:
		return bad("no JetStream")
	case c.Namespace == "":
		return bad("no namespace")
	case c.Target == "":
		return bad("no target")
	case c.Storage == nil:
		return bad("no storage of target %s", c.Target)
	case !slices.Contains([]string{subjects.AbstractionKeyValue, subjects.AbstractionTimeSeries, subjects.AbstractionEntity, subjects.AbstractionGraph}, c.Abstraction):
		return bad("abstraction %q: a replay projects keyvalue, timeseries, entity and graph namespaces", c.Abstraction)
	case c.Follow && c.To > 0:
		return bad("Follow and To exclude each other")
	case c.To > 0 && c.From > c.To:
		return bad("From %d is after To %d", c.From, c.To)
	case c.Throttle.MaxRate < 0:
		return bad("max rate %v: want >= 0", c.Throttle.MaxRate)
	case c.BatchSize < 0 || c.BatchSize > projectors.MaxBatchSize:
		return bad("batch size %d: want 1 to %d", c.BatchSize, projectors.MaxBatchSize)
	}
	if c.Reset {
		if _, ok := c.Storage.(Dropper); !ok {
			return bad("Reset: storage %s cannot be dropped", c.Storage)
		}
	}
	log := c.Logger
	if log == nil {
		log = slog.New(slog.NewTextHandler(io.Discard, nil))
	}
	return &Job{c: c, log: log}, nil
}

// Run projects the range and returns when the projector reached its end
// (the stream's last message at the start, or To), or, while following,
// when ctx ends. The batch in hand is committed before it returns. A
// finished replay deletes its consumer: a position nobody advances would
// hold the namespace's compaction back (the target keeps its checkpoint).
// It returns ErrInterrupted, with the Result, when ctx ended a bounded
// replay early; projectors.ErrConsumerInUse (wrapped) when another owner
// projects the target; projectors.ErrCheckpointAhead when the target is
// past the stream's end.
func (j *Job) Run(ctx context.Context) (Result, error) {
	r, res, err := j.start(ctx)
	if r == nil {
		return res, err
	}
	select {
	case <-r.p.Done():
	case <-ctx.Done():
	}
	sctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 30*time.Second)
	defer cancel()
	stopErr := r.Stop(sctx)
	res.Applied, res.Head = r.p.Applied(), r.head.last()
	if stopErr != nil {
		return res, stopErr
	}
	if res.StopAt > 0 && res.Applied < res.StopAt {
		return res, ErrInterrupted
	}
	consumer := subjects.Consumer(j.c.Target)
	if err := r.stream.DeleteConsumer(sctx, consumer); err != nil && !errors.Is(err, jetstream.ErrConsumerNotFound) && j.c.Events.ConsumerKept != nil {
		j.c.Events.ConsumerKept(consumer, err)
	}
	return res, nil
}

// Start does what Run does up to a running projector and returns it; the
// caller stops it with Running.Stop (its consumer is kept). A migration's
// backfill starts one with Follow and reads from its projector. It returns
// ErrNothingToReplay when a bounded replay has nothing to apply, and the
// errors of Run.
func (j *Job) Start(ctx context.Context) (*Running, error) {
	r, res, err := j.start(ctx)
	if err == nil && r == nil {
		err = fmt.Errorf("%w: target %s is at %d, the range ends at %d", ErrNothingToReplay, j.c.Target, res.Start, res.StopAt)
	}
	return r, err
}

// start runs the checks and starts the projector; r is nil when it did not
// start, res then says why (or err).
func (j *Job) start(ctx context.Context) (r *Running, res Result, err error) {
	c := j.c
	stream, err := c.JetStream.Stream(ctx, subjects.Stream(c.Namespace))
	if err != nil {
		return nil, res, fmt.Errorf("stream of namespace %s: %w", c.Namespace, err)
	}
	if err := j.checkNotInUse(ctx, stream); err != nil {
		return nil, res, err
	}
	unlock := func() {}
	if l, ok := c.Storage.(Locker); ok {
		if unlock, err = l.Lock(ctx); err != nil {
			return nil, res, err
		}
	}
	defer func() {
		if r == nil {
			unlock()
		}
	}()
	if c.Reset {
		if err := j.reset(ctx, stream); err != nil {
			return nil, res, err
		}
	}
	store, closeStore, err := c.Storage.Open(ctx)
	if err != nil {
		return nil, res, err
	}
	defer func() {
		if r == nil {
			_ = closeStore()
		}
	}()
	info, err := stream.Info(ctx)
	if err != nil {
		return nil, res, fmt.Errorf("stream of namespace %s: %w", c.Namespace, err)
	}
	last := info.State.LastSeq
	if c.To > last {
		return nil, res, fmt.Errorf("--to-seq %d is past the stream's last sequence %d", c.To, last)
	}
	if res.Start, err = j.startCheckpoint(ctx, store, last); err != nil {
		return nil, res, err
	}
	res.StopAt = c.To
	if res.StopAt == 0 && !c.Follow {
		// The last message there is: the stream's last sequence may have
		// no message any more (aged out), and a projector stops at a
		// sequence by reaching a message at or after it.
		res.StopAt = last
		if m, err := stream.GetLastMsgForSubject(ctx, subjects.StreamSubjects(c.Namespace)[0]); err == nil {
			res.StopAt = m.Sequence
		} else if errors.Is(err, jetstream.ErrMsgNotFound) {
			res.StopAt = 0
		}
		if res.StopAt == 0 {
			res.EmptyStream = true
			return nil, res, nil
		}
	}
	if !c.Follow && res.Start >= res.StopAt {
		res.UpToDate = true
		return nil, res, nil
	}
	r, err = j.startProjector(ctx, stream, store, res.Start, res.StopAt)
	if err != nil {
		return nil, res, err
	}
	r.unlock, r.closeStore = unlock, closeStore
	if c.Events.Started != nil {
		c.Events.Started(r)
	}
	return r, res, nil
}

// checkNotInUse refuses when another process consumes the target's
// consumer right now (ADR 010): a running prism serve projecting into it.
func (j *Job) checkNotInUse(ctx context.Context, stream jetstream.Stream) error {
	name := subjects.Consumer(j.c.Target)
	cons, err := stream.Consumer(ctx, name)
	if errors.Is(err, jetstream.ErrConsumerNotFound) {
		return nil
	}
	if err != nil {
		return fmt.Errorf("consumer %s: %w", name, err)
	}
	if owner, busy := projectors.InUseBy(cons.CachedInfo(), j.c.Owner); busy {
		return j.inUse(owner)
	}
	return nil
}

func (j *Job) inUse(owner string) error {
	return &InUseError{Namespace: j.c.Namespace, Target: j.c.Target, Owner: owner}
}

// InUseError says that another process projects a job's target right now.
// It wraps projectors.ErrConsumerInUse.
type InUseError struct {
	Namespace, Target string
	// Owner names the other process ("another process" when unknown).
	Owner string
}

func (e *InUseError) Error() string {
	return fmt.Sprintf("%v: target %s of namespace %s is being projected by %s right now (a running prism serve?). "+
		"Stop that process first, or replay into another target (--target NAME)", projectors.ErrConsumerInUse, e.Target, e.Namespace, e.Owner)
}

// Unwrap returns projectors.ErrConsumerInUse.
func (e *InUseError) Unwrap() error { return projectors.ErrConsumerInUse }

// reset drops the target's data and its consumer, once confirmed.
func (j *Job) reset(ctx context.Context, stream jetstream.Stream) error {
	if j.c.ConfirmReset != nil && !j.c.ConfirmReset() {
		return errors.New("--reset not confirmed; nothing dropped (pass --yes to skip the question)")
	}
	if err := stream.DeleteConsumer(ctx, subjects.Consumer(j.c.Target)); err != nil && !errors.Is(err, jetstream.ErrConsumerNotFound) {
		return fmt.Errorf("reset: delete consumer: %w", err)
	}
	if err := j.c.Storage.(Dropper).Drop(ctx); err != nil {
		return fmt.Errorf("reset %s: %w", j.c.Storage, err)
	}
	if j.c.Events.Dropped != nil {
		j.c.Events.Dropped(j.c.Storage.String())
	}
	return nil
}

// startCheckpoint returns the checkpoint the replay starts from: the
// target's, or From − 1 on a new target, which it stores.
func (j *Job) startCheckpoint(ctx context.Context, store Store, last uint64) (uint64, error) {
	c := j.c
	cp, err := store.Checkpoint(ctx)
	if err != nil {
		return 0, fmt.Errorf("read the checkpoint of %s: %w", c.Storage, err)
	}
	if cp > last {
		return 0, fmt.Errorf("%w: target %s is at sequence %d but stream %s ends at %d (was the stream recreated?); replay it with --reset",
			projectors.ErrCheckpointAhead, c.Target, cp, subjects.Stream(c.Namespace), last)
	}
	from := c.From
	if from == 0 || from == cp+1 {
		return cp, nil
	}
	if cp > 0 {
		why := "skip the events between them"
		if from <= cp {
			why = "start before events the target already holds"
		}
		return 0, fmt.Errorf("--from-seq %d on target %s whose checkpoint is %d: it would %s; resume without --from-seq, or add --reset to rebuild it from %d",
			from, c.Target, cp, why, from)
	}
	if from > last+1 {
		return 0, fmt.Errorf("--from-seq %d is past the stream's last sequence %d", from, last)
	}
	// The checkpoint, not the consumer, says where a projector starts: a
	// new target at from−1 starts at from.
	err = j.commitEmpty(ctx, store, from-1)
	if err != nil {
		return 0, fmt.Errorf("set the checkpoint of %s to %d: %w", c.Storage, from-1, err)
	}
	if c.Events.Skipped != nil {
		c.Events.Skipped(from)
	}
	return from - 1, nil
}

// commitEmpty commits an empty batch through seq: the target's checkpoint
// becomes seq.
func (j *Job) commitEmpty(ctx context.Context, store Store, seq uint64) error {
	switch j.c.Abstraction {
	case subjects.AbstractionTimeSeries:
		ts, ok := store.(projectors.TimeSeriesTarget)
		if !ok {
			return fmt.Errorf("store %T does not serve the timeseries abstraction", store)
		}
		return ts.ApplyTimeSeries(ctx, nil, seq)
	case subjects.AbstractionEntity:
		en, ok := store.(projectors.EntityTarget)
		if !ok {
			return fmt.Errorf("store %T does not serve the entity abstraction", store)
		}
		return en.ApplyEntity(ctx, nil, seq)
	case subjects.AbstractionGraph:
		gr, ok := store.(projectors.GraphTarget)
		if !ok {
			return fmt.Errorf("store %T does not serve the graph abstraction", store)
		}
		return gr.ApplyGraph(ctx, nil, seq)
	}
	kv, ok := store.(projectors.KeyValueTarget)
	if !ok {
		return fmt.Errorf("store %T does not serve the keyvalue abstraction", store)
	}
	return kv.ApplyKeyValue(ctx, nil, seq)
}
