package sqlite

import (
	"context"
	"database/sql"
	"errors"
	"fmt"

	"github.com/prism-data/prism/backends/internal/kit"
	prismv1 "github.com/prism-data/prism/proto/prism/v1"
)

// ApplyEntity applies the puts and deletes of changes in order, in one
// transaction that also sets the checkpoint to through (the store's one
// checkpoint, as ApplyKeyValue), and commits: all of it or none. A put
// replaces the record of its id and its index rows; a delete removes
// both. Changes with Seq <= the stored checkpoint are skipped; if through
// <= the checkpoint the call does nothing.
//
// Errors: an *InvalidChangeError (errors.Is ErrInvalidChange) for a nil
// change or event, an empty id, a put without a record or a delete with
// one, checked before anything is written; ErrInvalidBatch for sequences
// that are 0, not strictly increasing or greater than through; ErrClosed
// after Close; otherwise the database error, rolled back.
func (s *Store) ApplyEntity(ctx context.Context, changes []*prismv1.EntityChange, through uint64) error {
	return kit.Apply(&s.gate, ErrClosed, "entity", through, kitErrors.Batch(kit.CheckEntityBatch(changes, through)), func() error {
		return s.inBatchTx(ctx, through, func(ctx context.Context, tx *sql.Tx, checkpoint uint64) error {
			return applyEntities(ctx, tx, changes, checkpoint)
		})
	})
}

// entityChunk is the most rows one statement of applyEntities writes.
const entityChunk = 256

// applyEntities writes the state changes leave with a few set-based
// statements: the index rows of every record they touch go, the deleted
// records go, the put records are upserted and their index rows inserted.
func applyEntities(ctx context.Context, tx *sql.Tx, changes []*prismv1.EntityChange, checkpoint uint64) error {
	var ids, deleted, records, entries []any
	for _, c := range kit.CollapseEntities(changes, checkpoint) {
		ev := c.GetEvent()
		ids = append(ids, ev.GetId())
		if ev.GetDelete() {
			deleted = append(deleted, ev.GetId())
			continue
		}
		lineage, err := kit.MarshalLineage(c.GetLineage())
		if err != nil {
			return err
		}
		records = append(records, ev.GetId(), ev.GetRecord(), int64(c.GetSeq()), lineage)
		for _, ix := range ev.GetIndexes() {
			entries = append(entries, ix.GetIndex(), kit.NonNil(ix.GetKey()), ev.GetId())
		}
	}
	for _, st := range []struct {
		what string
		cols int
		args []any
		sql  func(n int) string
	}{
		{"delete index rows", 1, ids, func(n int) string { return `DELETE FROM en_index WHERE id IN (` + rows(n, 1) + `)` }},
		{"delete records", 1, deleted, func(n int) string { return `DELETE FROM en_records WHERE id IN (` + rows(n, 1) + `)` }},
		{"put records", 4, records, func(n int) string {
			return `INSERT INTO en_records (id, record, rev, lineage) VALUES ` + rows(n, 4) +
				` ON CONFLICT (id) DO UPDATE SET record = excluded.record, rev = excluded.rev, lineage = excluded.lineage`
		}},
		{"insert index rows", 3, entries, func(n int) string {
			return `INSERT INTO en_index (idx, key, id) VALUES ` + rows(n, 3) + ` ON CONFLICT DO NOTHING`
		}},
	} {
		for args := st.args; len(args) > 0; {
			n := min(len(args)/st.cols, entityChunk)
			if _, err := tx.ExecContext(ctx, st.sql(n), args[:n*st.cols]...); err != nil {
				return fmt.Errorf("%s: %w", st.what, err)
			}
			args = args[n*st.cols:]
		}
	}
	return nil
}

// GetEntity returns the record of primary key id with its revision and
// lineage, or nil when there is none. Errors: ErrClosed after Close; otherwise the database error.
func (s *Store) GetEntity(ctx context.Context, id []byte) (*prismv1.EntityRecord, error) {
	return kit.Do(&s.gate, ErrClosed, "get entity", nil, func() (*prismv1.EntityRecord, error) {
		rec := &prismv1.EntityRecord{Id: id}
		var rev int64
		var lineage []byte
		err := s.r.QueryRowContext(ctx, `SELECT record, rev, lineage FROM en_records WHERE id = ?`, id).Scan(&rec.Record, &rev, &lineage)
		if errors.Is(err, sql.ErrNoRows) {
			return nil, nil
		}
		if err != nil {
			return nil, ctxErr(ctx, err)
		}
		rec.Revision = uint64(rev)
		rec.Lineage, err = kit.UnmarshalLineage(lineage)
		return rec, err
	})
}

// ScanEntities returns one page of the records whose key in index
// req.Index is in [req.From, req.To) (an empty To is unbounded), in (key,
// id) order, descending if req.Descending. It is one range scan of the
// index (en_index's primary key). Page size and token work as in
// GetItems.
//
// Errors: ErrInvalidPageToken (wrapped) for a token ScanEntities did not
// make; ErrInvalidRequest for a nil request or an empty index name; an
// *IndexNotReadyError for an index that is building or failed; ErrClosed
// after Close; otherwise the database error.
func (s *Store) ScanEntities(ctx context.Context, req *prismv1.EntityScanRequest) (*prismv1.EntityScanResponse, error) {
	after, err := kit.CheckEntityScan(req)
	return kit.Do(&s.gate, ErrClosed, "scan entities", kitErrors.Request(err), func() (*prismv1.EntityScanResponse, error) {
		resp, err := s.scanEntities(ctx, req, after)
		return resp, ctxErr(ctx, err)
	})
}

func (s *Store) scanEntities(ctx context.Context, req *prismv1.EntityScanRequest, after *kit.IndexPos) (*prismv1.EntityScanResponse, error) {
	if err := s.indexes.CheckReady(ctx, req.GetIndex(), sqlQuery(s.r)); err != nil {
		return nil, err
	}
	q, args := kit.EntityScanSQL(req, after, "", false)
	size := kit.PageSize(req.GetPageSize())
	rows, err := s.r.QueryContext(ctx, q, append(args, size+1)...)
	if err != nil {
		return nil, err
	}
	defer rows.Close()
	return kit.ScanEntityPage(rows, size)
}

// ExportEntities returns up to limit records with id >= from (nil: the
// start), in id order, each with its index entries in index name order,
// read in one statement (one state of the store): what replay.Verify
// compares. Errors: ErrClosed after Close; otherwise the database error.
func (s *Store) ExportEntities(ctx context.Context, from []byte, limit int) ([]*prismv1.EntityRecord, error) {
	return kit.Do(&s.gate, ErrClosed, "export entities", nil, func() ([]*prismv1.EntityRecord, error) {
		rows, err := s.r.QueryContext(ctx, kit.EntityExportSQL("", false), kit.ExportFrom(from), limit)
		if err != nil {
			return nil, ctxErr(ctx, err)
		}
		defer rows.Close()
		return kit.ScanEntityExport(rows)
	})
}
