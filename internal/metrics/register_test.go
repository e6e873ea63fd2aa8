package metrics_test

import (
	"testing"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/prism-data/prism/internal/metrics"
)

func TestRegisterReusesOrReports(t *testing.T) {
	reg := prometheus.NewRegistry()
	opts := prometheus.CounterOpts{Name: "x_total", Help: "x"}
	var err error
	first := metrics.Register(reg, prometheus.NewCounter(opts), &err)
	again := metrics.Register(reg, prometheus.NewCounter(opts), &err)
	if err != nil || again != first {
		t.Fatalf("registering the same counter again: %v, same collector %v", err, again == first)
	}
	first.Inc()
	// Same name, other help: a conflict, reported and kept.
	metrics.Register(reg, prometheus.NewCounter(prometheus.CounterOpts{Name: "x_total", Help: "other"}), &err)
	if err == nil {
		t.Fatal("a conflicting collector registered without error")
	}
	kept := err
	metrics.Register(reg, prometheus.NewGauge(prometheus.GaugeOpts{Name: "x_total", Help: "third"}), &err)
	if err != kept {
		t.Fatalf("the first error was replaced: %v", err)
	}
}
