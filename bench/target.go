package bench

import (
	"context"
	"fmt"
	"log/slog"
	"os"
	"path/filepath"
	"strconv"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/nats-io/nats-server/v2/server"
	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/prism-data/prism/auth/devinit"
	"github.com/prism-data/prism/backends/postgres"
	"github.com/prism-data/prism/client"
	"github.com/prism-data/prism/internal/natsconn"
	"github.com/prism-data/prism/namespaces"
	"github.com/prism-data/prism/node"
	"github.com/prism-data/prism/subjects"
)

// Embedded is a Prism running in this process for the length of a
// benchmark: embedded NATS with JetStream, the gateway, the admin API and
// the namespace's projector. Its methods are called from one goroutine
// except JetStream's result, which is safe for concurrent use.
type Embedded interface {
	// URL is the NATS URL clients reach it at (nats://127.0.0.1:port).
	URL() string
	// JetStream is a JetStream context on the Prism's own in-process
	// connection, the one its projectors use.
	JetStream() jetstream.JetStream
	// Server is the embedded NATS server, for connections of one's own
	// without TCP (nats.InProcessServer) as the gateway's is; nil when
	// there is none.
	Server() *server.Server
	// Close drains the gateway, stops the projectors, closes the backends
	// and NATS; it returns what failed. It is called once.
	Close(ctx context.Context) error
}

// EmbeddedConfig is the Prism Run asks a StartFunc for.
type EmbeddedConfig struct {
	// DataDir is where JetStream and SQLite live; the StartFunc creates
	// it if it does not exist.
	DataDir string
	// SyncAlways fsyncs every JetStream write before acknowledging it.
	SyncAlways bool
	// PostgresDSN is the PostgreSQL of namespaces and migration targets
	// with backend postgres; "" without one.
	PostgresDSN string
	// Namespace is applied to the registry before the Prism serves.
	Namespace namespaces.Namespace
	// More are namespaces applied with it (the entity scenario's); the
	// Prism may return before it serves them.
	More []namespaces.Namespace
	// By is recorded in the registry as who applied Namespace.
	By string
	// AuthConfig, when set, turns authentication on (node.Config).
	AuthConfig string
	// Logger receives the Prism's logs.
	Logger *slog.Logger
}

// StartFunc starts an embedded Prism as cfg describes, its NATS server
// listening on a free port of 127.0.0.1, and returns once it serves
// cfg.Namespace. On error, whatever it started is stopped again.
type StartFunc func(ctx context.Context, cfg EmbeddedConfig) (Embedded, error)

var _ Embedded = (*node.Node)(nil)

// StartNode is the StartFunc of a Config without one: a node.Node, the
// runtime prism serve runs, on embedded NATS.
func StartNode(ctx context.Context, cfg EmbeddedConfig) (Embedded, error) {
	n, err := node.Start(ctx, node.Config{
		DataDir:      cfg.DataDir,
		NATSListen:   "127.0.0.1:0", // any free port
		SyncAlways:   cfg.SyncAlways,
		DrainTimeout: 15 * time.Second,
		PostgresDSN:  cfg.PostgresDSN,
		AuthConfig:   cfg.AuthConfig,
	}, cfg.Logger, node.Seed{Namespaces: append([]namespaces.Namespace{cfg.Namespace}, cfg.More...), By: cfg.By})
	if err != nil {
		return nil, err // not a nil *node.Node in a non-nil Embedded
	}
	return n, nil
}

// benchTarget is the Prism a benchmark loads: an embedded one started for the
// run, or a running deployment reached with Config.NATSURL.
type benchTarget struct {
	mode      string // "embedded" or "remote"
	url       string
	namespace string
	backend   string // "" when remote: the deployment knows
	consist   string // "" when remote

	prism       Embedded // embedded only
	dataDir     string   // embedded only
	postgresDSN string
	log         *slog.Logger
	tempDir     string // removed by close; "" when Config.DataDir was given
	pgDrop      []string

	nc *nats.Conn // the benchmark client's own connection, over TCP
	kv *client.KeyValue
	// en is the entity scenario's namespace; nil in the others.
	en *entityTarget
	// more are the namespaces applied beside the keyvalue one.
	more []namespaces.Namespace
	// With Config.Auth: the client's credential options, and svc, a
	// connection as Prism's service user (JetStream, the admin API) with
	// svcOpts; without, svc is nc.
	clientOpts, svcOpts []nats.Option
	svc                 *nats.Conn
}

