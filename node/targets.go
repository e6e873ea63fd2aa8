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
	// proj is the target's projector; nil on a standby (standby is set).
	proj *projectors.Projector
	// standby is the progress of another process's projector of the
	// target while this process waits to take over (ADR 022); nil once
	// proj runs.
	standby *projectors.ConsumerProgress
	// waiter is what the gateway waits on: the current projector, which
	// a live change of batch size replaces, or standby.
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
	// newJob builds the replay job that fills a migration's new target
	// while it backfills, with the batch size given; nil once the target
	// caught up, and for every other target.
	newJob func(batch int) (*replay.Job, error)
	// backfill is the running job whose projector proj is; nil when proj
	// is the target's ordinary projector.
	backfill *replay.Running
	// indexes runs the builds of an entity target's new indexes; nil for
	// other abstractions.
	indexes *indexBuilds
}

// backfillFunc builds the replay job that backfills a target of the
// abstraction given (subjects.Abstraction*) into store st, kept at where,
// with the batch size given and the options every projector of the
// target has.
type backfillFunc func(abstraction string, st replay.Store, where string, batch int, opts []projectors.Option) (*replay.Job, error)

// openTarget opens target t of namespace n and starts its projector with
// the plan's batch size: the target's ordinary projector, or with
// backfill a replay job that fills a migration's new target. With
// standbyOK and no backfill, a target another process projects
// (projectors.ErrConsumerInUse) opens on standby: no projector, its
// progress read from the consumer (ADR 022). On error nothing stays open.
func (s *namespaceSet) openTarget(ctx context.Context, n namespaces.Namespace, plan namespaces.Plan, t namespaces.Target, backfill backfillFunc, standbyOK bool) (_ *targetRun, err error) {
	store, where, err := s.openBackend(ctx, n, plan, t)
	if err != nil {
		return nil, err
	}
	run := &targetRun{target: t, store: store, where: where, read: gateway.ReadTarget{Name: t.Name}}
	defer func() {
		if err != nil {
			_ = store.Close()
		}
	}()
	// shared are the options of every projector of the target, a
	// backfill job's too (which sets its own logger and owner).
	shared := []projectors.Option{projectors.WithRegisterer(s.metrics), projectors.WithTracerProvider(s.tracer)}
	var jobStore replay.Store
	var jobAbstraction string
	switch n.Abstraction {
	case namespaces.AbstractionKeyValue:
		kv, ok := store.(kvStore)
		if !ok {
			return nil, fmt.Errorf("backend %s does not serve the keyvalue abstraction", t.Backend)
		}
		// The gateway's read cache drops what each batch changed, whichever
		// target serves the reads.
		name := n.Name
		shared = append(shared, projectors.WithAppliedHook(func(ids [][]byte, through uint64) { s.gw.RecordsApplied(name, ids, through) }))
		run.newProj = func(opts ...projectors.Option) (*projectors.Projector, error) {
			return projectors.New(s.js, n.Name, t.Name, projectors.ResolveChunks(s.js, n.Name, kv), append(s.baseOptions(shared), opts...)...)
		}
		run.sweep, run.checkpoint = kv.SweepExpired, kv.Checkpoint
		run.read.KeyValue = kv
		jobStore, jobAbstraction = kv, subjects.AbstractionKeyValue
	case namespaces.AbstractionTimeSeries:
		ts, ok := store.(tsStore)
		if !ok {
			return nil, fmt.Errorf("backend %s does not serve the timeseries abstraction yet; use sqlite or postgres", t.Backend)
		}
		run.newProj = func(opts ...projectors.Option) (*projectors.Projector, error) {
			return projectors.NewTimeSeries(s.js, n.Name, t.Name, ts, append(s.baseOptions(shared), opts...)...)
		}
		run.checkpoint = ts.Checkpoint
		run.sweep = retentionSweep(ts, n)
		run.read.TimeSeries = ts
		jobStore, jobAbstraction = ts, subjects.AbstractionTimeSeries
	case namespaces.AbstractionLog:
		ls, ok := store.(logStore)
		if !ok {
			return nil, fmt.Errorf("backend %s does not serve the log abstraction; use kafka", t.Backend)
		}
		run.newProj = func(opts ...projectors.Option) (*projectors.Projector, error) {
			return projectors.NewLog(s.js, n.Name, t.Name, ls, append(s.baseOptions(shared), opts...)...)
		}
		run.checkpoint = logCheckpoint(ls)
	case namespaces.AbstractionEntity:
		es, ok := store.(enStore)
		if !ok {
			return nil, fmt.Errorf("backend %s does not serve the entity abstraction; use %s", t.Backend, strings.Join(namespaces.EntityBackends, ", "))
		}
		// The gateway's read cache drops what each batch changed, as for
		// keyvalue.
		name := n.Name
		shared = append(shared, projectors.WithAppliedHook(func(ids [][]byte, through uint64) { s.gw.RecordsApplied(name, ids, through) }))
		run.newProj = func(opts ...projectors.Option) (*projectors.Projector, error) {
			return projectors.NewEntity(s.js, n.Name, t.Name, es, append(s.baseOptions(shared), opts...)...)
		}
		run.checkpoint = es.Checkpoint
		run.read.Entity = es
		run.indexes = newIndexBuilds(s.log)
		jobStore, jobAbstraction = es, subjects.AbstractionEntity
	case namespaces.AbstractionGraph:
		gs, ok := store.(grStore)
		if !ok {
			return nil, fmt.Errorf("backend %s does not serve the graph abstraction; use %s", t.Backend, strings.Join(namespaces.GraphBackends, ", "))
		}
		run.newProj = func(opts ...projectors.Option) (*projectors.Projector, error) {
			return projectors.NewGraph(s.js, n.Name, t.Name, gs, append(s.baseOptions(shared), opts...)...)
		}
		run.checkpoint = gs.Checkpoint
		run.read.Graph = gs
		jobStore, jobAbstraction = gs, subjects.AbstractionGraph
	default:
		return nil, fmt.Errorf("abstraction %q is not served", n.Abstraction)
	}
	if backfill != nil {
		if jobStore == nil {
			return nil, fmt.Errorf("a %s target cannot be backfilled", n.Abstraction)
		}
		run.newJob = func(batch int) (*replay.Job, error) { return backfill(jobAbstraction, jobStore, where, batch, shared) }
	}
	if !s.cfg.projects() {
		// A gateway-only process: every target on standby, for good,
		// whether or not a projector made its consumer yet.
		run.standby = projectors.NewConsumerProgress(s.js, n.Name, t.Name)
		run.waiter = newSwapWaiter(run.standby)
		run.read.Applied = run.waiter
		s.log.Info("target on standby: this process is gateway-only (--role gateway)", "namespace", n.Name, "target", t.Name)
		return run, nil
	}
	// Before the projector starts: an index of a store without records
	// is ready at once, never built.
	if err := s.syncIndexes(ctx, n, run); err != nil {
		return nil, fmt.Errorf("sync the indexes of target %s: %w", t.Name, err)
	}
	defer func() {
		if err != nil && run.indexes != nil {
			run.indexes.stop()
		}
	}()
	start, err := run.projector(plan.BatchSize.Value)
	if err != nil {
		return nil, err
	}
	switch run.proj, run.backfill, err = start(ctx); {
	case err == nil:
		run.waiter = newSwapWaiter(run.proj)
	case standbyOK && backfill == nil && errors.Is(err, projectors.ErrConsumerInUse):
		if run.indexes != nil {
			// The process that projects the target builds its indexes;
			// this one syncs them when it takes over.
			run.indexes.stop()
			run.indexes = newIndexBuilds(s.log)
		}
		run.proj, run.standby = nil, projectors.NewConsumerProgress(s.js, n.Name, t.Name)
		if _, rerr := run.standby.Refresh(ctx); rerr != nil {
			return nil, fmt.Errorf("target %s is projected by another process, whose progress cannot be read: %w", t.Name, rerr)
		}
		s.log.Info("target on standby: another process projects it", "namespace", n.Name, "target", t.Name, "reason", err)
		run.waiter = newSwapWaiter(run.standby)
	default:
		return nil, fmt.Errorf("start projector of target %s: %w", t.Name, err)
	}
	run.read.Applied = run.waiter
	return run, nil
}

