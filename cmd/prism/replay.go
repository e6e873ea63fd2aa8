package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"log/slog"
	"os"
	"os/signal"
	"path/filepath"
	"regexp"
	"strings"
	"sync/atomic"
	"syscall"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
	"github.com/spf13/cobra"

	"github.com/prism-data/prism/backends/postgres"
	"github.com/prism-data/prism/backends/sqlite"
	"github.com/prism-data/prism/namespaces"
	"github.com/prism-data/prism/node"
	"github.com/prism-data/prism/projectors"
	"github.com/prism-data/prism/replay"
	"github.com/prism-data/prism/subjects"
)

// replayFlags are prism replay's flags.
type replayFlags struct {
	target      string
	backend     string
	sqlitePath  string
	dataDir     string
	postgresDSN string
	natsURL     string
	fromSeq     uint64
	toSeq       uint64
	follow      bool
	maxRate     float64
	adaptive    bool
	maxLag      uint64
	maxLatency  time.Duration
	reset       bool
	yes         bool
	batchSize   int
	interval    time.Duration
	mem         bool
	logLevel    string
}

func newReplayCmd() *cobra.Command {
	var f replayFlags
	cmd := &cobra.Command{
		Use:   "replay NAMESPACE --target NAME",
		Short: "Re-project a namespace's event stream into a target (rebuild, backfill), resumable",
		Long: `replay re-projects the event stream of NAMESPACE (a keyvalue or timeseries
namespace; log namespaces are out of scope) into the projection target
--target: it opens that target's backend directly and runs a projector
(durable consumer proj_<target>) from the target's own checkpoint.

The target's checkpoint is committed in the same transaction as its data,
so a replay that is killed resumes where it stopped when run again, and
the result is identical to an uninterrupted replay.

Storage of the target (the same places prism serve uses):
  sqlite    <data-dir>/sqlite/<ns>.<target>.db (<ns>.db for target "sqlite"),
            or --sqlite-path
  postgres  schema prism_<ns>.<target> (prism_<ns> for target "postgres")
            on --postgres-dsn (default: the namespace's postgres.dsn, then
            $PRISM_POSTGRES_DSN)
--backend defaults to the target's name when it is sqlite or postgres, else
to the namespace's backend.

By default it replays up to the stream's last sequence as of its start and
exits with a summary; --to-seq stops at another sequence; --follow keeps
tailing the stream until SIGINT/SIGTERM. SIGINT/SIGTERM commit the batch in
hand and stop; run the command again (without --reset and --from-seq) to resume.

--from-seq N starts a new target at N: events before N are skipped (the
target's checkpoint is set to N-1), so the target holds only what happened
from N on. Use it only for rebuilds that know what they do. It is refused on
a target whose checkpoint is past N-1 or before it (use --reset).

--reset drops the target's data first (asks for the target's name unless
--yes). It is refused while another process (a running prism serve)
projects into that target, and so is the replay itself.

Throttling, so that a backfill does not hurt live traffic: --max-rate caps
the events per second; --adaptive also slows down (halves the rate, down to
a floor, each second) while the namespace's live projectors lag more than
--max-lag events behind the stream or this target's batches take longer
than --max-latency, and speeds back up (additively) once they recover.

Progress: a bar on a terminal; otherwise a plain line every
--progress-interval. Both show events done/total (stream sequences from
the start checkpoint), rate, ETA, lag behind the stream's head, and the
throttle's rate and reason when it holds the replay back. --mem adds heap
and RSS, and their peaks to the summary.`,
		Example: `  prism replay orders --target rebuild --nats-url nats://127.0.0.1:4222
  prism replay orders --target pg2 --backend postgres --postgres-dsn postgres://127.0.0.1/prism --max-rate 5000 --adaptive
  prism replay orders --target sqlite --reset --yes      # rebuild the primary while prism serve is stopped`,
		Args: cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			ctx, stop := signal.NotifyContext(cmd.Context(), syscall.SIGINT, syscall.SIGTERM)
			defer stop()
			return runReplayCommand(ctx, replayIO{in: cmd.InOrStdin(), out: cmd.OutOrStdout(), errOut: cmd.ErrOrStderr()}, args[0], f)
		},
	}
	fl := cmd.Flags()
	def := os.Getenv("NATS_URL")
	if def == "" {
		def = nats.DefaultURL
	}
	fl.StringVar(&f.target, "target", "", "projection target to replay into (lowercase letters, digits, - and _, at most 32); required")
	fl.StringVar(&f.backend, "backend", "", "backend of the target: sqlite or postgres (default: see above)")
	fl.StringVar(&f.sqlitePath, "sqlite-path", "", "SQLite file of the target (default <data-dir>/sqlite/<ns>.<target>.db)")
	fl.StringVar(&f.dataDir, "data-dir", "./prism-data", "data directory of prism serve, where SQLite targets live")
	fl.StringVar(&f.postgresDSN, "postgres-dsn", "", "PostgreSQL connection string of a postgres target (default: the namespace's, then $PRISM_POSTGRES_DSN)")
	fl.StringVar(&f.natsURL, "nats-url", def, "NATS URL of the deployment (default $NATS_URL, else nats://127.0.0.1:4222)")
	fl.Uint64Var(&f.fromSeq, "from-seq", 0, "start a new target at this stream sequence, skipping the events before it (see above)")
	fl.Uint64Var(&f.toSeq, "to-seq", 0, "stop after this stream sequence (default: the stream's last sequence at start)")
	fl.BoolVar(&f.follow, "follow", false, "keep tailing the stream after catching up, until SIGINT/SIGTERM")
	fl.Float64Var(&f.maxRate, "max-rate", 0, "at most this many events per second (0: no cap)")
	fl.BoolVar(&f.adaptive, "adaptive", false, "slow down while live projectors lag or the target is slow (see --max-lag, --max-latency)")
	fl.Uint64Var(&f.maxLag, "max-lag", 5000, "--adaptive: live projectors' lag (events) above which the replay slows down")
	fl.DurationVar(&f.maxLatency, "max-latency", 250*time.Millisecond, "--adaptive: batch apply time of the target above which the replay slows down")
	fl.BoolVar(&f.reset, "reset", false, "drop the target's data (and consumer) first; asks for confirmation unless --yes")
	fl.BoolVarP(&f.yes, "yes", "y", false, "do not ask for confirmation")
	fl.IntVar(&f.batchSize, "batch-size", 1024, "changes per batch while keeping up; catching up takes up to 4 batches per commit (1 to 10000)")
	fl.DurationVar(&f.interval, "progress-interval", 2*time.Second, "how often a plain progress line is printed when stdout is not a terminal")
	fl.BoolVar(&f.mem, "mem", false, "show heap and RSS in the progress, and their peaks in the summary")
	fl.StringVar(&f.logLevel, "log-level", "warn", "log level on stderr: debug, info, warn, error")
	return cmd
}

