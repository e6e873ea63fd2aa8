package neptune

import (
	"context"
	"slices"

	"github.com/prism-data/prism/backends/internal/kit"
	prismv1 "github.com/prism-data/prism/proto/prism/v1"
)

type vertexRow struct {
	Label string  `json:"label"`
	Props *string `json:"props"`
	Rev   int64   `json:"rev"`
}

// GetVertex returns vertex id, nil when there is none (a stub node an
// edge made for a missing end is none). Errors: ErrClosed; an error
// matching ErrUnavailable.
func (s *Store) GetVertex(ctx context.Context, id string) (*prismv1.Vertex, error) {
	return kit.Do(&s.gate, ErrClosed, "get vertex", nil, func() (*prismv1.Vertex, error) {
		var rows []vertexRow
		if err := s.c.query(ctx, false, qGetVertex, map[string]any{"ns": s.ns, "id": id}, &rows); err != nil || len(rows) == 0 {
			return nil, err
		}
		props, err := decodeProps(rows[0].Props)
		if err != nil {
			return nil, err
		}
		return &prismv1.Vertex{Id: id, Label: rows[0].Label, Properties: props, Revision: uint64(rows[0].Rev)}, nil
	})
}

type edgeRow struct {
	Props *string `json:"props"`
	Rev   int64   `json:"rev"`
}

// GetEdge returns edge (from, label, to), nil when there is none. Errors:
// ErrClosed; an error matching ErrUnavailable.
func (s *Store) GetEdge(ctx context.Context, from, label, to string) (*prismv1.Edge, error) {
	return kit.Do(&s.gate, ErrClosed, "get edge", nil, func() (*prismv1.Edge, error) { return s.getEdge(ctx, from, label, to) })
}

func (s *Store) getEdge(ctx context.Context, from, label, to string) (*prismv1.Edge, error) {
	var rows []edgeRow
	if err := s.c.query(ctx, false, qGetEdge, map[string]any{"ns": s.ns, "from": from, "label": label, "to": to}, &rows); err != nil || len(rows) == 0 {
		return nil, err
	}
	props, err := decodeProps(rows[0].Props)
	if err != nil {
		return nil, err
	}
	return &prismv1.Edge{From: from, Label: label, To: to, Properties: props, Revision: uint64(rows[0].Rev)}, nil
}

type neighbourRow struct {
	Label string  `json:"label"`
	Other string  `json:"other"`
	Props *string `json:"props"`
	Rev   int64   `json:"rev"`
}

// Neighbours returns one page of the edges of req.Id in req.Direction of
// req.Labels (all when empty): out edges by (label, to), then in edges by
// (label, from), byte order; page size and tokens as kit's (the same
// tokens as SQLite's and PostgreSQL's).
//
// Errors: ErrInvalidPageToken (wrapped) for a token it did not make;
// ErrInvalidRequest for a nil request or an empty id; ErrClosed; an error
// matching ErrUnavailable.
func (s *Store) Neighbours(ctx context.Context, req *prismv1.NeighboursRequest) (*prismv1.NeighboursResponse, error) {
	return kit.Do(&s.gate, ErrClosed, "neighbours", kitErrors.Request(kit.CheckNeighbours(req)), func() (*prismv1.NeighboursResponse, error) {
		after, _ := kit.ParseNeighbourToken(req.GetPageToken())
		size := kit.PageSize(req.GetPageSize())
		resp := &prismv1.NeighboursResponse{}
		var last kit.NeighbourPos
		for _, in := range []bool{false, true} {
			switch {
			case in && req.GetDirection() == prismv1.Direction_DIRECTION_OUT,
				!in && req.GetDirection() == prismv1.Direction_DIRECTION_IN,
				!in && after != nil && after.In:
				continue
			}
			params := map[string]any{"ns": s.ns, "id": req.GetId(), "labels": nonNil(req.GetLabels()), "afterLabel": "", "afterID": ""}
			if after != nil && after.In == in {
				params["afterLabel"], params["afterID"] = after.Label, after.Other
			}
			// One more than the page holds shows whether a next page exists.
			var rows []neighbourRow
			if err := s.c.query(ctx, false, neighboursQuery(in, size+1-len(resp.Neighbours)), params, &rows); err != nil {
				return nil, err
			}
			for _, r := range rows {
				if len(resp.Neighbours) == size {
					resp.NextPageToken = kit.NeighbourToken(last)
					return resp, nil
				}
				props, err := decodeProps(r.Props)
				if err != nil {
					return nil, err
				}
				e := &prismv1.Edge{From: req.GetId(), Label: r.Label, To: r.Other, Properties: props, Revision: uint64(r.Rev)}
				n := &prismv1.Neighbour{Id: r.Other, Direction: prismv1.Direction_DIRECTION_OUT, Edge: e}
				if in {
					e.From, e.To = r.Other, req.GetId()
					n.Direction = prismv1.Direction_DIRECTION_IN
				}
				resp.Neighbours = append(resp.Neighbours, n)
				last = kit.NeighbourPos{In: in, Label: r.Label, Other: r.Other}
			}
		}
		return resp, nil
	})
}

