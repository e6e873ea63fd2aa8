package bench

import (
	"encoding/json"
	"fmt"
	"io"
	"maps"
	"math"
	"slices"
	"strings"
	"text/tabwriter"
	"time"

	hdrhistogram "github.com/HdrHistogram/hdrhistogram-go"

	"github.com/prism-data/prism/internal/progress"
)

// Report is the result of a benchmark; prism bench --json prints it as
// is (WriteJSON), without --json as a table (WriteTable).
type Report struct {
	Scenario string       `json:"scenario"`
	Target   ReportTarget `json:"target"`
	Config   ReportConfig `json:"config"`
	// Runs holds Prism's run first, then the baselines'.
	Runs []RunResult `json:"runs"`
	// Ratios compares Prism's series with the baselines'; empty without
	// Config.Baseline.
	Ratios []Ratio `json:"ratios,omitempty"`
}

// ReportTarget is the Prism that was loaded.
type ReportTarget struct {
	Mode        string `json:"mode"` // embedded or remote
	NATSURL     string `json:"nats_url"`
	Namespace   string `json:"namespace"`
	Backend     string `json:"backend,omitempty"`
	Consistency string `json:"consistency,omitempty"`
	// Auth says the embedded Prism ran with authentication on (--auth).
	Auth bool `json:"auth,omitempty"`
	// PII says the load's item was a PII field (--pii): sealed and opened.
	PII bool `json:"pii,omitempty"`
}

// ReportConfig is the load that was applied.
type ReportConfig struct {
	Concurrency     int     `json:"concurrency"`
	Rate            float64 `json:"rate"` // 0: closed loop
	DurationSeconds float64 `json:"duration_seconds"`
	ValueSize       int     `json:"value_size"`
	Keys            int     `json:"keys"`
	KeyDist         string  `json:"key_dist"`
	ZipfS           float64 `json:"zipf_s,omitempty"`
	ReadRatio       float64 `json:"read_ratio,omitempty"`
	Events          int     `json:"events,omitempty"`
}

// RunResult is one measured run: Prism's ("prism") or a raw engine's.
type RunResult struct {
	Name           string  `json:"name"`
	Baseline       bool    `json:"baseline"`
	ElapsedSeconds float64 `json:"elapsed_seconds"`
	// CPUSeconds is the process's CPU time during a closed- or open-loop
	// run (0: not measured): Prism, the embedded NATS server and the load
	// generator together. Divided by the run's operations it is the
	// "cpu/op" column.
	CPUSeconds float64        `json:"cpu_seconds,omitempty"`
	Series     []SeriesResult `json:"series"`
	Note       string         `json:"note,omitempty"`
}

// SeriesResult is one measured quantity of a run.
type SeriesResult struct {
	Name         string            `json:"name"`
	Ops          int64             `json:"ops"`
	OpsPerSecond float64           `json:"ops_per_second"`
	Errors       map[string]int64  `json:"errors"`
	ErrorSamples map[string]string `json:"error_samples,omitempty"`
	LatencyUS    *LatencyUS        `json:"latency_us,omitempty"`
}

// LatencyUS holds latency percentiles in microseconds.
type LatencyUS struct {
	P50  float64 `json:"p50"`
	P90  float64 `json:"p90"`
	P99  float64 `json:"p99"`
	P999 float64 `json:"p99_9"`
	Max  float64 `json:"max"`
	Mean float64 `json:"mean"`
}

// Ratio is Prism ÷ raw for one comparable pair. Throughput is left out
// (0) where the two did not do the same amount of the same work.
type Ratio struct {
	Prism      string  `json:"prism"` // series of the prism run
	Raw        string  `json:"raw"`   // run/series of the baseline
	Throughput float64 `json:"throughput,omitempty"`
	P50        float64 `json:"p50,omitempty"`
	P99        float64 `json:"p99,omitempty"`
}

func newReport(cfg Config, t *benchTarget) *Report {
	r := &Report{
		Scenario: cfg.Scenario,
		Target:   ReportTarget{Mode: t.mode, NATSURL: t.url, Namespace: t.namespace, Backend: t.backend, Consistency: t.consist, Auth: t.svcOpts != nil, PII: cfg.PII && t.mode == "embedded"},
		Config: ReportConfig{
			Concurrency: cfg.Concurrency, Rate: cfg.Rate, DurationSeconds: cfg.Duration.Seconds(),
			ValueSize: cfg.ValueSize, Keys: cfg.Keys, KeyDist: cfg.KeyDist,
		},
	}
	if cfg.KeyDist == "zipf" {
		r.Config.ZipfS = cfg.ZipfS
	}
	switch cfg.Scenario {
	case ScenarioMixed:
		r.Config.ReadRatio = cfg.ReadRatio
	case ScenarioReplay, ScenarioMigrate:
		r.Config.Events = cfg.Events
	}
	return r
}