// replayIO is where a replay talks to its user.
type replayIO struct {
	in          io.Reader
	out, errOut io.Writer
}

// backfillStore is a target backend a replay writes: both SQLite and
// PostgreSQL serve KeyValue and TimeSeries.
type backfillStore interface {
	projectors.KeyValueTarget
	projectors.TimeSeriesTarget
	Close() error
}

var (
	_ backfillStore = (*sqlite.Store)(nil)
	_ backfillStore = (*postgres.Store)(nil)
)

// targetNamePattern is what a projection target may be called.
var targetNamePattern = regexp.MustCompile(`^[a-z0-9_-]{1,32}$`)

// errReplayInterrupted is returned when a bounded replay is stopped by a
// signal before it reached its end.
var errReplayInterrupted = errors.New("replay interrupted; run the command again without --reset and --from-seq to resume from the target's checkpoint")

// replayJob is one prism replay run.
type replayJob struct {
	f     replayFlags
	io    replayIO
	log   *slog.Logger
	ns    namespaces.Namespace // backend resolved
	js    jetstream.JetStream
	owner string

	backend string // sqlite or postgres
	path    string // SQLite file
	dsn     string // PostgreSQL connection string
	schema  string // PostgreSQL schema
	where   string // for messages: the file or the schema
}

func runReplayCommand(ctx context.Context, rio replayIO, namespace string, f replayFlags) error {
	if err := f.validate(); err != nil {
		return err
	}
	log, err := newLogger(f.logLevel)
	if err != nil {
		return err
	}
	log = log.With("component", "replay")
	host, _ := os.Hostname()
	j := &replayJob{f: f, io: rio, log: log, owner: "replay@" + host}
	nc, err := nats.Connect(f.natsURL, nats.Name("prism-replay"), nats.MaxReconnects(-1))
	if err != nil {
		return fmt.Errorf("connect to %s (set --nats-url or NATS_URL to the deployment's NATS): %w", f.natsURL, err)
	}
	defer nc.Close()
	if j.js, err = jetstream.New(nc); err != nil {
		return err
	}
	setup, cancel := context.WithTimeout(ctx, time.Minute)
	defer cancel()
	if j.ns, err = lookupNamespace(setup, j.js, namespace); err != nil {
		return err
	}
	if err := j.resolveTarget(); err != nil {
		return err
	}
	return j.run(ctx)
}

