package sqlite

import (
	"context"
	"database/sql"
	"fmt"
	"strings"

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

// SyncEntityIndexes makes names the entity namespace's secondary indexes
// (docs/entity.md, "Schema evolution"): the rows of every other index
// are dropped; an index new to the store, or one whose build failed,
// starts building (ready at once without records). It returns the
// states of names. Errors: ErrClosed after Close; otherwise the database
// error, and nothing changed.
func (s *Store) SyncEntityIndexes(ctx context.Context, names []string) ([]*prismv1.EntityIndexState, error) {
	return kit.SyncEntityIndexesOp(ctx, &s.gate, ErrClosed, &s.indexes, s.inIndexTx, names)
}

// BuildEntityIndex fills a building index from the stored records, in
// steps of b.Batch records, each one transaction serialized with the
// batch applies, until it is ready or failed (a unique index whose
// records hold one value twice: its rows are removed). It resumes a
// build an earlier call left. It returns the final state, nil for an
// index SyncEntityIndexes does not know. Errors: ctx's, b.Key's (the
// build stops where it was), ErrClosed, the database error.
func (s *Store) BuildEntityIndex(ctx context.Context, b IndexBuild) (*prismv1.EntityIndexState, error) {
	return kit.BuildEntityIndexOp(ctx, &s.gate, ErrClosed, &s.indexes, s.inIndexTx, b)
}

// EntityIndexStates lists the states of the secondary indexes, by name.
func (s *Store) EntityIndexStates(ctx context.Context) ([]*prismv1.EntityIndexState, error) {
	return kit.Do(&s.gate, ErrClosed, "entity index states", nil, func() ([]*prismv1.EntityIndexState, error) {
		return kit.EntityIndexStates(ctx, sqlQuery(s.r))
	})
}

// inIndexTx runs f in a transaction of the writer (BEGIN IMMEDIATE: one
// at a time with the batch applies) and commits it if f returns nil.
func (s *Store) inIndexTx(ctx context.Context, f func(kit.SQLTx) error) (err error) {
	tx, err := s.w.BeginTx(ctx, nil)
	if err != nil {
		return fmt.Errorf("begin: %w", err)
	}
	if err := f(sqlTx{tx}); err != nil {
		_ = tx.Rollback()
		return err
	}
	return tx.Commit()
}

// sqlTx is a *sql.Tx as a kit.SQLTx.
type sqlTx struct{ tx *sql.Tx }

func (t sqlTx) Exec(ctx context.Context, q string, args ...any) error {
	_, err := t.tx.ExecContext(ctx, strings.ReplaceAll(q, "{p}", ""), args...)
	return err
}

func (t sqlTx) Query(ctx context.Context, q string, scan func(kit.Rows) error, args ...any) error {
	return queryRows(ctx, t.tx.QueryContext, q, scan, args...)
}

// sqlQuery is db's Query as kit's index functions take it.
func sqlQuery(db *sql.DB) func(ctx context.Context, q string, scan func(kit.Rows) error, args ...any) error {
	return func(ctx context.Context, q string, scan func(kit.Rows) error, args ...any) error {
		return queryRows(ctx, db.QueryContext, q, scan, args...)
	}
}

func queryRows(ctx context.Context, query func(context.Context, string, ...any) (*sql.Rows, error), q string, scan func(kit.Rows) error, args ...any) error {
	rows, err := query(ctx, strings.ReplaceAll(q, "{p}", ""), args...)
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
