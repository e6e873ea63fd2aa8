package gateway_test

import (
	"context"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/nats-io/nats.go"
	sdktrace "go.opentelemetry.io/otel/sdk/trace"
	"go.opentelemetry.io/otel/sdk/trace/tracetest"
	"go.opentelemetry.io/otel/trace"
	"google.golang.org/protobuf/proto"

	"github.com/prism-data/prism/gateway"
	prismv1 "github.com/prism-data/prism/proto/prism/v1"
	"github.com/prism-data/prism/subjects"
)

// A caller's span, as a W3C traceparent.
const (
	callerTrace  = "4bf92f3577b34da6a3ce929d0e0e4736"
	callerSpan   = "00f067aa0ba902b7"
	callerParent = "00-" + callerTrace + "-" + callerSpan + "-01"
)

// newTracedEnv is newEnv with a gateway whose spans go to the returned
// in-memory exporter.
func newTracedEnv(t *testing.T, cfg envConfig) (*env, *tracetest.InMemoryExporter) {
	t.Helper()
	exp := tracetest.NewInMemoryExporter()
	tp := sdktrace.NewTracerProvider(sdktrace.WithSyncer(exp))
	t.Cleanup(func() { _ = tp.Shutdown(context.Background()) })
	cfg.opts = append(cfg.opts, gateway.WithTracerProvider(tp))
	return newEnv(t, cfg), exp
}

// waitSpan returns the ended span named name. The gateway ends a request's
// span after sending the reply, so it may come a little after the reply.
func waitSpan(t *testing.T, exp *tracetest.InMemoryExporter, name string) tracetest.SpanStub {
	t.Helper()
	deadline := time.Now().Add(5 * time.Second)
	for {
		for _, s := range exp.GetSpans() {
			if s.Name == name {
				return s
			}
		}
		if time.Now().After(deadline) {
			t.Fatalf("no span %q among %v", name, spanNames(exp.GetSpans()))
		}
		time.Sleep(5 * time.Millisecond)
	}
}

func spanNames(spans tracetest.SpanStubs) []string {
	var names []string
	for _, s := range spans {
		names = append(names, s.Name)
	}
	return names
}

func attrs(s tracetest.SpanStub) map[string]string {
	m := make(map[string]string)
	for _, kv := range s.Attributes {
		m[string(kv.Key)] = kv.Value.String()
	}
	return m
}

// checkNoRecordData fails if any span holds a string of the record.
func checkNoRecordData(t *testing.T, spans tracetest.SpanStubs, secrets ...string) {
	t.Helper()
	for _, s := range spans {
		texts := []string{s.Name, s.Status.Description}
		for _, kv := range s.Attributes {
			texts = append(texts, string(kv.Key), kv.Value.String())
		}
		for _, ev := range s.Events {
			texts = append(texts, ev.Name)
			for _, kv := range ev.Attributes {
				texts = append(texts, kv.Value.String())
			}
		}
		for _, text := range texts {
			for _, secret := range secrets {
				if strings.Contains(text, secret) {
					t.Errorf("span %q records %q (in %q)", s.Name, secret, text)
				}
			}
		}
	}
}