func (f replayFlags) validate() error {
	switch {
	case f.target == "":
		return errors.New("replay: --target NAME is required (e.g. --target rebuild)")
	case !targetNamePattern.MatchString(f.target):
		return fmt.Errorf("replay: --target %q: want 1 to 32 lowercase letters, digits, '-' or '_'", f.target)
	case f.backend != "" && f.backend != "sqlite" && f.backend != "postgres":
		return fmt.Errorf("replay: --backend %q: want sqlite or postgres", f.backend)
	case f.follow && f.toSeq > 0:
		return errors.New("replay: --follow and --to-seq exclude each other")
	case f.toSeq > 0 && f.fromSeq > f.toSeq:
		return fmt.Errorf("replay: --from-seq %d is after --to-seq %d", f.fromSeq, f.toSeq)
	case f.maxRate < 0:
		return fmt.Errorf("replay: --max-rate %v: want >= 0", f.maxRate)
	case f.batchSize < 1 || f.batchSize > projectors.MaxBatchSize:
		return fmt.Errorf("replay: --batch-size %d: want 1 to %d", f.batchSize, projectors.MaxBatchSize)
	case f.interval <= 0:
		return fmt.Errorf("replay: --progress-interval %v: want > 0", f.interval)
	}
	return nil
}

// lookupNamespace reads namespace from the registry, without creating the
// registry when there is none.
func lookupNamespace(ctx context.Context, js jetstream.JetStream, name string) (namespaces.Namespace, error) {
	if _, err := js.KeyValue(ctx, subjects.RegistryBucket); errors.Is(err, jetstream.ErrBucketNotFound) {
		return namespaces.Namespace{}, fmt.Errorf("replay: namespace %s: this NATS has no Prism namespace registry (is --nats-url the deployment's?)", name)
	} else if err != nil {
		return namespaces.Namespace{}, fmt.Errorf("replay: read the namespace registry: %w", err)
	}
	reg, _, err := namespaces.OpenRegistry(ctx, js, 1)
	if err != nil {
		return namespaces.Namespace{}, err
	}
	e, err := reg.Get(ctx, name)
	if err != nil {
		return namespaces.Namespace{}, fmt.Errorf("replay: %w", err)
	}
	n := e.Namespace
	n.Backend = e.Backend
	switch n.Abstraction {
	case namespaces.AbstractionKeyValue, namespaces.AbstractionTimeSeries:
		return n, nil
	}
	return n, fmt.Errorf("replay: namespace %s is a %s namespace; prism replay rebuilds keyvalue and timeseries targets only", name, n.Abstraction)
}

// resolveTarget decides the target's backend and where its data lives.
func (j *replayJob) resolveTarget() error {
	f, n := j.f, j.ns
	j.backend = f.backend
	if j.backend == "" {
		switch {
		case f.target == "sqlite" || f.target == "postgres":
			j.backend = f.target
		case n.Backend == "sqlite" || n.Backend == "postgres":
			j.backend = n.Backend
		default:
			return fmt.Errorf("replay: namespace %s is on %s; say --backend sqlite or --backend postgres for target %s", n.Name, n.Backend, f.target)
		}
	}
	if j.backend == "sqlite" {
		j.path = f.sqlitePath
		if j.path == "" {
			j.path = node.SQLitePath(f.dataDir, n.Name, f.target)
		}
		j.where = "sqlite " + j.path
		return nil
	}
	j.dsn = f.postgresDSN
	if j.dsn == "" && n.Backend == "postgres" {
		j.dsn = n.Postgres.DSN
	}
	if j.dsn == "" {
		j.dsn = os.Getenv("PRISM_POSTGRES_DSN")
	}
	if j.dsn == "" {
		return errors.New("replay: a postgres target needs a connection string: --postgres-dsn or PRISM_POSTGRES_DSN")
	}
	var err error
	if j.schema, err = postgres.TargetSchemaName(n.Name, f.target); err != nil {
		return err
	}
	j.where = "postgres schema " + j.schema
	return nil
}

