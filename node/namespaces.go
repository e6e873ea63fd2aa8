package node

import (
	"context"
	"errors"
	"fmt"
	"io/fs"
	"log/slog"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
	"github.com/prometheus/client_golang/prometheus"
	"go.opentelemetry.io/otel/trace"

	"github.com/prism-data/prism/backends/natskv"
	"github.com/prism-data/prism/backends/postgres"
	"github.com/prism-data/prism/backends/sqlite"
	"github.com/prism-data/prism/gateway"
	"github.com/prism-data/prism/projectors"
	"github.com/prism-data/prism/replay"
	"github.com/prism-data/prism/subjects"
)

// kvStore is a backend serving a KeyValue namespace.
type kvStore interface {
	projectors.KeyValueTarget
	gateway.KeyValueReader
	SweepExpired(ctx context.Context) (int64, error)
	Close() error
}

// tsStore is a backend serving a TimeSeries namespace.
type tsStore interface {
	projectors.TimeSeriesTarget
	gateway.TimeSeriesReader
	SweepOlderThan(ctx context.Context, cutoff time.Time) (int64, error)
	Close() error
}

var (
	_ kvStore = (*sqlite.Store)(nil)
	_ tsStore = (*sqlite.Store)(nil)
	_ kvStore = (*postgres.Store)(nil)
	_ tsStore = (*postgres.Store)(nil)
	_ kvStore = (*natskv.Store)(nil)
)

// served is one running namespace: its targets (the primary and, during
// a migration, the new one) and what the gateway serves it with.
type served struct {
	entry gateway.Registered
	// ns is entry.Namespace with the backend resolved.
	ns   gateway.Namespace
	plan gateway.Plan
	// targets are the running targets by name.
	targets map[string]*targetRun
	// primary names the namespace's primary target (entry.PrimaryTarget);
	// reading the one reads come from (the new target after a cutover).
	primary, reading string
	// migration is the migration state the targets were last set up for.
	migration gateway.MigrationState
	// verifySub answers migrate verify for the namespace.
	verifySub *nats.Subscription
	// stopCompactor ends the background compaction of a keyvalue stream
	// and waits for it; nil without one.
	stopCompactor func()
}

// primaryRun returns the run of the primary target.
func (sv *served) primaryRun() *targetRun { return sv.targets[sv.primary] }

// partialError is an error of open after the namespace's primary was
// served: the rest (its migration) is retried, the namespace stays served.
type partialError struct{ err error }

func (e *partialError) Error() string { return e.err.Error() }
func (e *partialError) Unwrap() error { return e.err }

// failure is a registered namespace this process could not serve (or not
// all of its revision); it is retried every retryFailedEvery.
type failure struct {
	entry gateway.Registered
	err   error
}

// retryFailedEvery is how often namespaces that failed to open are retried.
const retryFailedEvery = 5 * time.Second

// openTimeout bounds opening or reconfiguring one namespace (a backend
// that does not answer); it then counts as failed and is retried.
const openTimeout = 20 * time.Second

// namespaceSet serves the namespaces of the registry: it opens a namespace
// when it is applied, reconfigures it live when it changes and stops it
// when it is deleted (dropping its data when purged), and runs the
// TTL/retention sweeper. It is safe for concurrent use.
type namespaceSet struct {
	log     *slog.Logger
	cfg     Config
	js      jetstream.JetStream
	gw      *gateway.Gateway
	metrics prometheus.Registerer
	tracer  trace.TracerProvider
	cluster gateway.Cluster

	mu     sync.Mutex
	served map[string]*served
	failed map[string]failure

	changes *prometheus.CounterVec
	// reg is the registry followed; set by follow. Migration states this
	// process reaches are recorded there.
	reg *gateway.Registry
	// owner names this process on the projector consumers (instanceID).
	owner string

	// ctx ends when stop is called; the registry follower and the sweeper
	// run until then.
	ctx    context.Context
	cancel context.CancelFunc
	wg     sync.WaitGroup
}

