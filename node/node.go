package node

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"io/fs"
	"log/slog"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"time"

	"github.com/nats-io/nats-server/v2/server"
	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"
	sdktrace "go.opentelemetry.io/otel/sdk/trace"
	"go.opentelemetry.io/otel/trace"
	"go.opentelemetry.io/otel/trace/noop"

	"github.com/prism-data/prism/auth"
	"github.com/prism-data/prism/auth/audit"
	"github.com/prism-data/prism/gateway"
	"github.com/prism-data/prism/namespaces"
	"github.com/prism-data/prism/pii"
	prismv1 "github.com/prism-data/prism/proto/prism/v1"
	"github.com/prism-data/prism/status"
)

// Node is a running Prism: NATS (embedded or external), the gateway, the
// admin API, and every registered namespace's backends and projectors,
// with the registry follower, the TTL sweeper and the compactors. prism
// serve runs one until a signal; bench and tests run one for as long as
// they need it. Its methods are safe for concurrent use.
type Node struct {
	log   *slog.Logger
	cfg   Config
	reg   *prometheus.Registry
	nc    *nats.Conn
	ownNC bool           // nc was opened by the Node, which closes it
	ns    *server.Server // nil unless embedded
	js    jetstream.JetStream
	gw    *gateway.Gateway
	admin *namespaces.Admin
	nsReg *namespaces.Registry
	set   *namespaceSet
	// health serves /healthz, /readyz and /metrics when cfg.HTTPListen is
	// set; http is its server.
	health   *health
	http     *http.Server
	httpAddr net.Addr
	// tracer is where the gateway and projectors send spans: a no-op
	// provider unless OTLPEndpoint is set, and then sdk is the same
	// provider, shut down (flushed) last by Close.
	tracer trace.TracerProvider
	sdk    *sdktrace.TracerProvider

	// sm and sec are the authentication material and the policies, nil
	// in development mode; callout admits application connections.
	sm      *secureMaterial
	sec     *security
	callout *auth.Callout
	// audit stores the audit records of every request.
	audit *audit.Writer
	// keyring holds the PII keys; devKEK says its KEK is the development
	// key in the data directory.
	keyring *pii.Keyring
	devKEK  bool

	closeOnce sync.Once
	closeErr  error
}

