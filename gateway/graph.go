package gateway

import (
	"context"
	"fmt"

	"github.com/nats-io/nats.go"
	"google.golang.org/protobuf/proto"

	"github.com/prism-data/prism/namespaces"
	prismv1 "github.com/prism-data/prism/proto/prism/v1"
	"github.com/prism-data/prism/status"
	"github.com/prism-data/prism/subjects"
)

// GraphReader is what the query handlers need from a graph namespace's
// primary target. Implementations must be safe for concurrent use. Their
// errors are answered UNAVAILABLE, except context errors and an
// InvalidArgumentError (a page token they did not make, a traversal past
// its max_results).
//
// The gateway validates every request before (names by
// subjects.ValidateGraphName, page sizes, limits) and fills in the
// namespace's limits: a reader gets a TraverseRequest with Depth and
// MaxResults at least 1, and a ShortestPathRequest with MaxDepth at least
// 1.
type GraphReader interface {
	// GetVertex returns the vertex id, nil when there is none.
	GetVertex(ctx context.Context, id string) (*prismv1.Vertex, error)
	// GetEdge returns the edge (from, label, to), nil when there is none.
	GetEdge(ctx context.Context, from, label, to string) (*prismv1.Edge, error)
	// Neighbours returns one page of the edges of req.Id in req.Direction
	// whose label is one of req.Labels (all when empty), out edges by
	// (label, to) then in edges by (label, from); Neighbour.Id is the
	// other end. A page size of 0 means 100. The page token is the
	// reader's own. A vertex without edges yields an empty page.
	Neighbours(ctx context.Context, req *prismv1.NeighboursRequest) (*prismv1.NeighboursResponse, error)
	// Traverse returns every vertex reachable from req.Start in 1 to
	// req.Depth hops, the start excluded, each once at its smallest
	// depth, in (depth, id) order. More than req.MaxResults of them is an
	// InvalidArgumentError.
	Traverse(ctx context.Context, req *prismv1.TraverseRequest) (*prismv1.TraverseResponse, error)
	// ShortestPath returns a path of fewest edges (at most req.MaxDepth)
	// from req.From to req.To, as PathResponse says (the tie rule
	// included); Found false when there is none.
	ShortestPath(ctx context.Context, req *prismv1.ShortestPathRequest) (*prismv1.PathResponse, error)
}

// Operations of the Graph abstraction, as <kind>.<op> of the request
// subject.
const (
	OpUpsertVertex = subjects.KindWrite + ".upsert_vertex"
	OpDeleteVertex = subjects.KindWrite + ".delete_vertex"
	OpUpsertEdge   = subjects.KindWrite + ".upsert_edge"
	OpDeleteEdge   = subjects.KindWrite + ".delete_edge"
	OpGetVertex    = subjects.KindRead + ".vertex"
	OpGetEdge      = subjects.KindRead + ".edge"
	OpNeighbours   = subjects.KindRead + ".neighbours"
	OpTraverse     = subjects.KindRead + ".traverse"
	OpShortestPath = subjects.KindRead + ".path"
)

func (g *Gateway) graphRoutes() []route {
	return []route{
		typedRoute(OpUpsertVertex, func() *prismv1.UpsertVertexRequest { return new(prismv1.UpsertVertexRequest) }, validateUpsertVertex, g.upsertVertex),
		typedRoute(OpDeleteVertex, func() *prismv1.DeleteVertexRequest { return new(prismv1.DeleteVertexRequest) }, validateDeleteVertex, g.deleteVertex),
		typedRoute(OpUpsertEdge, func() *prismv1.UpsertEdgeRequest { return new(prismv1.UpsertEdgeRequest) }, validateUpsertEdge, g.upsertEdge),
		typedRoute(OpDeleteEdge, func() *prismv1.DeleteEdgeRequest { return new(prismv1.DeleteEdgeRequest) }, validateDeleteEdge, g.deleteEdge),
		typedRoute(OpGetVertex, func() *prismv1.GetVertexRequest { return new(prismv1.GetVertexRequest) }, validateGetVertex, g.getVertex),
		typedRoute(OpGetEdge, func() *prismv1.GetEdgeRequest { return new(prismv1.GetEdgeRequest) }, validateGetEdge, g.getEdge),
		typedRoute(OpNeighbours, func() *prismv1.NeighboursRequest { return new(prismv1.NeighboursRequest) }, validateNeighbours, g.neighbours),
		typedRoute(OpTraverse, func() *prismv1.TraverseRequest { return new(prismv1.TraverseRequest) }, validateTraverse, g.traverse),
		typedRoute(OpShortestPath, func() *prismv1.ShortestPathRequest { return new(prismv1.ShortestPathRequest) }, validateShortestPath, g.shortestPath),
	}
}

