package itest

import (
	"bytes"
	"compress/gzip"
	"context"
	"encoding/hex"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"

	"go.opentelemetry.io/otel/trace"
	collectortrace "go.opentelemetry.io/proto/otlp/collector/trace/v1"
	tracepb "go.opentelemetry.io/proto/otlp/trace/v1"
	"google.golang.org/protobuf/proto"

	"github.com/prism-data/prism/client"
)

// otlpReceiver is a tiny OTLP/HTTP trace collector: it keeps the spans of
// every POST /v1/traces and the service.name of their resource.
type otlpReceiver struct {
	t        *testing.T
	mu       sync.Mutex
	spans    []*tracepb.Span
	services map[string]bool
}

func newOTLPReceiver(t *testing.T) (*otlpReceiver, *httptest.Server) {
	r := &otlpReceiver{t: t, services: make(map[string]bool)}
	srv := httptest.NewServer(r)
	t.Cleanup(srv.Close)
	return r, srv
}

func (r *otlpReceiver) ServeHTTP(w http.ResponseWriter, req *http.Request) {
	if req.Method != http.MethodPost || req.URL.Path != "/v1/traces" {
		r.t.Errorf("OTLP receiver got %s %s, want POST /v1/traces", req.Method, req.URL.Path)
		http.NotFound(w, req)
		return
	}
	if ct := req.Header.Get("Content-Type"); ct != "application/x-protobuf" {
		r.t.Errorf("OTLP content type %q, want application/x-protobuf", ct)
	}
	var body io.Reader = req.Body
	if req.Header.Get("Content-Encoding") == "gzip" {
		zr, err := gzip.NewReader(req.Body)
		if err != nil {
			r.t.Errorf("OTLP gzip body: %v", err)
			return
		}
		body = zr
	}
	data, err := io.ReadAll(body)
	if err != nil {
		r.t.Errorf("OTLP body: %v", err)
		return
	}
	var export collectortrace.ExportTraceServiceRequest
	if err := proto.Unmarshal(data, &export); err != nil {
		r.t.Errorf("OTLP body is not an ExportTraceServiceRequest: %v", err)
		http.Error(w, err.Error(), http.StatusBadRequest)
		return
	}
	r.mu.Lock()
	for _, rs := range export.GetResourceSpans() {
		for _, kv := range rs.GetResource().GetAttributes() {
			if kv.GetKey() == "service.name" {
				r.services[kv.GetValue().GetStringValue()] = true
			}
		}
		for _, ss := range rs.GetScopeSpans() {
			r.spans = append(r.spans, ss.GetSpans()...)
		}
	}
	r.mu.Unlock()
	resp, _ := proto.Marshal(&collectortrace.ExportTraceServiceResponse{})
	w.Header().Set("Content-Type", "application/x-protobuf")
	_, _ = w.Write(resp)
}

// inTrace returns the received spans of traceID by name.
func (r *otlpReceiver) inTrace(traceID trace.TraceID) map[string]*tracepb.Span {
	r.mu.Lock()
	defer r.mu.Unlock()
	byName := make(map[string]*tracepb.Span)
	for _, s := range r.spans {
		if bytes.Equal(s.GetTraceId(), traceID[:]) {
			byName[s.GetName()] = s
		}
	}
	return byName
}

