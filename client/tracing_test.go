package client_test

import (
	"context"
	"testing"

	"github.com/nats-io/nats.go"
	"go.opentelemetry.io/otel/trace"
	"google.golang.org/protobuf/proto"

	"github.com/prism-data/prism/client"
	prismv1 "github.com/prism-data/prism/proto/prism/v1"
	"github.com/prism-data/prism/subjects"
)

// A request carries the W3C trace context of its ctx's span, and none
// without one.
func TestRequestCarriesTraceContext(t *testing.T) {
	nc := connect(t)
	got := make(chan nats.Header, 2)
	_, err := nc.Subscribe(subjects.Read("demo", "get"), func(m *nats.Msg) {
		got <- m.Header
		data, _ := proto.Marshal(&prismv1.GetResponse{Revision: 1, Items: []*prismv1.Item{{Key: []byte("k")}}})
		if err := m.Respond(data); err != nil {
			t.Error(err)
		}
	})
	if err != nil {
		t.Fatal(err)
	}
	c, err := client.New(nc)
	if err != nil {
		t.Fatal(err)
	}
	kv := c.KeyValue("demo")

	tid, _ := trace.TraceIDFromHex("4bf92f3577b34da6a3ce929d0e0e4736")
	sid, _ := trace.SpanIDFromHex("00f067aa0ba902b7")
	ts, _ := trace.ParseTraceState("vendor=opaque")
	sc := trace.NewSpanContext(trace.SpanContextConfig{TraceID: tid, SpanID: sid, TraceFlags: trace.FlagsSampled, TraceState: ts})
	tests := []struct {
		name                  string
		ctx                   context.Context
		wantParent, wantState string
	}{
		{"span", trace.ContextWithSpanContext(context.Background(), sc), "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01", "vendor=opaque"},
		{"no span", context.Background(), "", ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if _, err := kv.Get(tt.ctx, []byte("r")); err != nil {
				t.Fatal(err)
			}
			h := <-got
			if p := h.Get(subjects.HeaderTraceParentReq); p != tt.wantParent {
				t.Errorf("traceparent %q, want %q", p, tt.wantParent)
			}
			if s := h.Get(subjects.HeaderTraceStateReq); s != tt.wantState {
				t.Errorf("tracestate %q, want %q", s, tt.wantState)
			}
		})
	}
}
