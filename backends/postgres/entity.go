package postgres

import (
	"context"
	"errors"
	"fmt"

	"github.com/jackc/pgx/v5"

	"github.com/prism-data/prism/backends/internal/kit"
	prismv1 "github.com/prism-data/prism/proto/prism/v1"
)

// ApplyEntity applies the puts and deletes of changes in order, in one
// transaction with the checkpoint, as sqlite.Store.ApplyEntity does: a put
// replaces the record of its id and its index rows, a delete removes both;
// changes at or below the checkpoint are skipped.
//
// Errors: an *InvalidChangeError for an invalid change, checked before
// anything is written; ErrInvalidBatch for bad sequences; ErrClosed after
// Close; otherwise the database error, rolled back.
func (s *Store) ApplyEntity(ctx context.Context, changes []*prismv1.EntityChange, through uint64) error {
	return kit.Apply(&s.gate, ErrClosed, "entity", through, kitErrors.Batch(kit.CheckEntityBatch(changes, through)), func() error {
		return s.inBatchTx(ctx, through, func(tx pgx.Tx, checkpoint uint64) error {
			return s.applyEntities(ctx, tx, changes, checkpoint)
		})
	})
}

func (s *Store) applyEntities(ctx context.Context, tx pgx.Tx, changes []*prismv1.EntityChange, checkpoint uint64) error {
	sc := pgx.Identifier{s.schema}.Sanitize()
	b := &pgx.Batch{}
	for _, c := range kit.CollapseEntities(changes, checkpoint) {
		ev := c.GetEvent()
		b.Queue(`DELETE FROM `+sc+`.en_index WHERE id = $1`, ev.GetId())
		if ev.GetDelete() {
			b.Queue(`DELETE FROM `+sc+`.en_records WHERE id = $1`, ev.GetId())
			continue
		}
		lineage, err := kit.MarshalLineage(c.GetLineage())
		if err != nil {
			return err
		}
		b.Queue(`INSERT INTO `+sc+`.en_records (id, record, rev, lineage) VALUES ($1, $2, $3, $4)
			ON CONFLICT (id) DO UPDATE SET record = excluded.record, rev = excluded.rev, lineage = excluded.lineage`, ev.GetId(), ev.GetRecord(), int64(c.GetSeq()), lineage)
		for _, ix := range ev.GetIndexes() {
			b.Queue(`INSERT INTO `+sc+`.en_index (idx, key, id) VALUES ($1, $2, $3) ON CONFLICT DO NOTHING`, ix.GetIndex(), kit.NonNil(ix.GetKey()), ev.GetId())
		}
	}
	if b.Len() == 0 {
		return nil
	}
	if err := tx.SendBatch(ctx, b).Close(); err != nil {
		return fmt.Errorf("apply entities: %w", err)
	}
	return nil
}

// GetEntity returns the record of primary key id, or nil when there is
// none. Errors: ErrClosed after Close; otherwise the database error.
func (s *Store) GetEntity(ctx context.Context, id []byte) (*prismv1.EntityRecord, error) {
	return kit.Do(&s.gate, ErrClosed, "get entity", nil, func() (*prismv1.EntityRecord, error) {
		rec := &prismv1.EntityRecord{Id: id}
		var rev int64
		var lineage []byte
		err := s.pool.QueryRow(ctx, `SELECT record, rev, lineage FROM `+pgx.Identifier{s.schema}.Sanitize()+`.en_records WHERE id = $1`, id).Scan(&rec.Record, &rev, &lineage)
		if errors.Is(err, pgx.ErrNoRows) {
			return nil, nil
		}
		if err != nil {
			return nil, err
		}
		rec.Revision = uint64(rev)
		rec.Lineage, err = kit.UnmarshalLineage(lineage)
		return rec, err
	})
}

// ScanEntities returns one page of the records of a range of one index, as
// sqlite.Store.ScanEntities does: one range scan of en_index's primary key.
//
// Errors: ErrInvalidPageToken (wrapped), ErrInvalidRequest, an
// *IndexNotReadyError, ErrClosed; otherwise the database error.
func (s *Store) ScanEntities(ctx context.Context, req *prismv1.EntityScanRequest) (*prismv1.EntityScanResponse, error) {
	after, err := kit.CheckEntityScan(req)
	return kit.Do(&s.gate, ErrClosed, "scan entities", kitErrors.Request(err), func() (*prismv1.EntityScanResponse, error) {
		if err := s.indexes.CheckReady(ctx, req.GetIndex(), s.query); err != nil {
			return nil, err
		}
		q, args := kit.EntityScanSQL(req, after, pgx.Identifier{s.schema}.Sanitize()+".", true)
		size := kit.PageSize(req.GetPageSize())
		rows, err := s.pool.Query(ctx, q, append(args, size+1)...)
		if err != nil {
			return nil, err
		}
		defer rows.Close()
		return kit.ScanEntityPage(rows, size)
	})
}

// ExportEntities returns up to limit records with id >= from, with their
// index entries, as sqlite.Store.ExportEntities does.
func (s *Store) ExportEntities(ctx context.Context, from []byte, limit int) ([]*prismv1.EntityRecord, error) {
	return kit.Do(&s.gate, ErrClosed, "export entities", nil, func() ([]*prismv1.EntityRecord, error) {
		rows, err := s.pool.Query(ctx, kit.EntityExportSQL(pgx.Identifier{s.schema}.Sanitize()+".", true), kit.ExportFrom(from), limit)
		if err != nil {
			return nil, err
		}
		defer rows.Close()
		return kit.ScanEntityExport(rows)
	})
}
