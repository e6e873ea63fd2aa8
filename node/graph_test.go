package node_test

import (
	"context"
	"errors"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/nats-io/nats.go"

	"github.com/prism-data/prism/client"
	"github.com/prism-data/prism/namespaces"
	"github.com/prism-data/prism/node"
	"github.com/prism-data/prism/node/nodetest"
	prismv1 "github.com/prism-data/prism/proto/prism/v1"
	"github.com/prism-data/prism/subjects"
)

// startGraph starts a node serving graph namespace ns and returns it with
// a client.
func startGraph(t *testing.T, ns namespaces.Namespace) (*node.Node, *client.Client) {
	t.Helper()
	n, admin, c := nodetest.Start(t, node.Config{})
	res, err := admin.Apply(context.Background(), ns, 0, "test")
	if err != nil {
		t.Fatal(err)
	}
	nodetest.WaitServing(t, admin, ns.Name, res.Revision)
	return n, c
}

// The Go client through a node: writes, reads of their own writes,
// a vertex delete that takes its edges, traversal and its limits.
func TestGraphThroughNode(t *testing.T) {
	ctx := context.Background()
	ns := namespaces.Namespace{Name: "social", Abstraction: namespaces.AbstractionGraph, Backend: "sqlite",
		Graph: namespaces.GraphConfig{MaxDepth: 3, MaxResults: 3}}
	_, c := startGraph(t, ns)
	g := c.Graph("social", client.ReadYourWrites())
	must := func(_ uint64, err error) {
		t.Helper()
		if err != nil {
			t.Fatal(err)
		}
	}
	must(g.UpsertVertex(ctx, "alice", "person", map[string]string{"name": "Alice"}))
	must(g.UpsertVertex(ctx, "bob", "person", nil))
	must(g.UpsertEdge(ctx, "alice", "follows", "bob", map[string]string{"since": "2020"}))
	must(g.UpsertEdge(ctx, "bob", "follows", "carol", nil))
	must(g.UpsertEdge(ctx, "carol", "follows", "dave", nil))
	must(g.UpsertEdge(ctx, "dave", "follows", "erin", nil))

	v, err := g.Vertex(ctx, "alice")
	if err != nil || v.GetLabel() != "person" || v.GetProperties()["name"] != "Alice" || v.GetRevision() == 0 {
		t.Fatalf("Vertex(alice) = %v, %v", v, err)
	}
	e, err := g.Edge(ctx, "alice", "follows", "bob")
	if err != nil || e.GetProperties()["since"] != "2020" {
		t.Fatalf("Edge = %v, %v", e, err)
	}
	ns1, next, err := g.Neighbours(ctx, "bob", prismv1.Direction_DIRECTION_BOTH, nil, client.PageSize(1))
	if err != nil || len(ns1) != 1 || ns1[0].GetId() != "carol" || next == "" {
		t.Fatalf("first page of bob's neighbours = %v, %q, %v", ns1, next, err)
	}
	ns2, next, err := g.Neighbours(ctx, "bob", prismv1.Direction_DIRECTION_BOTH, nil, client.PageSize(1), client.PageToken(next))
	if err != nil || len(ns2) != 1 || ns2[0].GetId() != "alice" || ns2[0].GetDirection() != prismv1.Direction_DIRECTION_IN {
		t.Fatalf("second page = %v, %q, %v", ns2, next, err)
	}

	reached, err := g.Traverse(ctx, &prismv1.TraverseRequest{Start: "alice", Depth: 3})
	if err != nil {
		t.Fatal(err)
	}
	var ids []string
	for _, r := range reached {
		ids = append(ids, r.GetId())
	}
	if !slices.Equal(ids, []string{"bob", "carol", "dave"}) {
		t.Errorf("3 hops from alice = %v", ids)
	}
	for _, req := range []*prismv1.TraverseRequest{
		{Start: "alice", Depth: 4},                // past max_depth
		{Start: "alice", Depth: 2, MaxResults: 4}, // past max_results
		{Start: "alice", Depth: 3, MaxResults: 2}, // reaches more than it allows
		{Start: "", Depth: 1},                     // no start
		{Start: "alice", Depth: 1, Labels: []string{""}},
	} {
		if _, err := g.Traverse(ctx, req); !errors.Is(err, client.ErrInvalidArgument) {
			t.Errorf("Traverse(%v) = %v, want ErrInvalidArgument", req, err)
		}
	}
	path, err := g.ShortestPath(ctx, &prismv1.ShortestPathRequest{From: "alice", To: "dave"})
	if err != nil || !path.GetFound() || !slices.Equal(path.GetVertices(), []string{"alice", "bob", "carol", "dave"}) {
		t.Errorf("path alice..dave = %v, %v", path, err)
	}
	if path, err := g.ShortestPath(ctx, &prismv1.ShortestPathRequest{From: "alice", To: "erin"}); err != nil || path.GetFound() {
		t.Errorf("path alice..erin beyond max_depth 3 = %v, %v; want none", path, err)
	}

	must(g.DeleteVertex(ctx, "bob"))
	if _, err := g.Vertex(ctx, "bob"); !errors.Is(err, client.ErrNotFound) {
		t.Errorf("deleted vertex: %v, want ErrNotFound", err)
	}
	if _, err := g.Edge(ctx, "alice", "follows", "bob"); !errors.Is(err, client.ErrNotFound) {
		t.Errorf("an edge of the deleted vertex: %v, want ErrNotFound", err)
	}
	if _, err := g.UpsertVertex(ctx, "x", "", nil); !errors.Is(err, client.ErrInvalidArgument) {
		t.Errorf("a vertex without a label: %v, want ErrInvalidArgument", err)
	}
}

