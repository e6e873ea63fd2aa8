package postgres

import (
	"context"
	"fmt"
	"strings"

	"github.com/jackc/pgx/v5"

	"github.com/prism-data/prism/backends/internal/kit"
	prismv1 "github.com/prism-data/prism/proto/prism/v1"
)

// IndexKeyFunc is the key of a stored record in one index: ok is false
// when the record has no entry.
type IndexKeyFunc = kit.IndexKeyFunc

// IndexBuild says how BuildEntityIndex fills one index.
type IndexBuild = kit.IndexBuild

// IndexNotReadyError is ScanEntities' error for an index that is
// building or failed; the gateway answers it FAILED_PRECONDITION.
type IndexNotReadyError = kit.IndexNotReadyError

// SyncEntityIndexes makes names the secondary indexes of the namespace,
// as sqlite.Store.SyncEntityIndexes does.
func (s *Store) SyncEntityIndexes(ctx context.Context, names []string) ([]*prismv1.EntityIndexState, error) {
	return kit.SyncEntityIndexesOp(ctx, &s.gate, ErrClosed, &s.indexes, s.inIndexTx, names)
}

// BuildEntityIndex fills a building index from the stored records, as
// sqlite.Store.BuildEntityIndex does; each step holds the checkpoint
// row's lock, so it is serialized with the batch applies of every
// process.
func (s *Store) BuildEntityIndex(ctx context.Context, b IndexBuild) (*prismv1.EntityIndexState, error) {
	return kit.BuildEntityIndexOp(ctx, &s.gate, ErrClosed, &s.indexes, s.inIndexTx, b)
}

// EntityIndexStates lists the states of the secondary indexes, by name.
func (s *Store) EntityIndexStates(ctx context.Context) ([]*prismv1.EntityIndexState, error) {
	return kit.Do(&s.gate, ErrClosed, "entity index states", nil, func() ([]*prismv1.EntityIndexState, error) {
		return kit.EntityIndexStates(ctx, s.query)
	})
}

// inIndexTx runs f in a transaction that first locks the checkpoint row,
// as the batch applies do, and commits it if f returns nil.
func (s *Store) inIndexTx(ctx context.Context, f func(kit.SQLTx) error) error {
	return pgx.BeginFunc(ctx, s.pool, func(tx pgx.Tx) error {
		var checkpoint int64
		if err := tx.QueryRow(ctx, s.q.lockCheckpoint).Scan(&checkpoint); err != nil {
			return fmt.Errorf("lock checkpoint: %w", err)
		}
		return f(pgTx{tx: tx, prefix: pgx.Identifier{s.schema}.Sanitize() + "."})
	})
}

// sql is q with the schema for {p} and $n placeholders.
func (s *Store) sql(q string) string {
	return kit.Dollars(strings.ReplaceAll(q, "{p}", pgx.Identifier{s.schema}.Sanitize()+"."))
}

// query runs q on the pool, as kit's index functions take it.
func (s *Store) query(ctx context.Context, q string, scan func(kit.Rows) error, args ...any) error {
	return pgRows(ctx, s.pool.Query, s.sql(q), scan, args...)
}

// pgTx is a pgx.Tx as a kit.SQLTx.
type pgTx struct {
	tx     pgx.Tx
	prefix string
}

func (t pgTx) sql(q string) string { return kit.Dollars(strings.ReplaceAll(q, "{p}", t.prefix)) }

func (t pgTx) Exec(ctx context.Context, q string, args ...any) error {
	_, err := t.tx.Exec(ctx, t.sql(q), args...)
	return err
}

func (t pgTx) Query(ctx context.Context, q string, scan func(kit.Rows) error, args ...any) error {
	return pgRows(ctx, t.tx.Query, t.sql(q), scan, args...)
}

func pgRows(ctx context.Context, query func(context.Context, string, ...any) (pgx.Rows, error), q string, scan func(kit.Rows) error, args ...any) error {
	rows, err := query(ctx, q, args...)
	if err != nil {
		return err
	}
	defer rows.Close()
	for rows.Next() {
		if err := scan(rows); err != nil {
			return err
		}
	}
	return rows.Err()
}
