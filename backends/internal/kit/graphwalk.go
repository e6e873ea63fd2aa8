package kit

import (
	"context"
	"fmt"
	"slices"

	prismv1 "github.com/prism-data/prism/proto/prism/v1"
)

// The Graph pieces a store that is not SQL (Neptune) shares with GraphSQL,
// so that every store pages neighbours with the same tokens and finds
// shortest paths by the same search and tie rule.

// NeighbourPos is where a page of neighbours ended: In for the in edges
// (out edges come first), then the edge label and the other end's id.
type NeighbourPos struct {
	In           bool
	Label, Other string
}

// NeighbourToken is the page token of a Neighbours page that ended at p.
func NeighbourToken(p NeighbourPos) string {
	return encodeNeighbourToken(neighbourPos{in: p.In, label: p.Label, other: p.Other})
}

// ParseNeighbourToken reverses NeighbourToken; nil for "" (the first
// page). Errors: a *RequestError (Token) for a token it did not make.
func ParseNeighbourToken(token string) (*NeighbourPos, error) {
	p, err := decodeNeighbourToken(token)
	if p == nil || err != nil {
		return nil, err
	}
	return &NeighbourPos{In: p.in, Label: p.label, Other: p.other}, nil
}

// parent is how a breadth-first search reached a vertex: from vertex
// prev along the edge of label, out (prev -> vertex) or in.
type parent struct {
	prev, label string
	in          bool
}

// better reports whether c beats p under PathResponse's tie rule: the
// smaller previous vertex, then an out edge, then the smaller label.
func (c parent) better(p parent) bool {
	if c.prev != p.prev {
		return c.prev < p.prev
	}
	if c.in != p.in {
		return !c.in
	}
	return c.label < p.label
}

// LevelReader calls visit with each edge of one direction (in, or out)
// of the frontier's vertices that a search follows (of its labels): from
// vertex self to the edge's other end, along an edge of label.
type LevelReader func(ctx context.Context, frontier []string, in bool, visit func(self, label, other string)) error

// EdgeReader returns edge (from, label, to), nil when there is none.
type EdgeReader func(ctx context.Context, from, label, to string) (*prismv1.Edge, error)

// SearchPath finds a shortest path (CheckShortestPath passed) by a
// breadth-first search that reads each level with level, in each
// direction of req.Direction, and stops at the level that reaches req.To.
// Each vertex keeps its best parent by PathResponse's tie rule; the
// path's edges are read with edge at the end.
func SearchPath(ctx context.Context, req *prismv1.ShortestPathRequest, level LevelReader, edge EdgeReader) (*prismv1.PathResponse, error) {
	from, to := req.GetFrom(), req.GetTo()
	if from == to {
		return &prismv1.PathResponse{Found: true, Vertices: []string{from}}, nil
	}
	parents := map[string]parent{from: {}}
	frontier := []string{from}
	for depth := uint32(1); depth <= req.GetMaxDepth() && len(frontier) > 0; depth++ {
		found := map[string]parent{}
		for _, in := range []bool{false, true} {
			if in && req.GetDirection() == prismv1.Direction_DIRECTION_OUT || !in && req.GetDirection() == prismv1.Direction_DIRECTION_IN {
				continue
			}
			if err := level(ctx, frontier, in, func(self, label, other string) {
				if _, seen := parents[other]; seen {
					return
				}
				c := parent{prev: self, label: label, in: in}
				if old, ok := found[other]; !ok || c.better(old) {
					found[other] = c
				}
			}); err != nil {
				return nil, err
			}
		}
		frontier = frontier[:0]
		for v, p := range found {
			parents[v] = p
			frontier = append(frontier, v)
		}
		if _, ok := found[to]; ok {
			return readPath(ctx, parents, from, to, edge)
		}
	}
	return &prismv1.PathResponse{}, nil
}

// readPath reads back the path to to through parents.
func readPath(ctx context.Context, parents map[string]parent, from, to string, edge EdgeReader) (*prismv1.PathResponse, error) {
	resp := &prismv1.PathResponse{Found: true, Vertices: []string{to}}
	for v := to; v != from; v = parents[v].prev {
		p := parents[v]
		src, dst := p.prev, v
		if p.in {
			src, dst = v, p.prev
		}
		e, err := edge(ctx, src, p.label, dst)
		if err != nil {
			return nil, err
		}
		if e == nil { // not read in one snapshot: deleted since the search
			e = &prismv1.Edge{From: src, Label: p.label, To: dst}
		}
		resp.Vertices = append(resp.Vertices, p.prev)
		resp.Edges = append(resp.Edges, e)
	}
	slices.Reverse(resp.Vertices)
	slices.Reverse(resp.Edges)
	return resp, nil
}

// TooManyReached is the *RequestError of a traversal from a start that
// reaches more than maxResults vertices within depth.
func TooManyReached(maxResults, depth uint32) error {
	return &RequestError{Detail: fmt.Sprintf("the traversal reaches more than %d vertices (max_results) within depth %d; lower the depth, filter by labels or raise graph.max_results", maxResults, depth)}
}
