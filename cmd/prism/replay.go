package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"os"
	"os/signal"
	"regexp"
	"syscall"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
	"github.com/spf13/cobra"

	"github.com/prism-data/prism/internal/natsconn"
	"github.com/prism-data/prism/internal/progress"
	"github.com/prism-data/prism/namespaces"
	"github.com/prism-data/prism/node"
	"github.com/prism-data/prism/projectors"
	"github.com/prism-data/prism/replay"
	"github.com/prism-data/prism/subjects"
)

// replayFlags are prism replay's flags.
type replayFlags struct {
	Conn                                 natsconn.Options
	target, backend, sqlitePath, dataDir string
	postgresDSN, logLevel                string
	fromSeq, toSeq, maxLag               uint64
	follow, adaptive, reset, yes, mem    bool
	maxRate                              float64
	maxLatency, interval                 time.Duration
	batchSize                            int
}

func newReplayCmd() *cobra.Command {
	var f replayFlags
	cmd := &cobra.Command{
		Use:   "replay NAMESPACE --target NAME",
		Short: "Re-project a namespace's event stream into a target (rebuild, backfill), resumable",
		Long: `replay re-projects the event stream of a keyvalue or timeseries NAMESPACE
into the projection target --target: it opens that target's backend
directly and runs a projector (durable consumer proj_<target>) from the
target's own checkpoint, committed with its data, so a killed replay
resumes where it stopped when run again.

Where the target lives (as prism serve keeps it):
  sqlite    <data-dir>/sqlite/<ns>.<target>.db (<ns>.db for target "sqlite")
            or --sqlite-path; <data-dir> defaults to ./prism-data only when
            it exists here: replay never creates a data directory
  postgres  schema prism__<ns>__<target> (prism_<ns> for target "postgres")
            on --postgres-dsn, else the namespace's, else $PRISM_POSTGRES_DSN
--backend defaults to the target's name when it is sqlite or postgres, else
to the namespace's backend.

It replays to the stream's last sequence at start, or --to-seq, or with
--follow until SIGINT/SIGTERM (which commit the batch in hand). A target
another process (prism serve) projects is refused. Progress: a bar on a
terminal, else a line every --progress-interval. Details: docs/replay.md.`,
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
	fl.StringVar(&f.target, "target", "", "projection target to replay into (lowercase letters, digits, - and _, at most 32); required")
	fl.StringVar(&f.backend, "backend", "", "backend of the target: sqlite or postgres (default: see above)")
	fl.StringVar(&f.sqlitePath, "sqlite-path", "", "SQLite file of the target (default <data-dir>/sqlite/<ns>.<target>.db)")
	fl.StringVar(&f.dataDir, "data-dir", "", "data directory of prism serve, where SQLite targets live (default "+defaultDataDir+" when it exists)")
	fl.StringVar(&f.postgresDSN, "postgres-dsn", "", "PostgreSQL connection string of a postgres target (default: the namespace's, then $PRISM_POSTGRES_DSN)")
	f.Conn.Register(fl, "NATS URL of the deployment")
	fl.Uint64Var(&f.fromSeq, "from-seq", 0, "start a new target at this stream sequence, skipping the events before it (see docs/replay.md)")
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

// targetNamePattern is what a projection target may be called.
var targetNamePattern = regexp.MustCompile(`^[a-z0-9_-]{1,32}$`)

// errReplayInterrupted is returned when a bounded replay is stopped by a
// signal before it reached its end.
var errReplayInterrupted = errors.New("replay interrupted; run the command again without --reset and --from-seq to resume from the target's checkpoint")

// replayRun is one prism replay run: the namespace and where its target
// lives, resolved from the flags.
type replayRun struct {
	f           replayFlags
	io          replayIO
	ns          namespaces.Namespace
	abstraction string // subjects.AbstractionKeyValue or AbstractionTimeSeries
	target      replay.Target
}

func runReplayCommand(ctx context.Context, rio replayIO, namespace string, f replayFlags) error {
	if err := f.validate(); err != nil {
		return err
	}
	log, err := node.NewLogger(os.Stderr, f.logLevel, "text")
	if err != nil {
		return err
	}
	nc, err := connect(ctx, f.Conn, "prism-replay", nats.MaxReconnects(-1))
	if err != nil {
		return err
	}
	defer nc.Close()
	js, err := jetstream.New(nc)
	if err != nil {
		return err
	}
	setup, cancel := context.WithTimeout(ctx, time.Minute)
	defer cancel()
	e, err := namespaces.Lookup(setup, js, namespace)
	if err != nil {
		return fmt.Errorf("replay: %w", err)
	}
	r := &replayRun{f: f, io: rio, ns: e.Namespace, abstraction: subjects.AbstractionKeyValue}
	switch r.ns.Abstraction {
	case namespaces.AbstractionTimeSeries:
		r.abstraction = subjects.AbstractionTimeSeries
	case namespaces.AbstractionKeyValue:
	default:
		return fmt.Errorf("replay: namespace %s is a %s namespace; prism replay rebuilds keyvalue and timeseries targets only", namespace, r.ns.Abstraction)
	}
	_, r.target, err = replay.ResolveTarget(r.ns, replay.TargetSpec{Name: f.target, Backend: f.backend,
		SQLitePath: f.sqlitePath, DataDir: f.dataDir, DefaultDataDir: defaultDataDir,
		PostgresDSN: f.postgresDSN, EnvPostgresDSN: os.Getenv("PRISM_POSTGRES_DSN")})
	if err != nil {
		return err
	}
	host, _ := os.Hostname()
	return r.run(ctx, js, log.With("component", "replay"), "replay@"+host)
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

// defaultDataDir is prism serve's default --data-dir.
const defaultDataDir = "./prism-data"

// name is how progress lines and messages call the replay.
func (r *replayRun) name() string { return "replay " + r.ns.Name + "→" + r.f.target }

// run runs the replay job with progress output and prints its summary.
func (r *replayRun) run(ctx context.Context, js jetstream.JetStream, log *slog.Logger, owner string) error {
	f, out := r.f, r.io.out
	var rep *progress.Reporter
	cfg := replay.JobConfig{
		JetStream: js, Namespace: r.ns.Name, Abstraction: r.abstraction, Target: f.target,
		Storage: r.target, Owner: owner, From: f.fromSeq, To: f.toSeq, Follow: f.follow, Reset: f.reset,
		BatchSize: f.batchSize, Logger: log,
		Throttle: replay.ThrottleConfig{MaxRate: f.maxRate, Adaptive: f.adaptive, MaxLag: f.maxLag, MaxLatency: f.maxLatency},
		Events: replay.JobEvents{
			Dropped: func(where string) { fmt.Fprintf(out, "%s: dropped %s\n", r.name(), where) },
			Skipped: func(from uint64) {
				fmt.Fprintf(out, "%s: new target starts at sequence %d; events 1 to %d are skipped\n", r.name(), from, from-1)
			},
			Started: func(run *replay.Running) {
				fmt.Fprintf(out, "%s: from checkpoint %d to %s into %s\n", r.name(), run.Start, stopLabel(run.StopAt), r.target)
				src := progress.Source{
					Applied:  func() uint64 { return run.Progress().Applied },
					Head:     func() uint64 { return run.Progress().Head },
					Throttle: func() *replay.ThrottleState { return run.Progress().Throttle },
				}
				rep = progress.Start(r.name(), src, progress.NewMeter(run.Start, run.StopAt, run.Began, f.mem), out, f.interval)
			},
			ConsumerKept: func(consumer string, err error) {
				fmt.Fprintf(r.io.errOut, "%s: could not delete consumer %s (delete it yourself: it holds compaction back): %v\n", r.name(), consumer, err)
			},
		},
	}
	if !f.yes {
		cfg.ConfirmReset = func() bool {
			fmt.Fprintf(r.io.errOut, "Drop every record of target %s of namespace %s (%s) and replay it from the stream?\nType the target name to confirm: ", f.target, r.ns.Name, r.target)
			return confirm(r.io.in, f.target)
		}
	}
	job, err := replay.NewJob(cfg)
	if err != nil {
		return fmt.Errorf("replay: %w", err)
	}
	started := time.Now()
	res, err := job.Run(ctx)
	auditRun(ctx, js, "replay.run", r.ns.Name, res.Applied-min(res.Applied, res.Start), err, time.Since(started))
	if rep != nil {
		r.summary(rep.Stop(), rep.Peak(), res.StopAt)
	}
	switch {
	case errors.Is(err, replay.ErrInterrupted):
		return errReplayInterrupted
	case err != nil:
		return fmt.Errorf("replay: %w", err)
	case res.EmptyStream:
		fmt.Fprintf(out, "%s: nothing to replay: the stream of %s holds no event\n", r.name(), r.ns.Name)
	case res.UpToDate:
		fmt.Fprintf(out, "%s: nothing to replay: the target's checkpoint %d is at or past sequence %d (%s)\n", r.name(), res.Start, res.StopAt, r.target)
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
func (r *replayRun) summary(s progress.Snapshot, peak progress.Mem, stopAt uint64) {
	rate := 0.0
	if secs := s.Elapsed.Seconds(); secs > 0 {
		rate = float64(s.Done) / secs
	}
	verb := "replayed"
	if stopAt > 0 && s.Applied < stopAt {
		verb = "stopped after"
	}
	fmt.Fprintf(r.io.out, "%s: %s %d events in %s (%s events/s on average); checkpoint %d, %d behind the stream's head %d\n",
		r.name(), verb, s.Done, s.Elapsed.Round(time.Millisecond), progress.HumanCount(rate), s.Applied, s.Lag, s.Head)
	if r.f.mem {
		fmt.Fprintf(r.io.out, "%s: peak heap %s, peak rss %s\n", r.name(), progress.MiB(peak.Heap), progress.MiB(peak.RSS))
	}
}
