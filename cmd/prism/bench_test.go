package main

import (
	"bytes"
	"context"
	"encoding/json"
	"io"
	"strings"
	"testing"
	"time"

	"github.com/prism-data/prism/backends/postgres/pgtest"
	"github.com/prism-data/prism/bench"
)

// shortBench is a benchmark small enough for a test: no timing is
// asserted, only that it ran, counted and reported.
func shortBench(scenario string) benchFlags {
	return benchFlags{
		scenario: scenario, concurrency: 4, duration: 300 * time.Millisecond, valueSize: 64,
		keys: 200, keyDist: "uniform", zipfS: 1.1, readRatio: 0.5, events: 500, json: true,
		backend: "sqlite", consistency: "eventual", logLevel: "error",
	}
}

func runBenchJSON(t *testing.T, f benchFlags) bench.Report {
	t.Helper()
	var out, progress bytes.Buffer
	if err := runBench(context.Background(), &out, &progress, f); err != nil {
		t.Fatalf("runBench: %v\nprogress:\n%s", err, progress.String())
	}
	var rep bench.Report
	dec := json.NewDecoder(&out)
	dec.DisallowUnknownFields()
	if err := dec.Decode(&rep); err != nil {
		t.Fatalf("output is not the JSON report: %v\n%s", err, out.String())
	}
	if rest, _ := io.ReadAll(dec.Buffered()); strings.TrimSpace(string(rest)) != "" {
		t.Fatalf("output has more than one JSON document: %q", rest)
	}
	return rep
}

// checkRun asserts that run measured every series it reports, without
// errors.
func checkRun(t *testing.T, run bench.RunResult, wantSeries ...string) {
	t.Helper()
	var got []string
	for _, s := range run.Series {
		got = append(got, s.Name)
		if s.Ops <= 0 || s.OpsPerSecond <= 0 {
			t.Errorf("run %s series %s: ops %d, ops/s %v; want both > 0", run.Name, s.Name, s.Ops, s.OpsPerSecond)
		}
		if len(s.Errors) != 0 {
			t.Errorf("run %s series %s: errors %v (e.g. %v)", run.Name, s.Name, s.Errors, s.ErrorSamples)
		}
	}
	if wantSeries != nil && strings.Join(got, ",") != strings.Join(wantSeries, ",") {
		t.Errorf("run %s: series %v, want %v", run.Name, got, wantSeries)
	}
}

func TestBenchScenarios(t *testing.T) {
	tests := []struct {
		scenario string
		key      string
		series   []string
	}{
		{scenario: bench.ScenarioWrite, key: "uniform", series: []string{"put"}},
		{scenario: bench.ScenarioRead, key: "zipf", series: []string{"get"}},
		{scenario: bench.ScenarioMixed, key: "uniform", series: []string{"put", "get"}},
		{scenario: bench.ScenarioE2E, key: "uniform", series: []string{"put", "ack_to_visible", "write_to_visible"}},
		{scenario: bench.ScenarioReplay, key: "uniform", series: []string{"events", "catchup"}},
	}
	for _, tt := range tests {
		t.Run(tt.scenario, func(t *testing.T) {
			f := shortBench(tt.scenario)
			f.keyDist = tt.key
			rep := runBenchJSON(t, f)
			if rep.Scenario != tt.scenario || rep.Target.Mode != "embedded" || !strings.HasPrefix(rep.Target.NATSURL, "nats://127.0.0.1:") {
				t.Errorf("report header: scenario %q target %+v", rep.Scenario, rep.Target)
			}
			if strings.HasSuffix(rep.Target.NATSURL, ":4222") {
				t.Errorf("embedded NATS listens on the default port: %s", rep.Target.NATSURL)
			}
			if len(rep.Runs) != 1 || rep.Runs[0].Name != "prism" || rep.Runs[0].Baseline {
				t.Fatalf("runs: %+v; want the prism run only", rep.Runs)
			}
			checkRun(t, rep.Runs[0], tt.series...)
			for _, s := range rep.Runs[0].Series {
				if tt.scenario != bench.ScenarioReplay && s.LatencyUS == nil {
					t.Errorf("series %s has no latency", s.Name)
				}
			}
			if tt.scenario == bench.ScenarioReplay {
				// Every round applies the whole stream.
				if ev := rep.Runs[0].Series[0]; ev.Ops%int64(f.events) != 0 {
					t.Errorf("replay applied %d events, not a multiple of %d", ev.Ops, f.events)
				}
			}
			if len(rep.Ratios) != 0 {
				t.Errorf("ratios without --baseline: %+v", rep.Ratios)
			}
		})
	}
}

