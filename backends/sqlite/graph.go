package sqlite

import (
	"context"
	"database/sql"
	"fmt"

	"github.com/prism-data/prism/backends/internal/kit"
	prismv1 "github.com/prism-data/prism/proto/prism/v1"
)

// graphSQL is the store's Graph projection (kit.GraphSQL), read through
// the read pool.
func (s *Store) graphSQL() kit.GraphSQL {
	return kit.GraphSQL{
		Text: func(p string) string { return "CAST(" + p + " AS TEXT)" },
		Query: func(ctx context.Context, q string, args ...any) (kit.Rows, func(), error) {
			rows, err := s.r.QueryContext(ctx, q, args...)
			if err != nil {
				return nil, nil, err
			}
			return rows, func() { _ = rows.Close() }, nil
		},
	}
}

// ApplyGraph applies the vertex and edge upserts and deletes of changes in
// order, in one transaction that also sets the checkpoint to through (the
// store's one checkpoint, as ApplyKeyValue), and commits: all of it or
// none. An upsert replaces the label and every property; a vertex delete
// removes the vertex and every edge into or out of it; an edge may name
// vertices that do not exist. Changes with Seq <= the stored checkpoint
// are skipped; if through <= the checkpoint the call does nothing.
//
// Errors: an *InvalidChangeError (errors.Is ErrInvalidChange) for a nil
// change or an event subjects.CheckGraphEvent refuses, checked before
// anything is written; ErrInvalidBatch for sequences that are 0, not
// strictly increasing or greater than through; ErrClosed after Close;
// otherwise the database error, rolled back.
func (s *Store) ApplyGraph(ctx context.Context, changes []*prismv1.GraphChange, through uint64) error {
	return kit.Apply(&s.gate, ErrClosed, "graph", through, kitErrors.Batch(kit.CheckGraphBatch(changes, through)), func() error {
		return s.inBatchTx(ctx, through, func(ctx context.Context, tx *sql.Tx, checkpoint uint64) error {
			stmts := map[string]*sql.Stmt{}
			defer func() {
				for _, st := range stmts {
					_ = st.Close()
				}
			}()
			return s.graphSQL().Apply(func(q string, args ...any) error {
				st, ok := stmts[q]
				if !ok {
					var err error
					if st, err = tx.PrepareContext(ctx, q); err != nil {
						return fmt.Errorf("prepare: %w", err)
					}
					stmts[q] = st
				}
				_, err := st.ExecContext(ctx, args...)
				return err
			}, changes, checkpoint)
		})
	})
}

// GetVertex returns vertex id, nil when there is none. Errors: ErrClosed
// after Close; otherwise the database error.
func (s *Store) GetVertex(ctx context.Context, id string) (*prismv1.Vertex, error) {
	return kit.Do(&s.gate, ErrClosed, "get vertex", nil, func() (*prismv1.Vertex, error) {
		v, err := s.graphSQL().GetVertex(ctx, id)
		return v, ctxErr(ctx, err)
	})
}

// GetEdge returns edge (from, label, to), nil when there is none. Errors:
// ErrClosed after Close; otherwise the database error.
func (s *Store) GetEdge(ctx context.Context, from, label, to string) (*prismv1.Edge, error) {
	return kit.Do(&s.gate, ErrClosed, "get edge", nil, func() (*prismv1.Edge, error) {
		e, err := s.graphSQL().GetEdge(ctx, from, label, to)
		return e, ctxErr(ctx, err)
	})
}

// Neighbours returns one page of the edges of req.Id in req.Direction of
// req.Labels (all when empty): out edges by (label, to) from the primary
// key, then in edges by (label, from) from g_edges_in. Page size and
// token work as in GetItems.
//
// Errors: ErrInvalidPageToken (wrapped) for a token Neighbours did not
// make; ErrInvalidRequest for a nil request or an empty id; ErrClosed
// after Close; otherwise the database error.
func (s *Store) Neighbours(ctx context.Context, req *prismv1.NeighboursRequest) (*prismv1.NeighboursResponse, error) {
	return kit.Do(&s.gate, ErrClosed, "neighbours", kitErrors.Request(kit.CheckNeighbours(req)), func() (*prismv1.NeighboursResponse, error) {
		resp, err := s.graphSQL().Neighbours(ctx, req)
		return resp, ctxErr(ctx, err)
	})
}

// Traverse returns the vertices within req.Depth hops of req.Start, each
// at its smallest depth, in (depth, id) order, by one recursive CTE.
//
// Errors: ErrInvalidRequest (wrapped) for a request without a start, a
// depth or max_results of 0, or a traversal that reaches more than
// req.MaxResults vertices; ErrClosed after Close; otherwise the database
// error.
func (s *Store) Traverse(ctx context.Context, req *prismv1.TraverseRequest) (*prismv1.TraverseResponse, error) {
	return kit.Do(&s.gate, ErrClosed, "traverse", kitErrors.Request(kit.CheckTraverse(req)), func() (*prismv1.TraverseResponse, error) {
		resp, err := s.graphSQL().Traverse(ctx, req)
		return resp, kitErrors.Request(ctxErr(ctx, err))
	})
}

// ShortestPath returns a shortest path of at most req.MaxDepth edges from
// req.From to req.To (prismv1.PathResponse says which among ties), Found
// false when there is none, by a breadth-first search of one query per
// level.
//
// Errors: ErrInvalidRequest (wrapped) for a request without from or to or
// with max_depth 0; ErrClosed after Close; otherwise the database error.
func (s *Store) ShortestPath(ctx context.Context, req *prismv1.ShortestPathRequest) (*prismv1.PathResponse, error) {
	return kit.Do(&s.gate, ErrClosed, "shortest path", kitErrors.Request(kit.CheckShortestPath(req)), func() (*prismv1.PathResponse, error) {
		resp, err := s.graphSQL().ShortestPath(ctx, req)
		return resp, ctxErr(ctx, err)
	})
}

// ExportGraph returns up to limit edges with (from, label, to) >= those of
// edgeFrom (none when edgeFrom is nil) in that order, then, to fill the
// limit, vertices with id >= vertexFrom in id order, each with its
// properties and revision: what replay.Verify compares of a graph target
// (replay.GraphVerifySource). Errors: ErrClosed after Close; otherwise the
// database error.
func (s *Store) ExportGraph(ctx context.Context, edgeFrom *prismv1.Edge, vertexFrom string, limit int) ([]*prismv1.Edge, []*prismv1.Vertex, error) {
	return kit.ExportGraphOp(ctx, &s.gate, ErrClosed, s.graphSQL(), func(err error) error { return ctxErr(ctx, err) }, edgeFrom, vertexFrom, limit)
}