func TestPutSpanContinuesCallerTrace(t *testing.T) {
	e, exp := newTracedEnv(t, envConfig{})
	m := nats.NewMsg(subjects.Write(testNS, "put"))
	m.Data = encode(t, putReq("secret-id", "secret-key", "secret-value"), encProto)
	m.Header.Set(subjects.HeaderContentTypeReq, subjects.ContentTypeProto)
	m.Header.Set(subjects.HeaderTraceParentReq, callerParent)
	m.Header.Set(subjects.HeaderTraceStateReq, "vendor=opaque")
	reply, err := e.nc.RequestMsg(m, 10*time.Second)
	if err != nil {
		t.Fatal(err)
	}
	var resp prismv1.WriteResponse
	if er := decodeReply(t, reply, &resp, encProto); er != nil {
		t.Fatal(er)
	}

	server := waitSpan(t, exp, "prism write.put")
	if got := server.SpanContext.TraceID().String(); got != callerTrace {
		t.Errorf("server span trace %s, want the caller's %s", got, callerTrace)
	}
	if got := server.Parent.SpanID().String(); got != callerSpan || !server.Parent.IsRemote() {
		t.Errorf("server span parent %s (remote %v), want the caller's span %s", got, server.Parent.IsRemote(), callerSpan)
	}
	if got := server.SpanContext.TraceState().Get("vendor"); got != "opaque" {
		t.Errorf("server span tracestate vendor=%q, want the caller's \"opaque\"", got)
	}
	if server.SpanKind != trace.SpanKindServer {
		t.Errorf("server span kind %v", server.SpanKind)
	}
	want := map[string]string{"prism.namespace": testNS, "prism.op": "write.put", "prism.code": "OK"}
	if got := attrs(server); len(got) != len(want) || got["prism.namespace"] != testNS || got["prism.op"] != "write.put" || got["prism.code"] != "OK" {
		t.Errorf("server span attributes %v, want %v", got, want)
	}

	publish := waitSpan(t, exp, "prism jetstream.publish")
	if publish.Parent.SpanID() != server.SpanContext.SpanID() || publish.SpanContext.TraceID() != server.SpanContext.TraceID() {
		t.Errorf("publish span parent %s, want the server span %s", publish.Parent.SpanID(), server.SpanContext.SpanID())
	}

	// The event carries the gateway's span, so its projection joins the
	// caller's trace under the request.
	stored := storedMsg(t, e.js, resp.GetSeq())
	wantParent := "00-" + callerTrace + "-" + server.SpanContext.SpanID().String() + "-01"
	if got := stored.Header.Get(subjects.HeaderTraceParent); got != wantParent {
		t.Errorf("event ce-traceparent %q, want the server span's %q", got, wantParent)
	}
	if got := stored.Header.Get(subjects.HeaderTraceParentReq); got != "" {
		t.Errorf("event has a traceparent header %q; the envelope's is ce-traceparent", got)
	}
	checkNoRecordData(t, exp.GetSpans(), "secret")
}

func TestUntracedRequestStartsTrace(t *testing.T) {
	e, exp := newTracedEnv(t, envConfig{})
	var resp prismv1.WriteResponse
	mustCall(t, e.nc, subjects.Write(testNS, "put"), putReq("r", "k", "v"), &resp)
	server := waitSpan(t, exp, "prism write.put")
	if server.Parent.IsValid() {
		t.Errorf("server span of a request without traceparent has parent %v", server.Parent)
	}
	want := "00-" + server.SpanContext.TraceID().String() + "-" + server.SpanContext.SpanID().String() + "-01"
	if got := storedMsg(t, e.js, resp.GetSeq()).Header.Get(subjects.HeaderTraceParent); got != want {
		t.Errorf("event ce-traceparent %q, want %q", got, want)
	}
}

func TestRefusedRequestSpan(t *testing.T) {
	tests := []struct {
		name, subject, span, op, code string
		body                          []byte
	}{
		{name: "invalid request", subject: subjects.Write(testNS, "put"), body: []byte(`{"id": 1}`), span: "prism write.put", op: "write.put", code: "INVALID_ARGUMENT"},
		{name: "unknown namespace", subject: subjects.Write("nope", "put"), body: []byte(`{}`), span: "prism request", op: "unknown", code: "NAMESPACE_NOT_FOUND"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			e, exp := newTracedEnv(t, envConfig{})
			if reply := request(t, e.nc, tt.subject, tt.body, encJSON); reply.Header.Get(subjects.HeaderErrorCode) != tt.code {
				t.Fatalf("reply code %q, want %s", reply.Header.Get(subjects.HeaderErrorCode), tt.code)
			}
			s := waitSpan(t, exp, tt.span)
			if a := attrs(s); a["prism.op"] != tt.op || a["prism.code"] != tt.code {
				t.Errorf("attributes %v, want op %s and code %s", a, tt.op, tt.code)
			}
			// A refused request is the caller's mistake, not a failure.
			if s.Status.Code.String() == "Error" {
				t.Errorf("status %v, want unset for a refused request", s.Status)
			}
		})
	}
}