// TestTracesToOTLP runs prism serve with --otlp-endpoint and checks that a
// caller's trace covers the write, its projection and a read, exported over
// OTLP/HTTP when prism shuts down.
func TestTracesToOTLP(t *testing.T) {
	recv, srv := newOTLPReceiver(t)
	// Export only at shutdown, which must flush; and no service name from
	// the environment of the test.
	t.Setenv("OTEL_BSP_SCHEDULE_DELAY", "600000")
	t.Setenv("OTEL_SERVICE_NAME", "")
	t.Setenv("OTEL_RESOURCE_ATTRIBUTES", "")
	p := startPrism(t, t.TempDir(), 0, "--otlp-endpoint", srv.URL)
	_, c := p.connect(t)
	kv := c.KeyValue("demo") // strong: the put waits for its projection

	caller := trace.NewSpanContext(trace.SpanContextConfig{
		TraceID:    trace.TraceID{0x5e, 0xc7, 0x3d, 0x01, 0x02, 0x03, 0x04, 0x05, 0x06, 0x07, 0x08, 0x09, 0x0a, 0x0b, 0x0c, 0x0d},
		SpanID:     trace.SpanID{0xca, 0x11, 0xe4, 0x00, 0x00, 0x00, 0x00, 0x01},
		TraceFlags: trace.FlagsSampled,
	})
	ctx := trace.ContextWithSpanContext(testCtx(t), caller)
	callerTrace, callerSpan := caller.TraceID(), caller.SpanID()
	seq, err := kv.Put(ctx, []byte("secret-id"), []client.Item{item("secret-key", "secret-value")})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := kv.Get(ctx, []byte("secret-id"), client.MinSeq(seq)); err != nil {
		t.Fatal(err)
	}
	// An untraced request starts a trace of its own, not the caller's.
	if _, err := kv.Get(context.Background(), []byte("secret-id")); err != nil {
		t.Fatal(err)
	}
	p.stop()

	spans := recv.inTrace(callerTrace)
	write, project, read := spans["prism write.put"], spans["prism project"], spans["prism read.get"]
	if write == nil || project == nil || read == nil {
		t.Fatalf("trace %s has spans %v, want prism write.put, prism project and prism read.get", caller.TraceID(), names(spans))
	}
	if !bytes.Equal(write.GetParentSpanId(), callerSpan[:]) {
		t.Errorf("write span parent %x, want the caller's span %s", write.GetParentSpanId(), caller.SpanID())
	}
	if write.GetKind() != tracepb.Span_SPAN_KIND_SERVER {
		t.Errorf("write span kind %v, want server", write.GetKind())
	}
	if pub := spans["prism jetstream.publish"]; pub == nil || !bytes.Equal(pub.GetParentSpanId(), write.GetSpanId()) {
		t.Errorf("publish span %v, want a child of the write span", pub)
	}
	if !bytes.Equal(project.GetParentSpanId(), write.GetSpanId()) {
		t.Errorf("projection span parent %x, want the write span %x", project.GetParentSpanId(), write.GetSpanId())
	}
	if links := project.GetLinks(); len(links) != 1 || !bytes.Equal(links[0].GetSpanId(), write.GetSpanId()) {
		t.Errorf("projection span links %v, want one to the write span %x", links, write.GetSpanId())
	}
	if !bytes.Equal(read.GetParentSpanId(), callerSpan[:]) {
		t.Errorf("read span parent %x, want the caller's span %s", read.GetParentSpanId(), caller.SpanID())
	}
	if got := attr(write, "prism.code"); got != "OK" {
		t.Errorf("write span prism.code %q, want OK", got)
	}
	recv.mu.Lock()
	defer recv.mu.Unlock()
	if !recv.services["prism"] || len(recv.services) != 1 {
		t.Errorf("service names %v, want prism", recv.services)
	}
	gets := 0
	for _, s := range recv.spans {
		if s.GetName() == "prism read.get" {
			gets++
		}
		for _, kv := range s.GetAttributes() {
			if v := kv.GetValue().String(); strings.Contains(v, "secret") || strings.Contains(v, hex.EncodeToString([]byte("secret"))) {
				t.Errorf("span %s attribute %s records record data: %s", s.GetName(), kv.GetKey(), v)
			}
		}
	}
	if gets != 2 {
		t.Errorf("%d read spans exported, want 2 (one per get)", gets)
	}
}

func names(spans map[string]*tracepb.Span) []string {
	var out []string
	for n := range spans {
		out = append(out, n)
	}
	return out
}

func attr(s *tracepb.Span, key string) string {
	for _, kv := range s.GetAttributes() {
		if kv.GetKey() == key {
			return kv.GetValue().GetStringValue()
		}
	}
	return ""
}
