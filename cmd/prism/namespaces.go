package main

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"path/filepath"
	"sync"
	"time"

	"github.com/nats-io/nats.go/jetstream"
	"github.com/prometheus/client_golang/prometheus"
	"go.opentelemetry.io/otel/trace"

	"github.com/prism-data/prism/backends/natskv"
	"github.com/prism-data/prism/backends/postgres"
	"github.com/prism-data/prism/backends/sqlite"
	"github.com/prism-data/prism/gateway"
	"github.com/prism-data/prism/projectors"
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

var (
	_ kvStore = (*sqlite.Store)(nil)
	_ tsStore = (*sqlite.Store)(nil)
	_ kvStore = (*postgres.Store)(nil)
	_ tsStore = (*postgres.Store)(nil)
	_ kvStore = (*natskv.Store)(nil)
)

// served is one running namespace: its backend, projector and sweep.
type served struct {
	ns    gateway.Namespace
	store interface{ Close() error }
	proj  *projectors.Projector
	sweep func(ctx context.Context) (int64, error)
	// checkpoint reads the backend's checkpoint: /readyz's cheap probe.
	checkpoint func(ctx context.Context) (uint64, error)
}

// namespaceSet owns every served namespace and the TTL/retention sweeper.
type namespaceSet struct {
	log    *slog.Logger
	served []*served
	cancel context.CancelFunc
	wg     sync.WaitGroup
}

// open opens the backend of n, starts its projector and registers it with
// gw. On error, what was opened for n is closed.
func (s *namespaceSet) open(ctx context.Context, f serveFlags, js jetstream.JetStream, gw *gateway.Gateway, reg prometheus.Registerer, tp trace.TracerProvider, n gateway.Namespace) (err error) {
	if err := gateway.EnsureStreams(ctx, js, n); err != nil {
		return err
	}
	store, where, err := openBackend(ctx, f, js, n)
	if err != nil {
		return err
	}
	sv := &served{ns: n, store: store}
	defer func() {
		if err != nil {
			if sv.proj != nil {
				_ = sv.proj.Stop(context.WithoutCancel(ctx))
			}
			_ = store.Close()
		}
	}()
	popts := []projectors.Option{projectors.WithLogger(s.log), projectors.WithRegisterer(reg), projectors.WithTracerProvider(tp)}
	switch n.Abstraction {
	case gateway.AbstractionKeyValue:
		kv, ok := store.(kvStore)
		if !ok {
			return fmt.Errorf("backend %s does not serve the keyvalue abstraction", n.Backend)
		}
		if sv.proj, err = projectors.New(js, n.Name, n.Backend, kv, popts...); err != nil {
			return err
		}
		sv.sweep, sv.checkpoint = kv.SweepExpired, kv.Checkpoint
		if err := sv.proj.Start(ctx); err != nil {
			return fmt.Errorf("start projector: %w", err)
		}
		err = gw.AddNamespace(n, kv, sv.proj)
	case gateway.AbstractionTimeSeries:
		ts, ok := store.(tsStore)
		if !ok {
			return fmt.Errorf("backend %s does not serve the timeseries abstraction yet; use sqlite", n.Backend)
		}
		if sv.proj, err = projectors.NewTimeSeries(js, n.Name, n.Backend, ts, popts...); err != nil {
			return err
		}
		sv.checkpoint = ts.Checkpoint
		if keep := time.Duration(n.Retention); keep > 0 {
			sv.sweep = func(ctx context.Context) (int64, error) { return ts.SweepOlderThan(ctx, time.Now().Add(-keep)) }
		}
		if err := sv.proj.Start(ctx); err != nil {
			return fmt.Errorf("start projector: %w", err)
		}
		err = gw.AddTimeSeriesNamespace(n, ts, sv.proj)
	case gateway.AbstractionLog:
		err = openLog(ctx, js, gw, popts, sv)
	default:
		return fmt.Errorf("abstraction %q is not served", n.Abstraction)
	}
	if err != nil {
		return err
	}
	s.served = append(s.served, sv)
	s.log.Info("namespace ready", "namespace", n.Name, "abstraction", n.Abstraction, "backend", n.Backend, "consistency", n.Consistency, "storage", where)
	return nil
}

// openBackend opens n's primary backend and says where it keeps the data
// (never a password).
func openBackend(ctx context.Context, f serveFlags, js jetstream.JetStream, n gateway.Namespace) (interface{ Close() error }, string, error) {
	switch n.Backend {
	case "sqlite":
		path := filepath.Join(f.dataDir, "sqlite", n.Name+".db")
		if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
			return nil, "", err
		}
		st, err := sqlite.Open(ctx, path)
		return st, path, err
	case "postgres":
		dsn := n.Postgres.DSN
		if dsn == "" {
			dsn = f.postgresDSN
		}
		if dsn == "" {
			return nil, "", errors.New("backend postgres needs a connection string: set postgres.dsn in the namespace file, --postgres-dsn, or PRISM_POSTGRES_DSN")
		}
		st, err := postgres.Open(ctx, dsn, n.Name)
		return st, "postgres schema of " + n.Name, err
	case "natskv":
		st, err := natskv.Open(ctx, js, n.Name)
		return st, "NATS KV bucket " + natskv.BucketName(n.Name), err
	case "kafka":
		return openKafka(ctx, f, n)
	}
	return nil, "", fmt.Errorf("backend %q is not served", n.Backend)
}

// startSweeper deletes expired items and events past retention every
// interval until stop.
func (s *namespaceSet) startSweeper(every time.Duration) {
	if every <= 0 {
		return
	}
	ctx, cancel := context.WithCancel(context.Background())
	s.cancel = cancel
	s.wg.Add(1)
	go func() {
		defer s.wg.Done()
		t := time.NewTicker(every)
		defer t.Stop()
		for {
			select {
			case <-ctx.Done():
				return
			case <-t.C:
			}
			for _, sv := range s.served {
				if sv.sweep == nil {
					continue
				}
				if n, err := sv.sweep(ctx); err != nil && ctx.Err() == nil {
					s.log.Warn("sweep", "namespace", sv.ns.Name, "err", err)
				} else if n > 0 {
					s.log.Debug("sweep", "namespace", sv.ns.Name, "deleted", n)
				}
			}
		}
	}()
}

// stop stops the sweeper and the projectors (each commits and acknowledges
// its batch), then closes the backends. Call it after the gateway drained.
func (s *namespaceSet) stop(ctx context.Context) {
	if s.cancel != nil {
		s.cancel()
	}
	s.wg.Wait()
	for _, sv := range s.served {
		if err := sv.proj.Stop(ctx); err != nil {
			s.log.Error("stop projector", "namespace", sv.ns.Name, "err", err)
		}
		if err := sv.store.Close(); err != nil {
			s.log.Error("close backend", "namespace", sv.ns.Name, "err", err)
		}
	}
}