func nonNil(s []string) []string {
	if s == nil {
		return []string{}
	}
	return s
}

type levelRow struct {
	Self  string `json:"self"`
	Label string `json:"label"`
	Other string `json:"other"`
}

// frontierChunk is the most vertices one level request names.
const frontierChunk = 500

// level calls visit with each edge of one direction (in or out) of the
// frontier's vertices, of labels (all when empty).
func (s *Store) level(ctx context.Context, frontier []string, in bool, labels []string, visit func(levelRow)) error {
	q := qLevelOut
	if in {
		q = qLevelIn
	}
	for chunk := range slices.Chunk(frontier, frontierChunk) {
		var rows []levelRow
		if err := s.c.query(ctx, false, q, map[string]any{"ns": s.ns, "ids": chunk, "labels": nonNil(labels)}, &rows); err != nil {
			return err
		}
		for _, r := range rows {
			visit(r)
		}
	}
	return nil
}

// directions are the edge directions a traversal in dir follows: in
// false (out), true (in), or both.
func directions(dir prismv1.Direction) []bool {
	switch dir {
	case prismv1.Direction_DIRECTION_IN:
		return []bool{true}
	case prismv1.Direction_DIRECTION_BOTH:
		return []bool{false, true}
	}
	return []bool{false}
}

// Traverse returns the vertices within req.Depth hops of req.Start, each
// at its smallest depth, in (depth, id) order, by a breadth-first search
// of one request per level and direction (and per 500 frontier vertices)
// that stops as soon as more than req.MaxResults are reached.
//
// Errors: ErrInvalidRequest (wrapped) for a request without a start, a
// depth or max_results of 0, or a traversal that reaches more than
// req.MaxResults vertices; ErrClosed; an error matching ErrUnavailable.
func (s *Store) Traverse(ctx context.Context, req *prismv1.TraverseRequest) (*prismv1.TraverseResponse, error) {
	return kit.Do(&s.gate, ErrClosed, "traverse", kitErrors.Request(kit.CheckTraverse(req)), func() (*prismv1.TraverseResponse, error) {
		seen := map[string]bool{req.GetStart(): true}
		frontier := []string{req.GetStart()}
		resp := &prismv1.TraverseResponse{}
		for depth := uint32(1); depth <= req.GetDepth() && len(frontier) > 0; depth++ {
			var next []string
			for _, in := range directions(req.GetDirection()) {
				if err := s.level(ctx, frontier, in, req.GetLabels(), func(r levelRow) {
					if !seen[r.Other] {
						seen[r.Other] = true
						next = append(next, r.Other)
					}
				}); err != nil {
					return nil, err
				}
				if len(resp.Vertices)+len(next) > int(req.GetMaxResults()) {
					return nil, kitErrors.Request(kit.TooManyReached(req.GetMaxResults(), req.GetDepth()))
				}
			}
			slices.Sort(next)
			for _, id := range next {
				resp.Vertices = append(resp.Vertices, &prismv1.Reached{Id: id, Depth: depth})
			}
			frontier = next
		}
		return resp, nil
	})
}

// ShortestPath returns a shortest path of at most req.MaxDepth edges from
// req.From to req.To (prismv1.PathResponse says which among ties), Found
// false when there is none, by kit.SearchPath: a breadth-first search of
// one request per level and direction (per 500 frontier vertices) that
// stops at the level reaching req.To, the path's edges read at the end.
//
// Errors: ErrInvalidRequest (wrapped) for a request without from or to or
// with max_depth 0; ErrClosed; an error matching ErrUnavailable.
func (s *Store) ShortestPath(ctx context.Context, req *prismv1.ShortestPathRequest) (*prismv1.PathResponse, error) {
	return kit.Do(&s.gate, ErrClosed, "shortest path", kitErrors.Request(kit.CheckShortestPath(req)), func() (*prismv1.PathResponse, error) {
		return kit.SearchPath(ctx, req, func(ctx context.Context, frontier []string, in bool, visit func(self, label, other string)) error {
			return s.level(ctx, frontier, in, req.GetLabels(), func(r levelRow) { visit(r.Self, r.Label, r.Other) })
		}, s.getEdge)
	})
}
