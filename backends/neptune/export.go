package neptune

import (
	"context"
	"strconv"

	"github.com/prism-data/prism/backends/internal/kit"
	prismv1 "github.com/prism-data/prism/proto/prism/v1"
)

type exportEdgeRow struct {
	Src   string  `json:"src"`
	Label string  `json:"label"`
	Dst   string  `json:"dst"`
	Props *string `json:"props"`
	Rev   int64   `json:"rev"`
}

type exportVertexRow struct {
	ID    string  `json:"id"`
	Label string  `json:"label"`
	Props *string `json:"props"`
	Rev   int64   `json:"rev"`
}

// ExportGraph returns up to limit edges with (from, label, to) >= those of
// edgeFrom (none when edgeFrom is nil) in that order, then, to fill the
// limit, vertices with id >= vertexFrom in id order, each with its
// properties and revision, as sqlite.Store.ExportGraph does: what
// replay.Verify compares of a graph target. Stub nodes (edge ends that
// were never upserted) are not vertices. One request for the edges, one
// for the vertices. Errors: ErrClosed; an error matching ErrUnavailable.
func (s *Store) ExportGraph(ctx context.Context, edgeFrom *prismv1.Edge, vertexFrom string, limit int) ([]*prismv1.Edge, []*prismv1.Vertex, error) {
	var vertices []*prismv1.Vertex
	edges, err := kit.Do(&s.gate, ErrClosed, "export graph", nil, func() ([]*prismv1.Edge, error) {
		if limit <= 0 {
			return nil, nil
		}
		var edges []*prismv1.Edge
		if edgeFrom != nil {
			var rows []exportEdgeRow
			params := map[string]any{"ns": s.ns, "from": edgeFrom.GetFrom(), "label": edgeFrom.GetLabel(), "to": edgeFrom.GetTo()}
			if err := s.c.query(ctx, false, qExportEdges+strconv.Itoa(limit), params, &rows); err != nil {
				return nil, err
			}
			for _, r := range rows {
				props, err := decodeProps(r.Props)
				if err != nil {
					return nil, err
				}
				edges = append(edges, &prismv1.Edge{From: r.Src, Label: r.Label, To: r.Dst, Properties: props, Revision: uint64(r.Rev)})
			}
			if len(edges) >= limit {
				return edges, nil
			}
		}
		var rows []exportVertexRow
		if err := s.c.query(ctx, false, qExportVertices+strconv.Itoa(limit-len(edges)), map[string]any{"ns": s.ns, "id": vertexFrom}, &rows); err != nil {
			return nil, err
		}
		for _, r := range rows {
			props, err := decodeProps(r.Props)
			if err != nil {
				return nil, err
			}
			vertices = append(vertices, &prismv1.Vertex{Id: r.ID, Label: r.Label, Properties: props, Revision: uint64(r.Rev)})
		}
		return edges, nil
	})
	return edges, vertices, err
}