// Start starts Prism as c describes: it connects to NATS (or embeds a
// server), applies seed to the namespace registry, serves every
// registered namespace and follows the registry for changes until Close.
// It returns once the namespaces registered at the start are open (or
// recorded as failed, and retried). On error, whatever was started is
// stopped again. log receives the Node's log lines; nil discards them.
//
// It fails on a Config that does not validate, a data directory it cannot
// write, a NATS server it cannot reach or embed (a port taken), a
// registry it cannot open, or a seed namespace that cannot be applied
// (invalid, or a change that needs a migration).
func Start(ctx context.Context, c Config, log *slog.Logger, seed Seed) (_ *Node, err error) {
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	if c, err = c.withDefaults(); err != nil {
		return nil, err
	}
	if err := os.MkdirAll(c.DataDir, 0o755); err != nil {
		return nil, fmt.Errorf("--data-dir: %w", err)
	}
	n := &Node{log: log, cfg: c, tracer: noop.NewTracerProvider(), health: &health{}}
	defer func() {
		if err != nil {
			_ = n.Close(context.WithoutCancel(ctx))
		}
	}()
	if c.AuthConfig != "" {
		if n.sm, err = newSecureMaterial(c.AuthConfig); err != nil {
			return nil, err
		}
		n.sec = newSecurity(n.sm.file.Admins)
	} else {
		log.Warn("authentication is off: anyone who reaches this process's listeners may read, write and administer every namespace; development only (docs/security.md)")
	}
	// The HTTP listener comes first: /healthz answers while the node
	// starts, and /readyz says it is not ready yet.
	if c.HTTPListen != "" {
		tc, err := n.sm.httpTLS()
		if err != nil {
			return nil, err
		}
		if n.http, n.httpAddr, err = serveHTTP(c.HTTPListen, tc, n.health, log); err != nil {
			return nil, err
		}
	}
	n.reg = prometheus.NewRegistry()
	n.reg.MustRegister(collectors.NewGoCollector(), collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}))
	if c.OTLPEndpoint != "" {
		if n.sdk, err = newTracerProvider(ctx, c.OTLPEndpoint, c.Version, log); err != nil {
			return nil, err
		}
		n.tracer = n.sdk
	}
	if n.nc, n.ns, n.ownNC, err = connectNATS(c, n.sm, log); err != nil {
		return nil, err
	}
	if n.js, err = jetstream.New(n.nc); err != nil {
		return nil, fmt.Errorf("jetstream: %w", err)
	}
	n.reg.MustRegister(newDLQDepth(n.js))
	setupCtx, cancel := context.WithTimeout(ctx, 30*time.Second)
	defer cancel()
	cluster := c.cluster()
	// The registry is as safe as the most replicated namespace can be.
	replicas := 1
	if cluster.Nodes >= 3 {
		replicas = 3
	}
	owner, err := instanceID(c.DataDir)
	if err != nil {
		return nil, err
	}
	if n.audit, err = startAudit(setupCtx, n.js, c, replicas, owner, n.reg, log); err != nil {
		return nil, err
	}
	if n.keyring, n.devKEK, err = startKeyring(setupCtx, n.js, c, replicas, log); err != nil {
		return nil, err
	}
	gwOpts := []gateway.Option{gateway.WithLogger(log), gateway.WithRegisterer(n.reg), gateway.WithTracerProvider(n.tracer), gateway.WithAuditor(auditor{n.audit}), gateway.WithKeyring(n.keyring)}
	if n.sec != nil {
		gwOpts = append(gwOpts, gateway.WithSecurity(n.sec))
	}
	gwOpts = append(gwOpts, gateway.WithMaxInFlight(c.MaxInFlight), gateway.WithMaxInFlightBytes(c.MaxInFlightBytes), gateway.WithMaxChunkedValueBytes(c.MaxValueBytes))
	if n.gw, err = gateway.New(n.nc, gwOpts...); err != nil {
		return nil, err
	}
	type opened struct {
		reg     *namespaces.Registry
		created bool
	}
	o, err := retrySetup(setupCtx, func(ctx context.Context) (opened, error) {
		reg, created, err := namespaces.OpenRegistry(ctx, n.js, replicas)
		return opened{reg, created}, err
	})
	if err != nil {
		return nil, err
	}
	reg, created := o.reg, o.created
	n.nsReg = reg
	if err := applySeed(setupCtx, reg, cluster, seed, created, log); err != nil {
		return nil, err
	}
	if n.set, err = newNamespaceSet(log, c, n.js, n.gw, n.reg, n.tracer, cluster, owner); err != nil {
		return nil, err
	}
	n.set.sec, n.set.auditor = n.sec, auditor{n.audit}
	// Not setupCtx: each namespace's open is bounded by openTimeout, and
	// one that fails is retried, so this waits at most that per namespace.
	if err := n.set.follow(ctx, reg); err != nil {
		return nil, err
	}
	if n.sm != nil {
		if n.callout, err = startCallout(ctx, n.nc, n.sm, n.sec, auditor{n.audit}, n.reg, log); err != nil {
			return nil, err
		}
	}
	// A projector-only process answers no request: the gateways of the
	// other processes do.
	if c.Role != RoleProjector {
		if err := n.gw.Start(ctx); err != nil {
			return nil, err
		}
	}
	adminCfg := namespaces.AdminConfig{Cluster: cluster, Status: n.set.status, CheckTarget: c.checkTarget, Logger: log, Auditor: auditor{n.audit}, Keys: n.keyring}
	if n.sec != nil {
		adminCfg.Security = n.sec
	}
	if n.admin, err = namespaces.NewAdmin(n.nc, reg, adminCfg); err != nil {
		return nil, err
	}
	if err := n.admin.Start(); err != nil {
		return nil, err
	}
	n.set.startSweeper(c.SweepInterval)
	n.health.ready(n)
	return n, nil
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
func applySeed(ctx context.Context, reg *namespaces.Registry, c namespaces.Cluster, sd Seed, created bool, log *slog.Logger) error {
	if sd.OnlyIfNew && !created {
		return nil
	}
	for _, n := range sd.Namespaces {
		// Processes started together with the same --config apply the same
		// files at once: one of them meets the other's revision (CONFLICT)
		// and plans again, against what is now stored.
		var res namespaces.ApplyResult
		var err error
		for attempt := 0; ; attempt++ {
			var plan namespaces.ApplyResult
			if plan, err = namespaces.PlanApply(ctx, reg, c, n); err == nil {
				res, err = namespaces.Apply(ctx, reg, c, n, plan.Revision, sd.By)
			}
			if err == nil || attempt == 3 || status.Convert(err).Code != prismv1.Code_CONFLICT {
				break
			}
		}
		if err != nil {
			return fmt.Errorf("apply namespace %s: %w", n.Name, err)
		}
		if res.Action != namespaces.ActionUnchanged {
			log.Info("namespace applied", "namespace", n.Name, "action", res.Action, "revision", res.Revision, "by", sd.By)
		}
	}
	return nil
}

// URL is the NATS URL clients use to reach the node: the embedded
// server's client URL, else Config.NATSURL, else the URL Config.Conn is
// connected to ("" for an in-process connection).
func (n *Node) URL() string {
	if n.ns != nil {
		return n.ns.ClientURL()
	}
	if n.cfg.NATSURL != "" {
		return n.cfg.NATSURL
	}
	return n.nc.ConnectedUrl()
}

