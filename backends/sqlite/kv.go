package sqlite

import (
	"context"
	"database/sql"
	"fmt"
	"strings"

	"github.com/prism-data/prism/backends/internal/kit"
	prismv1 "github.com/prism-data/prism/proto/prism/v1"
)

// chunkSizes are the row counts of the prepared multi-row upserts, largest
// first. A run of n puts is written with as few statements as these sizes
// allow; one statement of many rows costs far less than many of one row.
var chunkSizes = [...]int{128, 32, 8, 1}

// itemCols are the columns of one upserted item row.
const itemCols = 6

// writeStmts are the statements of the writer connection, prepared once and
// bound to each transaction with Tx.StmtContext.
type writeStmts struct {
	stmtSet
	getCheckpoint *sql.Stmt
	setCheckpoint *sql.Stmt
	// upsertItems[i] writes chunkSizes[i] rows.
	upsertItems [len(chunkSizes)]*sql.Stmt
	deleteItem  *sql.Stmt
	deleteItems *sql.Stmt
	// raiseRev raises the rev of a record's first row: the record's
	// revision after a change that wrote no row, or a sweep that removed
	// the row holding it. A record without rows, or whose first row holds
	// that rev or more, is left alone (no row is rewritten).
	raiseRev   *sql.Stmt
	sweepItems *sql.Stmt
}

func prepareWriteStmts(ctx context.Context, db *sql.DB) (*writeStmts, error) {
	s := &writeStmts{}
	s.getCheckpoint = s.prepare(ctx, db, `SELECT seq FROM checkpoint WHERE one = 1`)
	s.setCheckpoint = s.prepare(ctx, db, `UPDATE checkpoint SET seq = ? WHERE one = 1`)
	for i, n := range chunkSizes {
		s.upsertItems[i] = s.prepare(ctx, db,
			`INSERT INTO items (id, key, value, expire_sec, expire_nanos, rev) VALUES `+rows(n, itemCols)+
				` ON CONFLICT (id, key) DO UPDATE SET value = excluded.value,`+
				` expire_sec = excluded.expire_sec, expire_nanos = excluded.expire_nanos, rev = excluded.rev`)
	}
	s.deleteItem = s.prepare(ctx, db, `DELETE FROM items WHERE id = ? AND key = ?`)
	s.deleteItems = s.prepare(ctx, db, `DELETE FROM items WHERE id = ?`)
	s.raiseRev = s.prepare(ctx, db,
		`UPDATE items SET rev = ?1 WHERE id = ?2 AND key = (SELECT min(key) FROM items WHERE id = ?2) AND rev < ?1`)
	s.sweepItems = s.prepare(ctx, db,
		`DELETE FROM items WHERE (id, key) IN (
			SELECT id, key FROM items
			WHERE expire_sec IS NOT NULL AND (expire_sec, expire_nanos) <= (?1, ?2)
			LIMIT ?3
		) RETURNING id, rev`)
	if s.err != nil {
		_ = s.close()
		return nil, s.err
	}
	return s, nil
}

// rows returns n parenthesized groups of cols placeholders: "(?,?),(?,?)".
func rows(n, cols int) string {
	group := "(" + strings.Repeat("?,", cols-1) + "?)"
	return strings.Repeat(group+",", n-1) + group
}

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
// removed.
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
	return s.inBatchTx(ctx, through, func(ctx context.Context, tx *sql.Tx, checkpoint uint64) error {
		a := applier{ctx: ctx, tx: tx, st: s.ws}
		for _, c := range changes {
			if c.GetSeq() <= checkpoint {
				continue
			}
			if err := a.apply(c); err != nil {
				return fmt.Errorf("seq %d: %w", c.GetSeq(), err)
			}
		}
		return a.flush()
	})
}

// inBatchTx is the transaction of one batch reaching through: it reads the
// checkpoint and, if through is above it, runs apply with it, sets the
// checkpoint to through and commits, all in one transaction on the writer
// connection; else it changes nothing. Any error rolls everything back.
func (s *Store) inBatchTx(ctx context.Context, through uint64, apply func(ctx context.Context, tx *sql.Tx, checkpoint uint64) error) (err error) {
	// A batch that has begun runs to its end without ctx's cancellation:
	// it is bounded (the projector's batch), the store's one writer waits
	// for no lock but busy_timeout's, and a cancellable context costs a
	// goroutine in database/sql per transaction and one in the driver, with
	// a progress handler, per statement. The checkpoint commits with the
	// changes, so a batch that finishes after an abort is skipped when it
	// is delivered again.
	if err := ctx.Err(); err != nil {
		return err
	}
	ctx = context.WithoutCancel(ctx)
	tx, err := s.w.BeginTx(ctx, nil)
	if err != nil {
		return fmt.Errorf("begin: %w", err)
	}
	defer func() {
		if err != nil {
			_ = tx.Rollback()
		}
	}()

	var checkpoint int64
	if err := tx.StmtContext(ctx, s.ws.getCheckpoint).QueryRowContext(ctx).Scan(&checkpoint); err != nil {
		return fmt.Errorf("read checkpoint: %w", err)
	}
	if through <= uint64(checkpoint) {
		return tx.Rollback()
	}
	if err := apply(ctx, tx, uint64(checkpoint)); err != nil {
		return err
	}
	if _, err := tx.StmtContext(ctx, s.ws.setCheckpoint).ExecContext(ctx, int64(through)); err != nil {
		return fmt.Errorf("set checkpoint: %w", err)
	}
	if err := tx.Commit(); err != nil {
		return fmt.Errorf("commit: %w", err)
	}
	return nil
}

