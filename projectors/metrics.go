package projectors

import (
	"errors"
	"fmt"

	"github.com/prometheus/client_golang/prometheus"
)

// metrics of one projector. Every series carries the const labels namespace
// and target, so projectors of several pairs share one registry.
type metrics struct {
	appliedSeq  prometheus.Gauge
	applied     prometheus.Counter
	deadLetters prometheus.Counter
	applyErrors prometheus.Counter
	lag         prometheus.Gauge
	batchSize   prometheus.Histogram
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
		batchSize: prometheus.NewHistogram(prometheus.HistogramOpts{
			Name: "prism_projector_batch_size", ConstLabels: labels,
			Help:    "Messages per committed batch.",
			Buckets: prometheus.ExponentialBuckets(1, 4, 7), // 1 .. 4096
		}),
	}
	if reg == nil {
		return m, nil
	}
	var err error
	m.appliedSeq = register(reg, m.appliedSeq, &err)
	m.applied = register(reg, m.applied, &err)
	m.deadLetters = register(reg, m.deadLetters, &err)
	m.applyErrors = register(reg, m.applyErrors, &err)
	m.lag = register(reg, m.lag, &err)
	m.batchSize = register(reg, m.batchSize, &err)
	if err != nil {
		return nil, fmt.Errorf("register metrics: %w", err)
	}
	return m, nil
}

// register registers c, or returns the collector already registered under
// the same name and labels (a restarted projector of the same pair).
func register[C prometheus.Collector](reg prometheus.Registerer, c C, errp *error) C {
	err := reg.Register(c)
	if err == nil {
		return c
	}
	var are prometheus.AlreadyRegisteredError
	if errors.As(err, &are) {
		if existing, ok := are.ExistingCollector.(C); ok {
			return existing
		}
	}
	if *errp == nil {
		*errp = err
	}
	return c
}
