package gateway_test

import (
	"context"
	"errors"
	"sync"
	"testing"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/prometheus/client_golang/prometheus"
	dto "github.com/prometheus/client_model/go"

	"github.com/prism-data/prism/gateway"
	prismv1 "github.com/prism-data/prism/proto/prism/v1"
	"github.com/prism-data/prism/subjects"
)

// enteredStuckWaiter is stuckWaiter that closes entered when a request
// starts waiting on it: the request is then in flight in the gateway.
type enteredStuckWaiter struct {
	stuckWaiter
	once    sync.Once
	entered chan struct{}
}

func (w *enteredStuckWaiter) WaitApplied(ctx context.Context, seq uint64) error {
	w.once.Do(func() { close(w.entered) })
	return w.stuckWaiter.WaitApplied(ctx, seq)
}

func TestDrainFinishesInFlight(t *testing.T) {
	// The read below is in flight once it waits on the projection.
	waiter := &enteredWaiter{entered: make(chan struct{})}
	e := newEnv(t, envConfig{waiter: waiter})
	waiter.proj.Store(e.proj)
	var w prismv1.WriteResponse
	mustCall(t, e.nc, subjects.Write(testNS, "put"), putReq("r", "k", "v"), &w)
	if err := e.proj.WaitApplied(t.Context(), w.GetSeq()); err != nil {
		t.Fatal(err)
	}
	e.proj.Pause()
	var w2 prismv1.WriteResponse
	mustCall(t, e.nc, subjects.Write(testNS, "put"), putReq("r", "k", "v2"), &w2)

	// A read that waits for the paused projection is in flight.
	got := make(chan *prismv1.Error, 1)
	go func() {
		var resp prismv1.GetResponse
		got <- call(t, e.nc, subjects.Read(testNS, "get"), &prismv1.GetRequest{Id: []byte("r"), MinSeq: w2.GetSeq()}, &resp, encProto)
	}()
	<-waiter.entered

	drained := make(chan error, 1)
	go func() {
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		drained <- e.gw.Drain(ctx)
	}()
	select {
	case err := <-drained:
		t.Fatalf("Drain returned %v with a request in flight", err)
	case <-time.After(200 * time.Millisecond):
	}
	e.proj.Resume()
	if er := <-got; er != nil {
		t.Fatalf("in-flight read: %v", er)
	}
	if err := <-drained; err != nil {
		t.Fatalf("Drain: %v", err)
	}
	if err := e.gw.Drain(t.Context()); err != nil {
		t.Fatalf("second Drain: %v", err)
	}
	_, err := e.nc.Request(subjects.Write(testNS, "put"), []byte(`{}`), time.Second)
	if !errors.Is(err, nats.ErrNoResponders) {
		t.Fatalf("request after Drain: %v, want no responders", err)
	}
	if err := e.gw.Start(t.Context()); !errors.Is(err, gateway.ErrGatewayClosed) {
		t.Fatalf("Start after Drain: %v, want ErrGatewayClosed", err)
	}
}

func TestDrainBoundedByContext(t *testing.T) {
	waiter := &enteredStuckWaiter{entered: make(chan struct{})}
	e := newEnv(t, envConfig{waiter: waiter, opts: []gateway.Option{gateway.WithConsistencyWait(3 * time.Second)}})
	got := make(chan *prismv1.Error, 1)
	go func() {
		got <- call(t, e.nc, subjects.Read(testNS, "get"), &prismv1.GetRequest{Id: []byte("r"), MinSeq: 9}, &prismv1.GetResponse{}, encJSON)
	}()
	<-waiter.entered // the read is in flight
	ctx, cancel := context.WithTimeout(context.Background(), 100*time.Millisecond)
	defer cancel()
	if err := e.gw.Drain(ctx); !errors.Is(err, context.DeadlineExceeded) {
		t.Fatalf("Drain: %v, want deadline exceeded", err)
	}
	// The cancelled request still gets an answer.
	if er := <-got; er == nil || er.GetCode() != prismv1.Code_UNAVAILABLE {
		t.Fatalf("cancelled read: %v, want UNAVAILABLE", er)
	}
}

func TestMetrics(t *testing.T) {
	reg := prometheus.NewRegistry()
	e := newEnv(t, envConfig{opts: []gateway.Option{gateway.WithRegisterer(reg)}})
	var w prismv1.WriteResponse
	mustCall(t, e.nc, subjects.Write(testNS, "put"), putReq("r", "k", "v"), &w)
	_ = call(t, e.nc, subjects.Write(testNS, "put"), putReq("", "k", "v"), &w, encProto)
	_ = call(t, e.nc, subjects.Write("other", "put"), putReq("r", "k", "v"), &w, encProto)

	families, err := reg.Gather()
	if err != nil {
		t.Fatal(err)
	}
	counts := map[string]float64{}
	var observed uint64
	for _, f := range families {
		for _, m := range f.GetMetric() {
			switch f.GetName() {
			case "prism_gateway_requests_total":
				counts[labels(m)] = m.GetCounter().GetValue()
			case "prism_gateway_request_duration_seconds":
				observed += m.GetHistogram().GetSampleCount()
			}
		}
	}
	want := map[string]float64{
		"code=OK,namespace=demo,op=write.put":                   1,
		"code=INVALID_ARGUMENT,namespace=demo,op=write.put":     1,
		"code=NAMESPACE_NOT_FOUND,namespace=unknown,op=unknown": 1,
	}
	for k, v := range want {
		if counts[k] != v {
			t.Errorf("requests_total{%s} = %v, want %v (all: %v)", k, counts[k], v, counts)
		}
	}
	if observed != 3 {
		t.Errorf("duration observations %d, want 3", observed)
	}
}

func labels(m *dto.Metric) string {
	s := ""
	for i, l := range m.GetLabel() {
		if i > 0 {
			s += ","
		}
		s += l.GetName() + "=" + l.GetValue()
	}
	return s
}