func summarize(name string, h *hdrhistogram.Histogram, elapsed time.Duration, errs map[string]int64, sample map[string]string) SeriesResult {
	s := SeriesResult{Name: name, Ops: h.TotalCount(), Errors: errs}
	if len(sample) > 0 {
		s.ErrorSamples = sample
	}
	if elapsed > 0 {
		s.OpsPerSecond = float64(s.Ops) / elapsed.Seconds()
	}
	if s.Ops > 0 {
		us := func(v int64) float64 { return math.Round(float64(v)/1e1) / 1e2 } // ns → µs, 2 decimals
		s.LatencyUS = &LatencyUS{
			P50: us(h.ValueAtQuantile(50)), P90: us(h.ValueAtQuantile(90)), P99: us(h.ValueAtQuantile(99)),
			P999: us(h.ValueAtQuantile(99.9)), Max: us(h.Max()), Mean: us(int64(h.Mean())),
		}
	}
	return s
}

// WriteJSON writes r to w as one indented JSON document; it returns the
// write error.
func (r *Report) WriteJSON(w io.Writer) error {
	enc := json.NewEncoder(w)
	enc.SetIndent("", "  ")
	return enc.Encode(r)
}

// WriteTable writes r to w as the table prism bench prints: a header, one
// row per series, notes and errors by code, and the ratios. It returns the
// first error writing the tables.
func (r *Report) WriteTable(w io.Writer) error {
	c := r.Config
	loop := "closed loop"
	if c.Rate > 0 {
		loop = fmt.Sprintf("open loop at %s/s", humanCount(c.Rate))
	}
	target := fmt.Sprintf("%s stack, namespace %s", r.Target.Mode, r.Target.Namespace)
	if r.Target.Mode == "embedded" {
		target += fmt.Sprintf(" (%s, %s)", r.Target.Backend, r.Target.Consistency)
		if r.Target.Auth {
			target += ", authentication on: an application principal over TLS"
		}
		if r.Target.PII {
			target += ", the item a PII field (sealed on put, opened on get)"
		}
	} else {
		target += " at " + r.Target.NATSURL
	}
	fmt.Fprintf(w, "scenario %s: %s\n", r.Scenario, target)
	fmt.Fprintf(w, "%d in flight, %s, %s per run, %d-byte values, %d keys %s", c.Concurrency, loop, time.Duration(c.DurationSeconds*float64(time.Second)), c.ValueSize, c.Keys, c.KeyDist)
	switch {
	case c.ReadRatio > 0:
		fmt.Fprintf(w, ", %.0f%% reads", c.ReadRatio*100)
	case c.Events > 0:
		fmt.Fprintf(w, ", %d events", c.Events)
	}
	fmt.Fprintln(w)
	fmt.Fprintln(w)
	tw := tabwriter.NewWriter(w, 0, 0, 2, ' ', tabwriter.AlignRight)
	fmt.Fprintln(tw, "run\tseries\tops\tops/s\tp50\tp90\tp99\tp99.9\tmax\terrors\tcpu/op\t")
	for _, run := range r.Runs {
		cpu := run.cpuPerOp()
		for _, s := range run.Series {
			l := s.LatencyUS
			if l == nil {
				l = &LatencyUS{}
			}
			var nerr int64
			for _, n := range s.Errors {
				nerr += n
			}
			fmt.Fprintf(tw, "%s\t%s\t%d\t%s\t%s\t%s\t%s\t%s\t%s\t%d\t%s\t\n", run.Name, s.Name, s.Ops, humanCount(s.OpsPerSecond),
				fmtUS(l.P50), fmtUS(l.P90), fmtUS(l.P99), fmtUS(l.P999), fmtUS(l.Max), nerr, fmtUS(cpu))
		}
	}
	if err := tw.Flush(); err != nil {
		return err
	}
	for _, run := range r.Runs {
		if run.Note != "" {
			fmt.Fprintf(w, "  %s: %s\n", run.Name, run.Note)
		}
		for _, s := range run.Series {
			for _, code := range slices.Sorted(maps.Keys(s.Errors)) {
				fmt.Fprintf(w, "  errors %s %s: %s × %d (e.g. %s)\n", run.Name, s.Name, code, s.Errors[code], s.ErrorSamples[code])
			}
		}
	}
	if len(r.Ratios) > 0 {
		fmt.Fprintln(w)
		fmt.Fprintln(w, "Prism ÷ raw (throughput below 1 and latency above 1 are Prism's cost):")
		tw := tabwriter.NewWriter(w, 0, 0, 2, ' ', 0)
		fmt.Fprintln(tw, "  prism\traw\tthroughput\tp50\tp99")
		for _, q := range r.Ratios {
			fmt.Fprintf(tw, "  %s\t%s\t%s\t%s\t%s\n", q.Prism, q.Raw, fmtRatio(q.Throughput), fmtRatio(q.P50), fmtRatio(q.P99))
		}
		return tw.Flush()
	}
	return nil
}