// openBenchTarget starts the embedded Prism (or connects to cfg.NATSURL) and
// opens the benchmark's client connection.
func openBenchTarget(ctx context.Context, cfg Config) (_ *benchTarget, retErr error) {
	t := &benchTarget{namespace: cfg.Namespace, postgresDSN: cfg.PostgresDSN, log: cfg.Logger}
	var err error
	defer func() {
		if retErr != nil {
			t.close(ctx)
		}
	}()
	if cfg.NATSURL != "" {
		t.mode, t.url = "remote", cfg.NATSURL
	} else if err := t.startEmbedded(ctx, cfg); err != nil {
		return nil, err
	}
	if t.nc, err = nats.Connect(t.url, append([]nats.Option{nats.Name("prism-bench")}, append(cfg.NATSOptions, t.clientOpts...)...)...); err != nil {
		return nil, fmt.Errorf("connect to %s: %w", t.url, err)
	}
	t.svc = t.nc
	if t.svcOpts != nil {
		if t.svc, err = nats.Connect(t.url, append([]nats.Option{nats.Name("prism-bench-service")}, t.svcOpts...)...); err != nil {
			return nil, fmt.Errorf("connect to %s as the service user: %w", t.url, err)
		}
	}
	// No retries: a failed request shows as an error, not as a slow one.
	c, err := client.New(t.nc, client.WithTimeout(30*time.Second), client.WithRetries(0, 0))
	if err != nil {
		return nil, err
	}
	t.kv = c.KeyValue(t.namespace)
	// Fail fast on a wrong URL or namespace.
	if _, _, err := t.kv.Scan(ctx, client.PageSize(1)); err != nil {
		return nil, fmt.Errorf("namespace %s at %s: %w", t.namespace, t.url, err)
	}
	for _, ns := range t.more {
		if t.en, err = openEntity(ctx, c, ns.Name); err != nil {
			return nil, err
		}
	}
	return t, nil
}

func (t *benchTarget) startEmbedded(ctx context.Context, cfg Config) error {
	t.mode, t.backend, t.consist = "embedded", cfg.Backend, cfg.Consistency
	var err error
	dir := cfg.DataDir
	if dir == "" {
		if dir, err = os.MkdirTemp("", "prism-bench-"); err != nil {
			return err
		}
		t.tempDir = dir
	}
	t.dataDir = dir
	if t.namespace == "" {
		t.namespace = "bench"
	}
	if cfg.Backend == "postgres" {
		// A PostgreSQL schema outlives the run; a fresh name per run keeps
		// an old checkpoint from meeting a new stream.
		t.namespace += "_" + strconv.FormatInt(time.Now().UnixNano()%1e9, 36)
		schema, err := postgres.SchemaName(t.namespace)
		if err != nil {
			return err
		}
		t.pgDrop = append(t.pgDrop, schema)
	}
	ns := namespaces.Namespace{Name: t.namespace, Abstraction: namespaces.AbstractionKeyValue, Backend: cfg.Backend, Consistency: namespaces.Consistency(cfg.Consistency),
		Needs: namespaces.Needs{ReadRPS: cfg.ReadRPS}}
	if cfg.PII {
		// The load's one item, "v", is a PII field: sealed on every put,
		// opened on every get.
		ns.Fields, ns.PII = namespaces.NewNames("v"), namespaces.GenericPII("v")
	}
	if cfg.Scenario == ScenarioEntity {
		en, err := entityNamespace(ns)
		if err != nil {
			return err
		}
		if cfg.Backend == "postgres" {
			schema, err := postgres.SchemaName(en.Name)
			if err != nil {
				return err
			}
			t.pgDrop = append(t.pgDrop, schema)
		}
		t.more = append(t.more, en)
	}
	authConfig := ""
	if cfg.Auth {
		if authConfig, err = t.secure(dir, &ns); err != nil {
			return err
		}
		for i := range t.more {
			t.more[i].Access = ns.Access
		}
	}
	start := cfg.Start
	if start == nil {
		start = StartNode
	}
	// Kept only on success: a StartFunc may return a nil *T with its error.
	prism, err := start(ctx, EmbeddedConfig{DataDir: dir, SyncAlways: cfg.SyncAlways, PostgresDSN: cfg.PostgresDSN, Namespace: ns, More: t.more, By: "prism bench", Logger: t.log, AuthConfig: authConfig})
	if err != nil {
		return fmt.Errorf("start the embedded stack: %w", err)
	}
	t.prism, t.url = prism, prism.URL()
	return nil
}