// name is how progress lines and messages call the replay.
func (j *replayJob) name() string { return "replay " + j.ns.Name + "→" + j.f.target }

func (j *replayJob) run(ctx context.Context) error {
	stream, err := j.js.Stream(ctx, subjects.Stream(j.ns.Name))
	if err != nil {
		return fmt.Errorf("replay: stream of namespace %s: %w", j.ns.Name, err)
	}
	if err := j.checkNotInUse(ctx, stream); err != nil {
		return err
	}
	unlock, err := j.lock(ctx)
	if err != nil {
		return err
	}
	defer unlock()
	if j.f.reset {
		if err := j.resetTarget(ctx, stream); err != nil {
			return err
		}
	}
	store, err := j.open(ctx)
	if err != nil {
		return err
	}
	defer store.Close()
	info, err := stream.Info(ctx)
	if err != nil {
		return fmt.Errorf("replay: stream of namespace %s: %w", j.ns.Name, err)
	}
	if j.f.toSeq > info.State.LastSeq {
		return fmt.Errorf("replay: --to-seq %d is past the stream's last sequence %d", j.f.toSeq, info.State.LastSeq)
	}
	start, err := j.startCheckpoint(ctx, store, info.State.LastSeq)
	if err != nil {
		return err
	}
	stopAt := j.f.toSeq
	if stopAt == 0 && !j.f.follow {
		// The last message there is: the stream's last sequence may have
		// no message any more (aged out), and a projector stops at a
		// sequence by reaching a message at or after it.
		stopAt = info.State.LastSeq
		if m, err := stream.GetLastMsgForSubject(ctx, subjects.StreamSubjects(j.ns.Name)[0]); err == nil {
			stopAt = m.Sequence
		} else if errors.Is(err, jetstream.ErrMsgNotFound) {
			stopAt = 0
		}
		if stopAt == 0 {
			fmt.Fprintf(j.io.out, "%s: nothing to replay: the stream of %s holds no event\n", j.name(), j.ns.Name)
			return nil
		}
	}
	if !j.f.follow && start >= stopAt {
		fmt.Fprintf(j.io.out, "%s: nothing to replay: the target's checkpoint %d is at or past sequence %d (%s)\n", j.name(), start, stopAt, j.where)
		return nil
	}
	return j.project(ctx, stream, store, start, stopAt)
}

// checkNotInUse refuses when another process consumes the target's
// consumer right now (ADR 010): a running prism serve projecting into it.
func (j *replayJob) checkNotInUse(ctx context.Context, stream jetstream.Stream) error {
	cons, err := stream.Consumer(ctx, subjects.Consumer(j.f.target))
	if errors.Is(err, jetstream.ErrConsumerNotFound) {
		return nil
	}
	if err != nil {
		return fmt.Errorf("replay: consumer %s: %w", subjects.Consumer(j.f.target), err)
	}
	if owner, busy := projectors.InUseBy(cons.CachedInfo(), j.owner); busy {
		return j.inUse(owner)
	}
	return nil
}

func (j *replayJob) inUse(owner string) error {
	return fmt.Errorf("replay: %w: target %s of namespace %s is being projected by %s right now (a running prism serve?). "+
		"Stop that process first, or replay into another target (--target NAME)", projectors.ErrConsumerInUse, j.f.target, j.ns.Name, owner)
}

// open opens (creating if needed) the target's store.
func (j *replayJob) open(ctx context.Context) (backfillStore, error) {
	if j.backend == "sqlite" {
		if err := os.MkdirAll(filepath.Dir(j.path), 0o755); err != nil {
			return nil, fmt.Errorf("replay: %w", err)
		}
		return sqlite.Open(ctx, j.path)
	}
	return postgres.Open(ctx, j.dsn, j.ns.Name, postgres.WithSchema(j.schema))
}