// ratioPairs lists, per Prism series, the baseline series it is compared
// with. Throughput is compared only where Prism's series carried the whole
// load, as the baseline's did.
var ratioPairs = map[string][]string{
	"put":    {"js-publish-sync/publish", "js-publish-async/publish", "js-publish-async-best/publish", "sqlite-upsert/upsert", "postgres-upsert/upsert"},
	"get":    {"nats-echo/request", "sqlite-get/get", "postgres-get/get"},
	"events": {"js-consume/events", "sqlite-bulk-upsert/rows", "postgres-bulk-upsert/rows"},
}

func ratios(scenario string, prism RunResult, raw []RunResult) []Ratio {
	find := func(run, series string) *SeriesResult {
		for i := range raw {
			if raw[i].Name != run {
				continue
			}
			for j := range raw[i].Series {
				if raw[i].Series[j].Name == series {
					return &raw[i].Series[j]
				}
			}
		}
		return nil
	}
	var out []Ratio
	for _, p := range prism.Series {
		for _, pair := range ratioPairs[p.Name] {
			run, series, _ := strings.Cut(pair, "/")
			b := find(run, series)
			if b == nil || b.Ops == 0 || p.Ops == 0 {
				continue
			}
			q := Ratio{Prism: p.Name, Raw: pair}
			if scenario != ScenarioMixed && b.OpsPerSecond > 0 {
				q.Throughput = round3(p.OpsPerSecond / b.OpsPerSecond)
			}
			if p.LatencyUS != nil && b.LatencyUS != nil && b.LatencyUS.P50 > 0 && b.LatencyUS.P99 > 0 {
				q.P50 = round3(p.LatencyUS.P50 / b.LatencyUS.P50)
				q.P99 = round3(p.LatencyUS.P99 / b.LatencyUS.P99)
			}
			out = append(out, q)
		}
	}
	return out
}

func round3(v float64) float64 { return math.Round(v*1000) / 1000 }

func fmtRatio(v float64) string {
	if v == 0 {
		return "–"
	}
	return fmt.Sprintf("%.2f", v)
}

func fmtUS(us float64) string {
	if us == 0 {
		return "–"
	}
	return fmtDur(time.Duration(us * float64(time.Microsecond)))
}

// fmtDur prints d with three significant digits: 87.3µs, 1.25ms, 2.40s.
func fmtDur(d time.Duration) string {
	switch {
	case d == 0:
		return "–"
	case d < time.Millisecond:
		return fmt.Sprintf("%.1fµs", float64(d)/1e3)
	case d < time.Second:
		return fmt.Sprintf("%.2fms", float64(d)/1e6)
	}
	return fmt.Sprintf("%.2fs", d.Seconds())
}

// humanCount prints n as 950, 12.3k or 1.25M, as the table shows ops/s.
var humanCount = progress.HumanCount

// Write writes the report as JSON (WriteJSON) or as the table.
func (r *Report) Write(w io.Writer, asJSON bool) error {
	if asJSON {
		return r.WriteJSON(w)
	}
	return r.WriteTable(w)
}

// cpuPerOp is the run's CPU time per operation of all its series in
// microseconds, 0 when not measured. The e2e scenario's visibility series
// time the put they follow, so only its puts count.
func (r RunResult) cpuPerOp() float64 {
	var ops int64
	for _, s := range r.Series {
		if s.Name != seriesAckToVisible && s.Name != seriesWriteToVisible {
			ops += s.Ops
		}
	}
	if r.CPUSeconds == 0 || ops == 0 {
		return 0
	}
	return r.CPUSeconds * 1e6 / float64(ops)
}