// JSON over NATS, as any language sends it; an idempotency token makes a
// retry a duplicate.
func TestGraphJSON(t *testing.T) {
	ns := namespaces.Namespace{Name: "roads", Abstraction: namespaces.AbstractionGraph, Backend: "sqlite", Consistency: namespaces.Strong}
	n, _ := startGraph(t, ns)
	nc, err := nats.Connect(n.URL())
	if err != nil {
		t.Fatal(err)
	}
	defer nc.Close()
	req := func(kind, op, body string) (string, string) {
		t.Helper()
		subject := subjects.Write(ns.Name, op)
		if kind == "read" {
			subject = subjects.Read(ns.Name, op)
		}
		reply, err := nc.Request(subject, []byte(body), 10*time.Second)
		if err != nil {
			t.Fatal(err)
		}
		// protojson varies its spaces: drop them before looking for text
		return reply.Header.Get(subjects.HeaderErrorCode), strings.ReplaceAll(string(reply.Data), " ", "")
	}
	for _, w := range []struct{ op, body string }{
		{"upsert_vertex", `{"id":"paris","label":"city","properties":{"country":"FR"}}`},
		{"upsert_vertex", `{"id":"lyon","label":"city"}`},
		{"upsert_edge", `{"from":"paris","label":"road","to":"lyon","properties":{"km":"465"}}`},
	} {
		if code, body := req("write", w.op, w.body); code != "" {
			t.Fatalf("%s: %s %s", w.op, code, body)
		}
	}
	_, first := req("write", "upsert_edge", `{"from":"lyon","label":"road","to":"nice","idempotencyToken":"t-1"}`)
	if code, again := req("write", "upsert_edge", `{"from":"lyon","label":"road","to":"nice","idempotencyToken":"t-1"}`); code != "" || !strings.Contains(again, `"duplicate":true`) {
		t.Errorf("a retry with the same token = %s %s (first %s), want a duplicate", code, again, first)
	}
	if code, body := req("read", "vertex", `{"id":"paris"}`); code != "" || !strings.Contains(body, `"country":"FR"`) {
		t.Errorf("read.vertex = %s %s", code, body)
	}
	if code, body := req("read", "neighbours", `{"id":"lyon","direction":"DIRECTION_BOTH"}`); code != "" || !strings.Contains(body, `"id":"nice"`) || !strings.Contains(body, `"id":"paris"`) {
		t.Errorf("read.neighbours = %s %s", code, body)
	}
	if code, body := req("read", "path", `{"from":"paris","to":"nice"}`); code != "" || !strings.Contains(body, `"vertices":["paris","lyon","nice"]`) {
		t.Errorf("read.path = %s %s", code, body)
	}
	if code, body := req("read", "traverse", `{"start":"paris","depth":2}`); code != "" || !strings.Contains(body, `{"id":"nice","depth":2}`) {
		t.Errorf("read.traverse = %s %s", code, body)
	}
	if code, _ := req("read", "vertex", `{"id":"rome"}`); code != "NOT_FOUND" {
		t.Errorf("a missing vertex: %q, want NOT_FOUND", code)
	}
	if code, _ := req("read", "traverse", `{"start":"paris","depth":9}`); code != "INVALID_ARGUMENT" {
		t.Errorf("depth past max_depth: %q, want INVALID_ARGUMENT", code)
	}
	if code, _ := req("write", "upsert_vertex", `{"id":"a\u0000b","label":"city"}`); code != "INVALID_ARGUMENT" {
		t.Errorf("an id with NUL: %q, want INVALID_ARGUMENT", code)
	}
	if code, _ := req("write", "put", `{"id":"eA=="}`); code != "UNIMPLEMENTED" {
		t.Errorf("a keyvalue put on a graph namespace: %q, want UNIMPLEMENTED", code)
	}
}