// js returns a JetStream context on the target's server for the replay
// scenario and the baselines.
func (t *benchTarget) js(opts ...jetstream.JetStreamOpt) (jetstream.JetStream, error) {
	return jetstream.New(t.svc, opts...)
}

// stream returns the namespace's stream, on the embedded Prism's own
// connection, and its state now.
func (t *benchTarget) stream(ctx context.Context) (jetstream.Stream, *jetstream.StreamInfo, error) {
	stream, err := t.prism.JetStream().Stream(ctx, subjects.Stream(t.namespace))
	if err != nil {
		return nil, nil, err
	}
	info, err := stream.Info(ctx)
	if err != nil {
		return nil, nil, err
	}
	return stream, info, nil
}

// scratchDir is where the baselines and replay put their SQLite files.
func (t *benchTarget) scratchDir() (string, error) {
	if t.tempDir != "" {
		return t.tempDir, nil
	}
	if t.dataDir != "" {
		return t.dataDir, nil
	}
	dir, err := os.MkdirTemp("", "prism-bench-")
	t.tempDir = dir
	return dir, err
}

func (t *benchTarget) close(ctx context.Context) {
	ctx = context.WithoutCancel(ctx)
	if t.svc != nil && t.svc != t.nc {
		t.svc.Close()
	}
	if t.nc != nil {
		t.nc.Close()
	}
	if t.prism != nil {
		if err := t.prism.Close(ctx); err != nil {
			t.log.Warn("stop the embedded stack", "err", err)
		}
	}
	if len(t.pgDrop) > 0 {
		dropSchemas(ctx, t.postgresDSN, t.pgDrop, t.log)
	}
	if t.tempDir != "" {
		_ = os.RemoveAll(t.tempDir)
	}
}

// dropSchemas removes the PostgreSQL schemas a run created.
func dropSchemas(ctx context.Context, dsn string, schemas []string, log *slog.Logger) {
	ctx, cancel := context.WithTimeout(ctx, 30*time.Second)
	defer cancel()
	conn, err := pgx.Connect(ctx, dsn)
	if err != nil {
		log.Warn("drop bench schemas", "err", err)
		return
	}
	defer conn.Close(ctx)
	for _, s := range schemas {
		if _, err := conn.Exec(ctx, "DROP SCHEMA IF EXISTS "+pgx.Identifier{s}.Sanitize()+" CASCADE"); err != nil {
			log.Warn("drop bench schema", "schema", s, "err", err)
		}
	}
}

// benchUser is the application principal of a run with Config.Auth.
const benchUser = "bench"

// secure writes prism auth init's material into dir/auth, lets benchUser
// read, write and follow ns, and sets the client's (certificate) and the
// service user's (nkey) connection options. It returns the auth.yaml.
func (t *benchTarget) secure(dir string, ns *namespaces.Namespace) (string, error) {
	res, err := devinit.Init(filepath.Join(dir, "auth"), devinit.Options{Users: []devinit.User{{Name: benchUser}}})
	if err != nil {
		return "", fmt.Errorf("--auth: %w", err)
	}
	who := namespaces.NewNames(benchUser)
	ns.Access = namespaces.Access{Read: who, Write: who, Subscribe: who}
	u := res.Users[0]
	if t.clientOpts, err = (natsconn.Options{TLSCert: u.Cert, TLSKey: u.Key, TLSCA: res.CACert}).NATSOptions(); err != nil {
		return "", err
	}
	if t.svcOpts, err = (natsconn.Options{NKey: res.ServiceSeed, TLSCA: res.CACert}).NATSOptions(); err != nil {
		return "", err
	}
	return res.AuthConfig, nil
}
