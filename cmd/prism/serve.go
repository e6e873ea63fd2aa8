package main

import (
	"context"
	"fmt"
	"os"
	"os/signal"
	"syscall"
	"time"

	"github.com/spf13/cobra"

	"github.com/prism-data/prism/namespaces"
	"github.com/prism-data/prism/node"
	"github.com/prism-data/prism/replay"
	"github.com/prism-data/prism/subjects"
)

type serveFlags struct {
	dataDir       string
	natsListen    string
	natsURL       string
	configDir     string
	syncAlways    bool
	httpListen    string
	logLevel      string
	logFormat     string
	drainTimeout  time.Duration
	sweepInterval time.Duration
	// noCompact turns off the background compaction of keyvalue streams;
	// compactCheck is how often it looks at a stream.
	noCompact    bool
	compactCheck time.Duration
	postgresDSN  string
	otlpEndpoint string
	nodes        int
	kafkaBrokers string
}

func newServeCmd() *cobra.Command {
	var f serveFlags
	cmd := &cobra.Command{
		Use:   "serve",
		Short: "Run the gateway and projectors (with an embedded NATS server unless --nats-url is set)",
		Long: `serve runs Prism: the request handlers on prism.<namespace>.write.* and
prism.<namespace>.read.*, and one projector per namespace target that applies
the namespace's event stream to the target's backend: SQLite databases under
--data-dir (one per namespace target), PostgreSQL schemas (--postgres-dsn),
a NATS KV bucket, or a Kafka topic (--kafka-brokers).

By default it embeds a NATS server with JetStream (store under
<data-dir>/jetstream) listening on --nats-listen, so nothing else needs to
run. With --nats-url it connects to an existing NATS server instead.

Without --config it serves one KeyValue namespace, "demo".

With --otlp-endpoint it exports OpenTelemetry traces over OTLP/HTTP: a span
per request, its JetStream publish and consistency wait, and a span per
projector batch, joined to the callers' traces (W3C traceparent). The
standard OTEL_* variables (OTEL_SERVICE_NAME, OTEL_RESOURCE_ATTRIBUTES,
OTEL_TRACES_SAMPLER, OTEL_EXPORTER_OTLP_HEADERS, OTEL_BSP_*, ...) apply.

With --http-listen it serves Prometheus metrics at /metrics, liveness at
/healthz and readiness at /readyz (NATS connected; streams, consumers and
backends reachable).

SIGTERM or SIGINT drains: no new requests are taken, in-flight ones finish,
the projectors commit and acknowledge their batch, then the process exits.`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			return runServe(cmd.Context(), f)
		},
	}
	fl := cmd.Flags()
	fl.StringVar(&f.dataDir, "data-dir", "./prism-data", "directory for the JetStream store and the SQLite databases")
	fl.StringVar(&f.natsListen, "nats-listen", "127.0.0.1:4222", "host:port the embedded NATS server listens on")
	fl.StringVar(&f.natsURL, "nats-url", "", "connect to this NATS server instead of embedding one (e.g. nats://127.0.0.1:4222)")
	fl.StringVar(&f.configDir, "config", "", "directory of namespace YAML files applied to the registry at start, like prism apply (default: a KeyValue namespace \"demo\" in a new data directory)")
	fl.BoolVar(&f.syncAlways, "sync-always", false, "embedded NATS: fsync every write before acknowledging it (survives power loss; slower); with --nats-url: the servers run sync_always (namespaces may need durability: durable)")
	fl.IntVar(&f.nodes, "nodes", 1, "JetStream servers in the --nats-url cluster, for planning replicas (the embedded server is 1)")
	fl.StringVar(&f.httpListen, "http-listen", "", "serve /metrics (Prometheus), /healthz and /readyz on this host:port (off when empty)")
	fl.StringVar(&f.httpListen, "metrics-listen", "", "")
	_ = fl.MarkDeprecated("metrics-listen", "use --http-listen, which serves /healthz and /readyz as well")
	fl.StringVar(&f.logLevel, "log-level", "info", "log level: debug, info, warn, error")
	fl.StringVar(&f.logFormat, "log-format", "text", "log format on stderr: text or json (one JSON object per line)")
	fl.DurationVar(&f.drainTimeout, "drain-timeout", 15*time.Second, "how long shutdown waits for in-flight requests and batches")
	fl.DurationVar(&f.sweepInterval, "ttl-sweep-interval", time.Minute, "how often expired items and events past retention are deleted from the backends")
	fl.DurationVar(&f.compactCheck, "compact-check-interval", replay.DefaultCompactCheckInterval, "how often a keyvalue stream is checked for compaction (it runs when the stream holds more than twice as many events as records)")
	fl.BoolVar(&f.noCompact, "no-compact", false, "do not compact keyvalue streams in the background (prism compact still does; see docs/replay.md)")
	fl.StringVar(&f.otlpEndpoint, "otlp-endpoint", "", "export traces to this OTLP/HTTP collector, e.g. http://127.0.0.1:4318 (/v1/traces is appended); off when empty")
	// The default is read at run time, not shown in --help: a DSN may hold a password.
	fl.StringVar(&f.kafkaBrokers, "kafka-brokers", "", "comma-separated host:port of the Kafka brokers of log namespaces without kafka.brokers (default $PRISM_KAFKA_BROKERS)")
	fl.StringVar(&f.postgresDSN, "postgres-dsn", "", "connection string of namespaces with backend postgres and no postgres.dsn (default $PRISM_POSTGRES_DSN)")
	return cmd
}

// config is the node configuration f asks for, with the defaults read
// from the environment ($PRISM_POSTGRES_DSN, $PRISM_KAFKA_BROKERS).
func (f serveFlags) config() (node.Config, error) {
	if f.natsURL != "" && f.nodes < 1 {
		return node.Config{}, fmt.Errorf("--nodes %d: want at least 1", f.nodes)
	}
	dsn := f.postgresDSN
	if dsn == "" {
		dsn = os.Getenv("PRISM_POSTGRES_DSN")
	}
	brokers, err := node.ResolveKafkaBrokers(f.kafkaBrokers)
	if err != nil {
		return node.Config{}, err
	}
	return node.Config{
		DataDir:              f.dataDir,
		NATSURL:              f.natsURL,
		NATSListen:           f.natsListen,
		SyncAlways:           f.syncAlways,
		Nodes:                f.nodes,
		HTTPListen:           f.httpListen,
		DrainTimeout:         f.drainTimeout,
		SweepInterval:        f.sweepInterval,
		NoCompact:            f.noCompact,
		CompactCheckInterval: f.compactCheck,
		PostgresDSN:          dsn,
		KafkaBrokers:         brokers,
		OTLPEndpoint:         f.otlpEndpoint,
		Version:              version,
	}, nil
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
		return err
	}
	defer func() {
		if err := n.Close(ctx); err != nil {
			log.Error("shut down", "err", err)
		}
	}()

	runCtx, stop := signal.NotifyContext(ctx, syscall.SIGINT, syscall.SIGTERM)
	defer stop()

	url := n.URL()
	served := n.Served()
	fmt.Printf("Prism is serving %d namespace(s) on NATS %s\n", len(served), url)
	for _, ns := range served {
		if ns.Abstraction == namespaces.AbstractionKeyValue {
			fmt.Printf("  try: NATS_URL=%s nats req %s '{}'\n", url, subjects.Read(ns.Name, "scan"))
			break
		}
	}
	<-runCtx.Done()
	fmt.Println("Prism is shutting down: draining requests and projectors")
	return nil
}