// resetTarget drops the target's data and its consumer, after asking.
func (j *replayJob) resetTarget(ctx context.Context, stream jetstream.Stream) error {
	if !j.f.yes {
		fmt.Fprintf(j.io.errOut, "Drop every record of target %s of namespace %s (%s) and replay it from the stream?\nType the target name to confirm: ", j.f.target, j.ns.Name, j.where)
		if !confirm(j.io.in, j.f.target) {
			return errors.New("replay: --reset not confirmed; nothing dropped (pass --yes to skip the question)")
		}
	}
	if err := stream.DeleteConsumer(ctx, subjects.Consumer(j.f.target)); err != nil && !errors.Is(err, jetstream.ErrConsumerNotFound) {
		return fmt.Errorf("replay: reset: delete consumer: %w", err)
	}
	var err error
	if j.backend == "sqlite" {
		err = dropSQLiteFile(j.path)
	} else {
		err = postgres.DropSchema(ctx, j.dsn, j.ns.Name, postgres.WithSchema(j.schema))
	}
	if err != nil {
		return fmt.Errorf("replay: reset %s: %w", j.where, err)
	}
	fmt.Fprintf(j.io.out, "%s: dropped %s\n", j.name(), j.where)
	return nil
}

// dropSQLiteFile deletes the SQLite file at path with its WAL files.
func dropSQLiteFile(path string) error {
	errs := []error{os.Remove(path), os.Remove(path + "-wal"), os.Remove(path + "-shm")}
	for i, err := range errs {
		if errors.Is(err, fs.ErrNotExist) {
			errs[i] = nil
		}
	}
	return errors.Join(errs...)
}

// startCheckpoint returns the checkpoint the replay starts from: the
// target's, or --from-seq − 1 on a new target, which it stores.
func (j *replayJob) startCheckpoint(ctx context.Context, store backfillStore, last uint64) (uint64, error) {
	cp, err := store.Checkpoint(ctx)
	if err != nil {
		return 0, fmt.Errorf("replay: read the checkpoint of %s: %w", j.where, err)
	}
	if cp > last {
		return 0, fmt.Errorf("replay: %w: target %s is at sequence %d but stream %s ends at %d (was the stream recreated?); replay it with --reset",
			projectors.ErrCheckpointAhead, j.f.target, cp, subjects.Stream(j.ns.Name), last)
	}
	from := j.f.fromSeq
	if from == 0 || from == cp+1 {
		return cp, nil
	}
	if cp > 0 {
		why := "skip the events between them"
		if from <= cp {
			why = "start before events the target already holds"
		}
		return 0, fmt.Errorf("replay: --from-seq %d on target %s whose checkpoint is %d: it would %s; resume without --from-seq, or add --reset to rebuild it from %d",
			from, j.f.target, cp, why, from)
	}
	if from > last+1 {
		return 0, fmt.Errorf("replay: --from-seq %d is past the stream's last sequence %d", from, last)
	}
	// The checkpoint, not the consumer, says where a projector starts: a
	// new target at from−1 starts at from.
	if j.ns.Abstraction == namespaces.AbstractionTimeSeries {
		err = store.ApplyTimeSeries(ctx, nil, from-1)
	} else {
		err = store.ApplyKeyValue(ctx, nil, from-1)
	}
	if err != nil {
		return 0, fmt.Errorf("replay: set the checkpoint of %s to %d: %w", j.where, from-1, err)
	}
	fmt.Fprintf(j.io.out, "%s: new target starts at sequence %d; events 1 to %d are skipped\n", j.name(), from, from-1)
	return from - 1, nil
}

