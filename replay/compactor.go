package replay

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"sync"
	"time"

	"github.com/nats-io/nats.go/jetstream"
	"github.com/prometheus/client_golang/prometheus"

	"github.com/prism-data/prism/internal/metrics"
	"github.com/prism-data/prism/subjects"
)

// ErrCompactorRunning is returned by Compactor.Run while another Run of the
// same Compactor is going on.
var ErrCompactorRunning = errors.New("compactor already running")

// Compactor compacts one KeyValue namespace in the background: it checks
// the namespace stream every check interval and runs a pass (Compact) when
// the stream holds more than ratio messages per distinct subject, or when
// the max interval has passed since the last pass. Create it with
// NewCompactor and run it with Run. Its methods are safe for concurrent
// use.
type Compactor struct {
	js   jetstream.JetStream
	ns   string
	opts compactOptions
	log  *slog.Logger
	m    *compactorMetrics

	mu       sync.Mutex
	running  bool
	lastPass time.Time
	last     CompactStats
}

// NewCompactor returns a Compactor of namespace's stream, configured by
// opts (see the With... functions of CompactOption for each default). It
// does no I/O. Errors: subjects.ErrInvalidNamespace,
// ErrInvalidCompactOption, an error for a nil js, or the registerer's
// error.
func NewCompactor(js jetstream.JetStream, namespace string, opts ...CompactOption) (*Compactor, error) {
	if js == nil {
		return nil, errors.New("new compactor: nil JetStream")
	}
	if err := subjects.ValidateNamespace(namespace); err != nil {
		return nil, fmt.Errorf("new compactor: %w", err)
	}
	o, err := newCompactOptions(opts)
	if err != nil {
		return nil, fmt.Errorf("new compactor: %w", err)
	}
	if !o.rateSet {
		o.rate = DefaultCompactorRate
	}
	m, err := newCompactorMetrics(o.registerer, namespace)
	if err != nil {
		return nil, fmt.Errorf("new compactor: %w", err)
	}
	return &Compactor{js: js, ns: namespace, opts: o, log: o.logger.With("namespace", namespace), m: m}, nil
}

// Run checks the stream and compacts it until ctx ends, then returns nil;
// a pass under way is stopped at once (what it did stays done). A failed
// check or pass is logged and counted (prism_compactor_errors_total), and
// tried again at the next check. The first check is made at once. It
// returns ErrCompactorRunning if the Compactor is already running.
func (c *Compactor) Run(ctx context.Context) error {
	c.mu.Lock()
	if c.running {
		c.mu.Unlock()
		return ErrCompactorRunning
	}
	c.running = true
	// A max interval counts from the start, not from the epoch.
	if c.lastPass.IsZero() {
		c.lastPass = c.opts.now()
	}
	c.mu.Unlock()
	defer func() {
		c.mu.Lock()
		c.running = false
		c.mu.Unlock()
	}()
	t := time.NewTicker(c.opts.checkInterval)
	defer t.Stop()
	for {
		if err := c.check(ctx); err != nil && ctx.Err() == nil {
			c.m.errors.Inc()
			c.log.Warn("compaction failed; trying again at the next check", "err", err)
		}
		select {
		case <-ctx.Done():
			return nil
		case <-t.C:
		}
	}
}

// LastPass returns when the last pass ended (or Run first started, before
// any pass) and what it did.
func (c *Compactor) LastPass() (time.Time, CompactStats) {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.lastPass, c.last
}

// check runs a pass if the trigger says so.
func (c *Compactor) check(ctx context.Context) error {
	due, err := c.due(ctx)
	if err != nil || !due {
		return err
	}
	start := time.Now()
	stats, err := compact(ctx, c.js, c.ns, c.opts)
	c.m.observe(stats)
	c.mu.Lock()
	c.lastPass, c.last = c.opts.now(), stats
	c.mu.Unlock()
	if err != nil {
		return fmt.Errorf("compact namespace %s: %w", c.ns, err)
	}
	// Each pass also drops the parts of large values nothing names any
	// more (ADR 025).
	if bs, err := collectBlobs(ctx, c.js, c.ns, 0, c.opts.rate); err != nil {
		c.log.Warn("collecting unreferenced large-value parts failed; trying again after the next pass", "err", err)
	} else if bs.Purged > 0 {
		c.log.Info("collected unreferenced large-value parts", "blobs", bs.Purged, "parts", bs.MessagesRemoved)
	}
	c.log.Info("compacted", "took", time.Since(start).Round(time.Millisecond),
		"msgs_before", stats.MsgsBefore, "msgs_after", stats.MsgsAfter, "rolled_up", stats.RolledUp,
		"removed", stats.MessagesRemoved, "tombstones_purged", stats.TombstonesPurged,
		"skipped_written", stats.SkippedWritten, "skipped_recent", stats.SkippedRecent, "skipped_too_large", stats.SkippedTooLarge,
		"skipped_unacked", stats.SkippedUnacked, "skipped_malformed", stats.SkippedMalformed)
	return nil
}

