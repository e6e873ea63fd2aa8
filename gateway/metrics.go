package gateway

import (
	"fmt"
	"time"

	"github.com/prometheus/client_golang/prometheus"
)

// metrics are the gateway's Prometheus collectors. A nil *metrics records
// nothing.
type metrics struct {
	requests *prometheus.CounterVec
	duration *prometheus.HistogramVec
}

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
			Help:      "Time from receiving a request to replying, by namespace and operation.",
			Buckets:   prometheus.ExponentialBuckets(0.0005, 2, 16),
		}, []string{"namespace", "op"}),
	}
	for _, c := range []prometheus.Collector{m.requests, m.duration} {
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
	m.duration.WithLabelValues(ns, op).Observe(d.Seconds())
}
