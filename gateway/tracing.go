package gateway

import (
	"context"

	"github.com/nats-io/nats.go"
	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/codes"
	"go.opentelemetry.io/otel/propagation"
	"go.opentelemetry.io/otel/trace"
	"go.opentelemetry.io/otel/trace/noop"

	prismv1 "github.com/prism-data/prism/proto/prism/v1"
	"github.com/prism-data/prism/status"
	"github.com/prism-data/prism/subjects"
)

// Tracing (docs/adr/004-tracing.md): every request is a server span named
// "prism <kind>.<op>" ("prism write.put"), the child of the caller's span
// when the request carries a W3C traceparent header. Its children are the
// JetStream publish of a write and the consistency wait of a strong write
// or a read with min_seq. A write stores the request span's context in its
// event's ce-traceparent, so the projection of the event continues the
// trace. Spans carry the namespace, the operation and the reply code, never
// record ids, keys, values or error messages.
//
// Attributes and child spans are made only for recording spans. With the
// no-op provider of go.opentelemetry.io/otel/trace/noop no span is started
// at all, so an untraced request allocates nothing for tracing; with the
// default global provider and no SDK installed, a request costs one no-op
// span start.

// TracerName is the instrumentation scope of the gateway's spans.
const TracerName = "github.com/prism-data/prism/gateway"

// Names of the gateway's child spans and keys of the attributes of its
// spans.
const (
	spanPublish         = "prism jetstream.publish"
	spanConsistencyWait = "prism consistency.wait"
	spanUnrouted        = "prism request"

	attrNamespace = attribute.Key("prism.namespace")
	attrOp        = attribute.Key("prism.op")
	attrCode      = attribute.Key("prism.code")
	attrWaitKind  = attribute.Key("prism.consistency.kind")
	attrWaitRes   = attribute.Key("prism.consistency.result")
	attrEvents    = attribute.Key("prism.events")
)

// traceContext is the W3C trace context propagator, whatever the global
// propagator is: Prism's wire format does not depend on process setup.
var traceContext propagation.TraceContext

// Span start options, allocated once: a variadic argument passed to an
// interface method is allocated on every call.
var (
	serverSpanOpts = []trace.SpanStartOption{trace.WithSpanKind(trace.SpanKindServer)}
	clientSpanOpts = []trace.SpanStartOption{trace.WithSpanKind(trace.SpanKindClient)}
	internalOpts   = []trace.SpanStartOption{trace.WithSpanKind(trace.SpanKindInternal)}
)

// noSpan is the span of work that is not traced; ending it does nothing.
var noSpan trace.Span = noop.Span{}

// newTracer returns the gateway's tracer from tp, or nil for the no-op
// provider, whose spans are no spans.
func newTracer(tp trace.TracerProvider) trace.Tracer {
	if _, ok := tp.(noop.TracerProvider); ok {
		return nil
	}
	return tp.Tracer(TracerName)
}

// startServerSpan starts the span of request r, whose route may be unknown
// (the request is then refused before it reaches a handler), as the child
// of the trace context in header h, if any.
func (g *Gateway) startServerSpan(ctx context.Context, h nats.Header, r *request) (context.Context, trace.Span) {
	if len(h[subjects.HeaderTraceParentReq]) > 0 {
		// Even untraced, the gateway passes the caller's context on to
		// the event, as a no-op span would.
		ctx = traceContext.Extract(ctx, subjects.HeaderCarrier(h))
	}
	if g.tracer == nil {
		return ctx, noSpan
	}
	name := spanUnrouted
	if r.route != nil {
		name = r.route.spanName
	}
	return g.tracer.Start(ctx, name, serverSpanOpts...)
}

// endServerSpan records the outcome of a request on its span and ends it.
// Only failures of the server (the codes logged as warnings or errors) set
// the span's status to Error: a refused request is the caller's mistake.
func endServerSpan(span trace.Span, ns, op, code string, e *status.Error) {
	if span.IsRecording() {
		span.SetAttributes(attrNamespace.String(ns), attrOp.String(op), attrCode.String(code))
		if e != nil && serverFault(e.Code) {
			span.SetStatus(codes.Error, code)
		}
	}
	span.End()
}

// serverFault reports whether code blames the server rather than the
// request.
func serverFault(code prismv1.Code) bool {
	switch code {
	case prismv1.Code_INTERNAL, prismv1.Code_UNAVAILABLE, prismv1.Code_DEADLINE_EXCEEDED:
		return true
	}
	return false
}

// startChildSpan starts a span under the span of ctx when that one records;
// otherwise it returns ctx and noSpan, so an untraced request makes no
// spans beyond its own. Samplers decide per trace, so a child of a span
// that is not recorded would not be either.
func (g *Gateway) startChildSpan(ctx context.Context, name string, opts []trace.SpanStartOption) (context.Context, trace.Span) {
	if !trace.SpanFromContext(ctx).IsRecording() {
		return ctx, noSpan
	}
	return g.tracer.Start(ctx, name, opts...)
}

// endChildSpan ends span, with status Error when failed. No error text is
// recorded: JetStream and backend errors may quote a subject, which holds a
// record id.
func endChildSpan(span trace.Span, failed bool) {
	if failed && span.IsRecording() {
		span.SetStatus(codes.Error, "failed")
	}
	span.End()
}

// traceParent is the W3C traceparent of the span of ctx, "" when ctx has
// none.
func traceParent(ctx context.Context) string {
	if !trace.SpanContextFromContext(ctx).IsValid() {
		return ""
	}
	var c traceParentCarrier
	traceContext.Inject(ctx, &c)
	return c.value
}

// traceParentCarrier keeps the traceparent that propagation.TraceContext
// injects and drops the tracestate, which the event envelope does not carry.
type traceParentCarrier struct{ value string }

func (c *traceParentCarrier) Get(string) string { return "" }
func (c *traceParentCarrier) Keys() []string    { return nil }
func (c *traceParentCarrier) Set(key, value string) {
	if key == subjects.HeaderTraceParentReq {
		c.value = value
	}
}