// processLocal reports whether backend keeps its data in this process's
// data directory: a standby's copy is not the one the projecting
// process serves, so its reads go there (ADR 022).
func processLocal(backend string) bool { return backend == "sqlite" }

// takeOver starts the projector of run, a standby target of namespace ns,
// once the process that projected it stopped; it reports whether it did.
// Any error but projectors.ErrConsumerInUse is logged; the next retry
// tries again.
func (s *namespaceSet) takeOver(ctx context.Context, ns string, run *targetRun, batch int) bool {
	start, err := run.projector(batch)
	if err == nil {
		var p *projectors.Projector
		if p, _, err = start(ctx); err == nil {
			s.mu.Lock()
			run.proj, run.standby = p, nil
			s.mu.Unlock()
			run.waiter.swap(p)
			return true
		}
	}
	if !errors.Is(err, projectors.ErrConsumerInUse) {
		s.log.Error("take over a standby target", "namespace", ns, "target", run.target.Name, "err", err, "retry_in", takeOverEvery)
	}
	return false
}

// baseOptions are the options of a target's ordinary projector: this
// process's logger and owner, and shared.
func (s *namespaceSet) baseOptions(shared []projectors.Option) []projectors.Option {
	return append([]projectors.Option{projectors.WithLogger(s.log), projectors.WithOwner(s.owner)}, shared...)
}

