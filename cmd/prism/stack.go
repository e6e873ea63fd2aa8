package main

import (
	"context"
	"fmt"
	"log/slog"
	"os"
	"time"

	"github.com/nats-io/nats-server/v2/server"
	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"

	"github.com/prism-data/prism/gateway"
)

// stack is a running Prism: NATS (embedded or external), the gateway, and
// every namespace's backend and projector. serve runs one until a signal;
// bench runs one for the length of a benchmark.
type stack struct {
	log        *slog.Logger
	reg        *prometheus.Registry
	nc         *nats.Conn
	ns         *server.Server // nil with --nats-url
	js         jetstream.JetStream
	gw         *gateway.Gateway
	set        *namespaceSet
	namespaces []gateway.Namespace
	drain      time.Duration
}

// startStack starts Prism as f describes, serving namespaces. On error,
// whatever was started is stopped again.
func startStack(ctx context.Context, f serveFlags, log *slog.Logger, namespaces []gateway.Namespace) (_ *stack, err error) {
	if err := os.MkdirAll(f.dataDir, 0o755); err != nil {
		return nil, fmt.Errorf("--data-dir: %w", err)
	}
	s := &stack{log: log, namespaces: namespaces, drain: f.drainTimeout, set: &namespaceSet{log: log}}
	s.reg = prometheus.NewRegistry()
	s.reg.MustRegister(collectors.NewGoCollector(), collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}))

	if s.nc, s.ns, err = connectNATS(f, log); err != nil {
		return nil, err
	}
	defer func() {
		if err != nil {
			s.Close(context.WithoutCancel(ctx))
		}
	}()
	if s.js, err = jetstream.New(s.nc); err != nil {
		return nil, fmt.Errorf("jetstream: %w", err)
	}
	if s.gw, err = gateway.New(s.nc, gateway.WithLogger(log), gateway.WithRegisterer(s.reg)); err != nil {
		return nil, err
	}
	setupCtx, cancel := context.WithTimeout(ctx, 30*time.Second)
	defer cancel()
	for _, n := range namespaces {
		if err := s.set.open(setupCtx, f, s.js, s.gw, s.reg, n); err != nil {
			return nil, fmt.Errorf("namespace %s: %w", n.Name, err)
		}
	}
	if err := s.gw.Start(ctx); err != nil {
		return nil, err
	}
	s.set.startSweeper(f.sweepInterval)
	return s, nil
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
	if s.gw != nil {
		if err := s.gw.Drain(ctx); err != nil {
			s.log.Error("drain gateway", "err", err)
		}
	}
	s.set.stop(ctx)
	if s.nc != nil {
		s.nc.Close()
	}
	if s.ns != nil {
		s.ns.Shutdown()
		s.ns.WaitForShutdown()
	}
}
