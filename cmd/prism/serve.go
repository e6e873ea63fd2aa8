package main

import (
	"cmp"
	"context"
	"fmt"
	"os"
	"os/signal"
	"syscall"
	"time"

	"github.com/spf13/cobra"

	"github.com/prism-data/prism/internal/natsconn"
	"github.com/prism-data/prism/node"
	"github.com/prism-data/prism/replay"
)

type serveFlags struct {
	node.Config
	NATS                                         natsconn.Options // the credentials of --nats-url
	configDir, logLevel, logFormat, kafkaBrokers string
}

func newServeCmd() *cobra.Command {
	var f serveFlags
	cmd := &cobra.Command{
		Use:   "serve",
		Short: "Run the gateway and projectors (with an embedded NATS server unless --nats-url is set)",
		Long: `serve runs Prism: the request handlers on prism.<namespace>.write.* and
.read.*, and a projector per namespace target. It embeds a NATS server
with JetStream (store under <data-dir>/jetstream) on --nats-listen, or
connects to --nats-url with its credentials; without --config it serves a
KeyValue namespace "demo". SIGTERM or SIGINT drains: in-flight requests
finish, projectors commit their batch. Flags and metrics: README.md.`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error { return runServe(cmd.Context(), f) },
	}
	c := &f.Config
	fl := cmd.Flags()
	fl.StringVar(&c.DataDir, "data-dir", "./prism-data", "directory for the JetStream store and the SQLite databases")
	fl.StringVar(&c.NATSListen, "nats-listen", "127.0.0.1:4222", "host:port the embedded NATS server listens on")
	f.NATS.RegisterOptional(fl, "connect to this NATS server instead of embedding one (e.g. nats://127.0.0.1:4222)")
	fl.StringVar(&f.configDir, "config", "", "directory of namespace YAML files applied to the registry at start, like prism apply (default: a KeyValue namespace \"demo\" in a new data directory)")
	fl.BoolVar(&c.SyncAlways, "sync-always", false, "embedded NATS: fsync every write before acknowledging it (survives power loss; slower); with --nats-url: the servers run sync_always (namespaces may need durability: durable)")
	fl.StringVar(&c.Role, "role", node.RoleAll, "what this process runs: all, gateway (requests only; reads of SQLite namespaces go to a process that projects) or projector (no requests); README \"More than one Prism process\"")
	fl.IntVar(&c.Nodes, "nodes", 1, "JetStream servers in the --nats-url cluster, for planning replicas (the embedded server is 1)")
	fl.StringVar(&c.HTTPListen, "http-listen", "", "serve /metrics (Prometheus), /healthz and /readyz on this host:port (off when empty)")
	fl.StringVar(&c.HTTPListen, "metrics-listen", "", "")
	_ = fl.MarkDeprecated("metrics-listen", "use --http-listen, which serves /healthz and /readyz as well")
	fl.StringVar(&f.logLevel, "log-level", "info", "log level: debug, info, warn, error")
	fl.StringVar(&f.logFormat, "log-format", "text", "log format on stderr: text or json (one JSON object per line)")
	fl.IntVar(&c.MaxInFlight, "max-in-flight", node.DefaultMaxInFlight, "requests handled at once; beyond it requests are shed with RESOURCE_EXHAUSTED (README \"Limits and overload\")")
	fl.Int64Var(&c.MaxInFlightBytes, "max-in-flight-bytes", 0, "total bytes of the request bodies handled at once; a request that would pass it is shed (default 268435456: 256 MiB; docs/operations.md, \"Memory bound\")")
	fl.IntVar(&c.MaxValueBytes, "max-value-bytes", 0, "largest keyvalue value in bytes, at least 524288; values above 512 KiB are uploaded in parts (default 67108864: 64 MiB; README \"Large values\")")
	fl.DurationVar(&c.DrainTimeout, "drain-timeout", 15*time.Second, "how long shutdown waits for in-flight requests and batches")
	fl.DurationVar(&c.SweepInterval, "ttl-sweep-interval", time.Minute, "how often expired items and events past retention are deleted from the backends")
	fl.DurationVar(&c.CompactCheckInterval, "compact-check-interval", replay.DefaultCompactCheckInterval, "how often a keyvalue stream is checked for compaction (it runs when the stream holds more than twice as many events as records)")
	fl.Float64Var(&c.CompactRate, "compact-rate", replay.DefaultCompactorRate, "background compaction's pace, messages read a second (a rollup counts as 100; docs/replay.md)")
	fl.BoolVar(&c.NoCompact, "no-compact", false, "do not compact keyvalue streams in the background (prism compact still does; see docs/replay.md)")
	fl.StringVar(&c.AuthConfig, "auth-config", "", "turn authentication on with this auth.yaml (prism auth init writes one; docs/security.md); without it Prism runs open, on loopback only")
	fl.DurationVar(&c.AuditRetention, "audit-retention", node.DefaultAuditRetention, "how long the audit stream keeps its records")
	fl.StringVar(&c.PIIKEK, "pii-kek", "", "key encryption key of the PII data keys: file:PATH (a 256-bit hex key file, prism keys init-kek) or awskms:KEY (id, ARN or alias); every process needs the same one (default: a development key file in the data directory; docs/security.md)")
	fl.StringSliceVar(&c.PIIPreviousKEKs, "pii-previous-kek", nil, "an earlier key encryption key, to read data keys not yet rewrapped (prism keys rewrap); repeatable")
	fl.StringVar(&c.OTLPEndpoint, "otlp-endpoint", "", "export traces to this OTLP/HTTP collector, e.g. http://127.0.0.1:4318 (/v1/traces is appended); off when empty")
	// The default is read at run time, not shown in --help: a DSN may hold a password.
	fl.StringVar(&f.kafkaBrokers, "kafka-brokers", "", "comma-separated host:port of the Kafka brokers of log namespaces without kafka.brokers (default $PRISM_KAFKA_BROKERS)")
	fl.StringVar(&c.PostgresDSN, "postgres-dsn", "", "connection string of namespaces with backend postgres and no postgres.dsn (default $PRISM_POSTGRES_DSN)")
	fl.StringVar(&c.NeptuneEndpoint, "neptune-endpoint", "", "Neptune cluster (host:port) of graph namespaces with backend neptune; AWS region and credentials from the SDK's default chain (default $PRISM_NEPTUNE_ENDPOINT)")
	return cmd
}

