package gateway

import (
	"fmt"

	"github.com/prometheus/client_golang/prometheus"
)

func (m *metrics) observeShed(ns, reason string) {
	if m == nil {
		return
	}
	m.shed.WithLabelValues(ns, reason).Inc()
}

// Descriptions of the admission gauges, read at scrape time.
var (
	limitDesc = prometheus.NewDesc("prism_gateway_limit",
		"The admission limits a namespace is served with, by namespace and limit: write_rate and read_rate (requests/s; 0: none), in_flight (requests; 0: the process cap only), principal_share (percent). ADR 023.",
		[]string{"namespace", "limit"}, nil)
	nsInFlightDesc = prometheus.NewDesc("prism_gateway_namespace_in_flight",
		"Requests of a namespace admitted and not yet answered, by namespace.",
		[]string{"namespace"}, nil)
	inFlightDesc = prometheus.NewDesc("prism_gateway_in_flight",
		"Requests admitted and not yet answered; the process's cap is prism_gateway_in_flight_capacity.",
		nil, nil)
	capacityDesc = prometheus.NewDesc("prism_gateway_in_flight_capacity",
		"The most requests the gateway handles at once (--max-in-flight); beyond it requests are shed.",
		nil, nil)
	inFlightBytesDesc = prometheus.NewDesc("prism_gateway_in_flight_bytes",
		"Total body size of the requests admitted and not yet answered; bounded by the gateway's max in-flight bytes.",
		nil, nil)
)

// admissionCollector exports the admission gauges of a gateway.
type admissionCollector struct{ g *Gateway }

// Describe implements prometheus.Collector.
func (c admissionCollector) Describe(ch chan<- *prometheus.Desc) {
	for _, d := range []*prometheus.Desc{limitDesc, nsInFlightDesc, inFlightDesc, capacityDesc, inFlightBytesDesc} {
		ch <- d
	}
}

// Collect implements prometheus.Collector.
func (c admissionCollector) Collect(ch chan<- prometheus.Metric) {
	g := c.g
	ld := g.Load()
	ch <- prometheus.MustNewConstMetric(inFlightDesc, prometheus.GaugeValue, float64(ld.InFlight))
	ch <- prometheus.MustNewConstMetric(capacityDesc, prometheus.GaugeValue, float64(ld.Capacity))
	ch <- prometheus.MustNewConstMetric(inFlightBytesDesc, prometheus.GaugeValue, float64(ld.InFlightBytes))
	t := &g.namespaces
	t.mu.RLock()
	lims := make([]*limiter, 0, len(t.m))
	for _, e := range t.m {
		lims = append(lims, e.lim)
	}
	t.mu.RUnlock()
	for _, l := range lims {
		l.mu.Lock()
		lim := l.limits
		l.mu.Unlock()
		for name, v := range map[string]int{"write_rate": lim.WriteRate.Value, "read_rate": lim.ReadRate.Value, "in_flight": lim.InFlight.Value, "principal_share": lim.PrincipalShare.Value} {
			ch <- prometheus.MustNewConstMetric(limitDesc, prometheus.GaugeValue, float64(v), l.name, name)
		}
		ch <- prometheus.MustNewConstMetric(nsInFlightDesc, prometheus.GaugeValue, float64(l.inFlight.Load()), l.name)
	}
}

// registerAdmission registers the admission gauges of g with reg.
func registerAdmission(reg prometheus.Registerer, g *Gateway) error {
	if err := reg.Register(admissionCollector{g}); err != nil {
		return fmt.Errorf("gateway: register admission metrics: %w", err)
	}
	return nil
}
