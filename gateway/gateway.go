// Package gateway is Prism's front door. It answers NATS requests on
// prism.<ns>.write.<op> by validating them and storing them as CloudEvents
// on the namespace's JetStream stream, and requests on prism.<ns>.read.<op>
// by reading the namespace's primary projection, honouring the namespace's
// consistency.
//
// Bodies are protojson by default, binary protobuf when the request carries
// the header Content-Type: application/protobuf; replies use the request's
// encoding. Every error reply has the body prismv1.ErrorReply and the header
// Prism-Error-Code set to the code's name.
//
// A namespace has one abstraction: keyvalue (write.put, write.delete,
// write.mutate, read.get, read.scan), timeseries (write.append, read.range,
// read.search), log (write.append, read.fetch) or entity (write.put,
// write.delete, read.get, read.query; gateway/entity.go).
//
// Routing: a subject that is not prism.<ns>.<write|read>.<op> or names an
// invalid namespace gets INVALID_ARGUMENT; a valid name that is not
// registered gets NAMESPACE_NOT_FOUND; an operation the namespace's
// abstraction does not have (e.g. write.upsert, or write.put on a timeseries
// namespace) gets UNIMPLEMENTED, whose message names the namespace's
// abstraction and lists its operations. A request without a reply subject
// is handled all the same (a fire-and-forget write) and not answered.
//
// Every request has an id, the Prism-Request-Id header (HeaderRequestID)
// the client sent or a new one; the reply carries it, and so does every log
// line about the request. Logs hold no record ids, keys, values or error
// messages, which may quote them.
//
// Every request is an OpenTelemetry span, the child of the caller's W3C
// traceparent header, and a write's event carries that span's context in
// ce-traceparent; see WithTracerProvider and docs/adr/004-tracing.md.
//
// Every namespace also answers subscribe.open, subscribe.next and
// subscribe.close on prism.<ns>.subscribe.<op>: subscriptions to its
// stream for callers without JetStream (subscribe.go, ADR 017).
//
// The gateway imports no backend and no projector: it declares what it needs
// from them (KeyValueReader, TimeSeriesReader, LogReader, AppliedWaiter) and cmd/prism
// wires them in.
package gateway

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"slices"
	"strconv"
	"sync"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
	"github.com/nats-io/nuid"
	"go.opentelemetry.io/otel/trace"
	"google.golang.org/protobuf/proto"

	"github.com/prism-data/prism/namespaces"
	prismv1 "github.com/prism-data/prism/proto/prism/v1"
	"github.com/prism-data/prism/status"
	"github.com/prism-data/prism/subjects"
)

// KeyValueReader is what the query handlers need from a keyvalue
// namespace's primary target. Implementations must be safe for concurrent
// use. Their errors are answered UNAVAILABLE, except context errors and an
// InvalidArgumentError.
type KeyValueReader interface {
	// GetItems returns one page of a record's items. A record that does not
	// exist yields a response with Revision 0 and no items.
	GetItems(ctx context.Context, req *prismv1.GetRequest) (*prismv1.GetResponse, error)
	// ScanIDs returns one page of record ids in byte order.
	ScanIDs(ctx context.Context, req *prismv1.ScanRequest) (*prismv1.ScanResponse, error)
}

// AppliedWaiter reports the progress of a namespace's primary projection.
// Implementations must be safe for concurrent use.
type AppliedWaiter interface {
	// Applied is the highest stream sequence the projection has applied.
	Applied() uint64
	// WaitApplied returns nil once Applied() >= seq, or ctx's error when ctx
	// ends first.
	WaitApplied(ctx context.Context, seq uint64) error
}

const (
	// ioTimeout bounds the JetStream and backend calls of one request, on
	// top of the consistency wait.
	ioTimeout = 10 * time.Second
	// workerIdle is how long an idle worker waits for another request
	// before it exits.
	workerIdle = 10 * time.Second
)

