package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"os"
	"os/signal"
	"path/filepath"
	"strconv"
	"syscall"
	"time"

	"github.com/nats-io/nats-server/v2/server"
	"github.com/nats-io/nats.go"
	"github.com/spf13/cobra"

	"github.com/prism-data/prism/namespaces"
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
	// kafkaBrokerList is kafkaBrokers, else $PRISM_KAFKA_BROKERS, split
	// and checked (resolveKafkaBrokers).
	kafkaBrokerList []string
}

// cluster is the deployment namespaces are planned for.
func (f serveFlags) cluster() namespaces.Cluster {
	return namespaces.Cluster{Nodes: max(f.nodes, 1), SyncAlways: f.syncAlways, Postgres: f.postgresDSN != ""}
}

func newServeCmd() *cobra.Command {
	var f serveFlags
	cmd := &cobra.Command{
		Use:   "serve",
		Short: "Run the gateway and projectors (with an embedded NATS server unless --nats-url is set)",
		Long: `serve runs Prism: the request handlers on prism.<namespace>.write.* and
prism.<namespace>.read.*, and one projector per namespace that applies the
namespace's event stream to its SQLite database under --data-dir.

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

// newLogger returns the logger of --log-level on stderr, in format
// ("text", the default, or "json": --log-format).
func newLogger(level string, format ...string) (*slog.Logger, error) {
	f := "text"
	if len(format) > 0 {
		f = format[0]
	}
	return newFormatLogger(os.Stderr, level, f)
}

// newFormatLogger returns the logger of level and format, writing to w.
func newFormatLogger(w io.Writer, level, format string) (*slog.Logger, error) {
	var l slog.Level
	if err := l.UnmarshalText([]byte(level)); err != nil {
		return nil, fmt.Errorf("--log-level %q: want debug, info, warn or error", level)
	}
	opts := &slog.HandlerOptions{Level: l}
	switch format {
	case "text":
		return slog.New(slog.NewTextHandler(w, opts)), nil
	case "json":
		return slog.New(slog.NewJSONHandler(w, opts)), nil
	}
	return nil, fmt.Errorf("--log-format %q: want text or json", format)
}

// demoNamespace is what serve runs without --config.
var demoNamespace = namespaces.Namespace{Name: "demo", Abstraction: "keyvalue", Backend: "sqlite", Consistency: "strong"}

func runServe(ctx context.Context, f serveFlags) error {
	if f.postgresDSN == "" {
		f.postgresDSN = os.Getenv("PRISM_POSTGRES_DSN")
	}
	if err := resolveKafkaBrokers(&f); err != nil {
		return err
	}
	log, err := newLogger(f.logLevel, f.logFormat)
	if err != nil {
		return err
	}
	if f.natsURL != "" && f.nodes < 1 {
		return fmt.Errorf("--nodes %d: want at least 1", f.nodes)
	}
	if f.natsURL == "" {
		f.nodes = 1
	}
	sd := seed{namespaces: []namespaces.Namespace{demoNamespace}, onlyIfNew: true, by: "prism serve (demo)"}
	if f.configDir != "" {
		if sd.namespaces, err = namespaces.LoadNamespaces(f.configDir); err != nil {
			return err
		}
		if len(sd.namespaces) == 0 {
			return fmt.Errorf("--config %s: no namespace files (*.yaml) found", f.configDir)
		}
		sd.onlyIfNew, sd.by = false, "prism serve --config "+f.configDir
	}
	// The HTTP listener comes first: /healthz answers while the stack
	// starts, and /readyz says it is not ready yet.
	h := &health{}
	if f.httpListen != "" {
		srv, err := serveHTTP(f.httpListen, h, log)
		if err != nil {
			return err
		}
		defer srv.Close()
	}
	st, err := startStack(ctx, f, log, sd)
	if err != nil {
		return err
	}
	h.ready(st)
	defer func() {
		h.draining()
		st.Close(ctx)
	}()

	runCtx, stop := signal.NotifyContext(ctx, syscall.SIGINT, syscall.SIGTERM)
	defer stop()

	url := st.URL(f)
	served := st.set.snapshot()
	fmt.Printf("Prism is serving %d namespace(s) on NATS %s\n", len(served), url)
	for _, sv := range served {
		if n := sv.ns; n.Abstraction == namespaces.AbstractionKeyValue {
			fmt.Printf("  try: NATS_URL=%s nats req %s '{}'\n", url, subjects.Read(n.Name, "scan"))
			break
		}
	}
	<-runCtx.Done()
	fmt.Println("Prism is shutting down: draining requests and projectors")
	return nil
}

// connectNATS connects to --nats-url, or starts the embedded server and
// connects to it in-process.
func connectNATS(f serveFlags, log *slog.Logger) (*nats.Conn, *server.Server, error) {
	if f.natsURL != "" {
		nc, err := nats.Connect(f.natsURL, nats.Name("prism"), nats.MaxReconnects(-1))
		if err != nil {
			return nil, nil, fmt.Errorf("connect to --nats-url %s: %w", f.natsURL, err)
		}
		return nc, nil, nil
	}
	ns, err := startEmbeddedNATS(f, log)
	if err != nil {
		return nil, nil, err
	}
	nc, err := nats.Connect("", nats.InProcessServer(ns), nats.Name("prism"))
	if err != nil {
		ns.Shutdown()
		return nil, nil, fmt.Errorf("connect to the embedded NATS server: %w", err)
	}
	return nc, ns, nil
}

func startEmbeddedNATS(f serveFlags, log *slog.Logger) (*server.Server, error) {
	host, portStr, err := net.SplitHostPort(f.natsListen)
	if err != nil {
		return nil, fmt.Errorf("--nats-listen %q: want host:port: %w", f.natsListen, err)
	}
	port, err := strconv.Atoi(portStr)
	if err != nil || port < 0 || port > 65535 {
		return nil, fmt.Errorf("--nats-listen %q: bad port", f.natsListen)
	}
	// Probe the port first: the server would only log the failure.
	if port != 0 {
		l, err := net.Listen("tcp", f.natsListen)
		if err != nil {
			return nil, fmt.Errorf("cannot listen on %s for the embedded NATS server (%v).\n"+
				"Another process (often a NATS server) holds that port. Either pick another port with\n"+
				"  --nats-listen 127.0.0.1:4333\n"+
				"or use the running server with\n"+
				"  --nats-url nats://%s", f.natsListen, err, f.natsListen)
		}
		l.Close()
	}
	opts := &server.Options{
		ServerName: "prism",
		Host:       host,
		Port:       serverPort(port),
		JetStream:  true,
		StoreDir:   filepath.Join(f.dataDir, "jetstream"),
		SyncAlways: f.syncAlways,
		NoSigs:     true,
	}
	ns, err := server.NewServer(opts)
	if err != nil {
		return nil, fmt.Errorf("embedded NATS server: %w", err)
	}
	ns.SetLoggerV2(&natsLogger{log: log.With("component", "nats")}, false, false, false)
	go ns.Start()
	if !ns.ReadyForConnections(30 * time.Second) {
		ns.Shutdown()
		return nil, errors.New("embedded NATS server did not become ready within 30s (see the log above)")
	}
	return ns, nil
}

// serverPort maps a --nats-listen port to nats-server's option: the server
// reads 0 as its default port (4222), so "any free port" is RANDOM_PORT.
func serverPort(port int) int {
	if port == 0 {
		return server.RANDOM_PORT
	}
	return port
}
