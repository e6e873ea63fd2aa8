package gateway_test

import (
	"context"
	"testing"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/prometheus/client_golang/prometheus"

	"github.com/prism-data/prism/gateway"
	"github.com/prism-data/prism/itest/natstest"
	prismv1 "github.com/prism-data/prism/proto/prism/v1"
	"github.com/prism-data/prism/subjects"
)

// startUnservingGateway starts a gateway in the same queue group that has
// namespace testNS registered elsewhere but cannot serve it.
func startUnservingGateway(t *testing.T, nc *nats.Conn) *prometheus.Registry {
	t.Helper()
	reg := prometheus.NewRegistry()
	gw, err := gateway.New(nc, gateway.WithRegisterer(reg))
	if err != nil {
		t.Fatal(err)
	}
	gw.MarkUnserved(testNS)
	if err := gw.Start(context.Background()); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		_ = gw.Drain(ctx)
	})
	return reg
}

// A gateway that does not serve a registered namespace hands its requests
// back to the queue group, so a gateway that serves it answers every one,
// without the client retrying.
func TestUnservedRequestsHandedBack(t *testing.T) {
	e := newEnv(t, envConfig{})
	reg := startUnservingGateway(t, e.nc)
	var put prismv1.WriteResponse
	mustCall(t, e.nc, subjects.Write(testNS, "put"), putReq("a", "k", "v"), &put)
	for i := range 100 {
		m := request(t, e.nc, subjects.Read(testNS, "get"), encode(t, &prismv1.GetRequest{Id: []byte("a"), MinSeq: put.GetSeq()}, encJSON), encJSON)
		if code := m.Header.Get(subjects.HeaderErrorCode); code != "" {
			t.Fatalf("request %d answered %s: %s", i, code, m.Data)
		}
	}
	if n := handedBack(t, reg, testNS); n == 0 {
		t.Error("no request was handed back: the unserving gateway never took one")
	}
}

// With no gateway serving the namespace, a request ends in UNAVAILABLE
// after a bounded number of hand-backs.
func TestUnservedEverywhereIsUnavailable(t *testing.T) {
	nc, _ := natstest.Start(t)
	reg := startUnservingGateway(t, nc)
	m := request(t, nc, subjects.Read(testNS, "get"), encode(t, &prismv1.GetRequest{Id: []byte("a")}, encJSON), encJSON)
	if code := m.Header.Get(subjects.HeaderErrorCode); code != prismv1.Code_UNAVAILABLE.String() {
		t.Fatalf("code %q (%s), want UNAVAILABLE", code, m.Data)
	}
	if n := handedBack(t, reg, testNS); n != 16 {
		t.Errorf("handed back %v times, want 16", n)
	}
}

// handedBack reads prism_gateway_handed_back_total{namespace=ns} from reg.
func handedBack(t *testing.T, reg *prometheus.Registry, ns string) float64 {
	t.Helper()
	mfs, err := reg.Gather()
	if err != nil {
		t.Fatal(err)
	}
	for _, mf := range mfs {
		if mf.GetName() != "prism_gateway_handed_back_total" {
			continue
		}
		for _, m := range mf.GetMetric() {
			if l := m.GetLabel(); len(l) == 1 && l[0].GetValue() == ns {
				return m.GetCounter().GetValue()
			}
		}
	}
	return 0
}
