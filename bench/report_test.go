package bench

import (
	"bytes"
	"strings"
	"testing"
)

func testSeries(name string, ops int64, opsPerSecond, p50, p99 float64) SeriesResult {
	return SeriesResult{Name: name, Ops: ops, OpsPerSecond: opsPerSecond, Errors: map[string]int64{}, LatencyUS: &LatencyUS{P50: p50, P99: p99}}
}

func TestRatios(t *testing.T) {
	prism := RunResult{Name: "prism", Series: []SeriesResult{testSeries("put", 100, 1000, 200, 900), testSeries("get", 0, 0, 0, 0)}}
	raw := []RunResult{
		{Name: "js-publish-sync", Baseline: true, Series: []SeriesResult{testSeries("publish", 400, 4000, 100, 300)}},
		{Name: "sqlite-get", Baseline: true, Series: []SeriesResult{testSeries("get", 10, 10, 1, 1)}},
	}
	got := ratios(ScenarioWrite, prism, raw)
	want := []Ratio{{Prism: "put", Raw: "js-publish-sync/publish", Throughput: 0.25, P50: 2, P99: 3}}
	if len(got) != 1 || got[0] != want[0] {
		t.Fatalf("ratios %+v, want %+v (a series without ops is not compared)", got, want)
	}
	// In mixed, each series carried only its share: no throughput ratio.
	got = ratios(ScenarioMixed, prism, raw)
	if len(got) != 1 || got[0].Throughput != 0 || got[0].P50 != 2 {
		t.Fatalf("mixed ratios %+v, want latency only", got)
	}
}

func TestWriteTable(t *testing.T) {
	s := testSeries("put", 100, 12345, 87.3, 1250)
	s.Errors = map[string]int64{"DEADLINE_EXCEEDED": 2}
	s.ErrorSamples = map[string]string{"DEADLINE_EXCEEDED": "timeout"}
	r := &Report{
		Scenario: ScenarioWrite,
		Target:   ReportTarget{Mode: "embedded", NATSURL: "nats://127.0.0.1:1", Namespace: "bench", Backend: "sqlite", Consistency: "eventual"},
		Config:   ReportConfig{Concurrency: 4, Rate: 2000, DurationSeconds: 1.5, ValueSize: 64, Keys: 200, KeyDist: "uniform"},
		Runs:     []RunResult{{Name: "prism", Series: []SeriesResult{s}, Note: "a note"}},
		Ratios:   []Ratio{{Prism: "put", Raw: "js-publish-sync/publish", Throughput: 0.5}},
	}
	var b bytes.Buffer
	if err := r.WriteTable(&b); err != nil {
		t.Fatal(err)
	}
	for _, want := range []string{
		"scenario write: embedded stack, namespace bench (sqlite, eventual)\n",
		"4 in flight, open loop at 2000/s, 1.5s per run, 64-byte values, 200 keys uniform\n",
		"12.3k", "87.3µs", "1.25ms",
		"  prism: a note\n",
		"  errors prism put: DEADLINE_EXCEEDED × 2 (e.g. timeout)\n",
		"Prism ÷ raw", "0.50",
	} {
		if !strings.Contains(b.String(), want) {
			t.Errorf("table lacks %q:\n%s", want, b.String())
		}
	}
}

// cpu/op divides a run's CPU time by its operations: every series of a
// mixed run, only the puts of an e2e run (its visibility series time the
// puts they follow); a run without CPU time shows none.
func TestCPUPerOp(t *testing.T) {
	tests := []struct {
		name string
		run  RunResult
		want float64 // µs
	}{
		{"one series", RunResult{CPUSeconds: 0.5, Series: []SeriesResult{testSeries("put", 5000, 0, 0, 0)}}, 100},
		{"mixed", RunResult{CPUSeconds: 0.5, Series: []SeriesResult{testSeries("put", 2000, 0, 0, 0), testSeries("get", 3000, 0, 0, 0)}}, 100},
		{"e2e", RunResult{CPUSeconds: 0.5, Series: []SeriesResult{testSeries("put", 2500, 0, 0, 0), testSeries("ack_to_visible", 2500, 0, 0, 0), testSeries("write_to_visible", 2500, 0, 0, 0)}}, 200},
		{"not measured", RunResult{Series: []SeriesResult{testSeries("put", 5000, 0, 0, 0)}}, 0},
		{"no ops", RunResult{CPUSeconds: 1}, 0},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := tt.run.cpuPerOp(); got != tt.want {
				t.Errorf("cpuPerOp() = %v µs, want %v", got, tt.want)
			}
		})
	}
	var buf bytes.Buffer
	r := &Report{Scenario: ScenarioWrite, Runs: []RunResult{{Name: "prism", CPUSeconds: 0.5, Series: []SeriesResult{testSeries("put", 5000, 1000, 50, 90)}}}}
	if err := r.Write(&buf, false); err != nil {
		t.Fatal(err)
	}
	if out := buf.String(); !strings.Contains(out, "cpu/op") || !strings.Contains(out, "100.0µs") {
		t.Errorf("table without the cpu/op column of 100.0µs:\n%s", out)
	}
}