// applier applies the changes of one transaction. It buffers consecutive
// puts and writes them with multi-row upserts; any other change flushes the
// buffer first, so the changes take effect in order.
type applier struct {
	ctx context.Context
	tx  *sql.Tx
	st  *writeStmts

	bound map[*sql.Stmt]*sql.Stmt // statements bound to tx

	items []any // itemCols arguments per buffered item
}

func (a *applier) stmt(st *sql.Stmt) *sql.Stmt {
	if b, ok := a.bound[st]; ok {
		return b
	}
	if a.bound == nil {
		a.bound = make(map[*sql.Stmt]*sql.Stmt)
	}
	b := a.tx.StmtContext(a.ctx, st)
	a.bound[st] = b
	return b
}

func (a *applier) apply(c *prismv1.KeyValueChange) error {
	ev := c.GetEvent()
	id := kit.NonNil(ev.GetId())
	seq := int64(c.GetSeq())
	switch ch := ev.GetChange().(type) {
	case *prismv1.KeyValueEvent_Put:
		items := ch.Put.GetItems()
		if len(items) == 0 {
			// Nothing to set: only an existing record's revision moves; an
			// empty put must not create a record without items.
			return a.touch(id, seq)
		}
		a.buffer(id, items, seq)
		return nil
	case *prismv1.KeyValueEvent_Replace:
		// The record's rows go and its new items come with this seq as
		// their rev: no row keeps an older one, so the revision is seq.
		if err := a.flush(); err != nil {
			return err
		}
		if _, err := a.stmt(a.st.deleteItems).ExecContext(a.ctx, id); err != nil {
			return fmt.Errorf("replace record items: %w", err)
		}
		a.buffer(id, ch.Replace.GetItems(), seq)
		return nil
	case *prismv1.KeyValueEvent_Delete:
		if err := a.flush(); err != nil {
			return err
		}
		keys := ch.Delete.GetKeys()
		if len(keys) == 0 {
			if _, err := a.stmt(a.st.deleteItems).ExecContext(a.ctx, id); err != nil {
				return fmt.Errorf("delete record items: %w", err)
			}
			return nil
		}
		del := a.stmt(a.st.deleteItem)
		for _, k := range keys {
			if _, err := del.ExecContext(a.ctx, id, kit.NonNil(k)); err != nil {
				return fmt.Errorf("delete item: %w", err)
			}
		}
		return a.touch(id, seq)
	}
	// kit.CheckKeyValueBatch let only puts, deletes and replaces through.
	return fmt.Errorf("%w: neither put, delete nor replace", ErrInvalidChange)
}

// buffer adds items of record id, written by the change at seq, to the
// pending upserts.
func (a *applier) buffer(id []byte, items []*prismv1.Item, seq int64) {
	for _, it := range items {
		var sec, nanos any = nil, int64(0)
		if et := it.GetExpireTime(); et != nil {
			sec, nanos = et.GetSeconds(), int64(et.GetNanos())
		}
		a.items = append(a.items, id, kit.NonNil(it.GetKey()), kit.NonNil(it.GetValue()), sec, nanos, seq)
	}
}

// touch sets the revision of the record id to seq if it exists (it has
// rows): its first row's rev carries it.
func (a *applier) touch(id []byte, seq int64) error {
	if err := a.flush(); err != nil {
		return err
	}
	if _, err := a.stmt(a.st.raiseRev).ExecContext(a.ctx, seq, id); err != nil {
		return fmt.Errorf("set revision: %w", err)
	}
	return nil
}

// flush writes the buffered puts' items, each with the seq of its put. A
// key repeated in the buffer is fine: SQLite upserts the rows of one
// statement in order, so the last one wins.
func (a *applier) flush() error {
	if err := a.upsert(a.st.upsertItems[:], a.items, itemCols); err != nil {
		return fmt.Errorf("upsert items: %w", err)
	}
	clear(a.items)
	a.items = a.items[:0]
	return nil
}

func (a *applier) upsert(stmts []*sql.Stmt, args []any, cols int) error {
	for i, n := range chunkSizes {
		width := n * cols
		for len(args) >= width {
			if _, err := a.stmt(stmts[i]).ExecContext(a.ctx, args[:width]...); err != nil {
				return err
			}
			args = args[width:]
		}
	}
	return nil
}