// enteredWaiter is the test projector as an AppliedWaiter that reports
// when a wait starts.
type enteredWaiter struct {
	proj    atomic.Pointer[testProjector]
	once    sync.Once
	entered chan struct{}
}

func (w *enteredWaiter) Applied() uint64 { return w.proj.Load().Applied() }

func (w *enteredWaiter) WaitApplied(ctx context.Context, seq uint64) error {
	w.once.Do(func() { close(w.entered) })
	return w.proj.Load().WaitApplied(ctx, seq)
}

func TestMinSeqWaitIsChildSpan(t *testing.T) {
	waiter := &enteredWaiter{entered: make(chan struct{})}
	e, exp := newTracedEnv(t, envConfig{waiter: waiter})
	proj := e.proj
	waiter.proj.Store(proj)
	proj.Pause()
	var w prismv1.WriteResponse
	mustCall(t, e.nc, subjects.Write(testNS, "put"), putReq("r", "k", "v"), &w)
	done := make(chan *prismv1.Error, 1)
	go func() {
		done <- call(t, e.nc, subjects.Read(testNS, "get"), &prismv1.GetRequest{Id: []byte("r"), MinSeq: w.GetSeq()}, &prismv1.GetResponse{}, encProto)
	}()
	<-waiter.entered
	proj.Resume()
	if er := <-done; er != nil {
		t.Fatalf("get: %v", er)
	}
	read := waitSpan(t, exp, "prism read.get")
	wait := waitSpan(t, exp, "prism consistency.wait")
	if wait.Parent.SpanID() != read.SpanContext.SpanID() {
		t.Errorf("consistency wait parent %s, want the read's span %s", wait.Parent.SpanID(), read.SpanContext.SpanID())
	}
	if a := attrs(wait); a["prism.consistency.kind"] != "min_seq_read" || a["prism.consistency.result"] != "applied" {
		t.Errorf("consistency wait attributes %v", a)
	}
}

func TestWithTracerProviderNil(t *testing.T) {
	e := newEnv(t, envConfig{})
	if _, err := gateway.New(e.nc, gateway.WithTracerProvider(nil)); err == nil {
		t.Fatal("New accepted a nil tracer provider")
	}
}

// TestConflictPublishSpanIsNotAnError: a write refused by JetStream for a
// stale expected revision is the caller's conflict, so its publish span is
// not marked as an error (a store failure would be).
func TestConflictPublishSpanIsNotAnError(t *testing.T) {
	for _, tt := range []struct {
		name, op string
		stale    proto.Message
	}{
		{"put", "put", &prismv1.PutRequest{Id: []byte("r"), Items: []*prismv1.Item{{Key: []byte("k"), Value: []byte("v")}}, ExpectedRevision: ptr[uint64](0)}},
		{"mutate", "mutate", mutateReq("", mPut("r", "k", "v", ptr[uint64](0)))},
	} {
		t.Run(tt.name, func(t *testing.T) {
			e, exp := newTracedEnv(t, envConfig{})
			var resp prismv1.WriteResponse
			mustCall(t, e.nc, subjects.Write(testNS, "put"), putReq("r", "k", "v"), &resp)
			if er := call(t, e.nc, subjects.Write(testNS, tt.op), tt.stale, &resp, encProto); !isCode(er, prismv1.Code_CONFLICT) {
				t.Fatalf("stale %s: %v, want CONFLICT", tt.op, er)
			}
			var publishes int
			for _, s := range exp.GetSpans() {
				if s.Name != "prism jetstream.publish" {
					continue
				}
				publishes++
				if s.Status.Code.String() == "Error" {
					t.Errorf("publish span status %v, want unset for a conflict", s.Status)
				}
			}
			if publishes != 2 {
				t.Fatalf("%d publish spans, want the put's and the refused %s's", publishes, tt.op)
			}
		})
	}
}