// Gateway serves Prism's request subjects. Create it with New, register
// namespaces with AddNamespace, then Start it; Drain stops it.
type Gateway struct {
	nc      *nats.Conn
	js      jetstream.JetStream
	opts    options
	log     *slog.Logger
	metrics *metrics
	tracer  trace.Tracer

	namespaces namespaceTable
	// routes maps an abstraction to its operations by <kind>.<op>.
	routes map[string]map[string]route
	chain  handlerFunc

	streamsMu sync.Mutex
	streams   map[string]jetstream.Stream
	tokenKVs  map[string]jetstream.KeyValue // token buckets, by namespace
	tokenJS   jetstream.JetStream           // records tokens asynchronously
	values    valueCache                    // large values being read in slices

	runMu    sync.Mutex
	started  bool
	draining bool
	subs     []*nats.Subscription
	closed   []<-chan nats.SubStatus
	// fwdSubs are the forwarding subscriptions of the namespaces whose
	// reads this gateway serves (forward.go), by name.
	fwdSubs map[string]*nats.Subscription
	baseCtx context.Context
	cancel  context.CancelFunc
	// Requests are served by workers, at most maxInFlight of them; sem
	// holds one token per worker. work hands a request to an idle worker;
	// quit, closed once the subscriptions are closed, stops idle workers.
	sem      chan struct{}
	work     chan job
	quit     chan struct{}
	quitOnce sync.Once
	inflight sync.WaitGroup // one per worker and shadow comparison
	// shadowSem bounds the shadow comparisons running at once.
	shadowSem chan struct{}
	// shadowCounts holds the shadow comparisons by namespace and result
	// (ShadowReads), whether or not metrics are registered.
	shadowCounts sync.Map // namespace → *shadowCounters
	// adm is the process-wide admission state (limits.go).
	adm admission
}

// New returns a gateway that serves requests over nc once started. The
// caller keeps ownership of nc. It returns an error for a nil connection,
// an invalid option, or metrics that cannot be registered.
func New(nc *nats.Conn, opts ...Option) (*Gateway, error) {
	if nc == nil {
		return nil, errors.New("gateway: nil NATS connection")
	}
	o := defaultOptions()
	for _, opt := range opts {
		if err := opt(&o); err != nil {
			return nil, err
		}
	}
	js, err := jetstream.New(nc)
	if err != nil {
		return nil, fmt.Errorf("gateway: jetstream: %w", err)
	}
	tokenJS, err := newTokenJS(nc, o.logger)
	if err != nil {
		return nil, fmt.Errorf("gateway: jetstream: %w", err)
	}
	g := &Gateway{
		nc:       nc,
		js:       js,
		tokenJS:  tokenJS,
		opts:     o,
		log:      o.logger,
		tracer:   newTracer(o.tracerProvider),
		streams:  make(map[string]jetstream.Stream),
		tokenKVs: make(map[string]jetstream.KeyValue),
		sem:      make(chan struct{}, o.maxInFlight),
		work:     make(chan job),
		quit:     make(chan struct{}),

		fwdSubs:   make(map[string]*nats.Subscription),
		shadowSem: make(chan struct{}, maxShadowReads),
		adm:       admission{capacity: int64(o.maxInFlight), maxBytes: o.maxInFlightBytes},
	}
	if o.registerer != nil {
		if g.metrics, err = newMetrics(o.registerer); err != nil {
			return nil, err
		}
		if err := registerAdmission(o.registerer, g); err != nil {
			return nil, err
		}
	}
	g.routes = map[string]map[string]route{
		namespaces.AbstractionKeyValue:   routeMap(append(g.keyValueRoutes(), g.subscribeRoutes()...)),
		namespaces.AbstractionTimeSeries: routeMap(append(g.timeSeriesRoutes(), g.subscribeRoutes()...)),
		namespaces.AbstractionLog:        routeMap(append(g.logRoutes(), g.subscribeRoutes()...)),
		namespaces.AbstractionEntity:     routeMap(g.entityRoutes()),
		namespaces.AbstractionGraph:      routeMap(g.graphRoutes()),
	}
	g.chain = chain(g.handle, g.decode, g.validate)
	g.namespaces.changed = g.syncForward
	return g, nil
}