// project runs the projector from start to stopAt (0: until a signal) with
// progress, and prints the summary.
func (j *replayJob) project(ctx context.Context, stream jetstream.Stream, store backfillStore, start, stopAt uint64) error {
	// The throttle's latency probe reads the projector made after it.
	var made atomic.Pointer[projectors.Projector]
	th, err := j.throttle(stream, func() time.Duration {
		if p := made.Load(); p != nil {
			return p.ApplyLatency()
		}
		return 0
	})
	if err != nil {
		return err
	}
	opts := []projectors.Option{projectors.WithLogger(j.log), projectors.WithOwner(j.owner), projectors.WithBatchSize(j.f.batchSize)}
	if stopAt > 0 {
		opts = append(opts, projectors.WithStopAt(stopAt))
	}
	if th != nil {
		defer th.Close()
		opts = append(opts, projectors.WithThrottle(th))
	}
	var p *projectors.Projector
	if j.ns.Abstraction == namespaces.AbstractionTimeSeries {
		p, err = projectors.NewTimeSeries(j.js, j.ns.Name, j.f.target, store, opts...)
	} else {
		p, err = projectors.New(j.js, j.ns.Name, j.f.target, store, opts...)
	}
	if err != nil {
		return err
	}
	made.Store(p)
	began := time.Now()
	if err := p.Start(ctx); err != nil {
		if errors.Is(err, projectors.ErrConsumerInUse) {
			return j.inUse("another process")
		}
		return fmt.Errorf("replay: %w", err)
	}
	fmt.Fprintf(j.io.out, "%s: from checkpoint %d to %s into %s\n", j.name(), start, stopLabel(stopAt), j.where)
	head := newHeadWatcher(stream, p)
	defer head.stop()
	src := progressSource{applied: p.Applied, head: head.last, throttle: func() *replay.ThrottleState {
		if th == nil {
			return nil
		}
		st := th.State()
		return &st
	}}
	rep := startProgress(j.name(), src, newProgressMeter(start, stopAt, began, j.f.mem), j.io.out, j.f.interval)
	select {
	case <-p.Done():
	case <-ctx.Done():
	}
	sctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 30*time.Second)
	defer cancel()
	stopErr := p.Stop(sctx)
	final := rep.Stop()
	j.summary(final, rep.meter.peak, stopAt)
	if stopErr != nil {
		return fmt.Errorf("replay: %w", stopErr)
	}
	if stopAt > 0 && p.Applied() < stopAt {
		return errReplayInterrupted
	}
	// A finished replay lets go of its consumer: a position nobody
	// advances would hold the namespace's compaction back (ADR 012). The
	// target keeps its checkpoint; a later replay into it starts there.
	if err := stream.DeleteConsumer(sctx, subjects.Consumer(j.f.target)); err != nil && !errors.Is(err, jetstream.ErrConsumerNotFound) {
		fmt.Fprintf(j.io.errOut, "%s: could not delete consumer %s (delete it yourself: it holds compaction back): %v\n", j.name(), subjects.Consumer(j.f.target), err)
	}
	return nil
}

func stopLabel(stopAt uint64) string {
	if stopAt == 0 {
		return "the head, following"
	}
	return fmt.Sprint(stopAt)
}

// summary prints what the replay did.
func (j *replayJob) summary(s progressSnapshot, peak memSample, stopAt uint64) {
	rate := 0.0
	if secs := s.Elapsed.Seconds(); secs > 0 {
		rate = float64(s.Done) / secs
	}
	verb := "replayed"
	if stopAt > 0 && s.Applied < stopAt {
		verb = "stopped after"
	}
	fmt.Fprintf(j.io.out, "%s: %s %d events in %s (%s events/s on average); checkpoint %d, %d behind the stream's head %d\n",
		j.name(), verb, s.Done, s.Elapsed.Round(time.Millisecond), humanCount(rate), s.Applied, s.Lag, s.Head)
	if j.f.mem {
		fmt.Fprintf(j.io.out, "%s: peak heap %s, peak rss %s\n", j.name(), mib(peak.Heap), mib(peak.RSS))
	}
}

// throttle returns the replay's throttle, nil without --max-rate and
// --adaptive. latency reads the projector's apply latency.
func (j *replayJob) throttle(stream jetstream.Stream, latency func() time.Duration) (*replay.Throttle, error) {
	if j.f.maxRate == 0 && !j.f.adaptive {
		return nil, nil
	}
	opts := []replay.ThrottleOption{replay.WithMaxRate(j.f.maxRate), replay.WithThrottleLogger(j.log)}
	if j.f.adaptive {
		opts = append(opts,
			replay.WithLagProbe(liveLagProbe(stream, subjects.Consumer(j.f.target)), j.f.maxLag),
			replay.WithLatencyProbe(func(context.Context) (time.Duration, error) { return latency(), nil }, j.f.maxLatency))
	}
	return replay.NewThrottle(opts...)
}

