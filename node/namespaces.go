package node

import (
	"context"
	"fmt"
	"log/slog"
	"sync"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
	"github.com/prometheus/client_golang/prometheus"
	"go.opentelemetry.io/otel/trace"

	"github.com/prism-data/prism/backends/natskv"
	"github.com/prism-data/prism/backends/neptune"
	"github.com/prism-data/prism/backends/postgres"
	"github.com/prism-data/prism/backends/sqlite"
	"github.com/prism-data/prism/gateway"
	"github.com/prism-data/prism/namespaces"
	"github.com/prism-data/prism/projectors"
	prismv1 "github.com/prism-data/prism/proto/prism/v1"
)

// kvStore is a backend serving a KeyValue namespace.
type kvStore interface {
	projectors.KeyValueTarget
	gateway.KeyValueReader
	SweepExpired(ctx context.Context) (int64, error)
	Close() error
}

// tsStore is a backend serving a TimeSeries namespace.
type tsStore interface {
	projectors.TimeSeriesTarget
	gateway.TimeSeriesReader
	SweepOlderThan(ctx context.Context, cutoff time.Time) (int64, error)
	Close() error
}

// enStore is a backend serving an Entity namespace.
type enStore interface {
	projectors.EntityTarget
	gateway.EntityReader
	SyncEntityIndexes(ctx context.Context, names []string) ([]*prismv1.EntityIndexState, error)
	BuildEntityIndex(ctx context.Context, b sqlite.IndexBuild) (*prismv1.EntityIndexState, error)
	Close() error
}

// grStore is a backend serving a Graph namespace.
type grStore interface {
	projectors.GraphTarget
	gateway.GraphReader
	Close() error
}

var (
	_ grStore = (*sqlite.Store)(nil)
	_ grStore = (*postgres.Store)(nil)
	_ grStore = (*neptune.Store)(nil)
	_ enStore = (*sqlite.Store)(nil)
	_ enStore = (*postgres.Store)(nil)
	_ kvStore = (*sqlite.Store)(nil)
	_ tsStore = (*sqlite.Store)(nil)
	_ kvStore = (*postgres.Store)(nil)
	_ tsStore = (*postgres.Store)(nil)
	_ kvStore = (*natskv.Store)(nil)
)

// served is one running namespace: its targets (the primary and, during
// a migration, the new one) and what the gateway serves it with.
type served struct {
	entry namespaces.Registered
	// ns is entry.Namespace with the backend resolved.
	ns   namespaces.Namespace
	plan namespaces.Plan
	// targets are the running targets by name.
	targets map[string]*targetRun
	// primary names the namespace's primary target (entry.PrimaryTarget);
	// reading the one reads come from (the new target after a cutover).
	primary, reading string
	// migration is the migration state the targets were last set up for.
	migration namespaces.MigrationState
	// verifySub answers migrate verify for the namespace.
	verifySub *nats.Subscription
	// stopCompactor ends the background compaction of a keyvalue stream
	// and waits for it; nil without one.
	stopCompactor func()
}

// primaryRun returns the run of the primary target.
func (sv *served) primaryRun() *targetRun { return sv.targets[sv.primary] }

// failure is a registered namespace this process could not serve (or not
// all of its revision); it is retried every retryFailedEvery.
type failure struct {
	entry namespaces.Registered
	err   error
}

// namespaceSet serves the namespaces of the registry: it opens a namespace
// when it is applied, reconfigures it live when it changes and stops it
// when it is deleted (dropping its data when purged), and runs the
// TTL/retention sweeper. It is safe for concurrent use.
type namespaceSet struct {
	// sec keeps the policies of the registered namespaces; nil in
	// development mode.
	sec     *security
	auditor namespaces.AdminAuditor // nil: no audit (tests)
	log     *slog.Logger
	cfg     Config
	js      jetstream.JetStream
	gw      *gateway.Gateway
	metrics prometheus.Registerer
	tracer  trace.TracerProvider
	cluster namespaces.Cluster

	mu     sync.Mutex
	served map[string]*served
	failed map[string]failure

	changes *prometheus.CounterVec
	// reg is the registry followed; set by follow. Migration states this
	// process reaches are recorded there.
	reg *namespaces.Registry
	// owner names this process on the projector consumers (instanceID).
	owner string

	// ctx ends when stop is called; the registry follower and the sweeper
	// run until then.
	ctx    context.Context
	cancel context.CancelFunc
	wg     sync.WaitGroup
}

func newNamespaceSet(log *slog.Logger, cfg Config, js jetstream.JetStream, gw *gateway.Gateway, reg prometheus.Registerer, tp trace.TracerProvider, c namespaces.Cluster, owner string) (*namespaceSet, error) {
	ctx, cancel := context.WithCancel(context.Background())
	s := &namespaceSet{log: log, cfg: cfg, js: js, gw: gw, metrics: reg, tracer: tp, cluster: c, owner: owner, served: map[string]*served{}, failed: map[string]failure{}, ctx: ctx, cancel: cancel}
	s.changes = prometheus.NewCounterVec(prometheus.CounterOpts{
		Name: "prism_registry_changes_total",
		Help: "Namespace registry changes this process applied, by op (put, delete, purge) and result (ok, failed).",
	}, []string{"op", "result"})
	count := func(state string) prometheus.GaugeFunc {
		return prometheus.NewGaugeFunc(prometheus.GaugeOpts{
			Name: "prism_namespaces", ConstLabels: prometheus.Labels{"state": state},
			Help: "Registered namespaces by state in this process: serving, or failed to open (retried every 5s).",
		}, func() float64 {
			s.mu.Lock()
			defer s.mu.Unlock()
			if state == "failed" {
				return float64(len(s.failed))
			}
			return float64(len(s.served))
		})
	}
	if reg != nil {
		for _, c := range []prometheus.Collector{s.changes, count("serving"), count("failed")} {
			if err := reg.Register(c); err != nil {
				cancel()
				return nil, fmt.Errorf("register metrics: %w", err)
			}
		}
	}
	return s, nil
}

// stop stops following the registry and the sweeper, then the projectors
// (each commits and acknowledges its batch), then closes the backends. Call
// it after the gateway drained.
func (s *namespaceSet) stop(ctx context.Context) {
	s.cancel()
	s.wg.Wait()
	for _, sv := range s.snapshot() {
		s.close(ctx, sv)
	}
}
