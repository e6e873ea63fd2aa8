package main

import (
	"context"
	"io"
	"log/slog"
	"os"
	"os/signal"
	"strings"
	"syscall"
	"time"

	"github.com/spf13/cobra"

	"github.com/prism-data/prism/bench"
	"github.com/prism-data/prism/namespaces"
	"github.com/prism-data/prism/node"
)

type benchFlags struct {
	scenario    string
	natsURL     string
	namespace   string
	concurrency int
	rate        float64
	duration    time.Duration
	valueSize   int
	keys        int
	keyDist     string
	zipfS       float64
	readRatio   float64
	events      int
	baseline    bool
	json        bool

	// The embedded stack.
	backend     string
	consistency string
	readRPS     int
	postgresDSN string
	dataDir     string
	syncAlways  bool
	logLevel    string
}

func newBenchCmd() *cobra.Command {
	var f benchFlags
	cmd := &cobra.Command{
		Use:   "bench",
		Short: "Measure Prism's throughput and latency, and the raw engines under it",
		Long: `bench loads Prism through the Go client and reports throughput and latency
percentiles (p50/p90/p99/p99.9/max, from HDR histograms) and errors by code.

Scenarios (--scenario):
  write   puts of one --value-size item to --keys record ids
  read    gets of ids written before the run starts
  mixed   a --read-ratio share of gets, the rest puts
  e2e     a put, then gets with min_seq until the write is visible; reports
          put (→ ack), ack_to_visible and write_to_visible latency
  replay  puts --events events onto the stream, then times a fresh
          projector (new target, empty backend) catching up from seq 1;
          repeated until --duration is used up (at least once)
  migrate puts --events events over --keys ids into a SQLite namespace,
          then moves it to a new PostgreSQL target through the admin API
          as prism migrate does (start, verify, cutover, finalize, no rate
          cap), timing each step, the whole move and the backfill's
          events/s; runs once, embedded only, needs --postgres-dsn

By default bench starts its own Prism in-process (embedded NATS on a free
port, gateway, projector, a fresh --backend under a temporary directory),
serving one KeyValue namespace with --consistency; the client connects over
TCP like an application. With --nats-url it loads a running deployment's
--namespace instead (default "demo"); its consistency and backend are
whatever that deployment declares, and the ids bench-<n> are written there.

Load: --concurrency requests in flight at most. With --rate 0 (closed loop)
each worker sends its next request as soon as the last one returned. With
--rate R (open loop) requests are scheduled every 1/R seconds and latency is
measured from the scheduled time, so a stall that delays later requests
shows in their latency instead of hiding (coordinated omission); if the
workers cannot keep up, latency grows and the achieved rate falls short.

--baseline runs the raw engines in the same process, for the same duration,
concurrency and rate, and prints Prism ÷ raw per comparable pair:
JetStream publish sync and async (64 pending) of the same event message to
an identically configured stream, core NATS request-reply to an echo
responder, direct SQLite upsert/get (and PostgreSQL with --postgres-dsn), and
for replay a JetStream consumer reading the stream and a bulk SQLite upsert.

A progress line goes to stderr every second; the final table to stdout, or
with --json one JSON document to stdout.`,
		Example: `  prism bench --scenario write --concurrency 64 --duration 10s --baseline
  prism bench --scenario read --key-dist zipf --rate 5000 --duration 30s
  prism bench --scenario e2e --consistency eventual --concurrency 8 --json
  prism bench --scenario replay --events 100000 --baseline
  prism bench --scenario migrate --events 200000 --keys 100000 --postgres-dsn postgres://postgres@127.0.0.1:5432/test
  prism bench --scenario write --backend postgres --postgres-dsn postgres://postgres@127.0.0.1:5432/test
  prism bench --nats-url nats://127.0.0.1:4222 --namespace demo --scenario mixed --read-ratio 0.9`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			if f.postgresDSN == "" {
				f.postgresDSN = os.Getenv("PRISM_POSTGRES_DSN")
			}
			ctx, stop := signal.NotifyContext(cmd.Context(), syscall.SIGINT, syscall.SIGTERM)
			defer stop()
			return runBench(ctx, cmd.OutOrStdout(), cmd.ErrOrStderr(), f)
		},
	}
	fl := cmd.Flags()
	fl.StringVar(&f.scenario, "scenario", bench.ScenarioWrite, "what to run: "+strings.Join(bench.Scenarios, ", "))
	fl.StringVar(&f.natsURL, "nats-url", "", "load a running Prism on this NATS server instead of an embedded one")
	fl.StringVar(&f.namespace, "namespace", "", `KeyValue namespace to load (default "bench" embedded, "demo" with --nats-url)`)
	fl.IntVar(&f.concurrency, "concurrency", 64, "requests in flight at most")
	fl.Float64Var(&f.rate, "rate", 0, "open loop: requests per second, scheduled at fixed intervals (0: closed loop, as fast as --concurrency allows)")
	fl.DurationVar(&f.duration, "duration", 10*time.Second, "how long to load (each baseline runs as long again)")
	fl.IntVar(&f.valueSize, "value-size", 256, "bytes per value")
	fl.IntVar(&f.keys, "keys", 10000, "number of distinct record ids (read and mixed write all of them first)")
	fl.StringVar(&f.keyDist, "key-dist", "uniform", "how ids are picked: uniform or zipf")
	fl.Float64Var(&f.zipfS, "zipf-s", 1.1, "zipf exponent s (> 1); larger is more skewed")
	fl.Float64Var(&f.readRatio, "read-ratio", 0.5, "mixed: share of requests that are gets, 0..1")
	fl.IntVar(&f.events, "events", 50000, "replay: events put on the stream before the catch-up is timed")
	fl.BoolVar(&f.baseline, "baseline", false, "also measure the raw engines and print Prism ÷ raw")
	fl.BoolVar(&f.json, "json", false, "print the result as JSON on stdout instead of a table")
	fl.StringVar(&f.backend, "backend", "sqlite", "embedded: backend of the bench namespace, sqlite or postgres")
	fl.StringVar(&f.consistency, "consistency", string(namespaces.Eventual), "embedded: consistency of the bench namespace: eventual, read-your-writes or strong")
	fl.IntVar(&f.readRPS, "read-rps", 0, "embedded: needs.read_rps of the bench namespace; 1000 or more turns the gateway read cache on (ADR 007)")
	// The default is read at run time, not shown in --help: a DSN may hold a password.
	fl.StringVar(&f.postgresDSN, "postgres-dsn", "", "PostgreSQL for --backend postgres and the PostgreSQL baseline (default $PRISM_POSTGRES_DSN)")
	fl.StringVar(&f.dataDir, "data-dir", "", "embedded: directory for JetStream and SQLite (default: a temporary one, removed afterwards)")
	fl.BoolVar(&f.syncAlways, "sync-always", false, "embedded: fsync every JetStream write before acknowledging it")
	fl.StringVar(&f.logLevel, "log-level", "warn", "log level of the embedded stack: debug, info, warn, error")
	// The flags of the first bench, kept so scripts keep working.
	fl.IntVar(&f.concurrency, "workers", 64, "concurrent requests")
	fl.IntVar(&f.keys, "ids", 10000, "number of distinct record ids")
	_ = fl.MarkDeprecated("workers", "use --concurrency")
	_ = fl.MarkDeprecated("ids", "use --keys")
	return cmd
}