// config is the node configuration f asks for, with the defaults read
// from the environment ($PRISM_POSTGRES_DSN, $PRISM_KAFKA_BROKERS, the
// NATS_* credentials of --nats-url).
func (f serveFlags) config() (node.Config, error) {
	c := f.Config
	c.NATSURL = f.NATS.URL
	if c.NATSURL != "" && c.Nodes < 1 {
		return c, fmt.Errorf("--nodes %d: want at least 1", c.Nodes)
	}
	var err error
	if c.NATSOptions, err = f.NATS.Optional("prism serve embeds its own NATS server"); err != nil {
		return c, err
	}
	c.PostgresDSN = cmp.Or(c.PostgresDSN, os.Getenv("PRISM_POSTGRES_DSN"))
	c.NeptuneEndpoint = cmp.Or(c.NeptuneEndpoint, os.Getenv("PRISM_NEPTUNE_ENDPOINT"))
	brokers, err := node.ResolveKafkaBrokers(f.kafkaBrokers)
	c.KafkaBrokers, c.Version = brokers, version
	return c, err
}

func runServe(ctx context.Context, f serveFlags) error {
	cfg, err := f.config()
	if err != nil {
		return err
	}
	log, err := node.NewLogger(os.Stderr, f.logLevel, f.logFormat)
	if err != nil {
		return err
	}
	sd, err := node.SeedFromDir(f.configDir)
	if err != nil {
		return err
	}
	n, err := node.Start(ctx, cfg, log, sd)
	if err != nil {
		return f.NATS.Explain(err) // with --nats-url: which credential or file is at fault
	}
	defer func() {
		if err := n.Close(ctx); err != nil {
			log.Error("shut down", "err", err)
		}
	}()

	runCtx, stop := signal.NotifyContext(ctx, syscall.SIGINT, syscall.SIGTERM)
	defer stop()
	_ = n.WriteBanner(os.Stdout)
	<-runCtx.Done()
	fmt.Println("Prism is shutting down: draining requests and projectors")
	return nil
}
