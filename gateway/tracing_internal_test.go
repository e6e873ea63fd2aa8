package gateway

import (
	"context"
	"testing"

	"github.com/nats-io/nats.go"
	"go.opentelemetry.io/otel"
	"go.opentelemetry.io/otel/trace/noop"
)

// TestUntracedRequestAllocs pins the cost of tracing an untraced request
// (no traceparent header): nothing with the no-op provider that prism serve
// uses when tracing is off, one no-op span start with an unset global
// provider.
func TestUntracedRequestAllocs(t *testing.T) {
	tests := []struct {
		name string
		g    *Gateway
		want float64
	}{
		{"noop provider", &Gateway{tracer: newTracer(noop.NewTracerProvider())}, 0},
		{"unset global provider", &Gateway{tracer: newTracer(otel.GetTracerProvider())}, 3},
	}
	rt := route{op: OpPut, spanName: "prism " + OpPut}
	r := &request{route: &rt}
	h := nats.Header{}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got := testing.AllocsPerRun(100, func() {
				ctx, span := tt.g.startServerSpan(context.Background(), h, r)
				pctx, child := tt.g.startChildSpan(ctx, spanPublish, clientSpanOpts)
				if traceParent(pctx) != "" {
					t.Fatal("untraced request has a traceparent")
				}
				endChildSpan(child, false)
				endServerSpan(span, "ns", OpPut, "OK", nil)
			})
			if got > tt.want {
				t.Errorf("%v allocations per request, want at most %v", got, tt.want)
			}
		})
	}
}
