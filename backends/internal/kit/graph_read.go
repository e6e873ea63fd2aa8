package kit

import (
	"context"
	"encoding/binary"
	"slices"

	prismv1 "github.com/prism-data/prism/proto/prism/v1"
)

// The Graph reads of the SQL stores: neighbours pages, traversals and
// shortest paths (graph.go has the layout).

// neighbourPos is where a page of neighbours ended: the direction, then
// the edge label and the other end's id.
type neighbourPos struct {
	in           bool
	label, other string
}

func encodeNeighbourToken(p neighbourPos) string {
	b := []byte{0}
	if p.in {
		b[0] = 1
	}
	b = binary.AppendUvarint(b, uint64(len(p.label)))
	b = append(append(b, p.label...), p.other...)
	return tokenEncoding.EncodeToString(b)
}

func decodeNeighbourToken(token string) (*neighbourPos, error) {
	if token == "" {
		return nil, nil
	}
	b, err := tokenEncoding.DecodeString(token)
	if err != nil || len(b) < 2 || b[0] > 1 {
		return nil, badToken(token)
	}
	n, used := binary.Uvarint(b[1:])
	rest := b[1:]
	if used <= 0 || n > uint64(len(rest)-used) {
		return nil, badToken(token)
	}
	rest = rest[used:]
	return &neighbourPos{in: b[0] == 1, label: string(rest[:n]), other: string(rest[n:])}, nil
}

// CheckNeighbours checks a Neighbours request (the gateway validated its
// names) and decodes its page token. Errors: a *RequestError.
func CheckNeighbours(req *prismv1.NeighboursRequest) error {
	if req == nil || req.GetId() == "" {
		return &RequestError{Detail: "no vertex id"}
	}
	_, err := decodeNeighbourToken(req.GetPageToken())
	return err
}

// Neighbours returns one page of the edges of req.Id (CheckNeighbours
// passed): out edges by (label, to), then in edges by (label, from).
func (g GraphSQL) Neighbours(ctx context.Context, req *prismv1.NeighboursRequest) (*prismv1.NeighboursResponse, error) {
	after, err := decodeNeighbourToken(req.GetPageToken())
	if err != nil {
		return nil, err
	}
	size := PageSize(req.GetPageSize())
	resp := &prismv1.NeighboursResponse{}
	var last neighbourPos
	for _, in := range []bool{false, true} {
		switch {
		case in && req.GetDirection() == prismv1.Direction_DIRECTION_OUT,
			!in && req.GetDirection() == prismv1.Direction_DIRECTION_IN,
			!in && after != nil && after.in:
			continue
		}
		var from *neighbourPos
		if after != nil && after.in == in {
			from = after
		}
		more, err := g.neighbourRows(ctx, req, in, from, size+1-len(resp.Neighbours), resp, &last)
		if err != nil {
			return nil, err
		}
		if len(resp.Neighbours) > size || more {
			resp.Neighbours = resp.Neighbours[:size]
			resp.NextPageToken = encodeNeighbourToken(last)
			return resp, nil
		}
	}
	return resp, nil
}

// neighbourRows appends up to limit edges of one direction after from to
// resp; last is the position of the size-th edge of the page once there
// are more. more reports a full page followed by at least one edge.
func (g GraphSQL) neighbourRows(ctx context.Context, req *prismv1.NeighboursRequest, in bool, from *neighbourPos, limit int, resp *prismv1.NeighboursResponse, last *neighbourPos) (more bool, err error) {
	self, other, dir := "src", "dst", prismv1.Direction_DIRECTION_OUT
	if in {
		self, other, dir = "dst", "src", prismv1.Direction_DIRECTION_IN
	}
	p := &params{dollar: g.Dollar}
	q := `SELECT src, label, dst, props, rev FROM ` + g.Prefix + `g_edges WHERE ` + self + ` = ` + p.add(req.GetId())
	if len(req.GetLabels()) > 0 {
		q += ` AND ` + g.in(p, "label", req.GetLabels())
	}
	if from != nil {
		q += ` AND (label, ` + other + `) > (` + p.add(from.label) + `, ` + p.add(from.other) + `)`
	}
	q += ` ORDER BY label, ` + other + ` LIMIT ` + p.add(limit)
	rows, done, err := g.Query(ctx, q, p.args...)
	if err != nil {
		return false, err
	}
	defer done()
	size := len(resp.Neighbours) + limit - 1
	for rows.Next() {
		e := &prismv1.Edge{}
		var props []byte
		var rev int64
		if err := rows.Scan(&e.From, &e.Label, &e.To, &props, &rev); err != nil {
			return false, err
		}
		if e.Properties, err = unmarshalProperties(props); err != nil {
			return false, err
		}
		e.Revision = uint64(rev)
		n := &prismv1.Neighbour{Id: e.GetTo(), Direction: dir, Edge: e}
		if in {
			n.Id = e.GetFrom()
		}
		if len(resp.Neighbours) == size {
			return true, rows.Err()
		}
		resp.Neighbours = append(resp.Neighbours, n)
		*last = neighbourPos{in: in, label: e.GetLabel(), other: n.GetId()}
	}
	return false, rows.Err()
}

