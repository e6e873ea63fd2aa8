package projectors_test

import (
	"context"
	"errors"
	"fmt"
	"testing"
	"time"

	"github.com/nats-io/nats.go/jetstream"
	sdktrace "go.opentelemetry.io/otel/sdk/trace"
	"go.opentelemetry.io/otel/sdk/trace/tracetest"
	"go.opentelemetry.io/otel/trace"

	"github.com/prism-data/prism/projectors"
	prismv1 "github.com/prism-data/prism/proto/prism/v1"
	"github.com/prism-data/prism/subjects"
)

// writer is the span context of a gateway span that wrote events.
func writer(t *testing.T, traceHex, spanHex string) trace.SpanContext {
	t.Helper()
	tid, err := trace.TraceIDFromHex(traceHex)
	if err != nil {
		t.Fatal(err)
	}
	sid, err := trace.SpanIDFromHex(spanHex)
	if err != nil {
		t.Fatal(err)
	}
	return trace.NewSpanContext(trace.SpanContextConfig{TraceID: tid, SpanID: sid, TraceFlags: trace.FlagsSampled})
}

func traceParentOf(sc trace.SpanContext) string {
	return fmt.Sprintf("00-%s-%s-01", sc.TraceID(), sc.SpanID())
}

// publishTraced publishes a put of id written by the span sc.
func publishTraced(t *testing.T, js jetstream.JetStream, id string, sc trace.SpanContext) uint64 {
	t.Helper()
	ev := &prismv1.KeyValueEvent{Id: []byte(id), Change: &prismv1.KeyValueEvent_Put{Put: &prismv1.KeyValuePut{Items: []*prismv1.Item{{Key: []byte("secret-key"), Value: []byte("secret-value")}}}}}
	msg, err := subjects.NewKeyValueEvent(subjects.EventMeta{Namespace: testNS, TraceParent: traceParentOf(sc)}, ev)
	if err != nil {
		t.Fatal(err)
	}
	ack, err := js.PublishMsg(context.Background(), msg)
	if err != nil {
		t.Fatal(err)
	}
	return ack.Sequence
}

// tracedProjector starts a projector over a fresh store whose spans go to
// the returned exporter.
func tracedProjector(t *testing.T, js jetstream.JetStream) (*projectors.Projector, *tracetest.InMemoryExporter) {
	t.Helper()
	exp := tracetest.NewInMemoryExporter()
	tp := sdktrace.NewTracerProvider(sdktrace.WithSyncer(exp))
	t.Cleanup(func() { _ = tp.Shutdown(context.Background()) })
	return startProjector(t, js, "sqlite", openStore(t), projectors.WithTracerProvider(tp)), exp
}

// batchSpans waits until the ended batch spans account for n events and
// returns them. A batch's span ends just after its commit.
func batchSpans(t *testing.T, exp *tracetest.InMemoryExporter, n int) tracetest.SpanStubs {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for {
		var spans tracetest.SpanStubs
		events := 0
		for _, s := range exp.GetSpans() {
			if s.Name != "prism project" {
				t.Fatalf("unexpected span %q", s.Name)
			}
			spans = append(spans, s)
			events += int(intAttr(s, "messaging.batch.message_count"))
		}
		if events >= n {
			return spans
		}
		if time.Now().After(deadline) {
			t.Fatalf("batch spans cover %d events, want %d", events, n)
		}
		time.Sleep(5 * time.Millisecond)
	}
}

func intAttr(s tracetest.SpanStub, key string) int64 {
	for _, kv := range s.Attributes {
		if string(kv.Key) == key {
			return kv.Value.AsInt64()
		}
	}
	return -1
}

func strAttr(s tracetest.SpanStub, key string) string {
	for _, kv := range s.Attributes {
		if string(kv.Key) == key {
			return kv.Value.String()
		}
	}
	return ""
}