// config is the benchmark f describes, logging to log (--log-level).
func (f benchFlags) config(log *slog.Logger) bench.Config {
	c := bench.Config{
		Scenario: f.scenario, NATSURL: f.natsURL, Namespace: f.namespace,
		Concurrency: f.concurrency, Rate: f.rate, Duration: f.duration,
		ValueSize: f.valueSize, Keys: f.keys, KeyDist: f.keyDist, ZipfS: f.zipfS,
		ReadRatio: f.readRatio, Events: f.events, Baseline: f.baseline,
		Backend: f.backend, Consistency: f.consistency, ReadRPS: f.readRPS,
		PostgresDSN: f.postgresDSN, DataDir: f.dataDir, SyncAlways: f.syncAlways,
		Logger: log,
	}
	if c.NATSURL != "" && c.Namespace == "" {
		c.Namespace = node.DemoNamespace.Name
	}
	return c
}

// runBench runs the benchmark f describes, writing progress to progress
// and the result (table or JSON) to out.
func runBench(ctx context.Context, out, progress io.Writer, f benchFlags) error {
	// Invalid flags are reported before an invalid --log-level.
	if err := f.config(nil).Validate(); err != nil {
		return err
	}
	log, err := node.NewLogger(os.Stderr, f.logLevel, "text")
	if err != nil {
		return err
	}
	rep, err := bench.Run(ctx, f.config(log), progress)
	if err != nil {
		return err
	}
	if f.json {
		return rep.WriteJSON(out)
	}
	return rep.WriteTable(out)
}
