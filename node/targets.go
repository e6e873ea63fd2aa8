package node

import (
	"context"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"slices"
	"strings"

	"github.com/nats-io/nats.go/jetstream"

	"github.com/prism-data/prism/backends/kafka"
	"github.com/prism-data/prism/backends/natskv"
	"github.com/prism-data/prism/backends/postgres"
	"github.com/prism-data/prism/backends/sqlite"
	"github.com/prism-data/prism/gateway"
	"github.com/prism-data/prism/namespaces"
	"github.com/prism-data/prism/projectors"
	"github.com/prism-data/prism/replay"
	"github.com/prism-data/prism/subjects"
)

// targetRun is one running projection target of a served namespace: its
// backend, projector and what the gateway reads through.
type targetRun struct {
	target namespaces.Target
	store  interface{ Close() error }
	proj   *projectors.Projector
	// waiter is what the gateway waits on: the current projector, which
	// a live change of batch size replaces.
	waiter *swapWaiter
	// newProj builds a projector for the store with the options given.
	newProj func(opts ...projectors.Option) (*projectors.Projector, error)
	sweep   func(ctx context.Context) (int64, error)
	// checkpoint reads the backend's checkpoint: /readyz's cheap probe.
	checkpoint func(ctx context.Context) (uint64, error)
	// read is the target as the gateway routes reads to it.
	read gateway.ReadTarget
	// where says where the target keeps its data (never a password).
	where string
	// throttle paces the projector of a backfilling target; nil once it
	// is caught up (and for every other target).
	throttle *replay.Throttle
}

// openTarget opens target t of namespace n and starts its projector with
// the plan's batch size and opts. On error nothing stays open.
func (s *namespaceSet) openTarget(ctx context.Context, n namespaces.Namespace, plan namespaces.Plan, t namespaces.Target, opts ...projectors.Option) (_ *targetRun, err error) {
	store, where, err := openBackend(ctx, s.cfg, s.js, n, plan, t)
	if err != nil {
		return nil, err
	}
	run := &targetRun{target: t, store: store, where: where, read: gateway.ReadTarget{Name: t.Name}}
	defer func() {
		if err != nil {
			if run.proj != nil {
				_ = run.proj.Stop(context.WithoutCancel(ctx))
			}
			_ = store.Close()
		}
	}()
	base := []projectors.Option{projectors.WithLogger(s.log), projectors.WithRegisterer(s.metrics), projectors.WithTracerProvider(s.tracer), projectors.WithOwner(s.owner)}
	switch n.Abstraction {
	case namespaces.AbstractionKeyValue:
		kv, ok := store.(kvStore)
		if !ok {
			return nil, fmt.Errorf("backend %s does not serve the keyvalue abstraction", t.Backend)
		}
		// The gateway's read cache drops what each batch changed, whichever
		// target serves the reads.
		name := n.Name
		base = append(base, projectors.WithAppliedHook(func(ids [][]byte, through uint64) { s.gw.RecordsApplied(name, ids, through) }))
		run.newProj = func(opts ...projectors.Option) (*projectors.Projector, error) {
			return projectors.New(s.js, n.Name, t.Name, kv, append(base, opts...)...)
		}
		run.sweep, run.checkpoint = kv.SweepExpired, kv.Checkpoint
		run.read.KeyValue = kv
	case namespaces.AbstractionTimeSeries:
		ts, ok := store.(tsStore)
		if !ok {
			return nil, fmt.Errorf("backend %s does not serve the timeseries abstraction yet; use sqlite or postgres", t.Backend)
		}
		run.newProj = func(opts ...projectors.Option) (*projectors.Projector, error) {
			return projectors.NewTimeSeries(s.js, n.Name, t.Name, ts, append(base, opts...)...)
		}
		run.checkpoint = ts.Checkpoint
		run.sweep = retentionSweep(ts, n)
		run.read.TimeSeries = ts
	case namespaces.AbstractionLog:
		ls, ok := store.(logStore)
		if !ok {
			return nil, fmt.Errorf("backend %s does not serve the log abstraction; use kafka", t.Backend)
		}
		run.newProj = func(opts ...projectors.Option) (*projectors.Projector, error) {
			return projectors.NewLog(s.js, n.Name, t.Name, ls, append(base, opts...)...)
		}
		run.checkpoint = logCheckpoint(ls)
	default:
		return nil, fmt.Errorf("abstraction %q is not served", n.Abstraction)
	}
	if run.proj, err = run.newProj(append([]projectors.Option{projectors.WithBatchSize(plan.BatchSize.Value)}, opts...)...); err != nil {
		return nil, err
	}
	if err := run.proj.Start(ctx); err != nil {
		return nil, fmt.Errorf("start projector of target %s: %w", t.Name, err)
	}
	run.waiter = newSwapWaiter(run.proj)
	run.read.Applied = run.waiter
	return run, nil
}

