package neptune

import (
	"context"

	"github.com/prism-data/prism/backends/internal/kit"
)

// dropChunk is how many vertices one drop request deletes (the LIMIT of
// qDropVertices): a request is a transaction, and Neptune's are best kept
// small.
const dropChunk = 1000

const (
	qDropVertices = `MATCH (v:PrismVertex {prism_ns: $ns})
WITH v LIMIT 1000
DETACH DELETE v
RETURN count(*) AS deleted`
	qDropCheckpoint = `MATCH (c:PrismCheckpoint {prism_ns: $ns})
DELETE c
RETURN count(*) AS deleted`
)

type countRow struct {
	Deleted int64 `json:"deleted"`
}

// Drop deletes the namespace's graph and its checkpoint from the cluster,
// dropChunk vertices (with their edges) per request, the checkpoint last:
// a Drop cut short leaves a graph that a later Drop finishes, and until
// then the checkpoint still says what the rest was applied through. The
// store stays usable (empty, checkpoint 0). Errors: ErrClosed; an error
// matching ErrUnavailable.
func (s *Store) Drop(ctx context.Context) error {
	_, err := kit.Do(&s.gate, ErrClosed, "drop", nil, func() (struct{}, error) {
		for {
			var rows []countRow
			if err := s.c.query(ctx, false, qDropVertices, map[string]any{"ns": s.ns}, &rows); err != nil {
				return struct{}{}, err
			}
			if len(rows) == 0 || rows[0].Deleted < dropChunk {
				break
			}
		}
		var rows []countRow
		return struct{}{}, s.c.query(ctx, false, qDropCheckpoint, map[string]any{"ns": s.ns}, &rows)
	})
	return err
}