func newNamespaceSet(log *slog.Logger, cfg Config, js jetstream.JetStream, gw *gateway.Gateway, reg prometheus.Registerer, tp trace.TracerProvider, c gateway.Cluster, owner string) (*namespaceSet, error) {
	ctx, cancel := context.WithCancel(context.Background())
	s := &namespaceSet{log: log, cfg: cfg, js: js, gw: gw, metrics: reg, tracer: tp, cluster: c, owner: owner, served: map[string]*served{}, failed: map[string]failure{}, ctx: ctx, cancel: cancel}
	s.changes = prometheus.NewCounterVec(prometheus.CounterOpts{
		Name: "prism_registry_changes_total",
		Help: "Namespace registry changes this process applied, by op (put, delete, purge) and result (ok, failed).",
	}, []string{"op", "result"})
	count := func(state string) prometheus.GaugeFunc {
		return prometheus.NewGaugeFunc(prometheus.GaugeOpts{
			Name: "prism_namespaces", ConstLabels: prometheus.Labels{"state": state},
			Help: "Registered namespaces by state in this process: serving, or failed to open (retried every 5s).",
		}, func() float64 {
			s.mu.Lock()
			defer s.mu.Unlock()
			if state == "failed" {
				return float64(len(s.failed))
			}
			return float64(len(s.served))
		})
	}
	if reg != nil {
		for _, c := range []prometheus.Collector{s.changes, count("serving"), count("failed")} {
			if err := reg.Register(c); err != nil {
				cancel()
				return nil, fmt.Errorf("register metrics: %w", err)
			}
		}
	}
	return s, nil
}

// follow applies every change of the registry until stop, retrying
// namespaces that failed to open. It returns once the namespaces registered
// when it began have been opened (or failed), or when wait ends first.
//
// After the NATS connection reconnected it watches the registry anew
// (the watch's consumer may be gone with the server) and reconciles: what
// changed meanwhile is applied, and namespaces deleted meanwhile stop.
func (s *namespaceSet) follow(wait context.Context, reg *gateway.Registry) error {
	s.reg = reg
	s.watchBackfills()
	first := make(chan struct{})
	if err := s.watch(reg, first); err != nil {
		return err
	}
	select {
	case <-first:
		return nil
	case <-wait.Done():
		return fmt.Errorf("reading the namespace registry: %w", wait.Err())
	}
}

// reconnectCheckEvery is how often follow looks for a NATS reconnect.
const reconnectCheckEvery = 250 * time.Millisecond

// watch starts the goroutine that follows reg; synced is closed once the
// first watch delivered every registered namespace.
func (s *namespaceSet) watch(reg *gateway.Registry, synced chan struct{}) error {
	ctx := s.ctx
	nc := s.js.Conn()
	changes, cancel, err := s.startWatch(ctx, reg)
	if err != nil {
		return err
	}
	s.wg.Add(1)
	go func() {
		defer s.wg.Done()
		defer func() { cancel() }()
		retry := time.NewTicker(retryFailedEvery)
		defer retry.Stop()
		check := time.NewTicker(reconnectCheckEvery)
		defer check.Stop()
		reconnects := nc.Stats().Reconnects
		// seen holds the names a watch delivered before it synced; nil
		// once it has.
		seen := map[string]bool{}
		rewatch := func() {
			cancel()
			changes, cancel = s.rewatch(ctx, reg)
			seen = map[string]bool{}
		}
		for {
			select {
			case <-ctx.Done():
				return
			case c, ok := <-changes:
				switch {
				case !ok:
					if ctx.Err() == nil {
						rewatch()
					}
				case c.Op == gateway.RegistrySynced:
					if seen != nil {
						s.forgetUnseen(ctx, seen)
						seen = nil
					}
					if synced != nil {
						close(synced)
						synced = nil
					}
				default:
					if seen != nil {
						seen[c.Name] = true
					}
					s.change(ctx, c)
				}
			case <-retry.C:
				s.retryFailed(ctx)
			case <-check.C:
				if n := nc.Stats().Reconnects; n != reconnects && nc.IsConnected() {
					reconnects = n
					s.log.Info("NATS reconnected: reading the namespace registry anew")
					rewatch()
				}
			}
		}
	}()
	return nil
}

