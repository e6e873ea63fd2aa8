package node

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"time"

	"github.com/nats-io/nats.go/jetstream"

	"github.com/prism-data/prism/gateway"
	"github.com/prism-data/prism/namespaces"
	"github.com/prism-data/prism/projectors"
	"github.com/prism-data/prism/replay"
	"github.com/prism-data/prism/subjects"
)

// The serving side of a migration (namespaces.Migration): the process that
// serves a namespace runs the targets its registry entry asks for and
// routes reads as the migration's state says. Everything here is derived
// from the entry, so a process that starts (or restarts) mid-migration
// picks up where the migration stands.

// shadowStates are the migration states in which the new target is caught
// up and the other target is compared against.
var shadowStates = []namespaces.MigrationState{namespaces.MigrationShadowing, namespaces.MigrationVerified, namespaces.MigrationCutOver}

// fenceStates are the migration states in which strong writes wait for
// both targets, so that a cutover (or its rollback) never serves a read
// that misses an acknowledged strong write.
var fenceStates = []namespaces.MigrationState{namespaces.MigrationVerified, namespaces.MigrationCutOver}

// reconcileMigration makes sv's targets and routing what e asks for: the
// primary target, plus the migration's new target while a migration
// runs; reads from the new target after a cutover; the other target as a
// shadow once caught up. Targets e no longer names are stopped, their data
// kept. A planned migration is recorded as backfilling once its target
// runs here.
func (s *namespaceSet) reconcileMigration(ctx context.Context, sv *served, e namespaces.Registered) error {
	n, plan, err := s.resolved(e)
	if err != nil {
		return err
	}
	pt := e.PrimaryTarget()
	want := map[string]namespaces.Target{pt.Name: pt}
	m := e.Migration
	active := m != nil && m.State.Active()
	if active {
		want[m.To.Name] = m.To
	}
	for name, t := range want {
		s.mu.Lock()
		run := sv.targets[name]
		s.mu.Unlock()
		if run != nil {
			continue
		}
		var backfill backfillFunc
		if active && name == m.To.Name && m.State.Backfilling() {
			backfill = s.backfillJob(n.Name, pt.Name, name, m)
		}
		run, err := s.openTarget(ctx, n, plan, t, backfill, false)
		if err != nil {
			return fmt.Errorf("migration target %s: %w", name, err)
		}
		s.mu.Lock()
		sv.targets[name] = run
		s.mu.Unlock()
		s.log.Info("migration target started", "namespace", n.Name, "target", name, "backend", t.Backend, "storage", run.where, "checkpoint", run.waiter.Applied())
	}

	// A caught-up target follows the live tail at full speed, with its
	// ordinary projector.
	for _, run := range sv.targets {
		if run.backfill != nil && !(active && run.target.Name == m.To.Name && m.State.Backfilling()) {
			run.newJob = nil
			if err := s.restartProjector(ctx, run, plan.BatchSize.Value); err != nil {
				return err
			}
			if err := s.syncIndexes(ctx, n, run); err != nil {
				return err
			}
		}
	}

	reading := pt.Name
	var state namespaces.MigrationState
	if active {
		state = m.State
		if state == namespaces.MigrationCutOver {
			reading = m.To.Name
		}
	}
	if n.Abstraction != namespaces.AbstractionLog {
		s.mu.Lock()
		r := gateway.Routing{Primary: sv.targets[reading].read}
		if active && slices.Contains(shadowStates, state) {
			other := m.To.Name
			if reading == m.To.Name {
				other = m.From.Name
			}
			if run := sv.targets[other]; run != nil {
				r.Shadow = &run.read
				r.ShadowSample = m.ShadowSample
				r.FenceShadow = slices.Contains(fenceStates, state)
			}
		}
		s.mu.Unlock()
		if err := s.gw.SetRouting(ctx, n.Name, r); err != nil {
			return err
		}
	}
	var stop []*targetRun
	s.mu.Lock()
	if sv.reading != reading {
		s.log.Info("reads moved", "namespace", n.Name, "from", sv.reading, "to", reading, "migration", state)
	}
	sv.primary, sv.reading, sv.migration = pt.Name, reading, state
	for name, run := range sv.targets {
		if _, ok := want[name]; !ok {
			delete(sv.targets, name)
			stop = append(stop, run)
		}
	}
	s.mu.Unlock()
	for _, run := range stop {
		s.closeTarget(ctx, n.Name, run)
		// Its consumer goes too: a position nobody advances would keep
		// compaction from purging tombstones. Were the target ever
		// started again, its projector would recreate the consumer at the
		// target's own checkpoint.
		if err := s.js.DeleteConsumer(ctx, subjects.Stream(n.Name), consumerOf(run.target)); err != nil && !errors.Is(err, jetstream.ErrConsumerNotFound) {
			s.log.Warn("delete the consumer of a stopped target", "namespace", n.Name, "target", run.target.Name, "err", err)
		}
		s.log.Info("target stopped; its data is kept", "namespace", n.Name, "target", run.target.Name, "storage", run.where)
	}
	// The migration's steps are recorded by a process that backfills it,
	// never by a gateway-only one.
	if active && state == namespaces.MigrationPlanned && s.reg != nil && s.cfg.projects() {
		s.recordBackfilling(ctx, n.Name, sv.targets[m.To.Name])
	}
	return nil
}

