package main

import (
	"cmp"
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
	"github.com/prism-data/prism/internal/natsconn"
	"github.com/prism-data/prism/namespaces"
	"github.com/prism-data/prism/node"
)

type benchFlags struct {
	bench.Config
	NATS     natsconn.Options // the credentials of --nats-url
	json     bool
	logLevel string
}

func newBenchCmd() *cobra.Command {
	var f benchFlags
	cmd := &cobra.Command{
		Use:   "bench",
		Short: "Measure Prism's throughput and latency, and the raw engines under it",
		Long: `bench loads Prism through the Go client and reports throughput, latency
percentiles (HDR histograms) and errors by code. Scenarios (--scenario):
  write   puts of one --value-size item to --keys record ids
  read    gets of ids written before the run starts
  mixed   a --read-ratio share of gets, the rest puts
  e2e     a put, then gets with min_seq until the write is visible
  replay  --events puts, then a fresh projector catching up from seq 1
  migrate --events puts into SQLite, then a timed move to PostgreSQL (once)
  entity  entity puts, gets, index-range queries, then keyvalue puts and gets
It starts its own Prism, or loads --namespace of a running one (--nats-url);
--rate R is open loop, --baseline also runs the raw engines. Progress goes to
stderr, the table (or --json) to stdout. Details: docs/performance.md.`,
		Example: `  prism bench --scenario write --concurrency 64 --duration 10s --baseline
  prism bench --scenario read --key-dist zipf --rate 5000 --duration 30s
  prism bench --scenario replay --events 100000 --baseline --json
  prism bench --scenario migrate --events 200000 --keys 100000 --postgres-dsn postgres://postgres@127.0.0.1:5432/test
  prism bench --nats-url nats://127.0.0.1:4222 --namespace demo --scenario mixed --read-ratio 0.9`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			f.PostgresDSN = cmp.Or(f.PostgresDSN, os.Getenv("PRISM_POSTGRES_DSN"))
			ctx, stop := signal.NotifyContext(cmd.Context(), syscall.SIGINT, syscall.SIGTERM)
			defer stop()
			return runBench(ctx, cmd.OutOrStdout(), cmd.ErrOrStderr(), f)
		},
	}
	c := &f.Config
	fl := cmd.Flags()
	fl.StringVar(&c.Scenario, "scenario", bench.ScenarioWrite, "what to run: "+strings.Join(bench.Scenarios, ", "))
	f.NATS.RegisterOptional(fl, "load a running Prism on this NATS server instead of an embedded one")
	fl.StringVar(&c.Namespace, "namespace", "", `KeyValue namespace to load (default "bench" embedded, "demo" with --nats-url)`)
	fl.IntVar(&c.Concurrency, "concurrency", 64, "requests in flight at most")
	fl.Float64Var(&c.Rate, "rate", 0, "open loop: requests per second, scheduled at fixed intervals (0: closed loop, as fast as --concurrency allows)")
	fl.DurationVar(&c.Duration, "duration", 10*time.Second, "how long to load (each baseline runs as long again)")
	fl.IntVar(&c.ValueSize, "value-size", 256, "bytes per value")
	fl.IntVar(&c.Keys, "keys", 10000, "number of distinct record ids (read and mixed write all of them first)")
	fl.StringVar(&c.KeyDist, "key-dist", "uniform", "how ids are picked: uniform or zipf")
	fl.Float64Var(&c.ZipfS, "zipf-s", 1.1, "zipf exponent s (> 1); larger is more skewed")
	fl.Float64Var(&c.ReadRatio, "read-ratio", 0.5, "mixed: share of requests that are gets, 0..1")
	fl.IntVar(&c.Events, "events", 50000, "replay, migrate: events put on the stream before the catch-up is timed")
	fl.BoolVar(&c.Baseline, "baseline", false, "also measure the raw engines and print Prism ÷ raw")
	fl.BoolVar(&c.Auth, "auth", false, "embedded: run Prism with authentication on, the load as an application principal over TLS (docs/security.md)")
	fl.BoolVar(&c.PII, "pii", false, "embedded: declare the load's item a PII field, sealed on every put and opened on every get (docs/security.md)")
	fl.BoolVar(&f.json, "json", false, "print the result as JSON on stdout instead of a table")
	fl.StringVar(&c.Backend, "backend", "sqlite", "embedded: backend of the bench namespace, sqlite or postgres")
	fl.StringVar(&c.Consistency, "consistency", string(namespaces.Eventual), "embedded: consistency of the bench namespace: eventual, read-your-writes or strong")
	fl.IntVar(&c.ReadRPS, "read-rps", 0, "embedded: needs.read_rps of the bench namespace; 1000 or more turns the gateway read cache on (ADR 007)")
	// The default is read at run time, not shown in --help: a DSN may hold a password.
	fl.StringVar(&c.PostgresDSN, "postgres-dsn", "", "PostgreSQL for --backend postgres and the PostgreSQL baseline (default $PRISM_POSTGRES_DSN)")
	fl.StringVar(&c.DataDir, "data-dir", "", "embedded: directory for JetStream and SQLite (default: a temporary one, removed afterwards)")
	fl.BoolVar(&c.SyncAlways, "sync-always", false, "embedded: fsync every JetStream write before acknowledging it")
	fl.StringVar(&c.CPUProfile, "cpuprofile", "", "write a CPU profile of the Prism run (not the baselines) to this file, for go tool pprof")
	fl.StringVar(&f.logLevel, "log-level", "warn", "log level of the embedded stack: debug, info, warn, error")
	// The flags of the first bench, kept so scripts keep working.
	fl.IntVar(&c.Concurrency, "workers", 64, "concurrent requests")
	fl.IntVar(&c.Keys, "ids", 10000, "number of distinct record ids")
	_ = fl.MarkDeprecated("workers", "use --concurrency")
	_ = fl.MarkDeprecated("ids", "use --keys")
	return cmd
}

// config is the benchmark f describes, logging to log (--log-level).
func (f benchFlags) config(log *slog.Logger) (bench.Config, error) {
	c := f.Config
	c.Logger, c.NATSURL = log, f.NATS.URL
	if c.NATSURL != "" && c.Namespace == "" {
		c.Namespace = node.DemoNamespace.Name
	}
	var err error
	c.NATSOptions, err = f.NATS.Optional("prism bench embeds its own Prism")
	return c, err
}

// runBench runs the benchmark f describes, writing progress to progress
// and the result (table or JSON) to out.
func runBench(ctx context.Context, out, progress io.Writer, f benchFlags) error {
	// Invalid flags are reported before an invalid --log-level.
	c, err := f.config(nil)
	if err == nil {
		err = c.Validate()
	}
	if err != nil {
		return err
	}
	if c.Logger, err = node.NewLogger(os.Stderr, f.logLevel, "text"); err != nil {
		return err
	}
	rep, err := bench.Run(ctx, c, progress)
	if err != nil {
		return f.NATS.Explain(err) // with --nats-url: which credential or file is at fault
	}
	return rep.Write(out, f.json)
}
