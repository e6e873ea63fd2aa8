// Package bench measures Prism the way an application sees it: the Go
// client over TCP loads one KeyValue namespace, latency goes into HDR
// histograms and errors are counted by code. It runs the scenarios of
// prism bench (write, read, mixed, e2e, replay, migrate, entity) against a Prism it
// starts in the process or a running deployment, optionally measures the
// raw engines under Prism (JetStream, core NATS, SQLite, PostgreSQL) for
// comparison, and returns a Report that prints as JSON or as a table.
//
// The embedded Prism is a node.Node (StartNode), the runtime prism serve
// runs; Config.Start puts another in its place.
package bench

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"os"
	"runtime/pprof"
	"slices"
	"strings"
	"time"

	"github.com/nats-io/nats.go"

	"github.com/prism-data/prism/namespaces"
)

// The scenarios Run knows (Config.Scenario).
const (
	// ScenarioWrite puts one Config.ValueSize item to Config.Keys ids.
	ScenarioWrite = "write"
	// ScenarioRead gets ids written before the run starts.
	ScenarioRead = "read"
	// ScenarioMixed gets a Config.ReadRatio share of requests, puts the rest.
	ScenarioMixed = "mixed"
	// ScenarioE2E puts, then gets with min_seq until the write is visible.
	ScenarioE2E = "e2e"
	// ScenarioReplay times fresh projectors catching up with Config.Events
	// events from seq 1.
	ScenarioReplay = "replay"
	// ScenarioMigrate moves the filled namespace from SQLite to PostgreSQL.
	ScenarioMigrate = "migrate"
	// ScenarioEntity measures an entity namespace beside the keyvalue one:
	// puts, gets by primary key and queries of a secondary index range,
	// then keyvalue puts and gets of the same payload.
	ScenarioEntity = "entity"
)

// Scenarios lists every scenario, in the order prism bench --help shows them.
var Scenarios = []string{ScenarioWrite, ScenarioRead, ScenarioMixed, ScenarioE2E, ScenarioReplay, ScenarioMigrate, ScenarioEntity}

// Config describes one benchmark. Validate (and Run) name an invalid field
// by its prism bench flag, --concurrency for Concurrency, since that is how
// people set them.
type Config struct {
	// Scenario is one of Scenarios.
	Scenario string
	// NATSURL loads a running Prism on this NATS server instead of an
	// embedded one; "" starts one with Start.
	NATSURL string
	// NATSOptions are added to the connections to NATSURL: credentials,
	// TLS, inbox prefix (prism bench's natsconn flags).
	NATSOptions []nats.Option
	// Namespace is the KeyValue namespace to load: required with NATSURL;
	// embedded, "" is "bench".
	Namespace string
	// Concurrency is how many requests are in flight at most (at least 1).
	Concurrency int
	// Rate is the open loop's requests per second, scheduled at fixed
	// intervals; 0 is closed loop, as fast as Concurrency allows.
	Rate float64
	// Duration is how long each run loads (each baseline as long again).
	Duration time.Duration
	// ValueSize is the bytes per value, 0 to 512 KiB.
	ValueSize int
	// Keys is the number of distinct record ids.
	Keys int
	// KeyDist is how ids are picked: "uniform" or "zipf".
	KeyDist string
	// ZipfS is the zipf exponent s (more than 1) with KeyDist "zipf".
	ZipfS float64
	// ReadRatio is the share of gets in ScenarioMixed, 0..1.
	ReadRatio float64
	// Events is the number of events ScenarioReplay and ScenarioMigrate
	// put on the stream first.
	Events int
	// Baseline also measures the raw engines and reports Prism ÷ raw.
	Baseline bool
	// Auth runs the embedded Prism with authentication on (prism auth
	// init's material in its data directory): the load's client is an
	// application principal over TLS with a client certificate, as in
	// production; the baselines and scenarios that need JetStream or the
	// admin API use Prism's service key. Embedded only.
	Auth bool
	// PII declares the load's item a PII field of the embedded namespace
	// (--pii): every put seals it, every get opens it. Embedded only.
	PII bool

	// Backend is the embedded namespace's backend: "sqlite" or "postgres".
	Backend string
	// Consistency is the embedded namespace's consistency.
	Consistency string
	// ReadRPS is the embedded namespace's needs.read_rps.
	ReadRPS int
	// PostgresDSN is the PostgreSQL of Backend "postgres", the migrate
	// scenario's target and the PostgreSQL baseline.
	PostgresDSN string
	// DataDir is where the embedded Prism keeps JetStream and SQLite; ""
	// is a temporary directory, removed afterwards.
	DataDir string
	// SyncAlways makes the embedded JetStream fsync every write before
	// acknowledging it.
	SyncAlways bool
	// CPUProfile, when set, is a file the CPU profile of the Prism run
	// (not of the baselines) is written to, for go tool pprof.
	CPUProfile string
	// Start starts the embedded Prism; nil is StartNode.
	Start StartFunc
	// Logger receives the embedded Prism's and the projectors' logs; nil
	// discards them.
	Logger *slog.Logger
}