// step is the recursive step of a traversal CTE over r(id, d): the table
// expression and the next vertex of each edge, for a direction.
func (g GraphSQL) step(dir prismv1.Direction) (join, next string) {
	switch dir {
	case prismv1.Direction_DIRECTION_IN:
		return g.Prefix + `g_edges e ON e.dst = r.id`, `e.src`
	case prismv1.Direction_DIRECTION_BOTH:
		return g.Prefix + `g_edges e ON (e.src = r.id OR e.dst = r.id)`, `CASE WHEN e.src = r.id THEN e.dst ELSE e.src END`
	}
	return g.Prefix + `g_edges e ON e.src = r.id`, `e.dst`
}

// CheckTraverse checks a Traverse request. Errors: a *RequestError.
func CheckTraverse(req *prismv1.TraverseRequest) error {
	switch {
	case req == nil || req.GetStart() == "":
		return &RequestError{Detail: "no start vertex"}
	case req.GetDepth() < 1:
		return &RequestError{Detail: "depth must be at least 1"}
	case req.GetMaxResults() < 1:
		return &RequestError{Detail: "max_results must be at least 1"}
	}
	return nil
}

// Traverse returns the vertices within req.Depth hops of req.Start
// (CheckTraverse passed) with one recursive CTE over (id, depth) pairs:
// UNION drops a pair already reached, so the work is bounded by vertices
// times depth, whatever the cycles. More than req.MaxResults vertices is
// a *RequestError.
func (g GraphSQL) Traverse(ctx context.Context, req *prismv1.TraverseRequest) (*prismv1.TraverseResponse, error) {
	join, next := g.step(req.GetDirection())
	p := &params{dollar: g.Dollar}
	start := p.add(req.GetStart())
	q := `WITH RECURSIVE r(id, d) AS (SELECT ` + g.Text(start) + `, 0 UNION SELECT ` + next + `, r.d + 1 FROM r JOIN ` + join +
		` WHERE r.d < ` + p.add(int64(req.GetDepth()))
	if len(req.GetLabels()) > 0 {
		q += ` AND ` + g.in(p, "e.label", req.GetLabels())
	}
	q += `) SELECT id, MIN(d) AS depth FROM r WHERE id <> ` + g.Text(p.add(req.GetStart())) + ` GROUP BY id ORDER BY depth, id LIMIT ` + p.add(int64(req.GetMaxResults())+1)
	rows, done, err := g.Query(ctx, q, p.args...)
	if err != nil {
		return nil, err
	}
	defer done()
	resp := &prismv1.TraverseResponse{}
	for rows.Next() {
		v := &prismv1.Reached{}
		var d int64
		if err := rows.Scan(&v.Id, &d); err != nil {
			return nil, err
		}
		v.Depth = uint32(d)
		resp.Vertices = append(resp.Vertices, v)
	}
	if err := rows.Err(); err != nil {
		return nil, err
	}
	if len(resp.Vertices) > int(req.GetMaxResults()) {
		return nil, TooManyReached(req.GetMaxResults(), req.GetDepth())
	}
	return resp, nil
}

// CheckShortestPath checks a ShortestPath request. Errors: a
// *RequestError.
func CheckShortestPath(req *prismv1.ShortestPathRequest) error {
	switch {
	case req == nil || req.GetFrom() == "" || req.GetTo() == "":
		return &RequestError{Detail: "from and to are required"}
	case req.GetMaxDepth() < 1:
		return &RequestError{Detail: "max_depth must be at least 1"}
	}
	return nil
}

// frontierChunk is the most vertices one level query names.
const frontierChunk = 500

// ShortestPath finds a shortest path (CheckShortestPath passed) by
// SearchPath, one query per level, direction and frontierChunk vertices;
// unlike a recursive CTE it keeps one visited set and ends early.
func (g GraphSQL) ShortestPath(ctx context.Context, req *prismv1.ShortestPathRequest) (*prismv1.PathResponse, error) {
	return SearchPath(ctx, req, func(ctx context.Context, frontier []string, in bool, visit func(self, label, other string)) error {
		for chunk := range slices.Chunk(frontier, frontierChunk) {
			if err := g.level(ctx, chunk, in, req.GetLabels(), visit); err != nil {
				return err
			}
		}
		return nil
	}, g.GetEdge)
}

// level reads the edges of one direction of the frontier vertices and
// calls visit with each.
func (g GraphSQL) level(ctx context.Context, frontier []string, in bool, labels []string, visit func(self, label, other string)) error {
	self, other := "src", "dst"
	if in {
		self, other = "dst", "src"
	}
	p := &params{dollar: g.Dollar}
	q := `SELECT ` + self + `, label, ` + other + ` FROM ` + g.Prefix + `g_edges WHERE ` + g.in(p, self, frontier)
	if len(labels) > 0 {
		q += ` AND ` + g.in(p, "label", labels)
	}
	rows, done, err := g.Query(ctx, q, p.args...)
	if err != nil {
		return err
	}
	defer done()
	for rows.Next() {
		var prev, label, v string
		if err := rows.Scan(&prev, &label, &v); err != nil {
			return err
		}
		visit(prev, label, v)
	}
	return rows.Err()
}