// AddGraphNamespace registers the graph namespace ns, served by reader r
// with projection progress w, like AddNamespace. It returns an error if ns
// is invalid or not a graph namespace, r or w is nil, or a namespace of
// that name is already registered.
func (g *Gateway) AddGraphNamespace(ns namespaces.Namespace, r GraphReader, w AppliedWaiter) error {
	if err := checkAdd(ns, namespaces.AbstractionGraph, r == nil || w == nil); err != nil {
		return err
	}
	return g.namespaces.add(&namespaceEntry{Namespace: ns.WithDefaults(), grReader: r, applied: w})
}

// writeGraph stores ev, the event of req, on its vertex's or edge's
// subject, like a put: the idempotency token is the Nats-Msg-Id. Errors:
// as writeOne.
func (g *Gateway) writeGraph(ctx context.Context, r *request, req proto.Message, token string, ev *prismv1.GraphEvent) (proto.Message, error) {
	return g.writeOne(ctx, r, singleWrite{
		req: req, token: token, record: subjects.GraphEventID(ev), unit: "properties",
		event: func(meta subjects.EventMeta) (*nats.Msg, error) { return subjects.NewGraphEvent(meta, ev) },
	})
}

func (g *Gateway) upsertVertex(ctx context.Context, r *request, req *prismv1.UpsertVertexRequest) (proto.Message, error) {
	v := &prismv1.Vertex{Id: req.GetId(), Label: req.GetLabel(), Properties: req.GetProperties()}
	return g.writeGraph(ctx, r, req, req.GetIdempotencyToken(), &prismv1.GraphEvent{Element: &prismv1.GraphEvent_Vertex{Vertex: v}})
}

// deleteVertex stores the delete of a vertex; the projection deletes its
// edges with it.
func (g *Gateway) deleteVertex(ctx context.Context, r *request, req *prismv1.DeleteVertexRequest) (proto.Message, error) {
	v := &prismv1.Vertex{Id: req.GetId()}
	return g.writeGraph(ctx, r, req, req.GetIdempotencyToken(), &prismv1.GraphEvent{Element: &prismv1.GraphEvent_Vertex{Vertex: v}, Delete: true})
}

func (g *Gateway) upsertEdge(ctx context.Context, r *request, req *prismv1.UpsertEdgeRequest) (proto.Message, error) {
	e := &prismv1.Edge{From: req.GetFrom(), Label: req.GetLabel(), To: req.GetTo(), Properties: req.GetProperties()}
	return g.writeGraph(ctx, r, req, req.GetIdempotencyToken(), &prismv1.GraphEvent{Element: &prismv1.GraphEvent_Edge{Edge: e}})
}

func (g *Gateway) deleteEdge(ctx context.Context, r *request, req *prismv1.DeleteEdgeRequest) (proto.Message, error) {
	e := &prismv1.Edge{From: req.GetFrom(), Label: req.GetLabel(), To: req.GetTo()}
	return g.writeGraph(ctx, r, req, req.GetIdempotencyToken(), &prismv1.GraphEvent{Element: &prismv1.GraphEvent_Edge{Edge: e}, Delete: true})
}

