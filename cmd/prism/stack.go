package main

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"io/fs"
	"log/slog"
	"net/url"
	"os"
	"path"
	"path/filepath"
	"strings"
	"time"

	"github.com/nats-io/nats-server/v2/server"
	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"
	"go.opentelemetry.io/otel"
	"go.opentelemetry.io/otel/exporters/otlp/otlptrace/otlptracehttp"
	"go.opentelemetry.io/otel/sdk/resource"
	sdktrace "go.opentelemetry.io/otel/sdk/trace"
	semconv "go.opentelemetry.io/otel/semconv/v1.43.0"
	"go.opentelemetry.io/otel/trace"
	"go.opentelemetry.io/otel/trace/noop"

	"github.com/prism-data/prism/gateway"
	"github.com/prism-data/prism/namespaces"
)

// stack is a running Prism: NATS (embedded or external), the gateway, and
// every namespace's backend and projector. serve runs one until a signal;
// bench runs one for the length of a benchmark.
type stack struct {
	log   *slog.Logger
	reg   *prometheus.Registry
	nc    *nats.Conn
	ns    *server.Server // nil with --nats-url
	js    jetstream.JetStream
	gw    *gateway.Gateway
	admin *namespaces.Admin
	set   *namespaceSet
	drain time.Duration
	// tracer is where the gateway and projectors send spans: a no-op
	// provider unless --otlp-endpoint is set, and then sdk is the same
	// provider, shut down (flushed) last by Close.
	tracer trace.TracerProvider
	sdk    *sdktrace.TracerProvider
}

// seed is what a stack applies to the registry when it starts.
type seed struct {
	namespaces []namespaces.Namespace
	// onlyIfNew applies them only when the registry did not exist yet
	// (the demo namespace of a new data directory).
	onlyIfNew bool
	// by is recorded as who applied them.
	by string
}

// startStack starts Prism as f describes: it applies sd to the namespace
// registry, serves every registered namespace and follows the registry
// for changes. On error, whatever was started is stopped again.
func startStack(ctx context.Context, f serveFlags, log *slog.Logger, sd seed) (_ *stack, err error) {
	if err := os.MkdirAll(f.dataDir, 0o755); err != nil {
		return nil, fmt.Errorf("--data-dir: %w", err)
	}
	s := &stack{log: log, drain: f.drainTimeout, tracer: noop.NewTracerProvider()}
	s.reg = prometheus.NewRegistry()
	s.reg.MustRegister(collectors.NewGoCollector(), collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}))
	if f.otlpEndpoint != "" {
		if s.sdk, err = newTracerProvider(ctx, f.otlpEndpoint, log); err != nil {
			return nil, err
		}
		s.tracer = s.sdk
	}

	defer func() {
		if err != nil {
			s.Close(context.WithoutCancel(ctx))
		}
	}()
	if s.nc, s.ns, err = connectNATS(f, log); err != nil {
		return nil, err
	}
	if s.js, err = jetstream.New(s.nc); err != nil {
		return nil, fmt.Errorf("jetstream: %w", err)
	}
	if s.gw, err = gateway.New(s.nc, gateway.WithLogger(log), gateway.WithRegisterer(s.reg), gateway.WithTracerProvider(s.tracer)); err != nil {
		return nil, err
	}
	setupCtx, cancel := context.WithTimeout(ctx, 30*time.Second)
	defer cancel()
	cluster := f.cluster()
	// The registry is as safe as the most replicated namespace can be.
	replicas := 1
	if cluster.Nodes >= 3 {
		replicas = 3
	}
	reg, created, err := namespaces.OpenRegistry(setupCtx, s.js, replicas)
	if err != nil {
		return nil, err
	}
	if err := applySeed(setupCtx, reg, cluster, sd, created, log); err != nil {
		return nil, err
	}
	owner, err := instanceID(f.dataDir)
	if err != nil {
		return nil, err
	}
	if s.set, err = newNamespaceSet(log, f, s.js, s.gw, s.reg, s.tracer, cluster, owner); err != nil {
		return nil, err
	}
	// Not setupCtx: each namespace's open is bounded by openTimeout, and
	// one that fails is retried, so this waits at most that per namespace.
	if err := s.set.follow(ctx, reg); err != nil {
		return nil, err
	}
	if err := s.gw.Start(ctx); err != nil {
		return nil, err
	}
	if s.admin, err = namespaces.NewAdmin(s.nc, reg, namespaces.AdminConfig{Cluster: cluster, Status: s.set.status, Logger: log}); err != nil {
		return nil, err
	}
	if err := s.admin.Start(); err != nil {
		return nil, err
	}
	s.set.startSweeper(f.sweepInterval)
	return s, nil
}