// startFunc starts the projector targetRun.projector prepared: the projector,
// and the backfill job it belongs to (nil for an ordinary one).
type startFunc func(ctx context.Context) (*projectors.Projector, *replay.Running, error)

// projector prepares run's next projector with batch size batch: a
// backfill job while run backfills (newJob), else the target's ordinary
// projector. Nothing runs until the returned func is called.
func (run *targetRun) projector(batch int) (startFunc, error) {
	if run.newJob != nil {
		job, err := run.newJob(batch)
		if err != nil {
			return nil, err
		}
		return func(ctx context.Context) (*projectors.Projector, *replay.Running, error) {
			r, err := job.Start(ctx)
			if err != nil {
				return nil, nil, err
			}
			return r.Projector(), r, nil
		}, nil
	}
	p, err := run.newProj(projectors.WithBatchSize(batch))
	if err != nil {
		return nil, err
	}
	return func(ctx context.Context) (*projectors.Projector, *replay.Running, error) {
		return p, nil, p.Start(ctx)
	}, nil
}

// stopProjector stops run's projector (it commits and acknowledges its
// batch), and the backfill job it belongs to with its throttle.
func (run *targetRun) stopProjector(ctx context.Context) error {
	switch {
	case run.backfill != nil:
		return run.backfill.Stop(ctx)
	case run.proj == nil: // a standby runs none
		return nil
	}
	return run.proj.Stop(ctx)
}

// closeTarget stops the target's projector (it commits and acknowledges its
// batch) and closes its backend.
func (s *namespaceSet) closeTarget(ctx context.Context, ns string, run *targetRun) {
	if err := run.stopProjector(ctx); err != nil {
		s.log.Error("stop projector", "namespace", ns, "target", run.target.Name, "err", err)
	}
	if run.indexes != nil {
		run.indexes.stop()
	}
	if err := run.store.Close(); err != nil {
		s.log.Error("close backend", "namespace", ns, "target", run.target.Name, "err", err)
	}
}

// openBackend opens target t of namespace n and says where it keeps the
// data (never a password).
func (s *namespaceSet) openBackend(ctx context.Context, n namespaces.Namespace, plan namespaces.Plan, t namespaces.Target) (interface{ Close() error }, string, error) {
	c := s.cfg
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
		schema, err := s.targetSchema(ctx, dsn, n.Name, t.Name)
		if err != nil {
			return nil, "", err
		}
		st, err := postgres.Open(ctx, dsn, n.Name, postgres.WithSchema(schema))
		return st, "postgres schema " + schema, err
	case "neptune":
		return openNeptune(ctx, c, n.Name, t.Name)
	case "natskv":
		st, err := natskv.Open(ctx, s.js, n.Name)
		return st, "NATS KV bucket " + natskv.BucketName(n.Name), err
	case "kafka":
		return openKafka(ctx, c, n, plan)
	}
	return nil, "", fmt.Errorf("backend %q is not served", t.Backend)
}

// targetSchema is the schema of postgres target target of namespace ns
// (postgres.TargetSchemaName), after renaming the schema with a dot in
// its name that releases before it used (postgres.AdoptTargetSchema).
func (s *namespaceSet) targetSchema(ctx context.Context, dsn, ns, target string) (string, error) {
	schema, renamed, err := postgres.AdoptTargetSchema(ctx, dsn, ns, target)
	if renamed != "" {
		s.log.Info("postgres schema renamed to the name of this release", "namespace", ns, "target", target, "from", renamed, "to", schema)
	}
	return schema, err
}

// dropTarget deletes the data of target t of namespace n, which is closed.
func (s *namespaceSet) dropTarget(ctx context.Context, n namespaces.Namespace, t namespaces.Target) error {
	switch t.Backend {
	case "sqlite":
		_, err := dropSQLite(s.cfg, n.Name, t.Name)
		return err
	case "postgres":
		dsn := targetDSN(s.cfg, t)
		schema, err := s.targetSchema(ctx, dsn, n.Name, t.Name)
		if err != nil {
			return err
		}
		return postgres.DropSchema(ctx, dsn, n.Name, postgres.WithSchema(schema))
	case "neptune":
		return dropNeptune(ctx, s.cfg, n.Name, t.Name)
	case "natskv":
		err := s.js.DeleteKeyValue(ctx, natskv.BucketName(n.Name))
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
