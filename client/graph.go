package client

import (
	"context"

	"google.golang.org/protobuf/proto"

	prismv1 "github.com/prism-data/prism/proto/prism/v1"
	"github.com/prism-data/prism/subjects"
)

// Graph is a handle on one Graph namespace: vertices and directed edges
// with labels and properties (docs/graph.md). It is safe for concurrent
// use. Reads after a write through the same handle see it when the handle
// reads its writes (see HandleOption).
type Graph struct {
	handle
}

// Graph returns a handle on graph namespace ns.
func (c *Client) Graph(ns string, opts ...HandleOption) *Graph {
	g := new(Graph)
	g.init(c, ns, opts)
	return g
}

// UpsertVertex creates vertex id or replaces its label and all its
// properties, and returns the stream sequence of the stored event.
// Errors: ErrInvalidArgument (an id or label that is empty, longer than
// 256 bytes or holds NUL), ErrIdempotencyMismatch, ErrNamespaceNotFound,
// ErrUnavailable, ErrNotConsistentYet (strong namespaces).
func (g *Graph) UpsertVertex(ctx context.Context, id, label string, props map[string]string, opts ...WriteOption) (uint64, error) {
	return g.store(ctx, "upsert_vertex", &prismv1.UpsertVertexRequest{Id: id, Label: label, Properties: props, IdempotencyToken: newWriteOpts(opts).token})
}

// DeleteVertex deletes vertex id and every edge into or out of it.
// Deleting a missing vertex is no error. Errors: as UpsertVertex.
func (g *Graph) DeleteVertex(ctx context.Context, id string, opts ...WriteOption) (uint64, error) {
	return g.store(ctx, "delete_vertex", &prismv1.DeleteVertexRequest{Id: id, IdempotencyToken: newWriteOpts(opts).token})
}

// UpsertEdge creates the edge from -label-> to or replaces its
// properties. Its vertices need not exist. Errors: as UpsertVertex.
func (g *Graph) UpsertEdge(ctx context.Context, from, label, to string, props map[string]string, opts ...WriteOption) (uint64, error) {
	return g.store(ctx, "upsert_edge", &prismv1.UpsertEdgeRequest{From: from, Label: label, To: to, Properties: props, IdempotencyToken: newWriteOpts(opts).token})
}

// DeleteEdge deletes the edge from -label-> to. Deleting a missing edge
// is no error. Errors: as UpsertVertex.
func (g *Graph) DeleteEdge(ctx context.Context, from, label, to string, opts ...WriteOption) (uint64, error) {
	return g.store(ctx, "delete_edge", &prismv1.DeleteEdgeRequest{From: from, Label: label, To: to, IdempotencyToken: newWriteOpts(opts).token})
}

func (g *Graph) store(ctx context.Context, op string, req proto.Message) (uint64, error) {
	resp, err := g.c.write(ctx, op+" "+g.ns, subjects.Write(g.ns, op), req)
	if err != nil {
		return 0, err
	}
	g.remember(resp.GetSeq())
	return resp.GetSeq(), nil
}

// Vertex reads vertex id. Errors: ErrNotFound, ErrNotConsistentYet,
// ErrInvalidArgument, ErrNamespaceNotFound, ErrUnavailable.
func (g *Graph) Vertex(ctx context.Context, id string, opts ...ReadOption) (*prismv1.Vertex, error) {
	var resp prismv1.Vertex
	err := g.c.call(ctx, "vertex "+g.ns, subjects.Read(g.ns, "vertex"), &prismv1.GetVertexRequest{Id: id, MinSeq: g.readOpts(opts).minSeq}, &resp)
	if err != nil {
		return nil, err
	}
	return &resp, nil
}

// Edge reads the edge from -label-> to. Errors: as Vertex.
func (g *Graph) Edge(ctx context.Context, from, label, to string, opts ...ReadOption) (*prismv1.Edge, error) {
	var resp prismv1.Edge
	err := g.c.call(ctx, "edge "+g.ns, subjects.Read(g.ns, "edge"), &prismv1.GetEdgeRequest{From: from, Label: label, To: to, MinSeq: g.readOpts(opts).minSeq}, &resp)
	if err != nil {
		return nil, err
	}
	return &resp, nil
}

// Neighbours reads one page of the edges of vertex id in direction dir
// whose label is one of labels (every label when none): out edges by
// (label, to), then in edges by (label, from). PageSize, PageToken and
// MinSeq apply. It returns the token of the next page ("" on the last).
// Errors: ErrInvalidArgument (a page token Prism did not make),
// ErrNotConsistentYet, ErrNamespaceNotFound, ErrUnavailable.
func (g *Graph) Neighbours(ctx context.Context, id string, dir prismv1.Direction, labels []string, opts ...ReadOption) ([]*prismv1.Neighbour, string, error) {
	o := g.readOpts(opts)
	req := &prismv1.NeighboursRequest{Id: id, Direction: dir, Labels: labels, PageSize: o.pageSize, PageToken: o.pageToken, MinSeq: o.minSeq}
	var resp prismv1.NeighboursResponse
	if err := g.c.call(ctx, "neighbours "+g.ns, subjects.Read(g.ns, "neighbours"), req, &resp); err != nil {
		return nil, "", err
	}
	return resp.GetNeighbours(), resp.GetNextPageToken(), nil
}

// Traverse reads the vertices reachable from req.Start within req.Depth
// hops, each at its smallest depth, in (depth, id) order. MinSeq applies
// (req.MinSeq is overridden when the option or the handle sets one).
// Errors: ErrInvalidArgument (depth or max_results past the namespace's
// limits, or more vertices reached than max_results), ErrNotConsistentYet,
// ErrNamespaceNotFound, ErrUnavailable.
func (g *Graph) Traverse(ctx context.Context, req *prismv1.TraverseRequest, opts ...ReadOption) ([]*prismv1.Reached, error) {
	q := proto.CloneOf(req)
	if m := g.readOpts(opts).minSeq; m > 0 {
		q.MinSeq = m
	}
	var resp prismv1.TraverseResponse
	if err := g.c.call(ctx, "traverse "+g.ns, subjects.Read(g.ns, "traverse"), q, &resp); err != nil {
		return nil, err
	}
	return resp.GetVertices(), nil
}

// ShortestPath finds a path of fewest edges from req.From to req.To
// within req.MaxDepth (0: the namespace's max_depth). found is false when
// there is none. MinSeq applies as for Traverse. Errors: as Traverse.
func (g *Graph) ShortestPath(ctx context.Context, req *prismv1.ShortestPathRequest, opts ...ReadOption) (*prismv1.PathResponse, error) {
	q := proto.CloneOf(req)
	if m := g.readOpts(opts).minSeq; m > 0 {
		q.MinSeq = m
	}
	var resp prismv1.PathResponse
	if err := g.c.call(ctx, "path "+g.ns, subjects.Read(g.ns, "path"), q, &resp); err != nil {
		return nil, err
	}
	return &resp, nil
}
