package auth

import (
	"fmt"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/prism-data/prism/internal/metrics"
)

// calloutMetrics are the auth callout's metrics.
type calloutMetrics struct {
	requests *prometheus.CounterVec
	duration prometheus.Histogram
}

// newCalloutMetrics creates the metrics and registers them with reg when
// it is not nil; a collector already registered under the same name (a
// second Callout in the process) is shared.
func newCalloutMetrics(reg prometheus.Registerer) (*calloutMetrics, error) {
	m := &calloutMetrics{
		requests: prometheus.NewCounterVec(prometheus.CounterOpts{
			Namespace: "prism",
			Subsystem: "auth",
			Name:      "callout_total",
			Help:      "Authorization requests the auth callout answered, by result: allowed (a user JWT was issued), denied (the credential was refused), error (a malformed request or a failure of the callout).",
		}, []string{"result"}),
		duration: prometheus.NewHistogram(prometheus.HistogramOpts{
			Namespace: "prism",
			Subsystem: "auth",
			Name:      "callout_duration_seconds",
			Help:      "Time the auth callout took to answer an authorization request, authentication included.",
			Buckets:   prometheus.ExponentialBuckets(0.0001, 2, 17),
		}),
	}
	// Every result is exported from the start, so that a rate of refusals
	// is 0 rather than absent.
	for _, r := range []string{resultAllowed, resultDenied, resultError} {
		m.requests.WithLabelValues(r)
	}
	if reg == nil {
		return m, nil
	}
	var err error
	m.requests = metrics.Register(reg, m.requests, &err)
	m.duration = metrics.Register(reg, m.duration, &err)
	if err != nil {
		return nil, fmt.Errorf("auth callout: register metrics: %w", err)
	}
	return m, nil
}