// startWatch starts a watch of reg that ends with ctx or cancel.
func (s *namespaceSet) startWatch(ctx context.Context, reg *gateway.Registry) (<-chan gateway.RegistryChange, context.CancelFunc, error) {
	wctx, cancel := context.WithCancel(ctx)
	changes, err := reg.Watch(wctx)
	if err != nil {
		cancel()
		return nil, nil, err
	}
	return changes, cancel, nil
}

// rewatch starts another watch, retrying until it starts or ctx ends (then
// it returns a nil channel, which blocks, and a no-op cancel).
func (s *namespaceSet) rewatch(ctx context.Context, reg *gateway.Registry) (<-chan gateway.RegistryChange, context.CancelFunc) {
	for {
		changes, cancel, err := s.startWatch(ctx, reg)
		if err == nil {
			return changes, cancel
		}
		s.log.Warn("watch the namespace registry", "err", err, "retry_in", retryFailedEvery)
		select {
		case <-ctx.Done():
			return nil, func() {}
		case <-time.After(retryFailedEvery):
		}
	}
}

// forgetUnseen stops the namespaces this process serves or retries that a
// new watch did not deliver: they were deleted while it was not watching.
// Their data is kept, as with a delete.
func (s *namespaceSet) forgetUnseen(ctx context.Context, seen map[string]bool) {
	s.mu.Lock()
	var gone []string
	for name := range s.served {
		if !seen[name] {
			gone = append(gone, name)
		}
	}
	for name := range s.failed {
		if !seen[name] {
			gone = append(gone, name)
		}
	}
	s.mu.Unlock()
	for _, name := range gone {
		s.log.Info("namespace deleted while the registry was not watched", "namespace", name)
		s.remove(ctx, name, false)
	}
}

// change applies one registry change.
func (s *namespaceSet) change(ctx context.Context, c gateway.RegistryChange) {
	switch {
	case c.Err != nil:
		s.log.Error("registry entry skipped", "namespace", c.Name, "revision", c.Entry.Revision, "err", c.Err)
	case c.Op == gateway.RegistryPut:
		s.put(ctx, c.Entry)
	case c.Op == gateway.RegistryDelete, c.Op == gateway.RegistryPurge:
		s.remove(ctx, c.Name, c.Op == gateway.RegistryPurge)
	}
}