// due reports whether a pass is due: the stream holds more than ratio
// messages per subject (one stream info request), or the max interval has
// passed since the last pass. A pass that left more records alone for
// being within the duplicate window than it rolled up is not followed by
// another on the ratio until that window has passed since it: the stream
// would still be above the ratio, and the next pass would read it all
// again only to leave the same records.
func (c *Compactor) due(ctx context.Context) (bool, error) {
	c.mu.Lock()
	last, stats := c.lastPass, c.last
	c.mu.Unlock()
	now := c.opts.now()
	if c.opts.maxInterval > 0 && now.Sub(last) >= c.opts.maxInterval {
		return true, nil
	}
	s, err := c.js.Stream(ctx, subjects.Stream(c.ns))
	if err != nil {
		return false, fmt.Errorf("stream %s: %w", subjects.Stream(c.ns), err)
	}
	info := s.CachedInfo()
	if stats.SkippedRecent > stats.RolledUp && now.Sub(last) < info.Config.Duplicates {
		return false, nil
	}
	return float64(info.State.Msgs) > c.opts.ratio*float64(info.State.NumSubjects), nil
}

// compactorMetrics are the Compactor's counters, labelled with the
// namespace.
type compactorMetrics struct {
	passes     prometheus.Counter
	records    prometheus.Counter
	removed    prometheus.Counter
	tombstones prometheus.Counter
	skipped    *prometheus.CounterVec
	errors     prometheus.Counter
}

func newCompactorMetrics(reg prometheus.Registerer, namespace string) (*compactorMetrics, error) {
	labels := prometheus.Labels{"namespace": namespace}
	counter := func(name, help string) prometheus.Counter {
		return prometheus.NewCounter(prometheus.CounterOpts{Name: name, Help: help, ConstLabels: labels})
	}
	m := &compactorMetrics{
		passes:     counter("prism_compactor_passes_total", "Compaction passes run, failed ones included."),
		records:    counter("prism_compactor_records_compacted_total", "Records whose events were rolled up into one replace event."),
		removed:    counter("prism_compactor_messages_removed_total", "Messages removed from the stream by rollups and tombstone purges."),
		tombstones: counter("prism_compactor_tombstones_purged_total", "Deleted records purged from the stream entirely."),
		skipped: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "prism_compactor_records_skipped_total", ConstLabels: labels,
			Help: "Records a pass left as they were, by reason: written (written during the pass), recent (idempotency window), too_large, unacked (a consumer has not acknowledged their last event), malformed (not a record subject).",
		}, []string{"reason"}),
		errors: counter("prism_compactor_errors_total", "Failed checks and passes; each is tried again at the next check."),
	}
	if reg == nil {
		return m, nil
	}
	var err error
	for _, c := range []*prometheus.Counter{&m.passes, &m.records, &m.removed, &m.tombstones, &m.errors} {
		*c = metrics.Register(reg, *c, &err)
	}
	m.skipped = metrics.Register(reg, m.skipped, &err)
	if err != nil {
		return nil, fmt.Errorf("register metrics: %w", err)
	}
	return m, nil
}

// observe counts a pass and what it did.
func (m *compactorMetrics) observe(s CompactStats) {
	m.records.Add(float64(s.RolledUp))
	m.removed.Add(float64(s.MessagesRemoved))
	m.tombstones.Add(float64(s.TombstonesPurged))
	m.skipped.WithLabelValues("written").Add(float64(s.SkippedWritten))
	m.skipped.WithLabelValues("recent").Add(float64(s.SkippedRecent))
	m.skipped.WithLabelValues("too_large").Add(float64(s.SkippedTooLarge))
	m.skipped.WithLabelValues("unacked").Add(float64(s.SkippedUnacked))
	m.skipped.WithLabelValues("malformed").Add(float64(s.SkippedMalformed))
	// Last: a pass counted is a pass whose counts are all in.
	m.passes.Inc()
}
