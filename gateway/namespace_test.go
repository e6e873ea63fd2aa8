package gateway_test

import (
	"context"
	"strings"
	"testing"

	"github.com/prism-data/prism/gateway"
	"github.com/prism-data/prism/itest/natstest"
	"github.com/prism-data/prism/namespaces"
	prismv1 "github.com/prism-data/prism/proto/prism/v1"
)

func TestAddNamespace(t *testing.T) {
	nc := natstest.Connect(t, natstest.Server(t))
	gw, err := gateway.New(nc)
	if err != nil {
		t.Fatal(err)
	}
	ns := namespaces.Namespace{Name: "orders", Abstraction: "keyvalue", Backend: "sqlite"}
	if err := gw.AddNamespace(ns, nil, stuckWaiter{}); err == nil {
		t.Error("AddNamespace accepted a nil reader")
	}
	if err := gw.AddNamespace(namespaces.Namespace{Name: "x"}, nil, nil); err == nil {
		t.Error("AddNamespace accepted an invalid namespace")
	}
	ts := namespaces.Namespace{Name: "events", Abstraction: "timeseries", Backend: "sqlite"}
	reader := &recordingReader{}
	if err := gw.AddNamespace(ts, kvReader{}, stuckWaiter{}); err == nil || !strings.Contains(err.Error(), "namespace events is a timeseries namespace, not keyvalue; register it with AddTimeSeriesNamespace") {
		t.Errorf("AddNamespace of a timeseries namespace: %v", err)
	}
	if err := gw.AddTimeSeriesNamespace(ns, reader, stuckWaiter{}); err == nil || !strings.Contains(err.Error(), "namespace orders is a keyvalue namespace, not timeseries; register it with AddNamespace") {
		t.Errorf("AddTimeSeriesNamespace of a keyvalue namespace: %v", err)
	}
	if err := gw.AddTimeSeriesNamespace(ts, nil, stuckWaiter{}); err == nil {
		t.Error("AddTimeSeriesNamespace accepted a nil reader")
	}
	if err := gw.AddTimeSeriesNamespace(ts, reader, nil); err == nil {
		t.Error("AddTimeSeriesNamespace accepted a nil waiter")
	}
	if err := gw.AddTimeSeriesNamespace(ts, reader, stuckWaiter{}); err != nil {
		t.Errorf("AddTimeSeriesNamespace: %v", err)
	}
	if err := gw.AddTimeSeriesNamespace(ts, reader, stuckWaiter{}); err == nil || !strings.Contains(err.Error(), "already registered") {
		t.Errorf("second AddTimeSeriesNamespace: %v", err)
	}
	if err := gw.AddNamespace(ns, kvReader{}, stuckWaiter{}); err != nil {
		t.Errorf("AddNamespace: %v", err)
	}
}

// kvReader is a KeyValueReader that finds nothing.
type kvReader struct{}

func (kvReader) GetItems(context.Context, *prismv1.GetRequest) (*prismv1.GetResponse, error) {
	return &prismv1.GetResponse{}, nil
}

func (kvReader) ScanIDs(context.Context, *prismv1.ScanRequest) (*prismv1.ScanResponse, error) {
	return &prismv1.ScanResponse{}, nil
}

func TestOptionsValidate(t *testing.T) {
	nc := natstest.Connect(t, natstest.Server(t))
	tests := []struct {
		name string
		opt  gateway.Option
	}{
		{"nil logger", gateway.WithLogger(nil)},
		{"nil registerer", gateway.WithRegisterer(nil)},
		{"zero wait", gateway.WithConsistencyWait(0)},
		{"empty queue", gateway.WithQueueGroup("")},
		{"zero in flight", gateway.WithMaxInFlight(0)},
		{"nil clock", gateway.WithClock(nil)},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if _, err := gateway.New(nc, tt.opt); err == nil {
				t.Fatal("New accepted the option")
			}
		})
	}
	if _, err := gateway.New(nil); err == nil {
		t.Fatal("New accepted a nil connection")
	}
}