// Start subscribes to every namespace's write, read and subscribe
// subjects in the queue group and returns once the server has the subscriptions. ctx bounds
// only the start itself; stop the gateway with Drain. Start returns
// ErrGatewayClosed if called twice or after Drain.
func (g *Gateway) Start(ctx context.Context) error {
	g.runMu.Lock()
	defer g.runMu.Unlock()
	if g.started || g.draining {
		return ErrGatewayClosed
	}
	g.baseCtx, g.cancel = context.WithCancel(context.WithoutCancel(ctx))
	for _, subj := range []string{subjects.AllWrites(), subjects.AllReads(), subjects.AllSubscribes()} {
		sub, err := g.nc.QueueSubscribe(subj, g.opts.queueGroup, g.onMsg)
		if err != nil {
			g.unsubscribeLocked()
			return fmt.Errorf("gateway: subscribe %s: %w", subj, err)
		}
		if err := sub.SetPendingLimits(g.opts.pendingMsgs, g.opts.pendingBytes); err != nil {
			_ = sub.Unsubscribe()
			g.unsubscribeLocked()
			return fmt.Errorf("gateway: pending limits of %s: %w", subj, err)
		}
		g.closed = append(g.closed, sub.StatusChanged(nats.SubscriptionClosed))
		g.subs = append(g.subs, sub)
	}
	for _, name := range g.namespaces.names() {
		g.syncForwardLocked(name)
	}
	fctx := ctx
	if _, ok := ctx.Deadline(); !ok {
		var cancel context.CancelFunc
		fctx, cancel = context.WithTimeout(ctx, ioTimeout)
		defer cancel()
	}
	if err := g.nc.FlushWithContext(fctx); err != nil {
		g.unsubscribeLocked()
		return fmt.Errorf("gateway: flush subscriptions: %w", err)
	}
	g.started = true
	g.log.Info("gateway started", "queue_group", g.opts.queueGroup, "max_in_flight", g.opts.maxInFlight)
	return nil
}

func (g *Gateway) unsubscribeLocked() {
	for _, s := range g.subs {
		_ = s.Unsubscribe()
	}
	for name, s := range g.fwdSubs {
		_ = s.Unsubscribe()
		delete(g.fwdSubs, name)
	}
	g.subs, g.closed = nil, nil
	g.cancel()
}

// Drain stops taking requests, lets the requests already received finish,
// and returns once they have. If ctx ends first, Drain cancels the requests
// still running and returns an error wrapping ctx's error. Drain is
// idempotent; calling it again waits again.
func (g *Gateway) Drain(ctx context.Context) error {
	g.runMu.Lock()
	first := !g.draining
	g.draining = true
	subs, closed, cancel := slices.Clone(g.subs), slices.Clone(g.closed), g.cancel
	for _, s := range g.fwdSubs {
		subs, closed = append(subs, s), append(closed, s.StatusChanged(nats.SubscriptionClosed))
	}
	g.runMu.Unlock()
	if cancel == nil { // never started
		return nil
	}
	if first {
		for _, s := range subs {
			if err := s.Drain(); err != nil && !errors.Is(err, nats.ErrBadSubscription) && !errors.Is(err, nats.ErrConnectionClosed) {
				g.log.Warn("drain subscription", "subject", s.Subject, "err", err)
			}
		}
	}
	// Once the subscriptions are closed no callback can add to inflight, so
	// waiting on it cannot race with Add; idle workers can stop.
	for i, ch := range closed {
		if !subs[i].IsValid() {
			continue
		}
		select {
		case <-ch:
		case <-ctx.Done():
			cancel()
			return fmt.Errorf("gateway: drain: subscriptions still open: %w", ctx.Err())
		}
	}
	g.quitOnce.Do(func() { close(g.quit) })
	done := make(chan struct{})
	go func() {
		g.inflight.Wait()
		close(done)
	}()
	select {
	case <-done:
		cancel()
		g.waitTokens(ctx)
		g.log.Info("gateway drained")
		return nil
	case <-ctx.Done():
		cancel()
		return fmt.Errorf("gateway: drain: requests still running were cancelled: %w", ctx.Err())
	}
}

// baseContext is the context of the running gateway, cancelled when Drain
// gives up waiting; Background before Start.
func (g *Gateway) baseContext() context.Context {
	g.runMu.Lock()
	defer g.runMu.Unlock()
	if g.baseCtx == nil {
		return context.Background()
	}
	return g.baseCtx
}

// onMsg is the subscription callback. Callbacks of one subscription run one
// at a time, so it only admits the request (limits.go: a request beyond a
// limit is answered RESOURCE_EXHAUSTED at once) and hands it to a worker:
// an idle one, else a new one while fewer than maxInFlight run, else the
// first to become idle, which admission guarantees is only a moment away.
// Workers are reused because a fresh goroutine per request pays for growing
// its stack on every request.
func (g *Gateway) onMsg(msg *nats.Msg) {
	t, reason, after := g.admitMsg(msg)
	if reason != "" {
		g.shed(msg, t.lim, reason, after)
		return
	}
	j := job{msg: msg, t: t}
	select {
	case g.work <- j:
		return
	default:
	}
	select {
	case g.work <- j:
	case g.sem <- struct{}{}:
		g.inflight.Add(1)
		go g.worker(j)
	case <-g.baseCtx.Done():
		g.release(t)
	}
}

