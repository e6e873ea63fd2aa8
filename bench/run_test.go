package bench

import (
	"bytes"
	"context"
	"database/sql"
	"fmt"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	_ "modernc.org/sqlite"

	"github.com/prism-data/prism/backends/postgres/pgtest"
	"github.com/prism-data/prism/pii"
)

// shortConfig is a benchmark small enough for a test, on an embedded
// node: no timing is asserted, only that it ran, counted and reported.
func shortConfig(scenario string) Config {
	return Config{
		Scenario: scenario, Concurrency: 4, Duration: 300 * time.Millisecond, ValueSize: 64,
		Keys: 200, KeyDist: "uniform", ZipfS: 1.1, ReadRatio: 0.5, Events: 500,
		Backend: "sqlite", Consistency: "eventual",
	}
}

// run runs cfg and returns its report; prism bench's own test checks
// that --json prints it as one JSON document.
func run(t *testing.T, cfg Config) Report {
	t.Helper()
	var progress bytes.Buffer
	r, err := Run(context.Background(), cfg, &progress)
	if err != nil {
		t.Fatalf("Run: %v\nprogress:\n%s", err, progress.String())
	}
	return *r
}

// checkRun asserts that run measured every series it reports, without
// errors.
func checkRun(t *testing.T, run RunResult, wantSeries ...string) {
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
		{scenario: ScenarioWrite, key: "uniform", series: []string{"put"}},
		{scenario: ScenarioRead, key: "zipf", series: []string{"get"}},
		{scenario: ScenarioMixed, key: "uniform", series: []string{"put", "get"}},
		{scenario: ScenarioE2E, key: "uniform", series: []string{"put", "ack_to_visible", "write_to_visible"}},
		{scenario: ScenarioReplay, key: "uniform", series: []string{"events", "catchup"}},
		{scenario: ScenarioEntity, key: "uniform", series: []string{"en-put", "kv-put", "en-get", "kv-get", "en-query"}},
	}
	for _, tt := range tests {
		t.Run(tt.scenario, func(t *testing.T) {
			f := shortConfig(tt.scenario)
			f.KeyDist = tt.key
			rep := run(t, f)
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
				if tt.scenario != ScenarioReplay && s.LatencyUS == nil {
					t.Errorf("series %s has no latency", s.Name)
				}
			}
			if tt.scenario == ScenarioReplay {
				// Every round applies the whole stream.
				if ev := rep.Runs[0].Series[0]; ev.Ops%int64(f.Events) != 0 {
					t.Errorf("replay applied %d events, not a multiple of %d", ev.Ops, f.Events)
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
			name: "write", scenario: ScenarioWrite,
			runs:   []string{"prism", "js-publish-sync", "js-publish-async", "js-publish-async-best", "sqlite-upsert"},
			ratios: []string{"put ÷ js-publish-sync/publish", "put ÷ js-publish-async/publish", "put ÷ js-publish-async-best/publish", "put ÷ sqlite-upsert/upsert"},
		},
		{
			name: "read", scenario: ScenarioRead,
			runs:   []string{"prism", "nats-echo", "sqlite-get"},
			ratios: []string{"get ÷ nats-echo/request", "get ÷ sqlite-get/get"},
		},
		{
			name: "replay", scenario: ScenarioReplay,
			runs:   []string{"prism", "js-consume", "sqlite-bulk-upsert"},
			ratios: []string{"events ÷ js-consume/events", "events ÷ sqlite-bulk-upsert/rows"},
		},
		{
			name: "write postgres", scenario: ScenarioWrite, postgres: true,
			runs:   []string{"prism", "js-publish-sync", "js-publish-async", "js-publish-async-best", "sqlite-upsert", "postgres-upsert"},
			ratios: []string{"put ÷ js-publish-sync/publish", "put ÷ js-publish-async/publish", "put ÷ js-publish-async-best/publish", "put ÷ sqlite-upsert/upsert", "put ÷ postgres-upsert/upsert"},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			f := shortConfig(tt.scenario)
			f.Baseline = true
			if tt.postgres {
				f.Backend, f.PostgresDSN = "postgres", pgtest.DSN(t)
			}
			rep := run(t, f)
			var runs []string
			for _, r := range rep.Runs {
				runs = append(runs, r.Name)
				if r.Baseline != (r.Name != "prism") {
					t.Errorf("run %s: baseline %v", r.Name, r.Baseline)
				}
				checkRun(t, r)
				if r.Name == "js-publish-async-best" && !slices.ContainsFunc(append(asyncWindows, f.Concurrency), func(w int) bool {
					return strings.HasPrefix(r.Note, fmt.Sprintf("one publisher, at most %d acks pending (the fastest of", w))
				}) {
					t.Errorf("run %s: note %q names no window of %v", r.Name, r.Note, asyncWindows)
				}
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
				if tt.scenario != ScenarioReplay && (q.P50 <= 0 || q.P99 <= 0) {
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
	f := shortConfig(ScenarioWrite)
	f.Rate, f.Duration = 200, 500*time.Millisecond
	rep := run(t, f)
	checkRun(t, rep.Runs[0], "put")
	// 100 due; the schedule, not the speed, bounds the count.
	if ops := rep.Runs[0].Series[0].Ops; ops != 100 {
		t.Errorf("open loop at 200/s for 500ms sent %d puts, want 100", ops)
	}
}

// The migrate scenario moves the bench namespace to PostgreSQL through
// every step and reports each step's time and the backfill's rate over
// the whole stream.
func TestBenchMigrate(t *testing.T) {
	f := shortConfig(ScenarioMigrate)
	f.PostgresDSN = pgtest.DSN(t)
	rep := run(t, f)
	if len(rep.Runs) != 1 {
		t.Fatalf("runs: %+v", rep.Runs)
	}
	checkRun(t, rep.Runs[0], "events", "backfill", "verify", "cutover", "finalize", "total")
	if ev := rep.Runs[0].Series[0]; ev.Ops < int64(f.Events) {
		t.Errorf("backfill applied %d events, want the whole stream (%d)", ev.Ops, f.Events)
	}
}

// TestBenchAuth runs the mixed load and its baselines against a Prism
// with authentication on: the client is an application principal (over
// TLS, by certificate), the baselines use the service key.
func TestBenchAuth(t *testing.T) {
	f := shortConfig(ScenarioMixed)
	f.Auth, f.Baseline = true, true
	rep := run(t, f)
	if !rep.Target.Auth {
		t.Fatalf("report target %+v: want auth on", rep.Target)
	}
	if len(rep.Runs) < 2 {
		t.Fatalf("runs: %+v; want prism and its baselines", rep.Runs)
	}
	for _, r := range rep.Runs {
		checkRun(t, r)
	}
	f.NATSURL = "nats://127.0.0.1:4222"
	if err := f.Validate(); err == nil || !strings.Contains(err.Error(), "--auth") {
		t.Fatalf("--auth with --nats-url: %v, want a refusal naming --auth", err)
	}
}

// TestBenchPII runs the mixed load with its item a PII field: every
// value the backend holds is sealed, and the gets, which open them, all
// succeed.
func TestBenchPII(t *testing.T) {
	f := shortConfig(ScenarioMixed)
	f.PII, f.DataDir = true, t.TempDir()
	rep := run(t, f)
	if !rep.Target.PII {
		t.Fatalf("report target %+v: want pii", rep.Target)
	}
	checkRun(t, rep.Runs[0], "put", "get")
	db, err := sql.Open("sqlite", "file:"+filepath.Join(f.DataDir, "sqlite", "bench.db")+"?mode=ro")
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	rows, err := db.Query(`SELECT value FROM items`)
	if err != nil {
		t.Fatal(err)
	}
	n := 0
	for rows.Next() {
		var v []byte
		if err := rows.Scan(&v); err != nil {
			t.Fatal(err)
		}
		if _, err := pii.Inspect(v); err != nil {
			t.Fatalf("a stored value is not sealed: %v", err)
		}
		n++
	}
	if err := rows.Err(); err != nil || n == 0 {
		t.Fatalf("%d stored values, %v", n, err)
	}
	f.NATSURL = "nats://127.0.0.1:4222"
	if err := f.Validate(); err == nil || !strings.Contains(err.Error(), "--pii") {
		t.Fatalf("--pii with --nats-url: %v, want a refusal naming --pii", err)
	}
}
