package gateway

import (
	"fmt"
	"time"

	"github.com/prometheus/client_golang/prometheus"
)

// Kinds of consistency wait, the kind label of the consistency metrics.
const (
	// waitStrongWrite is a write to a strong namespace waiting for its
	// projection to apply it.
	waitStrongWrite = "strong_write"
	// waitMinSeqRead is a read with min_seq waiting for the projection to
	// reach it.
	waitMinSeqRead = "min_seq_read"
)

// Results of a consistency wait, the result label of
// prism_gateway_consistency_waits_total.
const (
	resultImmediate = "immediate" // already applied: no wait
	resultApplied   = "applied"   // waited, then applied
	resultTimeout   = "timeout"   // NOT_CONSISTENT_YET
	resultError     = "error"     // the request ended or the projection failed
)

// metrics are the gateway's Prometheus collectors. A nil *metrics records
// nothing.
type metrics struct {
	requests     *prometheus.CounterVec
	duration     *prometheus.HistogramVec
	publish      *prometheus.HistogramVec
	waits        *prometheus.CounterVec
	waitDuration *prometheus.HistogramVec
	waitTimeouts *prometheus.CounterVec
	cache        *prometheus.CounterVec
	handedBack   *prometheus.CounterVec
	forwarded    *prometheus.CounterVec
	shadowReads  *prometheus.CounterVec
	shed         *prometheus.CounterVec
}

// latencyBuckets span 0.1ms to about 6.5s.
var latencyBuckets = prometheus.ExponentialBuckets(0.0001, 2, 17)

func newMetrics(reg prometheus.Registerer) (*metrics, error) {
	m := &metrics{
		requests: prometheus.NewCounterVec(prometheus.CounterOpts{
			Namespace: "prism",
			Subsystem: "gateway",
			Name:      "requests_total",
			Help:      "Requests answered, by namespace, operation and code (OK or the error code). Unregistered namespaces and unknown operations count as \"unknown\".",
		}, []string{"namespace", "op", "code"}),
		duration: prometheus.NewHistogramVec(prometheus.HistogramOpts{
			Namespace: "prism",
			Subsystem: "gateway",
			Name:      "request_duration_seconds",
			Help:      "Time from receiving a request to replying, by namespace, operation and code; consistency waits included.",
			Buckets:   latencyBuckets,
		}, []string{"namespace", "op", "code"}),
		publish: prometheus.NewHistogramVec(prometheus.HistogramOpts{
			Namespace: "prism",
			Subsystem: "gateway",
			Name:      "jetstream_publish_duration_seconds",
			Help:      "Time from publishing a write's event (or a mutate's atomic batch) to JetStream's ack or error, by namespace.",
			Buckets:   latencyBuckets,
		}, []string{"namespace"}),
		waits: prometheus.NewCounterVec(prometheus.CounterOpts{
			Namespace: "prism",
			Subsystem: "gateway",
			Name:      "consistency_waits_total",
			Help:      "Requests that had to see their sequence applied by the primary projection, by namespace, kind (strong_write, min_seq_read) and result (immediate, applied, timeout, error).",
		}, []string{"namespace", "kind", "result"}),
		waitDuration: prometheus.NewHistogramVec(prometheus.HistogramOpts{
			Namespace: "prism",
			Subsystem: "gateway",
			Name:      "consistency_wait_duration_seconds",
			Help:      "Time requests waited for the primary projection to apply their sequence, by namespace and kind; 0 when it already had.",
			Buckets:   latencyBuckets,
		}, []string{"namespace", "kind"}),
		waitTimeouts: prometheus.NewCounterVec(prometheus.CounterOpts{
			Namespace: "prism",
			Subsystem: "gateway",
			Name:      "consistency_timeouts_total",
			Help:      "Consistency waits that ended in NOT_CONSISTENT_YET, by namespace and kind.",
		}, []string{"namespace", "kind"}),
		cache: prometheus.NewCounterVec(prometheus.CounterOpts{
			Namespace: "prism",
			Subsystem: "gateway",
			Name:      "read_cache_total",
			Help:      "Gets the read cache could answer, by namespace and result (hit, miss); only namespaces whose plan turns the cache on.",
		}, []string{"namespace", "result"}),
		handedBack: prometheus.NewCounterVec(prometheus.CounterOpts{
			Namespace: "prism",
			Subsystem: "gateway",
			Name:      "handed_back_total",
			Help:      "Requests this process does not serve now (another process projects their namespace, or it failed to open) that no gateway took when forwarded, handed back to the gateways' queue group, by namespace.",
		}, []string{"namespace"}),
		forwarded: prometheus.NewCounterVec(prometheus.CounterOpts{
			Namespace: "prism",
			Subsystem: "gateway",
			Name:      "forwarded_total",
			Help:      "Requests this process could not serve, forwarded to a gateway that serves their namespace and its reply relayed, by namespace.",
		}, []string{"namespace"}),
		shadowReads: prometheus.NewCounterVec(prometheus.CounterOpts{
			Namespace: "prism",
			Subsystem: "gateway",
			Name:      "shadow_reads_total",
			Help:      "Sampled reads compared against a namespace's shadow target during a migration, by namespace and result: match, mismatch, skipped (the record changed between the two reads, or the shadow lags), dropped (too many comparisons running), error.",
		}, []string{"namespace", "result"}),
		shed: prometheus.NewCounterVec(prometheus.CounterOpts{
			Namespace: "prism",
			Subsystem: "gateway",
			Name:      "shed_total",
			Help:      "Requests shed with RESOURCE_EXHAUSTED before anything was done, by namespace and reason (write_rate, read_rate, namespace_in_flight, fair_share, process_in_flight, process_bytes, principal_rate, principal_in_flight; ADR 023).",
		}, []string{"namespace", "reason"}),
	}
	for _, c := range []prometheus.Collector{m.requests, m.duration, m.publish, m.waits, m.waitDuration, m.waitTimeouts, m.cache, m.handedBack, m.forwarded, m.shadowReads, m.shed} {
		if err := reg.Register(c); err != nil {
			return nil, fmt.Errorf("gateway: register metrics: %w", err)
		}
	}
	return m, nil
}

func (m *metrics) observe(ns, op, code string, d time.Duration) {
	if m == nil {
		return
	}
	m.requests.WithLabelValues(ns, op, code).Inc()
	m.duration.WithLabelValues(ns, op, code).Observe(d.Seconds())
}

func (m *metrics) observeCache(ns string, hit bool) {
	if m == nil {
		return
	}
	result := "miss"
	if hit {
		result = "hit"
	}
	m.cache.WithLabelValues(ns, result).Inc()
}

func (m *metrics) observeHandBack(ns string) {
	if m == nil {
		return
	}
	m.handedBack.WithLabelValues(ns).Inc()
}

func (m *metrics) observeForward(ns string) {
	if m == nil {
		return
	}
	m.forwarded.WithLabelValues(ns).Inc()
}

func (m *metrics) observeShadow(ns, result string) {
	if m == nil {
		return
	}
	m.shadowReads.WithLabelValues(ns, result).Inc()
}

func (m *metrics) observePublish(ns string, d time.Duration) {
	if m == nil {
		return
	}
	m.publish.WithLabelValues(ns).Observe(d.Seconds())
}

func (m *metrics) observeWait(ns, kind, result string, d time.Duration) {
	if m == nil {
		return
	}
	m.waits.WithLabelValues(ns, kind, result).Inc()
	m.waitDuration.WithLabelValues(ns, kind).Observe(d.Seconds())
	if result == resultTimeout {
		m.waitTimeouts.WithLabelValues(ns, kind).Inc()
	}
}
