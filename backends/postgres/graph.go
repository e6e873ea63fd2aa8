package postgres

import (
	"context"
	"fmt"

	"github.com/jackc/pgx/v5"

	"github.com/prism-data/prism/backends/internal/kit"
	prismv1 "github.com/prism-data/prism/proto/prism/v1"
)

// graphSQL is the store's Graph projection (kit.GraphSQL), read through
// the pool.
func (s *Store) graphSQL() kit.GraphSQL {
	return kit.GraphSQL{
		Prefix: pgx.Identifier{s.schema}.Sanitize() + ".",
		Dollar: true,
		Text:   func(p string) string { return "CAST(" + p + ` AS text) COLLATE "C"` },
		Query: func(ctx context.Context, q string, args ...any) (kit.Rows, func(), error) {
			rows, err := s.pool.Query(ctx, q, args...)
			if err != nil {
				return nil, nil, err
			}
			return rows, rows.Close, nil
		},
	}
}

// ApplyGraph applies the vertex and edge upserts and deletes of changes in
// order, in one transaction with the checkpoint (one round trip: the
// statements go as one pgx batch), as sqlite.Store.ApplyGraph does: an
// upsert replaces label and properties, a vertex delete removes its edges
// too; changes at or below the checkpoint are skipped.
//
// Errors: an *InvalidChangeError for an invalid change, checked before
// anything is written; ErrInvalidBatch for bad sequences; ErrClosed after
// Close; otherwise the database error, rolled back.
func (s *Store) ApplyGraph(ctx context.Context, changes []*prismv1.GraphChange, through uint64) error {
	return kit.Apply(&s.gate, ErrClosed, "graph", through, kitErrors.Batch(kit.CheckGraphBatch(changes, through)), func() error {
		return s.inBatchTx(ctx, through, func(tx pgx.Tx, checkpoint uint64) error {
			b := &pgx.Batch{}
			err := s.graphSQL().Apply(func(q string, args ...any) error {
				b.Queue(q, args...)
				return nil
			}, changes, checkpoint)
			if err != nil || b.Len() == 0 {
				return err
			}
			if err := tx.SendBatch(ctx, b).Close(); err != nil {
				return fmt.Errorf("apply graph: %w", err)
			}
			return nil
		})
	})
}

// GetVertex returns vertex id, nil when there is none. Errors: ErrClosed
// after Close; otherwise the database error.
func (s *Store) GetVertex(ctx context.Context, id string) (*prismv1.Vertex, error) {
	return kit.Do(&s.gate, ErrClosed, "get vertex", nil, func() (*prismv1.Vertex, error) {
		return s.graphSQL().GetVertex(ctx, id)
	})
}

// GetEdge returns edge (from, label, to), nil when there is none. Errors:
// ErrClosed after Close; otherwise the database error.
func (s *Store) GetEdge(ctx context.Context, from, label, to string) (*prismv1.Edge, error) {
	return kit.Do(&s.gate, ErrClosed, "get edge", nil, func() (*prismv1.Edge, error) {
		return s.graphSQL().GetEdge(ctx, from, label, to)
	})
}

// Neighbours returns one page of the edges of req.Id, as
// sqlite.Store.Neighbours does. Errors: ErrInvalidPageToken (wrapped),
// ErrInvalidRequest, ErrClosed; otherwise the database error.
func (s *Store) Neighbours(ctx context.Context, req *prismv1.NeighboursRequest) (*prismv1.NeighboursResponse, error) {
	return kit.Do(&s.gate, ErrClosed, "neighbours", kitErrors.Request(kit.CheckNeighbours(req)), func() (*prismv1.NeighboursResponse, error) {
		return s.graphSQL().Neighbours(ctx, req)
	})
}

// Traverse returns the vertices within req.Depth hops of req.Start, as
// sqlite.Store.Traverse does, by one recursive CTE. Errors:
// ErrInvalidRequest (wrapped, also for more than req.MaxResults vertices
// reached), ErrClosed; otherwise the database error.
func (s *Store) Traverse(ctx context.Context, req *prismv1.TraverseRequest) (*prismv1.TraverseResponse, error) {
	return kit.Do(&s.gate, ErrClosed, "traverse", kitErrors.Request(kit.CheckTraverse(req)), func() (*prismv1.TraverseResponse, error) {
		resp, err := s.graphSQL().Traverse(ctx, req)
		return resp, kitErrors.Request(err)
	})
}

// ShortestPath returns a shortest path of at most req.MaxDepth edges, as
// sqlite.Store.ShortestPath does. Errors: ErrInvalidRequest (wrapped),
// ErrClosed; otherwise the database error.
func (s *Store) ShortestPath(ctx context.Context, req *prismv1.ShortestPathRequest) (*prismv1.PathResponse, error) {
	return kit.Do(&s.gate, ErrClosed, "shortest path", kitErrors.Request(kit.CheckShortestPath(req)), func() (*prismv1.PathResponse, error) {
		return s.graphSQL().ShortestPath(ctx, req)
	})
}

// ExportGraph returns up to limit edges from edgeFrom, then vertices from
// vertexFrom, as sqlite.Store.ExportGraph does.
func (s *Store) ExportGraph(ctx context.Context, edgeFrom *prismv1.Edge, vertexFrom string, limit int) ([]*prismv1.Edge, []*prismv1.Vertex, error) {
	return kit.ExportGraphOp(ctx, &s.gate, ErrClosed, s.graphSQL(), nil, edgeFrom, vertexFrom, limit)
}
