package main

import (
	"bytes"
	"context"
	"encoding/json"
	"io"
	"strings"
	"testing"
	"time"

	"github.com/prism-data/prism/bench"
)

// shortBench is a benchmark small enough for a test: no timing is
// asserted, only that it ran, counted and reported.
func shortBench(scenario string) benchFlags {
	return benchFlags{Config: bench.Config{
		Scenario: scenario, Concurrency: 4, Duration: 300 * time.Millisecond, ValueSize: 64,
		Keys: 200, KeyDist: "uniform", ZipfS: 1.1, ReadRatio: 0.5, Events: 500,
		Backend: "sqlite", Consistency: "eventual"}, json: true, logLevel: "error",
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

// --json prints the report as one JSON document on stdout.
func TestBenchJSON(t *testing.T) {
	rep := runBenchJSON(t, shortBench(bench.ScenarioWrite))
	if rep.Scenario != bench.ScenarioWrite || rep.Target.Mode != "embedded" || !strings.HasPrefix(rep.Target.NATSURL, "nats://127.0.0.1:") {
		t.Errorf("report header: scenario %q target %+v", rep.Scenario, rep.Target)
	}
	if len(rep.Runs) != 1 || len(rep.Runs[0].Series) != 1 || rep.Runs[0].Series[0].Name != "put" || rep.Runs[0].Series[0].Ops <= 0 {
		t.Errorf("runs: %+v; want the prism run's puts", rep.Runs)
	}
}

func TestBenchTable(t *testing.T) {
	f := shortBench(bench.ScenarioWrite)
	f.json, f.Baseline = false, true
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

// Every scenario is explained in bench --help.
func TestBenchHelpNamesEveryScenario(t *testing.T) {
	long := newBenchCmd().Long
	for _, s := range bench.Scenarios {
		if !strings.Contains(long, "\n  "+s+" ") {
			t.Errorf("bench --help does not explain --scenario %s:\n%s", s, long)
		}
	}
}
