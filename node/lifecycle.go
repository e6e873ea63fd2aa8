package node

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/prism-data/prism/namespaces"
	"github.com/prism-data/prism/projectors"
)

// partialError is an error of open after the namespace's primary was
// served: the rest (its migration) is retried, the namespace stays served.
type partialError struct{ err error }

func (e *partialError) Error() string { return e.err.Error() }

func (e *partialError) Unwrap() error { return e.err }

// openTimeout bounds opening or reconfiguring one namespace (a backend
// that does not answer); it then counts as failed and is retried.
const openTimeout = 20 * time.Second

// resolved returns the namespace of e with its backend resolved, and its
// plan on this deployment.
func (s *namespaceSet) resolved(e namespaces.Registered) (namespaces.Namespace, namespaces.Plan, error) {
	ns := e.Namespace
	ns.Backend = e.Backend
	p, err := namespaces.Derive(ns, s.cluster)
	if err != nil {
		return ns, p, fmt.Errorf("this deployment cannot serve it as applied: %w", err)
	}
	return ns, p, nil
}

// open opens the primary target of e, starts its projector and registers
// it with the gateway, then sets up a migration's target if one runs. On
// error, what was opened for it is closed.
func (s *namespaceSet) open(ctx context.Context, e namespaces.Registered) (err error) {
	n, plan, err := s.resolved(e)
	if err != nil {
		return err
	}
	if err := namespaces.ApplyStreams(ctx, s.js, n, plan); err != nil {
		return err
	}
	pt := e.PrimaryTarget()
	run, err := s.openTarget(ctx, n, plan, pt, nil, true)
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
	case namespaces.AbstractionKeyValue:
		if err = s.gw.AddNamespace(n, run.read.KeyValue, run.waiter); err == nil {
			added = true
			err = s.gw.SetReadCache(n.Name, readCacheEntries(plan, run))
		}
	case namespaces.AbstractionTimeSeries:
		if err = s.gw.AddTimeSeriesNamespace(n, run.read.TimeSeries, run.waiter); err == nil {
			added = true
		}
	case namespaces.AbstractionLog:
		if err = s.gw.AddLogNamespace(n, run.store.(logStore), run.waiter); err == nil {
			added = true
		}
	case namespaces.AbstractionEntity:
		if err = s.gw.AddEntityNamespace(n, run.store.(enStore), run.waiter); err == nil {
			added = true
			err = s.gw.SetReadCache(n.Name, readCacheEntries(plan, run))
		}
	case namespaces.AbstractionGraph:
		if err = s.gw.AddGraphNamespace(n, run.store.(grStore), run.waiter); err == nil {
			added = true
		}
	}
	if err != nil {
		return err
	}
	if run.proj == nil && processLocal(pt.Backend) {
		// This process's copy is not the one being projected: reads go to
		// the process that projects it, writes are served here.
		s.gw.SetReadsElsewhere(n.Name, true)
	}
	if sv.verifySub, err = s.serveVerify(n.Name); err != nil {
		return err
	}
	// A standby compacts nothing: the process that projects the
	// namespace does, and this one starts at its takeover.
	if run.proj != nil {
		if err = s.startCompaction(sv); err != nil {
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

// startCompaction starts the background compaction of sv's stream if it
// is a keyvalue namespace and compaction is on.
func (s *namespaceSet) startCompaction(sv *served) (err error) {
	if sv.ns.Abstraction == namespaces.AbstractionKeyValue && !s.cfg.NoCompact {
		sv.stopCompactor, err = s.startCompactor(sv.ns.Name)
	}
	return err
}

// retryStandby tries to take over the primary target of every namespace
// served on standby (ADR 022): once the process that projected it is
// gone, this one projects it, serves its reads if they went elsewhere,
// and compacts its stream.
func (s *namespaceSet) retryStandby(ctx context.Context) {
	if !s.cfg.projects() {
		return // a gateway-only process stays on standby
	}
	// A target demoted now is not taken back in the same round: the other
	// process holds the pin, and a takeover at once would only start a
	// projector that finds it pinned again.
	demoted := s.demoteLost()
	s.mu.Lock()
	var standby []*served
	for name, sv := range s.served {
		if run := sv.primaryRun(); run != nil && run.proj == nil && run.standby != nil && !demoted[name] {
			standby = append(standby, sv)
		}
	}
	s.mu.Unlock()
	for _, sv := range standby {
		s.mu.Lock()
		run, name, batch := sv.primaryRun(), sv.ns.Name, sv.plan.BatchSize.Value
		s.mu.Unlock()
		// How far the process that projected it had got: this one's reads
		// wait for that much (below).
		floor, _ := run.standby.Refresh(ctx)
		if !s.takeOver(ctx, name, run, batch) {
			continue
		}
		if processLocal(run.target.Backend) {
			s.serveReadsOnceAt(name, run.waiter, floor)
		}
		s.mu.Lock()
		err := s.startCompaction(sv)
		if err == nil && (sv.ns.Abstraction == namespaces.AbstractionKeyValue || sv.ns.Abstraction == namespaces.AbstractionEntity) {
			err = s.gw.SetReadCache(name, readCacheEntries(sv.plan, run))
		}
		ns := sv.ns
		s.mu.Unlock()
		if err != nil {
			s.log.Error("start compaction after a takeover", "namespace", name, "err", err)
		}
		if err := s.syncIndexes(ctx, ns, run); err != nil {
			s.log.Error("sync the entity indexes after a takeover", "namespace", name, "err", err)
		}
		s.log.Info("took over a standby target: this process projects it now", "namespace", name, "target", run.target.Name, "checkpoint", run.proj.Applied())
	}
}

// demoteLost puts on standby every primary target whose projector stopped
// because the server pins another process's client of its consumer
// (projectors.Projector.Lost, ADR 026): that process projects it now, so
// this one serves the namespace as any standby does, its reads handed
// there when the backend is process-local, without a read cache (nothing
// here keeps it exact any more) and without compaction. It returns the
// namespaces it demoted.
func (s *namespaceSet) demoteLost() map[string]bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	var demoted map[string]bool
	for name, sv := range s.served {
		run := sv.primaryRun()
		if run == nil || run.proj == nil || run.backfill != nil || run.proj.Lost() == nil {
			continue
		}
		reason := run.proj.Lost()
		run.proj, run.standby = nil, projectors.NewConsumerProgress(s.js, name, run.target.Name)
		if processLocal(run.target.Backend) {
			// Reads from here on go to the process that projects it, and
			// those waiting for a sequence fail rather than read this copy.
			_ = s.gw.SetReadsElsewhere(name, true)
			run.waiter.moveReads(run.standby)
		} else {
			run.waiter.swap(run.standby)
		}
		if sv.ns.Abstraction == namespaces.AbstractionKeyValue || sv.ns.Abstraction == namespaces.AbstractionEntity {
			_ = s.gw.SetReadCache(name, 0)
		}
		if sv.stopCompactor != nil {
			sv.stopCompactor()
			sv.stopCompactor = nil
		}
		if run.indexes != nil {
			run.indexes.stop()
			run.indexes = newIndexBuilds(s.log)
		}
		s.log.Warn("target on standby: another process projects it now", "namespace", name, "target", run.target.Name, "reason", reason)
		if demoted == nil {
			demoted = make(map[string]bool)
		}
		demoted[name] = true
	}
	return demoted
}

// serveReadsOnceAt serves the reads of namespace ns here, forwarded
// until now, once p (the target's progress) has applied floor: the process that projected it
// before answered them from its own copy, up to floor, and a read here
// must not see less (a strong namespace's reads would be stale). It
// waits in the background, owned by s.
func (s *namespaceSet) serveReadsOnceAt(ns string, p progress, floor uint64) {
	s.wg.Add(1)
	go func() {
		defer s.wg.Done()
		if err := p.WaitApplied(s.ctx, floor); err != nil {
			return // shutting down
		}
		if err := s.gw.SetReadsElsewhere(ns, false); err == nil {
			s.log.Info("serving reads: caught up with the process that projected it before", "namespace", ns, "applied", p.Applied(), "floor", floor)
		}
	}()
}

// readCacheEntries is the gateway read cache size plan asks for, 0 for
// none. A standby primary gets none: the cache is kept exact by the
// batches this process's projector commits, and it runs none.
func readCacheEntries(plan namespaces.Plan, primary *targetRun) int {
	if !plan.ReadCache.Value || primary == nil || primary.proj == nil {
		return 0
	}
	return plan.ReadCacheEntries.Value
}

// retentionSweep deletes the events of ts older than n's retention; nil
// without one.
func retentionSweep(ts tsStore, n namespaces.Namespace) func(ctx context.Context) (int64, error) {
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
func (s *namespaceSet) update(ctx context.Context, sv *served, e namespaces.Registered) error {
	n, plan, err := s.resolved(e)
	if err != nil {
		return err
	}
	pt := e.PrimaryTarget()
	if run := sv.targets[pt.Name]; run == nil || run.target != pt || n.Abstraction != sv.ns.Abstraction || n.Kafka != sv.ns.Kafka {
		return fmt.Errorf("revision %d moves it from %s %s to %s %s, which needs a migration; still serving revision %d", e.Revision, sv.ns.Abstraction, sv.primaryRun().target.Backend, n.Abstraction, pt.Backend, sv.entry.Revision)
	}
	if err := namespaces.ApplyStreams(ctx, s.js, n, plan); err != nil {
		return err
	}
	// The backends learn of new indexes first: until the gateway has
	// them, a query of one is refused as unknown, never answered from an
	// index still empty.
	for _, run := range sv.targets {
		if err := s.syncIndexes(ctx, n, run); err != nil {
			return fmt.Errorf("sync the indexes of target %s: %w", run.target.Name, err)
		}
	}
	if err := s.gw.UpdateNamespace(n); err != nil {
		return err
	}
	if n.Abstraction == namespaces.AbstractionKeyValue || n.Abstraction == namespaces.AbstractionEntity {
		if err := s.gw.SetReadCache(n.Name, readCacheEntries(plan, sv.primaryRun())); err != nil {
			return err
		}
	}
	if plan.BatchSize.Value != sv.plan.BatchSize.Value {
		for _, run := range sv.targets {
			if run.proj == nil && run.backfill == nil {
				continue // a standby starts with the new size at its takeover
			}
			if err := s.restartProjector(ctx, run, plan.BatchSize.Value); err != nil {
				return err
			}
		}
	}
	s.mu.Lock()
	for _, run := range sv.targets {
		if ts, ok := run.store.(tsStore); ok && n.Abstraction == namespaces.AbstractionTimeSeries {
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

// restartProjector replaces run's projector by one with batch size
// batch (a backfill job while run.newJob is set, else the ordinary
// projector); the new one resumes from the checkpoint the old one
// committed when it stopped.
func (s *namespaceSet) restartProjector(ctx context.Context, run *targetRun, batch int) error {
	start, err := run.projector(batch)
	if err != nil {
		return err
	}
	if err := run.stopProjector(ctx); err != nil {
		return err
	}
	next, backfill, err := start(ctx)
	if err != nil {
		return fmt.Errorf("restart projector of target %s: %w", run.target.Name, err)
	}
	run.waiter.swap(next)
	s.mu.Lock()
	run.proj, run.backfill = next, backfill
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
	if err := namespaces.DeleteStreams(ctx, s.js, name); err != nil {
		s.log.Error("purge namespace stream", "namespace", name, "err", err)
	}
	for _, t := range knownTargets(e) {
		if err := s.dropTarget(ctx, n, t); err != nil {
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
