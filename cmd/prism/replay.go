package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"os/signal"
	"regexp"
	"syscall"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/spf13/cobra"

	"github.com/prism-data/prism/internal/natsconn"
	"github.com/prism-data/prism/internal/progress"
	"github.com/prism-data/prism/node"
	"github.com/prism-data/prism/projectors"
	"github.com/prism-data/prism/replay"
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
into the projection target --target, opening its backend directly where
prism serve keeps it, from the target's own checkpoint (committed with its
data), so a killed replay resumes when run again. It replays to the
stream's last sequence at start, --to-seq, or with --follow until
SIGINT/SIGTERM; a target another process projects is refused. Where
targets live, and the progress it prints: docs/replay.md.`,
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
	fl.StringVar(&f.backend, "backend", "", "backend of the target: sqlite, postgres or neptune (at $PRISM_NEPTUNE_ENDPOINT; default: the target's name when it is one of them, else the namespace's backend)")
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

func runReplayCommand(ctx context.Context, rio replayIO, namespace string, f replayFlags) error {
	if err := f.validate(); err != nil {
		return err
	}
	log, err := node.NewLogger(os.Stderr, f.logLevel, "text")
	if err != nil {
		return err
	}
	f.Conn.Name = "prism-replay"
	nc, js, err := f.Conn.ConnectJetStream(ctx, nats.MaxReconnects(-1))
	if err != nil {
		return err
	}
	defer nc.Close()
	setup, cancel := context.WithTimeout(ctx, time.Minute)
	defer cancel()
	cfg, err := replay.Lookup(setup, js, namespace, replay.TargetSpec{Name: f.target, Backend: f.backend,
		SQLitePath: f.sqlitePath, DataDir: f.dataDir, DefaultDataDir: defaultDataDir,
		PostgresDSN: f.postgresDSN, EnvPostgresDSN: os.Getenv("PRISM_POSTGRES_DSN"), EnvNeptuneEndpoint: os.Getenv("PRISM_NEPTUNE_ENDPOINT")})
	if err != nil {
		return err
	}
	host, _ := os.Hostname()
	cfg.Owner, cfg.Logger = "replay@"+host, log.With("component", "replay")
	return runReplay(ctx, rio, cfg, f)
}

func (f replayFlags) validate() error {
	switch {
	case f.target == "":
		return errors.New("replay: --target NAME is required (e.g. --target rebuild)")
	case !targetNamePattern.MatchString(f.target):
		return fmt.Errorf("replay: --target %q: want 1 to 32 lowercase letters, digits, '-' or '_'", f.target)
	case f.backend != "" && f.backend != "sqlite" && f.backend != "postgres" && f.backend != "neptune":
		return fmt.Errorf("replay: --backend %q: want sqlite, postgres or neptune", f.backend)
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

// runReplay runs the replay job cfg (namespace and target resolved) as f
// asks, with progress output, and prints its summary.
func runReplay(ctx context.Context, rio replayIO, cfg replay.JobConfig, f replayFlags) error {
	o := &progress.JobOutput{Name: "replay " + cfg.Namespace + "→" + f.target, Out: rio.out, ErrOut: rio.errOut, Mem: f.mem, Interval: f.interval}
	cfg.From, cfg.To, cfg.Follow, cfg.Reset, cfg.BatchSize = f.fromSeq, f.toSeq, f.follow, f.reset, f.batchSize
	cfg.Throttle = replay.ThrottleConfig{MaxRate: f.maxRate, Adaptive: f.adaptive, MaxLag: f.maxLag, MaxLatency: f.maxLatency}
	cfg.Events = o.Events(cfg.Namespace, cfg.Storage)
	if !f.yes {
		cfg.ConfirmReset = func() bool {
			fmt.Fprintf(rio.errOut, "Drop every record of target %s of namespace %s (%s) and replay it from the stream?\nType the target name to confirm: ", f.target, cfg.Namespace, cfg.Storage)
			return confirm(rio.in, f.target)
		}
	}
	job, err := replay.NewJob(cfg)
	if err != nil {
		return fmt.Errorf("replay: %w", err)
	}
	started := time.Now()
	res, err := job.Run(ctx)
	auditRun(ctx, cfg.JetStream, "replay.run", cfg.Namespace, res.Applied-min(res.Applied, res.Start), err, time.Since(started))
	o.Finish(res, err)
	switch {
	case errors.Is(err, replay.ErrInterrupted):
		return errReplayInterrupted
	case err != nil:
		return fmt.Errorf("replay: %w", err)
	}
	return nil
}