func TestBatchSpanOfOneWriteJoinsItsTrace(t *testing.T) {
	js := startJetStream(t)
	p, exp := tracedProjector(t, js)
	w := writer(t, "4bf92f3577b34da6a3ce929d0e0e4736", "00f067aa0ba902b7")
	waitApplied(t, p, publishTraced(t, js, "secret-id", w))

	spans := batchSpans(t, exp, 1)
	if len(spans) != 1 {
		t.Fatalf("%d batch spans, want 1", len(spans))
	}
	s := spans[0]
	if s.SpanKind != trace.SpanKindConsumer {
		t.Errorf("kind %v, want consumer", s.SpanKind)
	}
	if !s.Parent.Equal(w.WithRemote(true)) || s.SpanContext.TraceID() != w.TraceID() {
		t.Errorf("parent %v in trace %s, want the writing span %v", s.Parent, s.SpanContext.TraceID(), w)
	}
	if len(s.Links) != 1 || !s.Links[0].SpanContext.Equal(w.WithRemote(true)) {
		t.Errorf("links %v, want one to the writing span %v", s.Links, w)
	}
	if strAttr(s, "prism.namespace") != testNS || strAttr(s, "prism.target") != "sqlite" || intAttr(s, "prism.changes") != 1 {
		t.Errorf("attributes %v", s.Attributes)
	}
	for _, kv := range s.Attributes {
		if v := kv.Value.String(); v == "secret-id" || v == "secret-key" || v == "secret-value" {
			t.Errorf("attribute %s records record data %q", kv.Key, v)
		}
	}
}

func TestBatchSpanLinksEveryWrite(t *testing.T) {
	js := startJetStream(t)
	// Three writes of three traces, the second one of two events, all in
	// the stream before the projector starts so that batches mix traces.
	writers := []trace.SpanContext{
		writer(t, "11111111111111111111111111111111", "1111111111111111"),
		writer(t, "22222222222222222222222222222222", "2222222222222222"),
		writer(t, "33333333333333333333333333333333", "3333333333333333"),
	}
	publishTraced(t, js, "a", writers[0])
	publishTraced(t, js, "b", writers[1])
	publishTraced(t, js, "c", writers[1])
	last := publishTraced(t, js, "d", writers[2])
	p, exp := tracedProjector(t, js)
	waitApplied(t, p, last)

	type spanID struct {
		trace.TraceID
		trace.SpanID
	}
	linked := make(map[spanID]int)
	for _, s := range batchSpans(t, exp, 4) {
		traces := make(map[trace.TraceID]bool)
		inBatch := make(map[spanID]bool)
		for _, l := range s.Links {
			id := spanID{l.SpanContext.TraceID(), l.SpanContext.SpanID()}
			if inBatch[id] {
				t.Errorf("batch links writer %v twice", id)
			}
			inBatch[id] = true
			linked[id]++
			traces[id.TraceID] = true
		}
		switch {
		case len(traces) == 1 && s.Parent.TraceID() != s.Links[0].SpanContext.TraceID():
			t.Errorf("batch of one trace has parent %v, want its writer %v", s.Parent, s.Links[0].SpanContext)
		case len(traces) > 1 && s.Parent.IsValid():
			t.Errorf("batch of %d traces has parent %v, want none", len(traces), s.Parent)
		}
	}
	for _, w := range writers {
		if linked[spanID{w.TraceID(), w.SpanID()}] == 0 {
			t.Errorf("writer %v is not linked", w)
		}
	}
	if len(linked) != len(writers) {
		t.Errorf("links to %d spans, want %d: %v", len(linked), len(writers), linked)
	}
}

func TestWithTracerProviderNil(t *testing.T) {
	js := startJetStream(t)
	if _, err := projectors.New(js, testNS, "sqlite", openStore(t), projectors.WithTracerProvider(nil)); !errors.Is(err, projectors.ErrInvalidOption) {
		t.Fatalf("New with a nil tracer provider: %v, want ErrInvalidOption", err)
	}
}