// worker serves j, then further requests from g.work until it has been
// idle for workerIdle or the gateway stops.
func (g *Gateway) worker(j job) {
	defer g.inflight.Done()
	defer func() { <-g.sem }()
	idle := time.NewTimer(workerIdle)
	defer idle.Stop()
	// Each worker has its own request id generator: nuid.Next takes a
	// process-wide lock.
	ids := nuid.New()
	for {
		g.serve(j, ids)
		select {
		case j = <-g.work:
			continue
		default:
		}
		idle.Reset(workerIdle)
		select {
		case j = <-g.work:
		case <-idle.C:
			return
		case <-g.quit:
			return
		case <-g.baseCtx.Done():
			return
		}
	}
}

// serve handles one admitted request, replies to it and releases its
// admission.
func (g *Gateway) serve(j job, ids *nuid.NUID) {
	msg := j.msg
	defer g.release(j.t)
	start := time.Now()
	ctx, cancel := context.WithTimeout(g.baseCtx, g.opts.consistencyWait+ioTimeout)
	defer cancel()

	enc, encErr := requestEncoding(msg.Header)
	r := &request{subject: msg.Subject, header: msg.Header, data: msg.Data, enc: enc, id: requestID(msg.Header, ids)}
	var resp proto.Message
	err := g.resolve(r, encErr)
	if r.unserved != "" {
		switch g.forward(ctx, msg, r.unserved) {
		case forwarded:
			return
		case forwardFailed:
			err = errForwardTimeout(r.unserved)
		case notForwarded:
			if g.requeue(msg, r.unserved) {
				return
			}
		}
	}
	ctx, span := g.startServerSpan(ctx, msg.Header, r)
	err = g.admit(r, err)
	if err == nil {
		resp, err = g.runChain(ctx, r)
	}
	if aerr := g.audit(ctx, r, resp, codeOf(err), time.Since(start), err); aerr != nil {
		resp, err = nil, aerr
	}

	nsLabel, opLabel := "unknown", "unknown"
	if r.ns != nil {
		nsLabel = r.ns.Name
	}
	if r.route != nil {
		opLabel = r.route.op
	}
	code := codeOf(err)
	var e *status.Error
	reply := nats.NewMsg(msg.Reply)
	reply.Header.Set(subjects.HeaderContentTypeReq, enc.contentType())
	reply.Header.Set(HeaderRequestID, r.id)
	if err != nil {
		e = status.Convert(err)
		reply.Header.Set(subjects.HeaderErrorCode, code)
		if ms := e.RetryAfterMillis(); ms > 0 {
			reply.Header.Set(subjects.HeaderRetryAfter, strconv.FormatUint(uint64(ms), 10))
		}
		reply.Data, err = enc.marshal(e.Proto())
	} else {
		reply.Data, err = enc.marshal(resp)
	}
	if err != nil { // cannot happen with well-formed proto messages
		g.log.Error("marshal reply", "request_id", r.id, "namespace", nsLabel, "op", opLabel, "err", err)
		endServerSpan(span, nsLabel, opLabel, prismv1.Code_INTERNAL.String(), &status.Error{Code: prismv1.Code_INTERNAL})
		return
	}
	d := time.Since(start)
	g.metrics.observe(nsLabel, opLabel, code, d)
	g.logRequest(ctx, r.id, nsLabel, opLabel, e, d)
	defer endServerSpan(span, nsLabel, opLabel, code, e)
	if msg.Reply == "" {
		return
	}
	if err := msg.RespondMsg(reply); err != nil {
		g.log.Warn("reply", "request_id", r.id, "namespace", nsLabel, "op", opLabel, "err", err)
	}
}

// admit decides whether r may run at all: while the audit cannot store
// records nothing is served; then the caller is identified and checked
// against the namespace's policy. resolveErr is how resolving r failed,
// if it did; it is returned unless a refusal comes first.
func (g *Gateway) admit(r *request, resolveErr error) error {
	if err := g.auditHealthy(); err != nil {
		return err
	}
	if err := g.authenticate(r); err != nil {
		return err
	}
	return g.authorizeResolved(r, resolveErr)
}