// Validate reports every field of c that Run cannot use, joined, each
// named by its flag.
func (c Config) Validate() error {
	var errs []error
	if !slices.Contains(Scenarios, c.Scenario) {
		errs = append(errs, fmt.Errorf("--scenario %q: want one of %s", c.Scenario, strings.Join(Scenarios, ", ")))
	}
	if c.Auth && c.NATSURL != "" {
		errs = append(errs, errors.New("--auth runs an embedded Prism with authentication on; against --nats-url pass its credentials (--tls-cert, --nkey, ...) instead"))
	}
	if c.PII && c.NATSURL != "" {
		errs = append(errs, errors.New("--pii declares PII fields on the embedded namespace; against --nats-url declare them in the namespace you load"))
	}
	if c.Concurrency < 1 {
		errs = append(errs, fmt.Errorf("--concurrency %d: want at least 1", c.Concurrency))
	}
	if c.Rate < 0 {
		errs = append(errs, fmt.Errorf("--rate %v: want 0 (closed loop) or more", c.Rate))
	}
	if c.Duration <= 0 {
		errs = append(errs, fmt.Errorf("--duration %v: want more than 0", c.Duration))
	}
	if c.ValueSize < 0 || c.ValueSize > 512<<10 {
		errs = append(errs, fmt.Errorf("--value-size %d: want 0 to 524288", c.ValueSize))
	}
	if c.Keys < 1 {
		errs = append(errs, fmt.Errorf("--keys %d: want at least 1", c.Keys))
	}
	switch c.KeyDist {
	case "uniform":
	case "zipf":
		if c.ZipfS <= 1 {
			errs = append(errs, fmt.Errorf("--zipf-s %v: want more than 1", c.ZipfS))
		}
	default:
		errs = append(errs, fmt.Errorf("--key-dist %q: want uniform or zipf", c.KeyDist))
	}
	if c.ReadRatio < 0 || c.ReadRatio > 1 {
		errs = append(errs, fmt.Errorf("--read-ratio %v: want 0..1", c.ReadRatio))
	}
	if c.Events < 1 {
		errs = append(errs, fmt.Errorf("--events %d: want at least 1", c.Events))
	}
	if c.NATSURL == "" {
		switch c.Backend {
		case "sqlite":
		case "postgres":
			if c.PostgresDSN == "" {
				errs = append(errs, errors.New("--backend postgres needs --postgres-dsn (or PRISM_POSTGRES_DSN)"))
			}
		default:
			errs = append(errs, fmt.Errorf("--backend %q: want sqlite or postgres", c.Backend))
		}
		switch namespaces.Consistency(c.Consistency) {
		case namespaces.Eventual, namespaces.ReadYourWrites, namespaces.Strong:
		default:
			errs = append(errs, fmt.Errorf("--consistency %q: want eventual, read-your-writes or strong", c.Consistency))
		}
	} else {
		if c.Scenario == ScenarioReplay || c.Scenario == ScenarioMigrate || c.Scenario == ScenarioEntity {
			errs = append(errs, fmt.Errorf("--scenario %s times the embedded stack; drop --nats-url", c.Scenario))
		}
		if c.Namespace == "" {
			errs = append(errs, errors.New("--nats-url needs --namespace"))
		}
	}
	if c.Scenario == ScenarioEntity && c.Baseline {
		errs = append(errs, errors.New("--scenario entity compares entity with keyvalue requests in one run; drop --baseline"))
	}
	if c.Scenario == ScenarioMigrate && (c.Backend != "sqlite" || c.PostgresDSN == "") {
		errs = append(errs, errors.New("--scenario migrate moves a sqlite namespace to postgres: it needs --backend sqlite and --postgres-dsn (or PRISM_POSTGRES_DSN)"))
	}
	if err := errors.Join(errs...); err != nil {
		return fmt.Errorf("bench: %w", err)
	}
	return nil
}

// Run validates cfg, starts the embedded Prism (or connects to
// cfg.NATSURL), measures cfg's scenario and, with cfg.Baseline, the raw
// engines, printing progress lines to progress. It stops what it started
// before it returns. When ctx ends during a run, the report covers the
// time until then and the error is nil.
func Run(ctx context.Context, cfg Config, progress io.Writer) (*Report, error) {
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	if cfg.Logger == nil {
		cfg.Logger = slog.New(slog.DiscardHandler)
	}
	t, err := openBenchTarget(ctx, cfg)
	if err != nil {
		return nil, err
	}
	defer t.close(ctx)

	rep := newReport(cfg, t)
	stopProfile, err := startCPUProfile(cfg.CPUProfile)
	if err != nil {
		return nil, err
	}
	prism, err := runScenario(ctx, cfg, t, progress)
	stopProfile()
	if err != nil {
		return nil, err
	}
	rep.Runs = append(rep.Runs, prism)
	if cfg.Baseline && ctx.Err() == nil {
		raw, err := runBaselines(ctx, cfg, t, progress)
		if err != nil {
			return nil, fmt.Errorf("baseline: %w", err)
		}
		rep.Runs = append(rep.Runs, raw...)
		rep.Ratios = ratios(cfg.Scenario, prism, raw)
	}
	if ctx.Err() != nil {
		fmt.Fprintln(progress, "bench: interrupted; the result covers the time until then")
	}
	return rep, nil
}

// startCPUProfile starts a CPU profile into path ("": none) and returns
// what stops it.
func startCPUProfile(path string) (func(), error) {
	if path == "" {
		return func() {}, nil
	}
	f, err := os.Create(path)
	if err != nil {
		return nil, fmt.Errorf("cpu profile: %w", err)
	}
	if err := pprof.StartCPUProfile(f); err != nil {
		f.Close()
		return nil, fmt.Errorf("cpu profile: %w", err)
	}
	return func() { pprof.StopCPUProfile(); f.Close() }, nil
}
