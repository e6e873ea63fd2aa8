package node

import (
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/nats-io/nats.go/jetstream"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/promhttp"
	dto "github.com/prometheus/client_model/go"

	"github.com/prism-data/prism/subjects"
)

// readyCheckTimeout bounds each check of /readyz: a backend or JetStream
// that takes longer is reported as not ready.
const readyCheckTimeout = 2 * time.Second

// health answers /healthz and /readyz, and /metrics from the stack's
// registry. The stack is set once it has started and cleared when it
// begins to shut down; its registry stays, so the last scrape before exit
// still sees the final counts.
type health struct {
	st  atomic.Pointer[Node]
	reg atomic.Pointer[prometheus.Registry]
}

// ready makes /readyz check st, and /metrics serve st's registry.
func (h *health) ready(st *Node) {
	h.reg.Store(st.reg)
	h.st.Store(st)
}

// draining makes /readyz answer 503 from now on.
func (h *health) draining() { h.st.Store(nil) }

// Gather implements prometheus.Gatherer: nothing until the stack started.
func (h *health) Gather() ([]*dto.MetricFamily, error) {
	if reg := h.reg.Load(); reg != nil {
		return reg.Gather()
	}
	return nil, nil
}

// healthz reports that the process is alive and serving HTTP.
func (h *health) healthz(w http.ResponseWriter, _ *http.Request) {
	w.Header().Set("Content-Type", "text/plain; charset=utf-8")
	fmt.Fprintln(w, "ok")
}

// readyz answers 200 once NATS is connected, every namespace stream, the
// dead-letter stream and every projector's consumer exist, every backend
// answers a checkpoint read and the audit stores its records; otherwise
// 503 with one line per thing that is not ready. A ready reply says
// whether authentication is on.
func (h *health) readyz(w http.ResponseWriter, r *http.Request) {
	w.Header().Set("Content-Type", "text/plain; charset=utf-8")
	st := h.st.Load()
	var problems []string
	if st == nil {
		problems = []string{"prism is starting or shutting down"}
	} else {
		problems = st.notReady(r.Context())
	}
	if len(problems) > 0 {
		w.WriteHeader(http.StatusServiceUnavailable)
		fmt.Fprintln(w, "not ready:")
		for _, p := range problems {
			fmt.Fprintln(w, "-", p)
		}
		return
	}
	fmt.Fprintln(w, "ready")
	fmt.Fprintln(w, st.authMode())
	fmt.Fprintln(w, st.piiMode())
}

// notReady runs the readiness checks concurrently, each bounded by
// readyCheckTimeout, and returns what failed, in a stable order.
func (n *Node) notReady(ctx context.Context) []string {
	if status := n.nc.Status(); !n.nc.IsConnected() {
		return []string{"NATS: not connected (" + status.String() + ")"}
	}
	type check struct {
		what string
		run  func(ctx context.Context) error
	}
	checks := []check{{"stream " + subjects.DeadLetterStream, func(ctx context.Context) error {
		_, err := n.js.Stream(ctx, subjects.DeadLetterStream)
		return err
	}}, {"audit", func(context.Context) error { return n.audit.Healthy() }}}
	for _, sv := range n.set.snapshot() {
		n.set.mu.Lock()
		run := sv.primaryRun()
		n.set.mu.Unlock()
		stream, consumer := subjects.Stream(sv.ns.Name), consumerOf(run.target)
		prefix := "namespace " + sv.ns.Name + ": "
		checks = append(checks,
			check{prefix + "stream " + stream, func(ctx context.Context) error {
				_, err := n.js.Stream(ctx, stream)
				return err
			}},
			check{prefix + "projector consumer " + consumer, func(ctx context.Context) error {
				_, err := n.js.Consumer(ctx, stream, consumer)
				return err
			}},
			check{prefix + "backend " + run.target.Backend, func(ctx context.Context) error {
				_, err := run.checkpoint(ctx)
				return err
			}},
		)
	}
	errs := make([]error, len(checks))
	var wg sync.WaitGroup
	for i, c := range checks {
		wg.Go(func() {
			cctx, cancel := context.WithTimeout(ctx, readyCheckTimeout)
			defer cancel()
			errs[i] = c.run(cctx)
		})
	}
	wg.Wait()
	var problems []string
	for i, err := range errs {
		if err == nil {
			continue
		}
		if errors.Is(err, jetstream.ErrStreamNotFound) || errors.Is(err, jetstream.ErrConsumerNotFound) {
			problems = append(problems, checks[i].what+": does not exist")
			continue
		}
		problems = append(problems, checks[i].what+": "+oneLine(err.Error()))
	}
	return problems
}

func oneLine(s string) string { return strings.ReplaceAll(s, "\n", " ") }

// serveHTTP serves /metrics, /healthz and /readyz of h on addr until the
// returned server is closed. /healthz answers from the start; /metrics and
// /readyz wait for h.ready.
//
// With tc (authentication on) it serves HTTPS and requires a client
// certificate verified against tc's client CAs: metrics and readiness
// say what a deployment runs, so they are not for anyone.
func serveHTTP(addr string, tc *tls.Config, h *health, log *slog.Logger) (*http.Server, net.Addr, error) {
	l, err := net.Listen("tcp", addr)
	if err != nil {
		return nil, nil, fmt.Errorf("--http-listen %s: %w", addr, err)
	}
	scheme := "http://"
	if tc != nil {
		l, scheme = tls.NewListener(l, tc), "https://"
	}
	mux := http.NewServeMux()
	mux.Handle("GET /metrics", promhttp.HandlerFor(h, promhttp.HandlerOpts{}))
	mux.HandleFunc("GET /healthz", h.healthz)
	mux.HandleFunc("GET /readyz", h.readyz)
	srv := &http.Server{Handler: mux, ReadHeaderTimeout: 5 * time.Second}
	go func() {
		if err := srv.Serve(l); err != nil && !errors.Is(err, http.ErrServerClosed) {
			log.Error("http server", "err", err)
		}
	}()
	base := scheme + l.Addr().String()
	log.Info("http", "metrics", base+"/metrics", "healthz", base+"/healthz", "readyz", base+"/readyz")
	return srv, l.Addr(), nil
}

// authMode is the line /readyz reports about authentication.
func (n *Node) authMode() string {
	if n.sm == nil {
		return "auth: off (development mode: open to anyone who reaches the listeners, which are on loopback only)"
	}
	return "auth: on (auth callout; every request authorized and audited)"
}