// codeOf is the status code name of err, "OK" for nil.
func codeOf(err error) string {
	if err == nil {
		return "OK"
	}
	return status.Convert(err).Code.String()
}

// logRequest logs the outcome of a request: failures the operator must see
// (INTERNAL at error, UNAVAILABLE and DEADLINE_EXCEEDED at warn) with their
// cause, everything else at debug. It never logs the error's message, which
// may name a record, key or token the client sent (they may be personal
// data); the cause is a JetStream or backend error, which does not.
func (g *Gateway) logRequest(ctx context.Context, id, ns, op string, e *status.Error, d time.Duration) {
	level, msg := slog.LevelDebug, "request"
	if e != nil {
		switch e.Code {
		case prismv1.Code_INTERNAL:
			level, msg = slog.LevelError, "request failed"
		case prismv1.Code_UNAVAILABLE, prismv1.Code_DEADLINE_EXCEEDED:
			level, msg = slog.LevelWarn, "request failed"
		default:
			msg = "request refused"
		}
	}
	if !g.log.Enabled(ctx, level) {
		return
	}
	attrs := []slog.Attr{
		slog.String("request_id", id),
		slog.String("namespace", ns),
		slog.String("op", op),
		slog.String("code", "OK"),
		slog.Duration("duration", d),
	}
	if e != nil {
		attrs[3] = slog.String("code", e.Code.String())
		if level > slog.LevelDebug && e.Err != nil {
			attrs = append(attrs, slog.Any("cause", e.Err))
		}
	}
	g.log.LogAttrs(ctx, level, msg, attrs...)
}

// HeaderRequestID is the header that carries a request's id. A client may
// set it (up to maxRequestIDLen letters, digits and "-_.:"); otherwise the
// gateway makes one. The reply carries it back, and every log line about
// the request has it as request_id.
const HeaderRequestID = "Prism-Request-Id"

const maxRequestIDLen = 64

// requestID returns the client's request id from h when it is acceptable,
// else a new one from ids.
func requestID(h nats.Header, ids *nuid.NUID) string {
	if id := h.Get(HeaderRequestID); validRequestID(id) {
		return id
	}
	return ids.Next()
}

func validRequestID(id string) bool {
	if id == "" || len(id) > maxRequestIDLen {
		return false
	}
	for i := 0; i < len(id); i++ {
		switch c := id[i]; {
		case c >= 'a' && c <= 'z', c >= 'A' && c <= 'Z', c >= '0' && c <= '9', c == '-', c == '_', c == '.', c == ':':
		default:
			return false
		}
	}
	return true
}

// resolve resolves the namespace and operation of r, setting r.ns and
// r.route, or returns the error that refuses r (encErr first).
func (g *Gateway) resolve(r *request, encErr error) error {
	if encErr != nil {
		return encErr
	}
	parsed, err := subjects.ParseRequest(r.subject)
	if err != nil {
		return status.Invalidf("subject %q is not a valid request subject: %v", r.subject, err)
	}
	r.kind, r.nsName = parsed.Kind, parsed.Namespace
	ns, ok := g.namespaces.get(parsed.Namespace)
	if !ok && g.namespaces.isUnserved(parsed.Namespace) {
		r.unserved = parsed.Namespace
		return status.Newf(prismv1.Code_UNAVAILABLE, "namespace %s is registered but no Prism process answering could serve it now (prism ns get %s says why); retry", parsed.Namespace, parsed.Namespace)
	}
	if !ok {
		return status.Newf(prismv1.Code_NAMESPACE_NOT_FOUND, "namespace %s is not registered on this gateway; apply it with prism apply -f (see prism ns list)", parsed.Namespace)
	}
	if ns.readsElsewhere && parsed.Kind == subjects.KindRead {
		r.unserved = parsed.Namespace
		return status.Newf(prismv1.Code_UNAVAILABLE, "namespace %s is projected by another Prism process, which serves its reads, and none answered; retry", parsed.Namespace)
	}
	r.ns = ns
	op := parsed.Kind + "." + parsed.Op
	rt, ok := g.routes[ns.Abstraction][op]
	if !ok {
		return g.unimplemented(op, ns)
	}
	r.route = &rt
	return nil
}
