package node

import (
	"context"
	"time"

	"github.com/nats-io/nats.go/jetstream"
	"github.com/prometheus/client_golang/prometheus"

	"github.com/prism-data/prism/namespaces"
)

// dlqDepth is the gauge prism_dlq_depth{namespace}: the dead letters each
// namespace has, read from the dead-letter stream's per-subject counts
// when scraped (a namespace without any has no series). Every Prism
// process reports the same values.
type dlqDepth struct {
	js   jetstream.JetStream
	desc *prometheus.Desc
}

func newDLQDepth(js jetstream.JetStream) *dlqDepth {
	return &dlqDepth{js: js, desc: prometheus.NewDesc("prism_dlq_depth",
		"Dead letters of the namespace in the dead-letter stream PRISM_DLQ: events a target could not apply (prism dlq list).",
		[]string{"namespace"}, nil)}
}

// Describe implements prometheus.Collector.
func (d *dlqDepth) Describe(ch chan<- *prometheus.Desc) { ch <- d.desc }

// Collect implements prometheus.Collector. A dead-letter stream that
// cannot be read in a second yields no series (the health check reports
// the stream).
func (d *dlqDepth) Collect(ch chan<- prometheus.Metric) {
	ctx, cancel := context.WithTimeout(context.Background(), time.Second)
	defer cancel()
	depths, err := namespaces.DeadLetterDepths(ctx, d.js)
	if err != nil {
		return
	}
	for ns, n := range depths {
		ch <- prometheus.MustNewConstMetric(d.desc, prometheus.GaugeValue, float64(n), ns)
	}
}