// instanceID names this Prism process for the projector consumers it
// owns: host/id, id kept in <data-dir>/instance-id so that a restart on the
// same data directory is the same owner (projectors.WithOwner).
func instanceID(dataDir string) (string, error) {
	path := filepath.Join(dataDir, "instance-id")
	id, err := os.ReadFile(path)
	if errors.Is(err, fs.ErrNotExist) {
		b := make([]byte, 8)
		if _, err := rand.Read(b); err != nil {
			return "", err
		}
		id = []byte(hex.EncodeToString(b))
		if err := os.WriteFile(path, id, 0o644); err != nil {
			return "", fmt.Errorf("--data-dir: %w", err)
		}
	} else if err != nil {
		return "", fmt.Errorf("--data-dir: %w", err)
	}
	host, _ := os.Hostname()
	return host + "/" + strings.TrimSpace(string(id)), nil
}

// applySeed applies sd's namespaces to reg like prism apply: new ones are
// created, changed ones updated, unchanged ones left alone. A namespace
// that cannot be applied (invalid, needs a migration) stops the start.
func applySeed(ctx context.Context, reg *namespaces.Registry, c namespaces.Cluster, sd seed, created bool, log *slog.Logger) error {
	if sd.onlyIfNew && !created {
		return nil
	}
	for _, n := range sd.namespaces {
		plan, err := namespaces.PlanApply(ctx, reg, c, n)
		if err != nil {
			return fmt.Errorf("apply namespace %s: %w", n.Name, err)
		}
		res, err := namespaces.Apply(ctx, reg, c, n, plan.Revision, sd.by)
		if err != nil {
			return fmt.Errorf("apply namespace %s: %w", n.Name, err)
		}
		if res.Action != namespaces.ActionUnchanged {
			log.Info("namespace applied", "namespace", n.Name, "action", res.Action, "revision", res.Revision, "by", sd.by)
		}
	}
	return nil
}

// URL is the NATS URL clients use to reach the stack.
func (s *stack) URL(f serveFlags) string {
	if s.ns != nil {
		return s.ns.ClientURL()
	}
	return f.natsURL
}

// Close drains the gateway (in-flight requests finish), stops the
// projectors (each commits and acknowledges its batch), closes the backends
// and NATS, bounded by the drain timeout.
func (s *stack) Close(ctx context.Context) {
	ctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), s.drain)
	defer cancel()
	if s.admin != nil {
		if err := s.admin.Drain(); err != nil {
			s.log.Warn("drain admin", "err", err)
		}
	}
	if s.gw != nil {
		if err := s.gw.Drain(ctx); err != nil {
			s.log.Error("drain gateway", "err", err)
		}
	}
	if s.set != nil {
		s.set.stop(ctx)
	}
	if s.nc != nil {
		s.nc.Close()
	}
	if s.ns != nil {
		s.ns.Shutdown()
		s.ns.WaitForShutdown()
	}
	if s.sdk != nil {
		// Flush the spans of the drain too, even when draining used up the
		// timeout.
		fctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 5*time.Second)
		defer cancel()
		if err := s.sdk.Shutdown(fctx); err != nil {
			s.log.Warn("flush traces", "err", err)
		}
	}
}

// newTracerProvider returns a tracer provider that batches spans to the
// OTLP/HTTP collector at endpoint (a base URL: /v1/traces is appended
// unless it is already there). The SDK reads the standard OTEL_* variables
// (sampler, batch processor, span limits, exporter headers and timeout,
// resource attributes); service.name is "prism" unless OTEL_SERVICE_NAME or
// OTEL_RESOURCE_ATTRIBUTES says otherwise. Export errors are logged at warn.
func newTracerProvider(ctx context.Context, endpoint string, log *slog.Logger) (*sdktrace.TracerProvider, error) {
	u, err := url.Parse(endpoint)
	if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
		return nil, fmt.Errorf("--otlp-endpoint %q: want the http(s) URL of an OTLP/HTTP collector, e.g. http://127.0.0.1:4318", endpoint)
	}
	if !strings.HasSuffix(u.Path, "/v1/traces") {
		u.Path = path.Join("/", u.Path, "v1/traces")
	}
	otel.SetErrorHandler(otel.ErrorHandlerFunc(func(err error) { log.Warn("opentelemetry", "err", err) }))
	exp, err := otlptracehttp.New(ctx, otlptracehttp.WithEndpointURL(u.String()))
	if err != nil {
		return nil, fmt.Errorf("--otlp-endpoint: %w", err)
	}
	res, err := resource.New(ctx,
		resource.WithAttributes(semconv.ServiceName("prism"), semconv.ServiceVersion(version)),
		resource.WithTelemetrySDK(),
		resource.WithFromEnv(), // last: the environment overrides
	)
	if err != nil && !errors.Is(err, resource.ErrPartialResource) {
		return nil, fmt.Errorf("trace resource: %w", err)
	}
	log.Info("exporting traces", "otlp_endpoint", u.String())
	return sdktrace.NewTracerProvider(sdktrace.WithBatcher(exp), sdktrace.WithResource(res)), nil
}
