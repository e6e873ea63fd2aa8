package kit

import (
	"context"

	prismv1 "github.com/prism-data/prism/proto/prism/v1"
)

// ExportGraph returns what replay.Verify compares of a Graph projection:
// when edgeFrom is not nil, up to limit edges with (from, label, to) >=
// (edgeFrom.From, edgeFrom.Label, edgeFrom.To) in that order; then, when
// fewer than limit edges came back, up to limit minus their count
// vertices with id >= vertexFrom in id order. Ids, labels and ends are
// NUL-free (subjects.ValidateGraphName) and compare byte by byte.
//
// The edges and the vertices are read by one statement each: every
// element is as it was at one state of the store between the call's
// start and its end, which is what Verify's checkpoint window assumes.
func (g GraphSQL) ExportGraph(ctx context.Context, edgeFrom *prismv1.Edge, vertexFrom string, limit int) ([]*prismv1.Edge, []*prismv1.Vertex, error) {
	if limit <= 0 {
		return nil, nil, nil
	}
	var edges []*prismv1.Edge
	if edgeFrom != nil {
		p := &params{dollar: g.Dollar}
		q := `SELECT src, label, dst, props, rev FROM ` + g.Prefix + `g_edges WHERE (src, label, dst) >= (` +
			g.Text(p.add(edgeFrom.GetFrom())) + `, ` + g.Text(p.add(edgeFrom.GetLabel())) + `, ` + g.Text(p.add(edgeFrom.GetTo())) +
			`) ORDER BY src, label, dst LIMIT ` + p.add(limit)
		err := g.each(ctx, q, p.args, func(r Rows) error {
			e := &prismv1.Edge{}
			var props []byte
			var rev int64
			if err := r.Scan(&e.From, &e.Label, &e.To, &props, &rev); err != nil {
				return err
			}
			e.Revision = uint64(rev)
			var err error
			e.Properties, err = unmarshalProperties(props)
			edges = append(edges, e)
			return err
		})
		if err != nil || len(edges) >= limit {
			return edges, nil, err
		}
	}
	var vertices []*prismv1.Vertex
	p := &params{dollar: g.Dollar}
	q := `SELECT id, label, props, rev FROM ` + g.Prefix + `g_vertices WHERE id >= ` + g.Text(p.add(vertexFrom)) +
		` ORDER BY id LIMIT ` + p.add(limit-len(edges))
	err := g.each(ctx, q, p.args, func(r Rows) error {
		v := &prismv1.Vertex{}
		var props []byte
		var rev int64
		if err := r.Scan(&v.Id, &v.Label, &props, &rev); err != nil {
			return err
		}
		v.Revision = uint64(rev)
		var err error
		v.Properties, err = unmarshalProperties(props)
		vertices = append(vertices, v)
		return err
	})
	return edges, vertices, err
}

// each runs q and calls scan on each row.
func (g GraphSQL) each(ctx context.Context, q string, args []any, scan func(Rows) error) error {
	rows, done, err := g.Query(ctx, q, args...)
	if err != nil {
		return err
	}
	defer done()
	for rows.Next() {
		if err := scan(rows); err != nil {
			return err
		}
	}
	return rows.Err()
}

// ExportGraphOp is a store's ExportGraph: g.ExportGraph inside gate,
// its error passed through wrap (when not nil).
func ExportGraphOp(ctx context.Context, gate *Gate, closed error, g GraphSQL, wrap func(error) error, edgeFrom *prismv1.Edge, vertexFrom string, limit int) ([]*prismv1.Edge, []*prismv1.Vertex, error) {
	var vs []*prismv1.Vertex
	es, err := Do(gate, closed, "export graph", nil, func() ([]*prismv1.Edge, error) {
		es, v, err := g.ExportGraph(ctx, edgeFrom, vertexFrom, limit)
		if err != nil && wrap != nil {
			err = wrap(err)
		}
		vs = v
		return es, err
	})
	return es, vs, err
}