// put serves e: opens it if new, reconfigures it if changed. A namespace
// that fails is recorded and retried.
func (s *namespaceSet) put(ctx context.Context, e gateway.Registered) {
	opCtx, cancel := context.WithTimeout(ctx, openTimeout)
	defer cancel()
	s.mu.Lock()
	sv, retry := s.served[e.Namespace.Name], s.failed[e.Namespace.Name].err != nil
	s.mu.Unlock()
	var err error
	if sv == nil {
		err = s.open(opCtx, e)
	} else if sv.entry.Revision != e.Revision || retry {
		err = s.update(opCtx, sv, e)
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	if err != nil {
		s.changes.WithLabelValues("put", "failed").Inc()
		s.gw.MarkUnserved(e.Namespace.Name)
		s.failed[e.Namespace.Name] = failure{entry: e, err: err}
		if s.served[e.Namespace.Name] != nil {
			s.log.Error("namespace served, but not all of its revision is applied", "namespace", e.Namespace.Name, "revision", e.Revision, "err", err, "retry_in", retryFailedEvery)
			return
		}
		s.log.Error("namespace not served", "namespace", e.Namespace.Name, "revision", e.Revision, "err", err, "retry_in", retryFailedEvery)
		return
	}
	s.changes.WithLabelValues("put", "ok").Inc()
	delete(s.failed, e.Namespace.Name)
}

func (s *namespaceSet) retryFailed(ctx context.Context) {
	s.mu.Lock()
	var retry []gateway.Registered
	for _, f := range s.failed {
		retry = append(retry, f.entry)
	}
	s.mu.Unlock()
	for _, e := range retry {
		s.put(ctx, e)
	}
}

// resolved returns the namespace of e with its backend resolved, and its
// plan on this deployment.
func (s *namespaceSet) resolved(e gateway.Registered) (gateway.Namespace, gateway.Plan, error) {
	ns := e.Namespace
	ns.Backend = e.Backend
	p, err := gateway.Derive(ns, s.cluster)
	if err != nil {
		return ns, p, fmt.Errorf("this deployment cannot serve it as applied: %w", err)
	}
	return ns, p, nil
}

// open opens the primary target of e, starts its projector and registers
// it with the gateway, then sets up a migration's target if one runs. On
// error, what was opened for it is closed.
func (s *namespaceSet) open(ctx context.Context, e gateway.Registered) (err error) {
	n, plan, err := s.resolved(e)
	if err != nil {
		return err
	}
	if err := gateway.ApplyStreams(ctx, s.js, n, plan); err != nil {
		return err
	}
	pt := e.PrimaryTarget()
	run, err := s.openTarget(ctx, n, plan, pt)
	if err != nil {
		return err
	}
	sv := &served{entry: e, ns: n, plan: plan, targets: map[string]*targetRun{pt.Name: run}, primary: pt.Name, reading: pt.Name}
	added := false
	defer func() {
		var partial *partialError
		if err != nil && !errors.As(err, &partial) {
			if added {
				s.gw.RemoveNamespace(n.Name)
			}
			for _, r := range sv.targets {
				s.closeTarget(context.WithoutCancel(ctx), n.Name, r)
			}
		}
	}()
	switch n.Abstraction {
	case gateway.AbstractionKeyValue:
		if err = s.gw.AddNamespace(n, run.read.KeyValue, run.waiter); err == nil {
			added = true
			err = s.gw.SetReadCache(n.Name, readCacheEntries(plan))
		}
	case gateway.AbstractionTimeSeries:
		if err = s.gw.AddTimeSeriesNamespace(n, run.read.TimeSeries, run.waiter); err == nil {
			added = true
		}
	case gateway.AbstractionLog:
		if err = s.gw.AddLogNamespace(n, run.store.(logStore), run.waiter); err == nil {
			added = true
		}
	}
	if err != nil {
		return err
	}
	if sv.verifySub, err = s.serveVerify(n.Name); err != nil {
		return err
	}
	if n.Abstraction == gateway.AbstractionKeyValue && !s.cfg.NoCompact {
		if sv.stopCompactor, err = s.startCompactor(n.Name); err != nil {
			_ = sv.verifySub.Unsubscribe()
			return err
		}
	}
	s.mu.Lock()
	s.served[n.Name] = sv
	s.mu.Unlock()
	s.log.Info("namespace ready", "namespace", n.Name, "revision", e.Revision, "abstraction", n.Abstraction, "backend", n.Backend, "target", pt.Name, "consistency", n.Consistency, "storage", run.where)
	// The primary serves from here on: a migration target that cannot
	// start (a backend down, a wrong DSN) is reported and retried, it
	// never takes the namespace down.
	if rerr := s.reconcileMigration(ctx, sv, e); rerr != nil {
		return &partialError{err: rerr}
	}
	return nil
}

// readCacheEntries is the gateway read cache size plan asks for, 0 for
// none.
func readCacheEntries(plan gateway.Plan) int {
	if !plan.ReadCache.Value {
		return 0
	}
	return plan.ReadCacheEntries.Value
}

// retentionSweep deletes the events of ts older than n's retention; nil
// without one.
func retentionSweep(ts tsStore, n gateway.Namespace) func(ctx context.Context) (int64, error) {
	keep := time.Duration(n.Retention)
	if keep <= 0 {
		return nil
	}
	return func(ctx context.Context) (int64, error) { return ts.SweepOlderThan(ctx, time.Now().Add(-keep)) }
}

// update reconfigures sv live to e: stream settings in place, the
// gateway's view (consistency, retention), the sweep, the projectors when
// their batch size changed, and the targets of a migration. A change of
// backend or abstraction outside a migration is refused (apply refuses it
// too): sv keeps serving the revision it has.
func (s *namespaceSet) update(ctx context.Context, sv *served, e gateway.Registered) error {
	n, plan, err := s.resolved(e)
	if err != nil {
		return err
	}
	pt := e.PrimaryTarget()
	if run := sv.targets[pt.Name]; run == nil || run.target != pt || n.Abstraction != sv.ns.Abstraction || n.Kafka != sv.ns.Kafka {
		return fmt.Errorf("revision %d moves it from %s %s to %s %s, which needs a migration; still serving revision %d", e.Revision, sv.ns.Abstraction, sv.primaryRun().target.Backend, n.Abstraction, pt.Backend, sv.entry.Revision)
	}
	if err := gateway.ApplyStreams(ctx, s.js, n, plan); err != nil {
		return err
	}
	if err := s.gw.UpdateNamespace(n); err != nil {
		return err
	}
	if n.Abstraction == gateway.AbstractionKeyValue {
		if err := s.gw.SetReadCache(n.Name, readCacheEntries(plan)); err != nil {
			return err
		}
	}
	if plan.BatchSize.Value != sv.plan.BatchSize.Value {
		for _, run := range sv.targets {
			if err := s.restartProjector(ctx, run, projectors.WithBatchSize(plan.BatchSize.Value)); err != nil {
				return err
			}
		}
	}
	s.mu.Lock()
	for _, run := range sv.targets {
		if ts, ok := run.store.(tsStore); ok && n.Abstraction == gateway.AbstractionTimeSeries {
			run.sweep = retentionSweep(ts, n)
		}
	}
	s.mu.Unlock()
	if err := s.reconcileMigration(ctx, sv, e); err != nil {
		return err
	}
	s.mu.Lock()
	sv.entry, sv.ns, sv.plan = e, n, plan
	s.mu.Unlock()
	s.log.Info("namespace reconfigured", "namespace", n.Name, "revision", e.Revision, "consistency", n.Consistency, "batch_size", plan.BatchSize.Value)
	return nil
}

// restartProjector replaces run's projector by one built with opts; the
// new one resumes from the checkpoint the old one committed when it
// stopped.
func (s *namespaceSet) restartProjector(ctx context.Context, run *targetRun, opts ...projectors.Option) error {
	s.mu.Lock()
	if run.throttle != nil {
		opts = append(opts, projectors.WithThrottle(run.throttle))
	}
	s.mu.Unlock()
	next, err := run.newProj(opts...)
	if err != nil {
		return err
	}
	if err := run.proj.Stop(ctx); err != nil {
		return err
	}
	if err := next.Start(ctx); err != nil {
		return fmt.Errorf("restart projector of target %s: %w", run.target.Name, err)
	}
	run.waiter.swap(next)
	s.mu.Lock()
	run.proj = next
	s.mu.Unlock()
	return nil
}

// remove stops serving namespace name: the gateway answers
// NAMESPACE_NOT_FOUND, the projectors commit and stop, the backends are
// closed. With purge the stream and the data of every target the entry
// knows are deleted too. A name this process neither serves nor retries is
// a tombstone from before it followed the registry: nothing to stop, but a
// purge still deletes the SQLite files this process may hold.
func (s *namespaceSet) remove(ctx context.Context, name string, purge bool) {
	ctx, cancel := context.WithTimeout(ctx, 30*time.Second)
	defer cancel()
	s.mu.Lock()
	sv, f := s.served[name], s.failed[name]
	delete(s.served, name)
	delete(s.failed, name)
	s.mu.Unlock()
	if sv == nil && f.err == nil {
		if purge {
			if found, err := dropSQLiteFiles(s.cfg, name); err != nil {
				s.log.Error("purge namespace data", "namespace", name, "err", err)
			} else if found {
				s.log.Info("namespace purged while this process did not follow: its SQLite files are deleted", "namespace", name)
			}
		}
		return
	}
	op := "delete"
	if purge {
		op = "purge"
	}
	s.changes.WithLabelValues(op, "ok").Inc()
	s.gw.RemoveNamespace(name)
	e := f.entry
	n := f.entry.Namespace
	n.Backend = f.entry.Backend
	if sv != nil {
		s.close(ctx, sv)
		e, n = sv.entry, sv.ns
	}
	if !purge {
		s.log.Info("namespace deleted; its stream and data are kept", "namespace", name)
		return
	}
	if err := gateway.DeleteStreams(ctx, s.js, name); err != nil {
		s.log.Error("purge namespace stream", "namespace", name, "err", err)
	}
	for _, t := range knownTargets(e) {
		if err := dropTarget(ctx, s.cfg, s.js, n, t); err != nil {
			s.log.Error("purge namespace data", "namespace", name, "target", t.Name, "backend", t.Backend, "err", err)
			return
		}
	}
	s.log.Info("namespace purged: stream and data deleted", "namespace", name)
}

func (s *namespaceSet) close(ctx context.Context, sv *served) {
	if sv.verifySub != nil {
		_ = sv.verifySub.Unsubscribe()
	}
	if sv.stopCompactor != nil {
		sv.stopCompactor()
	}
	s.mu.Lock()
	runs := make([]*targetRun, 0, len(sv.targets))
	for _, r := range sv.targets {
		runs = append(runs, r)
	}
	s.mu.Unlock()
	for _, r := range runs {
		s.closeTarget(ctx, sv.ns.Name, r)
	}
}

// snapshot returns the served namespaces, in name order.
func (s *namespaceSet) snapshot() []*served {
	s.mu.Lock()
	defer s.mu.Unlock()
	out := make([]*served, 0, len(s.served))
	for _, sv := range s.served {
		out = append(out, sv)
	}
	slices.SortFunc(out, func(a, b *served) int { return strings.Compare(a.ns.Name, b.ns.Name) })
	return out
}

// status returns the state of namespace name's targets in this process,
// for the admin API: the one serving reads first.
func (s *namespaceSet) status(ctx context.Context, name string) []gateway.TargetStatus {
	s.mu.Lock()
	sv, f := s.served[name], s.failed[name]
	s.mu.Unlock()
	switch {
	case sv != nil:
		var last uint64
		if info, err := s.js.Stream(ctx, subjects.Stream(name)); err == nil {
			last = info.CachedInfo().State.LastSeq
		}
		s.mu.Lock()
		defer s.mu.Unlock()
		var out []gateway.TargetStatus
		for _, run := range sv.targets {
			st := gateway.TargetStatus{Target: run.target.Name, Backend: run.target.Backend, Role: s.role(sv, run.target.Name), State: "running", Revision: sv.entry.Revision, Checkpoint: run.proj.Applied(), StreamLast: last}
			if th := run.throttle; th != nil {
				ts := th.State()
				st.Throttle = &gateway.ThrottleStatus{Rate: ts.Rate, MaxRate: ts.MaxRate, Reason: ts.Reason}
			}
			if st.Role == "shadow" {
				st.ShadowReads = s.gw.ShadowReads(name)
			}
			if last > st.Checkpoint {
				st.Lag = last - st.Checkpoint
			}
			if f.err != nil {
				// Still serving the old revision; the new one is retried.
				st.Error = fmt.Sprintf("revision %d not applied: %v", f.entry.Revision, f.err)
			}
			out = append(out, st)
		}
		slices.SortFunc(out, func(a, b gateway.TargetStatus) int {
			if (a.Role == "primary") != (b.Role == "primary") {
				if a.Role == "primary" {
					return -1
				}
				return 1
			}
			return strings.Compare(a.Target, b.Target)
		})
		return out
	case f.err != nil:
		pt := f.entry.PrimaryTarget()
		return []gateway.TargetStatus{{Target: pt.Name, Backend: pt.Backend, Role: "primary", State: "failed", Revision: f.entry.Revision, Error: f.err.Error()}}
	}
	return nil
}

// swapWaiter is the gateway's AppliedWaiter of a namespace whose projector
// may be replaced (a live change of batch size).
type swapWaiter struct {
	mu      sync.Mutex
	cur     *projectors.Projector
	swapped chan struct{} // closed when cur is replaced
}

func newSwapWaiter(p *projectors.Projector) *swapWaiter {
	return &swapWaiter{cur: p, swapped: make(chan struct{})}
}

func (w *swapWaiter) current() (*projectors.Projector, <-chan struct{}) {
	w.mu.Lock()
	defer w.mu.Unlock()
	return w.cur, w.swapped
}

func (w *swapWaiter) swap(p *projectors.Projector) {
	w.mu.Lock()
	defer w.mu.Unlock()
	w.cur = p
	close(w.swapped)
	w.swapped = make(chan struct{})
}

// Applied implements gateway.AppliedWaiter.
func (w *swapWaiter) Applied() uint64 {
	p, _ := w.current()
	return p.Applied()
}

// WaitApplied implements gateway.AppliedWaiter: it waits on the current
// projector and moves to the next one when it is replaced.
func (w *swapWaiter) WaitApplied(ctx context.Context, seq uint64) error {
	for {
		p, swapped := w.current()
		if p.Applied() >= seq {
			return nil
		}
		wctx, cancel := context.WithCancel(ctx)
		go func() {
			select {
			case <-swapped:
				cancel()
			case <-wctx.Done():
			}
		}()
		err := p.WaitApplied(wctx, seq)
		cancel()
		if err == nil || ctx.Err() != nil {
			return err
		}
	}
}

// dropSQLite deletes the SQLite file of target target of namespace ns and
// its WAL files, and says whether there was any.
func dropSQLite(c Config, ns, target string) (bool, error) {
	path := SQLitePath(c.DataDir, ns, target)
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

// startSweeper deletes expired items and events past retention every
// interval until stop.
func (s *namespaceSet) startSweeper(every time.Duration) {
	if every <= 0 {
		return
	}
	s.every(every, func(ctx context.Context) {
		for _, sv := range s.snapshot() {
			s.mu.Lock()
			name := sv.ns.Name
			var sweeps []*targetRun
			for _, run := range sv.targets {
				if run.sweep != nil {
					sweeps = append(sweeps, run)
				}
			}
			s.mu.Unlock()
			for _, run := range sweeps {
				if n, err := run.sweep(ctx); err != nil && ctx.Err() == nil {
					s.log.Warn("sweep", "namespace", name, "target", run.target.Name, "err", err)
				} else if n > 0 {
					s.log.Debug("sweep", "namespace", name, "target", run.target.Name, "deleted", n)
				}
			}
		}
	})
}

// startCompactor compacts namespace ns's stream in the background (ADR
// 012) until the returned func is called (it waits) or the set stops. Only
// the process that projects a namespace runs it; a rollup is a
// compare-and-set on the record's subject, so a second compactor
// elsewhere would be wasted work, never lost data.
func (s *namespaceSet) startCompactor(ns string) (func(), error) {
	opts := []replay.CompactOption{replay.WithCompactLogger(s.log)}
	if s.cfg.CompactCheckInterval > 0 {
		opts = append(opts, replay.WithCompactCheckInterval(s.cfg.CompactCheckInterval))
	}
	if s.metrics != nil {
		opts = append(opts, replay.WithCompactRegisterer(s.metrics))
	}
	c, err := replay.NewCompactor(s.js, ns, opts...)
	if err != nil {
		return nil, err
	}
	ctx, cancel := context.WithCancel(s.ctx)
	done := make(chan struct{})
	s.wg.Add(1)
	go func() {
		defer s.wg.Done()
		defer close(done)
		_ = c.Run(ctx)
	}()
	return func() { cancel(); <-done }, nil
}

// every runs do every interval until stop.
func (s *namespaceSet) every(interval time.Duration, do func(ctx context.Context)) {
	ctx := s.ctx
	s.wg.Add(1)
	go func() {
		defer s.wg.Done()
		t := time.NewTicker(interval)
		defer t.Stop()
		for {
			select {
			case <-ctx.Done():
				return
			case <-t.C:
			}
			do(ctx)
		}
	}()
}

// stop stops following the registry and the sweeper, then the projectors
// (each commits and acknowledges its batch), then closes the backends. Call
// it after the gateway drained.
func (s *namespaceSet) stop(ctx context.Context) {
	s.cancel()
	s.wg.Wait()
	for _, sv := range s.snapshot() {
		s.close(ctx, sv)
	}
}
