package projectors

import (
	"fmt"
	"sync/atomic"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	pmetrics "github.com/prism-data/prism/internal/metrics"
)

// metrics of one projector. Every series carries the const labels namespace
// and target, so projectors of several pairs share one registry.
type metrics struct {
	appliedSeq  prometheus.Gauge
	applied     prometheus.Counter
	deadLetters prometheus.Counter
	applyErrors prometheus.Counter
	lag         prometheus.Gauge
	lagSeconds  *ageGauge
	batchSize   prometheus.Histogram
	applyTime   prometheus.Histogram
}

func newMetrics(reg prometheus.Registerer, namespace, target string) (*metrics, error) {
	labels := prometheus.Labels{"namespace": namespace, "target": target}
	m := &metrics{
		appliedSeq: prometheus.NewGauge(prometheus.GaugeOpts{
			Name: "prism_projector_applied_seq", ConstLabels: labels,
			Help: "Stream sequence of the last batch committed to the target (its checkpoint).",
		}),
		applied: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "prism_projector_events_applied_total", ConstLabels: labels,
			Help: "Changes (KeyValue events, TimeSeries appends) committed to the target.",
		}),
		deadLetters: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "prism_projector_dead_letters_total", ConstLabels: labels,
			Help: "Events published to the dead-letter stream.",
		}),
		applyErrors: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "prism_projector_apply_errors_total", ConstLabels: labels,
			Help: "Failed attempts to apply a batch or dead-letter an event; each is retried.",
		}),
		lag: prometheus.NewGauge(prometheus.GaugeOpts{
			Name: "prism_projector_lag", ConstLabels: labels,
			Help: "Last sequence of the stream minus the target's checkpoint.",
		}),
		lagSeconds: newAgeGauge(prometheus.NewDesc("prism_projector_lag_seconds",
			"Age of the oldest event of the stream the target has not applied: now minus the time JetStream stored it; 0 when the target has applied every event the projector knows of.",
			nil, labels), time.Now),
		batchSize: prometheus.NewHistogram(prometheus.HistogramOpts{
			Name: "prism_projector_batch_size", ConstLabels: labels,
			Help:    "Messages per committed batch.",
			Buckets: prometheus.ExponentialBuckets(1, 4, 7), // 1 .. 4096
		}),
		applyTime: prometheus.NewHistogram(prometheus.HistogramOpts{
			Name: "prism_projector_apply_duration_seconds", ConstLabels: labels,
			Help:    "Time the target took to apply a batch and commit its checkpoint, for commits that succeeded; failed attempts count in prism_projector_apply_errors_total.",
			Buckets: prometheus.ExponentialBuckets(0.0001, 2, 18), // 0.1ms .. 13s
		}),
	}
	if reg == nil {
		return m, nil
	}
	var err error
	m.appliedSeq = pmetrics.Register(reg, m.appliedSeq, &err)
	m.applied = pmetrics.Register(reg, m.applied, &err)
	m.deadLetters = pmetrics.Register(reg, m.deadLetters, &err)
	m.applyErrors = pmetrics.Register(reg, m.applyErrors, &err)
	m.lag = pmetrics.Register(reg, m.lag, &err)
	m.lagSeconds = pmetrics.Register(reg, m.lagSeconds, &err)
	m.batchSize = pmetrics.Register(reg, m.batchSize, &err)
	m.applyTime = pmetrics.Register(reg, m.applyTime, &err)
	if err != nil {
		return nil, fmt.Errorf("register metrics: %w", err)
	}
	return m, nil
}

// ageGauge is a gauge of the time elapsed since an instant, computed when
// scraped, so it keeps growing while nothing updates it (a stuck target).
type ageGauge struct {
	desc  *prometheus.Desc
	now   func() time.Time
	since atomic.Int64 // unix nanoseconds; 0: no age (the gauge reads 0)
}

func newAgeGauge(desc *prometheus.Desc, now func() time.Time) *ageGauge {
	return &ageGauge{desc: desc, now: now}
}

// set starts the age at t; a zero t makes the gauge read 0.
func (g *ageGauge) set(t time.Time) {
	if t.IsZero() {
		g.since.Store(0)
		return
	}
	g.since.Store(t.UnixNano())
}

// setIfUnset starts the age at t unless an age is running.
func (g *ageGauge) setIfUnset(t time.Time) { g.since.CompareAndSwap(0, t.UnixNano()) }

// value is the age in seconds, never negative (clocks of the NATS server
// and this process may disagree a little).
func (g *ageGauge) value() float64 {
	since := g.since.Load()
	if since == 0 {
		return 0
	}
	return max(0, g.now().Sub(time.Unix(0, since)).Seconds())
}

// Describe implements prometheus.Collector.
func (g *ageGauge) Describe(ch chan<- *prometheus.Desc) { ch <- g.desc }

// Collect implements prometheus.Collector.
func (g *ageGauge) Collect(ch chan<- prometheus.Metric) {
	ch <- prometheus.MustNewConstMetric(g.desc, prometheus.GaugeValue, g.value())
}