// liveActivity is how recently a consumer must have acknowledged (unless
// it has a pull request waiting) to count as a live projector for the lag
// probe: the consumer of a finished replay, or of a target nobody
// projects any more, falls further behind with every write and would
// otherwise hold the replay at its floor.
const liveActivity = 5 * time.Second

// liveLagProbe reads how far the namespace's live projectors (every other
// proj_* consumer that is being consumed) are behind the stream: the most
// events not yet delivered or not yet acknowledged.
func liveLagProbe(stream jetstream.Stream, own string) replay.LagProbe {
	return func(ctx context.Context) (uint64, error) {
		var lag uint64
		l := stream.ListConsumers(ctx)
		for info := range l.Info() {
			if info.Name == own || !strings.HasPrefix(info.Name, subjects.Consumer("")) {
				continue
			}
			acked := info.AckFloor.Last
			if info.NumWaiting > 0 || (acked != nil && time.Since(*acked) < liveActivity) {
				lag = max(lag, info.NumPending+uint64(info.NumAckPending))
			}
		}
		return lag, l.Err()
	}
}

// headWatcher keeps the stream's last sequence for progress output,
// refreshed once a second from the stream's info.
type headWatcher struct {
	p      *projectors.Projector
	cancel context.CancelFunc
	done   chan struct{}
	val    atomic.Uint64
}

func newHeadWatcher(stream jetstream.Stream, p *projectors.Projector) *headWatcher {
	ctx, cancel := context.WithCancel(context.Background())
	h := &headWatcher{p: p, cancel: cancel, done: make(chan struct{})}
	refresh := func() {
		rctx, cancel := context.WithTimeout(ctx, 2*time.Second)
		defer cancel()
		if info, err := stream.Info(rctx); err == nil {
			h.val.Store(info.State.LastSeq)
		}
	}
	refresh()
	go func() {
		defer close(h.done)
		tk := time.NewTicker(time.Second)
		defer tk.Stop()
		for {
			select {
			case <-ctx.Done():
				return
			case <-tk.C:
				refresh()
			}
		}
	}()
	return h
}

// last is the stream's last sequence as last read, or as the projector saw
// it in a later delivery.
func (h *headWatcher) last() uint64 { return max(h.val.Load(), h.p.Applied()+h.p.Lag()) }

func (h *headWatcher) stop() {
	h.cancel()
	<-h.done
}

// lock makes sure no other prism replay writes the same target: a lock on
// the SQLite file, or a PostgreSQL advisory lock on the schema, both
// released when the process ends, however it ends.
func (j *replayJob) lock(ctx context.Context) (unlock func(), err error) {
	if j.backend == "sqlite" {
		if err := os.MkdirAll(filepath.Dir(j.path), 0o755); err != nil {
			return nil, fmt.Errorf("replay: %w", err)
		}
		f, err := os.OpenFile(j.path+".replay-lock", os.O_CREATE|os.O_RDWR, 0o644)
		if err != nil {
			return nil, fmt.Errorf("replay: lock %s: %w", j.path, err)
		}
		if err := syscall.Flock(int(f.Fd()), syscall.LOCK_EX|syscall.LOCK_NB); err != nil {
			f.Close()
			return nil, fmt.Errorf("replay: another prism replay is writing %s (%v)", j.path, err)
		}
		return func() { f.Close() }, nil
	}
	conn, err := pgx.Connect(ctx, j.dsn)
	if err != nil {
		return nil, fmt.Errorf("replay: connect to postgres: %w", err)
	}
	var ok bool
	if err := conn.QueryRow(ctx, "SELECT pg_try_advisory_lock(hashtext($1))", "prism-replay:"+j.schema).Scan(&ok); err != nil {
		conn.Close(ctx)
		return nil, fmt.Errorf("replay: lock schema %s: %w", j.schema, err)
	}
	if !ok {
		conn.Close(ctx)
		return nil, fmt.Errorf("replay: another prism replay is writing postgres schema %s", j.schema)
	}
	return func() { conn.Close(context.WithoutCancel(ctx)) }, nil
}