// HTTPAddr is the address /healthz, /readyz and /metrics are served on
// (Config.HTTPListen with its port resolved); "" without HTTPListen.
func (n *Node) HTTPAddr() string {
	if n.httpAddr == nil {
		return ""
	}
	return n.httpAddr.String()
}

// Conn is the node's NATS connection (Config.Conn when one was given).
func (n *Node) Conn() *nats.Conn { return n.nc }

// JetStream is a JetStream context on the node's connection.
func (n *Node) JetStream() jetstream.JetStream { return n.js }

// Server is the embedded NATS server; nil when the node uses an external
// one.
func (n *Node) Server() *server.Server { return n.ns }

// Registry is the namespace registry the node follows.
func (n *Node) Registry() *namespaces.Registry { return n.nsReg }

// Metrics is the Prometheus registry of the node's metrics (the one
// /metrics serves).
func (n *Node) Metrics() *prometheus.Registry { return n.reg }

// Config is the configuration the node runs with, defaults filled in.
func (n *Node) Config() Config { return n.cfg }

// Served returns the namespaces the node serves, in name order, each with
// its backend resolved.
func (n *Node) Served() []namespaces.Namespace {
	svs := n.set.snapshot()
	out := make([]namespaces.Namespace, len(svs))
	n.set.mu.Lock()
	defer n.set.mu.Unlock()
	for i, sv := range svs {
		out[i] = sv.ns
	}
	return out
}

// WaitApplied waits until the primary target of namespace ns applied the
// event at stream sequence seq, or ctx ends. It returns an error wrapping
// status.ErrNamespaceNotFound when the node does not serve ns.
func (n *Node) WaitApplied(ctx context.Context, ns string, seq uint64) error {
	n.set.mu.Lock()
	var w *swapWaiter
	if sv := n.set.served[ns]; sv != nil {
		w = sv.primaryRun().waiter
	}
	n.set.mu.Unlock()
	if w == nil {
		return fmt.Errorf("namespace %s: %w", ns, status.ErrNamespaceNotFound)
	}
	return w.WaitApplied(ctx, seq)
}

// ErrDrainTimeout is what Close returns (wrapped) when draining took
// longer than Config.DrainTimeout: the rest was stopped without waiting.
var ErrDrainTimeout = errors.New("drain timeout")

// Close stops the node: /readyz answers 503, the gateway drains
// (in-flight requests finish), the projectors stop (each commits and
// acknowledges its batch), the backends close, then NATS: the embedded
// server shuts down, a connection the node opened is closed (Config.Conn
// is left open). It is bounded by Config.DrainTimeout; when that runs out
// the rest is stopped without waiting and the error wraps
// ErrDrainTimeout. Close is idempotent: later calls return the first
// call's result.
func (n *Node) Close(ctx context.Context) error {
	n.closeOnce.Do(func() { n.closeErr = n.close(ctx) })
	return n.closeErr
}

func (n *Node) close(ctx context.Context) error {
	n.health.draining()
	ctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), n.cfg.DrainTimeout)
	defer cancel()
	var errs []error
	drained := make(chan struct{})
	go func() {
		defer close(drained)
		if n.admin != nil {
			if err := n.admin.Drain(); err != nil {
				n.log.Warn("drain admin", "err", err)
			}
		}
		if n.gw != nil {
			if err := n.gw.Drain(ctx); err != nil {
				n.log.Error("drain gateway", "err", err)
			}
		}
		if n.set != nil {
			n.set.stop(ctx)
		}
	}()
	select {
	case <-drained:
	case <-ctx.Done():
	}
	if ctx.Err() != nil {
		errs = append(errs, fmt.Errorf("close: %w (%s)", ErrDrainTimeout, n.cfg.DrainTimeout))
	}
	// The audit flushes what the drained requests recorded; the callout
	// stops admitting connections once nothing is served.
	if n.audit != nil {
		if err := n.audit.Close(context.WithoutCancel(ctx)); err != nil {
			errs = append(errs, fmt.Errorf("close the audit: %w", err))
		}
	}
	if n.keyring != nil {
		n.keyring.Close()
	}
	if n.callout != nil {
		if err := n.callout.Close(); err != nil {
			n.log.Warn("close the auth callout", "err", err)
		}
	}
	n.sm.close()
	if n.nc != nil && n.ownNC {
		n.nc.Close()
	}
	if n.ns != nil {
		n.ns.Shutdown()
		n.ns.WaitForShutdown()
	}
	if n.http != nil {
		errs = append(errs, n.http.Close())
	}
	if n.sdk != nil {
		// Flush the spans of the drain too, even when draining used up the
		// timeout.
		fctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 5*time.Second)
		defer cancel()
		if err := n.sdk.Shutdown(fctx); err != nil {
			n.log.Warn("flush traces", "err", err)
		}
	}
	return errors.Join(errs...)
}