func TestBenchBaseline(t *testing.T) {
	tests := []struct {
		name     string
		scenario string
		postgres bool
		runs     []string
		ratios   []string // "prism series ÷ run/series"
	}{
		{
			name: "write", scenario: bench.ScenarioWrite,
			runs:   []string{"prism", "js-publish-sync", "js-publish-async", "sqlite-upsert"},
			ratios: []string{"put ÷ js-publish-sync/publish", "put ÷ js-publish-async/publish", "put ÷ sqlite-upsert/upsert"},
		},
		{
			name: "read", scenario: bench.ScenarioRead,
			runs:   []string{"prism", "nats-echo", "sqlite-get"},
			ratios: []string{"get ÷ nats-echo/request", "get ÷ sqlite-get/get"},
		},
		{
			name: "replay", scenario: bench.ScenarioReplay,
			runs:   []string{"prism", "js-consume", "sqlite-bulk-upsert"},
			ratios: []string{"events ÷ js-consume/events", "events ÷ sqlite-bulk-upsert/rows"},
		},
		{
			name: "write postgres", scenario: bench.ScenarioWrite, postgres: true,
			runs:   []string{"prism", "js-publish-sync", "js-publish-async", "sqlite-upsert", "postgres-upsert"},
			ratios: []string{"put ÷ js-publish-sync/publish", "put ÷ js-publish-async/publish", "put ÷ sqlite-upsert/upsert", "put ÷ postgres-upsert/upsert"},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			f := shortBench(tt.scenario)
			f.baseline = true
			if tt.postgres {
				f.backend, f.postgresDSN = "postgres", pgtest.DSN(t)
			}
			rep := runBenchJSON(t, f)
			var runs []string
			for _, r := range rep.Runs {
				runs = append(runs, r.Name)
				if r.Baseline != (r.Name != "prism") {
					t.Errorf("run %s: baseline %v", r.Name, r.Baseline)
				}
				checkRun(t, r)
			}
			if strings.Join(runs, ",") != strings.Join(tt.runs, ",") {
				t.Errorf("runs %v, want %v", runs, tt.runs)
			}
			var ratios []string
			for _, q := range rep.Ratios {
				ratios = append(ratios, q.Prism+" ÷ "+q.Raw)
				if q.Throughput <= 0 {
					t.Errorf("ratio %s ÷ %s: throughput %v, want > 0", q.Prism, q.Raw, q.Throughput)
				}
				if tt.scenario != bench.ScenarioReplay && (q.P50 <= 0 || q.P99 <= 0) {
					t.Errorf("ratio %s ÷ %s: p50 %v p99 %v, want > 0", q.Prism, q.Raw, q.P50, q.P99)
				}
			}
			if strings.Join(ratios, ",") != strings.Join(tt.ratios, ",") {
				t.Errorf("ratios %v, want %v", ratios, tt.ratios)
			}
		})
	}
}

// TestBenchOpenLoop checks that --rate schedules requests: the run sends
// about rate × duration of them, however fast Prism could go.
func TestBenchOpenLoop(t *testing.T) {
	f := shortBench(bench.ScenarioWrite)
	f.rate, f.duration = 200, 500*time.Millisecond
	rep := runBenchJSON(t, f)
	checkRun(t, rep.Runs[0], "put")
	// 100 due; the schedule, not the speed, bounds the count.
	if ops := rep.Runs[0].Series[0].Ops; ops != 100 {
		t.Errorf("open loop at 200/s for 500ms sent %d puts, want 100", ops)
	}
}

func TestBenchTable(t *testing.T) {
	f := shortBench(bench.ScenarioWrite)
	f.json, f.baseline = false, true
	var out bytes.Buffer
	if err := runBench(context.Background(), &out, io.Discard, f); err != nil {
		t.Fatal(err)
	}
	for _, want := range []string{"scenario write: embedded stack", "p99.9", "prism", "put", "js-publish-async", "Prism ÷ raw"} {
		if !strings.Contains(out.String(), want) {
			t.Errorf("table lacks %q:\n%s", want, out.String())
		}
	}
}

// The migrate scenario moves the bench namespace to PostgreSQL through
// every step and reports each step's time and the backfill's rate over
// the whole stream.
func TestBenchMigrate(t *testing.T) {
	f := shortBench(bench.ScenarioMigrate)
	f.postgresDSN = pgtest.DSN(t)
	rep := runBenchJSON(t, f)
	if len(rep.Runs) != 1 {
		t.Fatalf("runs: %+v", rep.Runs)
	}
	checkRun(t, rep.Runs[0], "events", "backfill", "verify", "cutover", "finalize", "total")
	if ev := rep.Runs[0].Series[0]; ev.Ops < int64(f.events) {
		t.Errorf("backfill applied %d events, want the whole stream (%d)", ev.Ops, f.events)
	}
}

// Every scenario is explained in bench --help.
func TestBenchHelpNamesEveryScenario(t *testing.T) {
	long := newBenchCmd().Long
	for _, s := range bench.Scenarios {
		if !strings.Contains(long, "\n  "+s+" ") {
			t.Errorf("bench --help does not explain --scenario %s:\n%s", s, long)
		}
	}
}