// getVertex reads a vertex. Errors: NOT_FOUND, NOT_CONSISTENT_YET,
// UNAVAILABLE.
func (g *Gateway) getVertex(ctx context.Context, r *request, req *prismv1.GetVertexRequest) (proto.Message, error) {
	if err := g.waitMinSeq(ctx, r, req.GetMinSeq()); err != nil {
		return nil, err
	}
	v, err := r.ns.grReader.GetVertex(ctx, req.GetId())
	if err != nil {
		return nil, readError(err, r.ns.Name, "vertex read")
	}
	if v == nil {
		return nil, status.Newf(prismv1.Code_NOT_FOUND, "namespace %s has no vertex %q", r.ns.Name, req.GetId())
	}
	return v, nil
}

// getEdge reads an edge. Errors: NOT_FOUND, NOT_CONSISTENT_YET,
// UNAVAILABLE.
func (g *Gateway) getEdge(ctx context.Context, r *request, req *prismv1.GetEdgeRequest) (proto.Message, error) {
	if err := g.waitMinSeq(ctx, r, req.GetMinSeq()); err != nil {
		return nil, err
	}
	e, err := r.ns.grReader.GetEdge(ctx, req.GetFrom(), req.GetLabel(), req.GetTo())
	if err != nil {
		return nil, readError(err, r.ns.Name, "edge read")
	}
	if e == nil {
		return nil, status.Newf(prismv1.Code_NOT_FOUND, "namespace %s has no edge %q -[%s]-> %q", r.ns.Name, req.GetFrom(), req.GetLabel(), req.GetTo())
	}
	return e, nil
}

// neighbours reads one page of a vertex's edges. Errors: INVALID_ARGUMENT
// (a page token the backend did not make), NOT_CONSISTENT_YET,
// UNAVAILABLE.
func (g *Gateway) neighbours(ctx context.Context, r *request, req *prismv1.NeighboursRequest) (proto.Message, error) {
	if err := g.waitMinSeq(ctx, r, req.GetMinSeq()); err != nil {
		return nil, err
	}
	resp, err := r.ns.grReader.Neighbours(ctx, req)
	if err != nil {
		return nil, readError(err, r.ns.Name, "neighbours read")
	}
	return resp, nil
}

// traverse reads the vertices within depth hops of a start. Errors:
// INVALID_ARGUMENT (depth or max_results past the namespace's limits, or
// more vertices reached than max_results), NOT_CONSISTENT_YET,
// UNAVAILABLE.
func (g *Gateway) traverse(ctx context.Context, r *request, req *prismv1.TraverseRequest) (proto.Message, error) {
	maxDepth, maxResults := r.ns.Graph.Limits()
	if d := int(req.GetDepth()); d < 1 || d > maxDepth {
		return nil, status.Invalidf("depth %d: must be 1 to %d, the max_depth of namespace %s", d, maxDepth, r.ns.Name)
	}
	if n := int(req.GetMaxResults()); n > maxResults {
		return nil, status.Invalidf("max_results %d is above %d, the max_results of namespace %s", n, maxResults, r.ns.Name)
	}
	if err := g.waitMinSeq(ctx, r, req.GetMinSeq()); err != nil {
		return nil, err
	}
	q := proto.CloneOf(req)
	if q.MaxResults == 0 {
		q.MaxResults = uint32(maxResults)
	}
	resp, err := r.ns.grReader.Traverse(ctx, q)
	if err != nil {
		return nil, readError(err, r.ns.Name, "traversal")
	}
	return resp, nil
}

// shortestPath finds a shortest path between two vertices. Errors:
// INVALID_ARGUMENT (max_depth past the namespace's), NOT_CONSISTENT_YET,
// UNAVAILABLE.
func (g *Gateway) shortestPath(ctx context.Context, r *request, req *prismv1.ShortestPathRequest) (proto.Message, error) {
	maxDepth, _ := r.ns.Graph.Limits()
	if d := int(req.GetMaxDepth()); d > maxDepth {
		return nil, status.Invalidf("max_depth %d is above %d, the max_depth of namespace %s", d, maxDepth, r.ns.Name)
	}
	if err := g.waitMinSeq(ctx, r, req.GetMinSeq()); err != nil {
		return nil, err
	}
	q := proto.CloneOf(req)
	if q.MaxDepth == 0 {
		q.MaxDepth = uint32(maxDepth)
	}
	resp, err := r.ns.grReader.ShortestPath(ctx, q)
	if err != nil {
		return nil, readError(err, r.ns.Name, "shortest path")
	}
	return resp, nil
}

