package main

import (
	"context"
	"fmt"
	"log/slog"
	"os"
	"strconv"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/prism-data/prism/backends/postgres"
	"github.com/prism-data/prism/client"
	"github.com/prism-data/prism/namespaces"
	"github.com/prism-data/prism/node"
)

// benchTarget is the Prism a benchmark loads: an embedded stack started for
// the run, or a running deployment reached with --nats-url.
type benchTarget struct {
	mode      string // "embedded" or "remote"
	url       string
	namespace string
	backend   string // "" when remote: the deployment knows
	consist   string // "" when remote

	st      *node.Node // embedded only
	sf      node.Config
	log     *slog.Logger
	tempDir string // removed by close; "" when --data-dir was given
	pgDrop  []string

	nc *nats.Conn // the benchmark client's own connection, over TCP
	kv *client.KeyValue
}

// openBenchTarget starts the embedded stack (or connects to --nats-url) and
// opens the benchmark's client connection.
func openBenchTarget(ctx context.Context, f benchFlags) (_ *benchTarget, retErr error) {
	t := &benchTarget{namespace: f.namespace}
	var err error
	if t.log, err = newLogger(f.logLevel); err != nil {
		return nil, err
	}
	defer func() {
		if retErr != nil {
			t.close(ctx)
		}
	}()
	if f.natsURL != "" {
		t.mode, t.url = "remote", f.natsURL
		if t.namespace == "" {
			t.namespace = node.DemoNamespace.Name
		}
	} else if err := t.startEmbedded(ctx, f); err != nil {
		return nil, err
	}
	if t.nc, err = nats.Connect(t.url, nats.Name("prism-bench")); err != nil {
		return nil, fmt.Errorf("connect to %s: %w", t.url, err)
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
	return t, nil
}

func (t *benchTarget) startEmbedded(ctx context.Context, f benchFlags) error {
	t.mode, t.backend, t.consist = "embedded", f.backend, f.consistency
	var err error
	dir := f.dataDir
	if dir == "" {
		if dir, err = os.MkdirTemp("", "prism-bench-"); err != nil {
			return err
		}
		t.tempDir = dir
	}
	t.sf = node.Config{
		DataDir:      dir,
		NATSListen:   "127.0.0.1:0", // any free port
		SyncAlways:   f.syncAlways,
		DrainTimeout: 15 * time.Second,
		PostgresDSN:  f.postgresDSN,
	}
	if t.namespace == "" {
		t.namespace = "bench"
	}
	if f.backend == "postgres" {
		// A PostgreSQL schema outlives the run; a fresh name per run keeps
		// an old checkpoint from meeting a new stream.
		t.namespace += "_" + strconv.FormatInt(time.Now().UnixNano()%1e9, 36)
		schema, err := postgres.SchemaName(t.namespace)
		if err != nil {
			return err
		}
		t.pgDrop = append(t.pgDrop, schema)
	}
	ns := namespaces.Namespace{Name: t.namespace, Abstraction: namespaces.AbstractionKeyValue, Backend: f.backend, Consistency: namespaces.Consistency(f.consistency),
		Needs: namespaces.Needs{ReadRPS: f.readRPS}}
	if t.st, err = node.Start(ctx, t.sf, t.log, node.Seed{Namespaces: []namespaces.Namespace{ns}, By: "prism bench"}); err != nil {
		return fmt.Errorf("start the embedded stack: %w", err)
	}
	t.url = t.st.URL()
	return nil
}

// js returns a JetStream context on the target's server for the replay
// scenario and the baselines.
func (t *benchTarget) js(opts ...jetstream.JetStreamOpt) (jetstream.JetStream, error) {
	return jetstream.New(t.nc, opts...)
}

// scratchDir is where the baselines and replay put their SQLite files.
func (t *benchTarget) scratchDir() (string, error) {
	if t.tempDir != "" {
		return t.tempDir, nil
	}
	if t.sf.DataDir != "" {
		return t.sf.DataDir, nil
	}
	dir, err := os.MkdirTemp("", "prism-bench-")
	t.tempDir = dir
	return dir, err
}

func (t *benchTarget) close(ctx context.Context) {
	ctx = context.WithoutCancel(ctx)
	if t.nc != nil {
		t.nc.Close()
	}
	if t.st != nil {
		_ = t.st.Close(ctx)
	}
	if len(t.pgDrop) > 0 {
		dropSchemas(ctx, t.sf.PostgresDSN, t.pgDrop, t.log)
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
