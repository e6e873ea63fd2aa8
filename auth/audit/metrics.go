package audit

import (
	"sync/atomic"

	"github.com/prometheus/client_golang/prometheus"
)

// Stats are a Writer's counts since it started.
type Stats struct {
	// Stored is the records JetStream stored.
	Stored uint64
	// Failed is the attempts to store a record that failed (each retry
	// counts); a failed record stays pending until stored or dropped.
	Failed uint64
	// Dropped is the records lost: refused as invalid (an op or namespace
	// no audit subject can have), or not spooled (full while records
	// fail, full until the request ended, the writer closed), or not
	// flushed by Close. It is 0 in normal operation.
	Dropped uint64
	// Pending is the records not yet stored.
	Pending int
}

// counters are a Writer's counts, atomics the request path bumps; the
// collector turns them into Prometheus metrics at scrape time, so that
// recording costs nothing more.
type counters struct {
	stored, failed, dropped atomic.Uint64
	pending                 atomic.Int64
}

var (
	recordsDesc = prometheus.NewDesc("prism_audit_records_total",
		"Audit records stored (result=stored) and attempts to store one that failed (result=failed; it is retried).",
		[]string{"result"}, nil)
	droppedDesc = prometheus.NewDesc("prism_audit_dropped_total",
		"Audit records lost: refused as invalid, not spooled (full while records fail or until the request ended, writer closed), or not flushed before the close deadline. Must stay 0.",
		nil, nil)
	pendingDesc = prometheus.NewDesc("prism_audit_pending",
		"Audit records kept in the spool until JetStream stores them.",
		nil, nil)
)

// collector exposes counters to Prometheus.
type collector struct{ c *counters }

func (collector) Describe(ch chan<- *prometheus.Desc) {
	ch <- recordsDesc
	ch <- droppedDesc
	ch <- pendingDesc
}

func (k collector) Collect(ch chan<- prometheus.Metric) {
	ch <- prometheus.MustNewConstMetric(recordsDesc, prometheus.CounterValue, float64(k.c.stored.Load()), "stored")
	ch <- prometheus.MustNewConstMetric(recordsDesc, prometheus.CounterValue, float64(k.c.failed.Load()), "failed")
	ch <- prometheus.MustNewConstMetric(droppedDesc, prometheus.CounterValue, float64(k.c.dropped.Load()))
	ch <- prometheus.MustNewConstMetric(pendingDesc, prometheus.GaugeValue, float64(k.c.pending.Load()))
}
