package gateway_test

import (
	"context"
	"fmt"
	"sync/atomic"
	"testing"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/prometheus/client_golang/prometheus"

	"github.com/prism-data/prism/gateway"
	"github.com/prism-data/prism/itest/natstest"
	"github.com/prism-data/prism/namespaces"
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

// answered reads prism_gateway_requests_total{op=op} from reg, summed
// over codes.
func answered(t *testing.T, reg *prometheus.Registry, op string) float64 {
	t.Helper()
	mfs, err := reg.Gather()
	if err != nil {
		t.Fatal(err)
	}
	var sum float64
	for _, mf := range mfs {
		if mf.GetName() != "prism_gateway_requests_total" {
			continue
		}
		for _, m := range mf.GetMetric() {
			for _, l := range m.GetLabel() {
				if l.GetName() == "op" && l.GetValue() == op {
					sum += m.GetCounter().GetValue()
				}
			}
		}
	}
	return sum
}

// staleCopy is a standby's own copy of a process-local backend: never to
// be read while another process projects the namespace.
type staleCopy struct {
	gateway.KeyValueReader
	reads atomic.Int64
}

func (s *staleCopy) GetItems(ctx context.Context, req *prismv1.GetRequest) (*prismv1.GetResponse, error) {
	s.reads.Add(1)
	return s.KeyValueReader.GetItems(ctx, req)
}

// A gateway whose namespace's reads are served elsewhere (a standby,
// ADR 022) answers its writes itself and hands its reads back: every read
// is answered by the gateway of the projecting process, never from the
// standby's copy.
func TestReadsElsewhereServesWrites(t *testing.T) {
	e := newEnv(t, envConfig{})
	reg := prometheus.NewRegistry()
	standby, err := gateway.New(e.nc, gateway.WithRegisterer(reg))
	if err != nil {
		t.Fatal(err)
	}
	stale := &staleCopy{KeyValueReader: e.store}
	ns := namespaces.Namespace{Name: testNS, Abstraction: "keyvalue", Backend: "sqlite"}
	if err := standby.AddNamespace(ns, stale, e.proj); err != nil {
		t.Fatal(err)
	}
	if err := standby.SetReadsElsewhere(testNS, true); err != nil {
		t.Fatal(err)
	}
	if err := standby.SetReadsElsewhere("nope", true); err == nil {
		t.Fatal("SetReadsElsewhere of an unregistered namespace: no error")
	}
	if err := standby.Start(context.Background()); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		_ = standby.Drain(ctx)
	})
	for i := range 100 {
		var put prismv1.WriteResponse
		mustCall(t, e.nc, subjects.Write(testNS, "put"), putReq(fmt.Sprintf("r%d", i), "k", "v"), &put)
		m := request(t, e.nc, subjects.Read(testNS, "get"), encode(t, &prismv1.GetRequest{Id: fmt.Appendf(nil, "r%d", i), MinSeq: put.GetSeq()}, encJSON), encJSON)
		if code := m.Header.Get(subjects.HeaderErrorCode); code != "" {
			t.Fatalf("get %d answered %s: %s", i, code, m.Data)
		}
	}
	if n := stale.reads.Load(); n != 0 {
		t.Errorf("the standby read its own copy %d times", n)
	}
	if n := handedBack(t, reg, testNS); n == 0 {
		t.Error("no read was handed back: the standby never took one")
	}
	if n := answered(t, reg, "write.put"); n == 0 {
		t.Error("the standby answered no write")
	}
	if n := answered(t, reg, "read.get"); n != 0 {
		t.Errorf("the standby answered %v reads", n)
	}
}