func graphNames(names ...string) error {
	for i := 0; i+1 < len(names); i += 2 {
		if err := subjects.ValidateGraphName(names[i], names[i+1]); err != nil {
			return status.Invalidf("%v", err)
		}
	}
	return nil
}

// validateProperties checks property names; the event size limit bounds
// the rest.
func validateProperties(props map[string]string) error {
	for k := range props {
		if k == "" || len(k) > subjects.MaxGraphNameLen {
			return status.Invalidf("property name %q: must be 1 to %d bytes", k, subjects.MaxGraphNameLen)
		}
	}
	return nil
}

func validateLabels(labels []string) error {
	for i, l := range labels {
		if err := graphNames(fmt.Sprintf("labels[%d]", i), l); err != nil {
			return err
		}
	}
	return nil
}

func validateDirection(d prismv1.Direction) error {
	if _, ok := prismv1.Direction_name[int32(d)]; !ok {
		return status.Invalidf("direction %d: use DIRECTION_OUT, DIRECTION_IN or DIRECTION_BOTH", d)
	}
	return nil
}

func validateUpsertVertex(req *prismv1.UpsertVertexRequest) error {
	if err := graphNames("id", req.GetId(), "label", req.GetLabel()); err != nil {
		return err
	}
	if err := validateProperties(req.GetProperties()); err != nil {
		return err
	}
	return validateToken("idempotency_token", req.GetIdempotencyToken())
}

func validateDeleteVertex(req *prismv1.DeleteVertexRequest) error {
	if err := graphNames("id", req.GetId()); err != nil {
		return err
	}
	return validateToken("idempotency_token", req.GetIdempotencyToken())
}

func validateUpsertEdge(req *prismv1.UpsertEdgeRequest) error {
	if err := graphNames("from", req.GetFrom(), "label", req.GetLabel(), "to", req.GetTo()); err != nil {
		return err
	}
	if err := validateProperties(req.GetProperties()); err != nil {
		return err
	}
	return validateToken("idempotency_token", req.GetIdempotencyToken())
}

func validateDeleteEdge(req *prismv1.DeleteEdgeRequest) error {
	if err := graphNames("from", req.GetFrom(), "label", req.GetLabel(), "to", req.GetTo()); err != nil {
		return err
	}
	return validateToken("idempotency_token", req.GetIdempotencyToken())
}

func validateGetVertex(req *prismv1.GetVertexRequest) error { return graphNames("id", req.GetId()) }

func validateGetEdge(req *prismv1.GetEdgeRequest) error {
	return graphNames("from", req.GetFrom(), "label", req.GetLabel(), "to", req.GetTo())
}

func validateNeighbours(req *prismv1.NeighboursRequest) error {
	if err := graphNames("id", req.GetId()); err != nil {
		return err
	}
	if err := validateDirection(req.GetDirection()); err != nil {
		return err
	}
	if err := validateLabels(req.GetLabels()); err != nil {
		return err
	}
	if err := validatePageSize(req.GetPageSize()); err != nil {
		return err
	}
	return validatePageToken(req.GetPageToken())
}

func validateTraverse(req *prismv1.TraverseRequest) error {
	if err := graphNames("start", req.GetStart()); err != nil {
		return err
	}
	if err := validateDirection(req.GetDirection()); err != nil {
		return err
	}
	return validateLabels(req.GetLabels())
}

func validateShortestPath(req *prismv1.ShortestPathRequest) error {
	if err := graphNames("from", req.GetFrom(), "to", req.GetTo()); err != nil {
		return err
	}
	if err := validateDirection(req.GetDirection()); err != nil {
		return err
	}
	return validateLabels(req.GetLabels())
}