// recordBackfilling records a planned migration of namespace ns as
// backfilling into run; a failure is logged and tried again by the
// backfill watcher.
func (s *namespaceSet) recordBackfilling(ctx context.Context, ns string, run *targetRun) {
	note := fmt.Sprintf("the stream replays into %s from its checkpoint %d", run.target.Name, run.waiter.Applied())
	start := time.Now()
	_, err := namespaces.AdvanceMigration(ctx, s.reg, ns, namespaces.MigrationPlanned, namespaces.MigrationBackfilling, s.by(), note)
	if err != nil {
		s.log.Warn("record migration backfilling", "namespace", ns, "err", err, "retry_in", catchUpEvery)
	}
	s.auditStep(ns, "migrate.backfilling", err, time.Since(start))
}

// Thresholds of the adaptive backfill throttle: it slows down while the
// primary's projector is more than backfillLagBatches batches behind the
// stream, or the new target takes longer than backfillMaxLatency to apply
// a batch.
const (
	backfillLagBatches = 4
	backfillMaxLatency = time.Second
)

// backfillJob returns what builds the replay job that fills target of
// namespace ns from its checkpoint and then follows the stream, paced as
// m says: at most m.MaxRate events/s, and with m.Adaptive slower while
// the primary's projector lags or the target's applies slow down.
func (s *namespaceSet) backfillJob(ns, primary, target string, m *namespaces.Migration) backfillFunc {
	lag := func(ctx context.Context) (uint64, error) {
		info, err := s.js.Stream(ctx, subjects.Stream(ns))
		if err != nil {
			return 0, err
		}
		p := s.targetProjector(ns, primary)
		if p == nil {
			return 0, fmt.Errorf("primary %s not running", primary)
		}
		return info.CachedInfo().State.LastSeq - min(p.Applied(), info.CachedInfo().State.LastSeq), nil
	}
	return func(abstraction string, st replay.Store, where string, batch int, opts []projectors.Option) (*replay.Job, error) {
		return replay.NewJob(replay.JobConfig{
			JetStream: s.js, Namespace: ns, Target: target, Owner: s.owner,
			Abstraction: abstraction,
			Storage:     replay.OpenTarget(st, where),
			Follow:      true, BatchSize: batch, Logger: s.log,
			Throttle: replay.ThrottleConfig{
				MaxRate: float64(m.MaxRate), Adaptive: m.Adaptive,
				LagProbe: lag, MaxLag: uint64(backfillLagBatches * max(batch, 256)), MaxLatency: backfillMaxLatency,
			},
			ProjectorOptions: opts,
		})
	}
}

// targetProjector returns the projector of target name of namespace ns,
// nil when this process does not run it.
func (s *namespaceSet) targetProjector(ns, name string) *projectors.Projector {
	s.mu.Lock()
	defer s.mu.Unlock()
	if sv := s.served[ns]; sv != nil {
		if run := sv.targets[name]; run != nil {
			return run.proj
		}
	}
	return nil
}

// by is how this process signs the migration states it records.
func (s *namespaceSet) by() string { return "prism serve " + s.owner }

// role is the role of target name of sv in the admin status. Call it
// with s.mu held.
func (s *namespaceSet) role(sv *served, name string) string {
	switch {
	case name == sv.reading:
		return "primary"
	case sv.migration == namespaces.MigrationPlanned || sv.migration == namespaces.MigrationBackfilling:
		return "backfill"
	}
	return "shadow"
}

// catchUpEvery is how often a backfilling target is checked for having
// caught up with the stream.
const catchUpEvery = 500 * time.Millisecond

// watchBackfills records a planned migration whose target runs as
// backfilling (when recording it at the start failed), and a backfilling
// one as shadowing once its new target caught up with the stream: it applied everything but the last
// two batches, so it follows the live tail. It runs until stop.
func (s *namespaceSet) watchBackfills() {
	s.every(catchUpEvery, func(ctx context.Context) {
		for _, sv := range s.snapshot() {
			s.checkCaughtUp(ctx, sv)
		}
	})
}

// checkCaughtUp records sv's migration as backfilling if it is still
// planned, and as shadowing if it is backfilling and its new target caught
// up.
func (s *namespaceSet) checkCaughtUp(ctx context.Context, sv *served) {
	s.mu.Lock()
	e, state, batch := sv.entry, sv.migration, sv.plan.BatchSize.Value
	var run *targetRun
	if m := e.Migration; m != nil && state.Backfilling() {
		run = sv.targets[m.To.Name]
	}
	s.mu.Unlock()
	if run == nil || run.proj == nil || s.reg == nil {
		return // nothing backfills here
	}
	if state == namespaces.MigrationPlanned {
		// Recording it when the target started failed: the target runs,
		// so record it now.
		s.recordBackfilling(ctx, e.Namespace.Name, run)
		return
	}
	info, err := s.js.Stream(ctx, subjects.Stream(e.Namespace.Name))
	if err != nil {
		return
	}
	last, applied := info.CachedInfo().State.LastSeq, run.proj.Applied()
	if applied+uint64(2*max(batch, 1)) < last {
		return
	}
	note := fmt.Sprintf("%s caught up: applied seq %d of %d", run.target.Name, applied, last)
	start := time.Now()
	_, err = namespaces.AdvanceMigration(ctx, s.reg, e.Namespace.Name, namespaces.MigrationBackfilling, namespaces.MigrationShadowing, s.by(), note)
	s.auditStep(e.Namespace.Name, "migrate.shadowing", err, time.Since(start))
	if err != nil {
		s.log.Warn("record migration shadowing", "namespace", e.Namespace.Name, "err", err)
		return
	}
	s.log.Info("migration target caught up", "namespace", e.Namespace.Name, "target", run.target.Name, "applied", applied, "stream_last", last)
}
