package postgres

import (
	"context"
	"fmt"

	"github.com/jackc/pgx/v5"

	"github.com/prism-data/prism/backends/internal/kit"
	prismv1 "github.com/prism-data/prism/proto/prism/v1"
)

// ApplyKeyValue applies changes in order, in one transaction that also sets
// the checkpoint to through, and commits: either all of it is stored or none.
//
// Changes with Seq <= the stored checkpoint are skipped, so re-applying a
// batch after a redelivery has no further effect. If through <= the stored
// checkpoint the call does nothing. An empty changes slice with through
// above the checkpoint only advances it (a batch of markers or dead letters).
//
// A put sets its items (key -> value, with expire_time) and sets the record's
// revision to the change's Seq. A delete with keys removes those items, one
// without keys removes the whole record; a delete of a record that has items
// also sets its revision. A replace (written by compaction, ADR 012) makes
// the record hold exactly its items, with the change's Seq as revision; a
// replace without items removes the record. A record left without items is
// gone. The revision is kept on the item rows (ADR 011).
//
// The batch is collapsed before it is written (the last effect per record
// and item wins, in sequence order), and written with a few set-based
// statements whatever its size; the result is the same as applying the
// changes one by one.
//
// Errors: an *InvalidChangeError (errors.Is ErrInvalidChange) for a nil
// change or event, an event that is neither put, delete nor replace, a nil
// item or an invalid expire_time, checked before anything is written, so
// nothing of the batch is applied; ErrInvalidBatch for sequences that are
// 0, not strictly increasing, greater than through or above math.MaxInt64;
// ErrClosed after Close; otherwise the database error, with the transaction
// rolled back.
func (s *Store) ApplyKeyValue(ctx context.Context, changes []*prismv1.KeyValueChange, through uint64) error {
	return kit.Apply(&s.gate, ErrClosed, "key-value", through, kitErrors.Batch(kit.CheckKeyValueBatch(changes, through)), func() error {
		return s.applyKeyValue(ctx, changes, through)
	})
}

func (s *Store) applyKeyValue(ctx context.Context, changes []*prismv1.KeyValueChange, through uint64) error {
	w := collapse(changes, 0)
	// The fast path: a batch whose changes collapse to puts only, applied in
	// one statement if the checkpoint is below its first seq (no redelivery).
	if len(changes) > 0 && !w.deletes() {
		var applied int
		err := s.pool.QueryRow(ctx, s.q.putOnly, w.itemIDs, w.itemKeys, w.itemValues, w.itemSecs, w.itemNanos,
			w.itemRevs, int64(through), int64(changes[0].GetSeq())).Scan(&applied)
		if err != nil {
			return fmt.Errorf("upsert items: %w", err)
		}
		if applied == 1 {
			return nil
		}
	}
	return s.inBatchTx(ctx, through, func(tx pgx.Tx, checkpoint uint64) error {
		if len(changes) > 0 && changes[0].GetSeq() <= checkpoint {
			w = collapse(changes, checkpoint)
		}
		return s.applyWrites(ctx, tx, w)
	})
}

// collapse collapses the changes with Seq > above into the statements'
// arguments.
func collapse(changes []*prismv1.KeyValueChange, above uint64) *writes {
	var c collapsed
	for _, ch := range changes {
		if ch.GetSeq() > above {
			c.add(ch)
		}
	}
	return c.writes()
}

// inBatchTx is the transaction of one batch reaching through: it locks the
// checkpoint row and, if through is above the checkpoint, runs apply with
// it and sets the checkpoint to through, all in one transaction; else it
// changes nothing. Any error rolls everything back. Locking the checkpoint
// row serializes the writers of the namespace, so what apply reads (which
// items a record has left) cannot change under it, and a redelivered batch
// waits for the first.
func (s *Store) inBatchTx(ctx context.Context, through uint64, apply func(tx pgx.Tx, checkpoint uint64) error) error {
	return pgx.BeginFunc(ctx, s.pool, func(tx pgx.Tx) error {
		var checkpoint int64
		if err := tx.QueryRow(ctx, s.q.lockCheckpoint).Scan(&checkpoint); err != nil {
			return fmt.Errorf("lock checkpoint: %w", err)
		}
		if through <= uint64(checkpoint) {
			return nil
		}
		if err := apply(tx, uint64(checkpoint)); err != nil {
			return err
		}
		if _, err := tx.Exec(ctx, s.q.setCheckpoint, int64(through)); err != nil {
			return fmt.Errorf("set checkpoint: %w", err)
		}
		return nil
	})
}

// applyWrites is the general path: any batch, collapsed into w, in the
// transaction of inBatchTx.
func (s *Store) applyWrites(ctx context.Context, tx pgx.Tx, w *writes) error {
	// The statements run in this order, each seeing the ones before: wiping
	// whole records comes first because the items written after a wipe are
	// all that is left of those records.
	if len(w.wipeIDs) > 0 {
		if _, err := tx.Exec(ctx, s.q.wipeItems, w.wipeIDs); err != nil {
			return fmt.Errorf("delete records' items: %w", err)
		}
	}
	if len(w.delIDs) > 0 {
		if _, err := tx.Exec(ctx, s.q.deleteItems, w.delIDs, w.delKeys); err != nil {
			return fmt.Errorf("delete items: %w", err)
		}
	}
	if len(w.itemIDs) > 0 {
		if _, err := tx.Exec(ctx, s.q.upsertItems, w.itemIDs, w.itemKeys, w.itemValues, w.itemSecs, w.itemNanos, w.itemRevs); err != nil {
			return fmt.Errorf("upsert items: %w", err)
		}
	}
	if len(w.maybeIDs) > 0 {
		if _, err := tx.Exec(ctx, s.q.raiseRevs, w.maybeIDs, w.maybeRevs); err != nil {
			return fmt.Errorf("set revisions: %w", err)
		}
	}
	return nil
}
