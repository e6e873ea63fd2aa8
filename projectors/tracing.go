package projectors

import (
	"context"

	"github.com/nats-io/nats.go/jetstream"
	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/codes"
	"go.opentelemetry.io/otel/propagation"
	"go.opentelemetry.io/otel/trace"
	"go.opentelemetry.io/otel/trace/noop"

	"github.com/prism-data/prism/subjects"
)

// Tracing (docs/adr/004-tracing.md): each batch is one consumer span,
// "prism project", linked to the span that wrote each of its events (the
// event's ce-traceparent), as OpenTelemetry's messaging conventions
// recommend for batch processing: a batch holds events of many traces. When
// all the batch's events belong to one trace (a lone write, or the events
// of one mutate), that trace's writing span is also the batch span's
// parent, so the projection shows inside the write's trace. There is no
// span per event: the events of a batch are applied in one transaction.
//
// The SDK keeps 128 links per span by default (OTEL_SPAN_LINK_COUNT_LIMIT);
// a larger batch records the first 128 distinct writing spans.
//
// With the no-op provider of go.opentelemetry.io/otel/trace/noop a batch
// costs nothing; with the default global provider and no SDK installed, it
// costs one no-op span start, a header lookup per event and the parse of at
// most one traceparent.

// TracerName is the instrumentation scope of the projectors' spans.
const TracerName = "github.com/prism-data/prism/projectors"

const spanProject = "prism project"

// Attributes of the batch span.
const (
	attrNamespace = attribute.Key("prism.namespace")
	attrTarget    = attribute.Key("prism.target")
	attrChanges   = attribute.Key("prism.changes")
	// attrBatchSize is the OpenTelemetry messaging convention's name.
	attrBatchSize = attribute.Key("messaging.batch.message_count")
)

// traceContext is the W3C trace context propagator, whatever the global
// propagator is.
var traceContext propagation.TraceContext

// consumerSpanOpts is allocated once: a variadic argument passed to an
// interface method is allocated on every call.
var consumerSpanOpts = []trace.SpanStartOption{trace.WithSpanKind(trace.SpanKindConsumer)}

// noSpan is the span of a batch when tracing is off.
var noSpan trace.Span = noop.Span{}

// newTracer returns the projector's tracer from tp, or nil for the no-op
// provider, whose spans are no spans.
func newTracer(tp trace.TracerProvider) trace.Tracer {
	if _, ok := tp.(noop.TracerProvider); ok {
		return nil
	}
	return tp.Tracer(TracerName)
}

// startBatchSpan starts the span of batch; see the comment at the top of
// this file. It collects the batch's distinct traceparents in p.traceParents
// (the loop goroutine's scratch space) and parses them only for a span that
// records.
func (p *Projector) startBatchSpan(ctx context.Context, batch []jetstream.Msg) (context.Context, trace.Span) {
	if p.tracer == nil {
		return ctx, noSpan
	}
	tps := p.traceParents[:0]
	oneTrace := true
	for _, m := range batch {
		tp := m.Headers().Get(subjects.HeaderTraceParent)
		if tp == "" || (len(tps) > 0 && tp == tps[len(tps)-1]) {
			continue // untraced, or the next event of the same write
		}
		if len(tps) > 0 && traceIDOf(tp) != traceIDOf(tps[0]) {
			oneTrace = false
		}
		tps = append(tps, tp)
	}
	// Keep the capacity for the next batch, not the header strings.
	defer func() { p.traceParents = tps[:0]; clear(tps) }()
	if len(tps) > 0 && oneTrace {
		ctx = traceContext.Extract(ctx, eventCarrier{tps[0]})
	}
	ctx, span := p.tracer.Start(ctx, spanProject, consumerSpanOpts...)
	if !span.IsRecording() {
		return ctx, span
	}
	span.SetAttributes(attrNamespace.String(p.ns), attrTarget.String(p.target), attrBatchSize.Int(len(batch)))
	for _, tp := range tps {
		if sc := trace.SpanContextFromContext(traceContext.Extract(context.Background(), eventCarrier{tp})); sc.IsValid() {
			span.AddLink(trace.Link{SpanContext: sc})
		}
	}
	return ctx, span
}

// endBatchSpan records the outcome of a batch that applied changes and
// ends its span. An aborted batch (err not nil, and not a resync) is an
// error.
func endBatchSpan(span trace.Span, changes int, err error) {
	if span.IsRecording() {
		span.SetAttributes(attrChanges.Int(changes))
		if err != nil && err != errResync {
			span.SetStatus(codes.Error, "batch not committed")
		}
	}
	span.End()
}

// traceIDOf is the trace-id field of a W3C traceparent
// ("00-<trace-id>-<parent-id>-<flags>"), or tp itself when tp is too short
// to have one; it only groups events by trace before parsing.
func traceIDOf(tp string) string {
	if len(tp) < 35 {
		return tp
	}
	return tp[3:35]
}

// eventCarrier offers an event's ce-traceparent to
// propagation.TraceContext as the traceparent it extracts.
type eventCarrier struct{ traceParent string }

func (c eventCarrier) Get(key string) string {
	if key == subjects.HeaderTraceParentReq {
		return c.traceParent
	}
	return ""
}
func (c eventCarrier) Set(string, string) {}
func (c eventCarrier) Keys() []string     { return []string{subjects.HeaderTraceParentReq} }

var _ propagation.TextMapCarrier = eventCarrier{}
