package gateway_test

import (
	"context"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/nats-io/nats.go"

	"github.com/prism-data/prism/auth"
	"github.com/prism-data/prism/backends/sqlite"
	"github.com/prism-data/prism/gateway"
	"github.com/prism-data/prism/itest/natstest"
	"github.com/prism-data/prism/namespaces"
	prismv1 "github.com/prism-data/prism/proto/prism/v1"
	"github.com/prism-data/prism/subjects"
)

// graphEnv is a secured gateway serving graph namespace testNS from a
// SQLite store that the test fills from the stream (apply).
type graphEnv struct {
	nc     *nats.Conn
	store  *sqlite.Store
	waiter *manualWaiter
	aud    *testAuditor
	apply  func(seq uint64)
}

func newGraphEnv(t *testing.T) *graphEnv {
	t.Helper()
	ctx := context.Background()
	nc, js := natstest.Start(t)
	ns := namespaces.Namespace{Name: testNS, Abstraction: namespaces.AbstractionGraph, Backend: "sqlite", Graph: namespaces.GraphConfig{MaxDepth: 2, MaxResults: 2}}
	if err := namespaces.EnsureStreams(ctx, js, ns); err != nil {
		t.Fatal(err)
	}
	store, err := sqlite.Open(ctx, filepath.Join(t.TempDir(), "gr.db"))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = store.Close() })
	e := &graphEnv{nc: nc, store: store, waiter: newManualWaiter(), aud: &testAuditor{}}
	sec := testSecurity{grants: map[string][]auth.Permission{"writer": {auth.Write, auth.Read}, "reader": {auth.Read}}}
	gw, err := gateway.New(nc, gateway.WithSecurity(sec), gateway.WithAuditor(e.aud), gateway.WithConsistencyWait(2*time.Second))
	if err != nil {
		t.Fatal(err)
	}
	if err := gw.AddGraphNamespace(ns, store, e.waiter); err != nil {
		t.Fatal(err)
	}
	if err := gw.Start(ctx); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		_ = gw.Drain(ctx)
	})
	e.apply = func(seq uint64) {
		t.Helper()
		m := storedMsg(t, js, seq)
		ev, err := subjects.DecodeGraphEvent(m.Subject, m.Header, m.Data)
		if err != nil {
			t.Fatal(err)
		}
		if err := store.ApplyGraph(ctx, []*prismv1.GraphChange{{Seq: seq, Event: ev}}, seq); err != nil {
			t.Fatal(err)
		}
		e.waiter.Set(seq)
	}
	return e
}

// Graph requests go through the same permission checks and audit as the
// other abstractions: writes need write, reads read, and the audit names
// the vertex or edge.
func TestGraphPermissionsAndAudit(t *testing.T) {
	e := newGraphEnv(t)
	var resp prismv1.WriteResponse
	upsert := &prismv1.UpsertEdgeRequest{From: "a", Label: "l", To: "b"}
	if er := callAs(t, &env{nc: e.nc}, "reader", subjects.Write(testNS, "upsert_edge"), upsert, &resp); er.GetCode() != prismv1.Code_PERMISSION_DENIED {
		t.Fatalf("upsert as reader: %v, want PERMISSION_DENIED", er)
	}
	if er := callAs(t, &env{nc: e.nc}, "writer", subjects.Write(testNS, "upsert_edge"), upsert, &resp); er != nil {
		t.Fatalf("upsert as writer: %v", er)
	}
	if resp.GetSeq() != 1 {
		t.Fatalf("the refused upsert was stored: the writer's has seq %d", resp.GetSeq())
	}
	acc, waited := e.aud.last(t)
	if acc.Op != "write.upsert_edge" || acc.Code != "OK" || len(acc.IDs) != 1 || string(acc.IDs[0]) != "a\x00l\x00b" || !waited {
		t.Errorf("audited %+v (waited %v), want the writer's write.upsert_edge of a NUL l NUL b", acc, waited)
	}
	e.apply(resp.GetSeq())

	var edge prismv1.Edge
	if er := callAs(t, &env{nc: e.nc}, "reader", subjects.Read(testNS, "edge"), &prismv1.GetEdgeRequest{From: "a", Label: "l", To: "b", MinSeq: 1}, &edge); er != nil || edge.GetRevision() != 1 {
		t.Fatalf("edge as reader = %v, %v", &edge, er)
	}
	var tr prismv1.TraverseResponse
	if er := callAs(t, &env{nc: e.nc}, "reader", subjects.Read(testNS, "traverse"), &prismv1.TraverseRequest{Start: "a", Depth: 2}, &tr); er != nil || len(tr.GetVertices()) != 1 {
		t.Fatalf("traverse as reader = %v, %v", &tr, er)
	}
	acc, _ = e.aud.last(t)
	if acc.Op != "read.traverse" || acc.Count != 1 || string(acc.IDs[0]) != "a" {
		t.Errorf("audited %+v, want read.traverse from a of 1 vertex", acc)
	}
	for _, c := range []struct {
		principal, op string
		req           *prismv1.TraverseRequest
		want          prismv1.Code
		msg           string
	}{
		{"stranger", "traverse", &prismv1.TraverseRequest{Start: "a", Depth: 1}, prismv1.Code_PERMISSION_DENIED, "may not read"},
		{"reader", "traverse", &prismv1.TraverseRequest{Start: "a", Depth: 3}, prismv1.Code_INVALID_ARGUMENT, "max_depth"},
		{"reader", "traverse", &prismv1.TraverseRequest{Start: "a", Depth: 1, MaxResults: 3}, prismv1.Code_INVALID_ARGUMENT, "max_results"},
		{"reader", "traverse", &prismv1.TraverseRequest{Start: "a", Depth: 0}, prismv1.Code_INVALID_ARGUMENT, "depth 0"},
	} {
		er := callAs(t, &env{nc: e.nc}, c.principal, subjects.Read(testNS, c.op), c.req, &prismv1.TraverseResponse{})
		if er.GetCode() != c.want || !strings.Contains(er.GetMessage(), c.msg) {
			t.Errorf("%s %v: %v, want %v naming %s", c.principal, c.req, er, c.want, c.msg)
		}
	}
	// More reached than max_results: the backend's refusal is INVALID_ARGUMENT.
	for _, to := range []string{"c", "d"} {
		if er := callAs(t, &env{nc: e.nc}, "writer", subjects.Write(testNS, "upsert_edge"), &prismv1.UpsertEdgeRequest{From: "a", Label: "l", To: to}, &resp); er != nil {
			t.Fatal(er)
		}
		e.apply(resp.GetSeq())
	}
	er := callAs(t, &env{nc: e.nc}, "reader", subjects.Read(testNS, "traverse"), &prismv1.TraverseRequest{Start: "a", Depth: 1}, &prismv1.TraverseResponse{})
	if er.GetCode() != prismv1.Code_INVALID_ARGUMENT || !strings.Contains(er.GetMessage(), "more than 2 vertices") {
		t.Errorf("a traversal past max_results: %v, want INVALID_ARGUMENT", er)
	}
}