// closeTarget stops the target's projector (it commits and acknowledges its
// batch) and closes its backend.
func (s *namespaceSet) closeTarget(ctx context.Context, ns string, run *targetRun) {
	if err := run.proj.Stop(ctx); err != nil {
		s.log.Error("stop projector", "namespace", ns, "target", run.target.Name, "err", err)
	}
	if run.throttle != nil {
		_ = run.throttle.Close()
	}
	if err := run.store.Close(); err != nil {
		s.log.Error("close backend", "namespace", ns, "target", run.target.Name, "err", err)
	}
}

// openBackend opens target t of namespace n and says where it keeps the
// data (never a password).
func openBackend(ctx context.Context, c Config, js jetstream.JetStream, n namespaces.Namespace, plan namespaces.Plan, t namespaces.Target) (interface{ Close() error }, string, error) {
	switch t.Backend {
	case "sqlite":
		path := sqlite.TargetPath(c.DataDir, n.Name, t.Name)
		if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
			return nil, "", err
		}
		st, err := sqlite.Open(ctx, path)
		return st, path, err
	case "postgres":
		dsn := targetDSN(c, t)
		if dsn == "" {
			return nil, "", errors.New("backend postgres needs a connection string: set postgres.dsn in the namespace file (or the migration target), --postgres-dsn, or PRISM_POSTGRES_DSN")
		}
		schema, err := postgres.TargetSchemaName(n.Name, t.Name)
		if err != nil {
			return nil, "", err
		}
		st, err := postgres.Open(ctx, dsn, n.Name, postgres.WithSchema(schema))
		return st, "postgres schema " + schema, err
	case "natskv":
		st, err := natskv.Open(ctx, js, n.Name)
		return st, "NATS KV bucket " + natskv.BucketName(n.Name), err
	case "kafka":
		return openKafka(ctx, c, n, plan)
	}
	return nil, "", fmt.Errorf("backend %q is not served", t.Backend)
}

// dropTarget deletes the data of target t of namespace n, which is closed.
func dropTarget(ctx context.Context, c Config, js jetstream.JetStream, n namespaces.Namespace, t namespaces.Target) error {
	switch t.Backend {
	case "sqlite":
		_, err := dropSQLite(c, n.Name, t.Name)
		return err
	case "postgres":
		schema, err := postgres.TargetSchemaName(n.Name, t.Name)
		if err != nil {
			return err
		}
		return postgres.DropSchema(ctx, targetDSN(c, t), n.Name, postgres.WithSchema(schema))
	case "natskv":
		err := js.DeleteKeyValue(ctx, natskv.BucketName(n.Name))
		if errors.Is(err, jetstream.ErrBucketNotFound) {
			return nil
		}
		return err
	case "kafka":
		topic := n.Kafka.Topic
		if topic == "" {
			topic = kafka.TopicName(n.Name)
		}
		return fmt.Errorf("kafka topics are kept (Prism does not delete them): delete %s and %s.checkpoint with Kafka's tools", topic, topic)
	}
	return fmt.Errorf("backend %q is not served", t.Backend)
}

// knownTargets lists the targets entry e has data in: its primary and
// those of its last migration.
func knownTargets(e namespaces.Registered) []namespaces.Target {
	out := []namespaces.Target{e.PrimaryTarget()}
	if m := e.Migration; m != nil {
		for _, t := range []namespaces.Target{m.From, m.To} {
			if !slices.ContainsFunc(out, func(o namespaces.Target) bool { return o.Name == t.Name }) {
				out = append(out, t)
			}
		}
	}
	return out
}

// targetDSN is the connection string of a postgres target: its own, or
// --postgres-dsn.
func targetDSN(c Config, t namespaces.Target) string {
	if t.Postgres.DSN != "" {
		return t.Postgres.DSN
	}
	return c.PostgresDSN
}

// consumerOf is the durable consumer of target t.
func consumerOf(t namespaces.Target) string { return subjects.Consumer(t.Name) }

// dropSQLite deletes the SQLite file of target target of namespace ns and
// its WAL files, and says whether there was any.
func dropSQLite(c Config, ns, target string) (bool, error) {
	path := sqlite.TargetPath(c.DataDir, ns, target)
	found := false
	var errs []error
	for _, suffix := range []string{"", "-wal", "-shm"} {
		err := os.Remove(path + suffix)
		found = found || err == nil
		if err != nil && !errors.Is(err, fs.ErrNotExist) {
			errs = append(errs, err)
		}
	}
	return found, errors.Join(errs...)
}

// dropSQLiteFiles deletes the SQLite files of every target of namespace ns
// (<ns>.db and <ns>.<target>.db), and says whether there was any.
func dropSQLiteFiles(c Config, ns string) (bool, error) {
	found, err := dropSQLite(c, ns, "")
	others, gerr := filepath.Glob(filepath.Join(c.DataDir, "sqlite", ns+".*.db"))
	errs := []error{err, gerr}
	for _, path := range others {
		target := strings.TrimSuffix(strings.TrimPrefix(filepath.Base(path), ns+"."), ".db")
		ok, err := dropSQLite(c, ns, target)
		found = found || ok
		errs = append(errs, err)
	}
	return found, errors.Join(errs...)
}
