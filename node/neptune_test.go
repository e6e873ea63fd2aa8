package node_test

import (
	"context"
	"errors"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/prism-data/prism/backends/neptune"
	"github.com/prism-data/prism/backends/neptune/neptunetest"
	"github.com/prism-data/prism/client"
	"github.com/prism-data/prism/namespaces"
	"github.com/prism-data/prism/node"
	"github.com/prism-data/prism/node/nodetest"
	prismv1 "github.com/prism-data/prism/proto/prism/v1"
	"github.com/prism-data/prism/status"
)

// A graph namespace on backend neptune through a node: the node opens the
// store at --neptune-endpoint with the AWS SDK's default chain (here the
// stand-in's AWS_* environment and CA bundle), the projector writes
// through it and the reads come back from the stand-in.
func TestNeptuneThroughNode(t *testing.T) {
	ctx := context.Background()
	srv := neptunetest.New(t, "eu-west-1")
	srv.Env(t)
	_, admin, c := nodetest.Start(t, node.Config{NeptuneEndpoint: srv.URL})
	ns := namespaces.Namespace{Name: "social", Abstraction: namespaces.AbstractionGraph, Backend: "neptune"}
	res, err := admin.Apply(ctx, ns, 0, "test")
	if err != nil {
		t.Fatal(err)
	}
	nodetest.WaitServing(t, admin, ns.Name, res.Revision)
	g := c.Graph("social", client.ReadYourWrites())
	if _, err := g.UpsertVertex(ctx, "alice", "person", map[string]string{"name": "Alice"}); err != nil {
		t.Fatal(err)
	}
	if _, err := g.UpsertEdge(ctx, "alice", "follows", "bob", nil); err != nil {
		t.Fatal(err)
	}
	v, err := g.Vertex(ctx, "alice")
	if err != nil || v.GetLabel() != "person" || v.GetProperties()["name"] != "Alice" {
		t.Fatalf("Vertex(alice) = %v, %v", v, err)
	}
	got, _, err := g.Neighbours(ctx, "bob", prismv1.Direction_DIRECTION_IN, nil)
	if err != nil || len(got) != 1 || got[0].GetId() != "alice" {
		t.Fatalf("Neighbours(bob, in) = %v, %v", got, err)
	}
	var shapes []string
	for _, r := range srv.Requests() {
		shapes = append(shapes, r.Shape)
	}
	if !slices.Contains(shapes, "batch") || !slices.Contains(shapes, "neighbours") {
		t.Errorf("the stand-in saw %v, want batches and reads", shapes)
	}

	// A purge drops the graph from the cluster.
	if _, err := admin.Delete(ctx, "social", 0, true); err != nil {
		t.Fatal(err)
	}
	st, err := neptune.New(ctx, srv.URL, "social")
	if err != nil {
		t.Fatal(err)
	}
	defer st.Close()
	for deadline := time.Now().Add(10 * time.Second); ; time.Sleep(10 * time.Millisecond) {
		v, err := st.GetVertex(ctx, "alice")
		cp, cpErr := st.Checkpoint(ctx)
		if err == nil && v == nil && cpErr == nil && cp == 0 {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("after purge: alice %v, %v; checkpoint %d, %v", v, err, cp, cpErr)
		}
	}
	if !slices.ContainsFunc(srv.Requests(), func(r neptunetest.Request) bool { return r.Shape == "drop" }) {
		t.Error("the purge sent no drop request")
	}
}

// A neptune namespace is refused before it is stored when the node has
// no --neptune-endpoint, or when the cluster refuses its credentials.
func TestNeptuneCheckedBeforeStoring(t *testing.T) {
	ctx := context.Background()
	srv := neptunetest.New(t, "eu-west-1")
	srv.Env(t)
	t.Setenv("AWS_SECRET_ACCESS_KEY", "not-the-secret")
	ns := namespaces.Namespace{Name: "social", Abstraction: namespaces.AbstractionGraph, Backend: "neptune"}
	for _, c := range []struct {
		name, endpoint, want string
	}{
		{"no endpoint", "", "--neptune-endpoint"},
		{"wrong secret", srv.URL, "AccessDeniedException"},
	} {
		t.Run(c.name, func(t *testing.T) {
			_, admin, _ := nodetest.Start(t, node.Config{NeptuneEndpoint: c.endpoint})
			_, err := admin.Apply(ctx, ns, 0, "test")
			if !errors.Is(err, status.ErrFailedPrecondition) || !strings.Contains(err.Error(), c.want) {
				t.Fatalf("Apply = %v, want FAILED_PRECONDITION naming %s", err, c.want)
			}
			if _, err := admin.Get(ctx, ns.Name); !errors.Is(err, status.ErrNamespaceNotFound) {
				t.Errorf("the refused namespace was stored: %v", err)
			}
		})
	}
}
