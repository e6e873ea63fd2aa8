package sqlite

import (
	"context"
	"database/sql"
	"fmt"
	"time"

	"github.com/prism-data/prism/backends/internal/kit"
)

// sweepChunk bounds the items one sweep transaction deletes, so a large
// sweep holds the write lock in short slices and batches interleave.
const sweepChunk = 1000

// SweepExpired deletes the items whose expire_time <= now (the Store's
// clock, read once per call); a record left without items is gone.
// It works in transactions of at most 1000 items on the writer connection,
// so it waits for and is waited for by ApplyKeyValue. It does not change the
// checkpoint or any revision: expiry is not a write. It returns the number
// of items deleted, also when it fails part way (the chunks committed before
// the error stay deleted).
//
// Errors: ErrClosed after Close; otherwise the database error (ctx's error
// when it is cancelled between chunks).
func (s *Store) SweepExpired(ctx context.Context) (int64, error) {
	return s.sweep(ctx, "sweep expired items", s.now(), s.sweepChunk)
}

// sweep runs a sweep named op in chunks of at most sweepChunk rows, each
// deleting what is before t (as seconds and nanoseconds) in a transaction
// of its own on the writer connection; see kit.SweepChunks.
func (s *Store) sweep(ctx context.Context, op string, t time.Time, chunk func(ctx context.Context, tx *sql.Tx, sec, nanos int64) (int64, error)) (int64, error) {
	if err := s.acquire(); err != nil {
		return 0, fmt.Errorf("%s: %w", op, err)
	}
	defer s.gate.Leave()
	sec, nanos := splitTime(t)
	n, err := kit.SweepChunks(ctx, sweepChunk, func() (n int64, err error) {
		tx, err := s.w.BeginTx(ctx, nil)
		if err != nil {
			return 0, fmt.Errorf("begin: %w", err)
		}
		if n, err = chunk(ctx, tx, sec, nanos); err != nil {
			_ = tx.Rollback()
			return 0, err
		}
		if err := tx.Commit(); err != nil {
			return 0, fmt.Errorf("commit: %w", err)
		}
		return n, nil
	})
	if err != nil {
		return n, fmt.Errorf("%s: %w", op, err)
	}
	return n, nil
}

func (s *Store) sweepChunk(ctx context.Context, tx *sql.Tx, sec, nanos int64) (n int64, err error) {
	rows, err := tx.StmtContext(ctx, s.ws.sweepItems).QueryContext(ctx, sec, nanos, sweepChunk)
	if err != nil {
		return 0, fmt.Errorf("delete items: %w", err)
	}
	// The largest rev each record lost: the record's revision if a swept
	// row held it.
	lost := make(map[string]int64)
	for rows.Next() {
		var (
			id  []byte
			rev int64
		)
		if err := rows.Scan(&id, &rev); err != nil {
			rows.Close()
			return 0, fmt.Errorf("delete items: %w", err)
		}
		n++
		lost[string(id)] = max(lost[string(id)], rev) // revs are >= 1
	}
	if err := rows.Err(); err != nil {
		rows.Close()
		return 0, fmt.Errorf("delete items: %w", err)
	}
	if err := rows.Close(); err != nil {
		return 0, fmt.Errorf("delete items: %w", err)
	}
	// Expiry is not a write: a record keeps its revision, carried by its
	// first row left (a record left without rows is gone).
	raise := tx.StmtContext(ctx, s.ws.raiseRev)
	for id, rev := range lost {
		if _, err := raise.ExecContext(ctx, rev, kit.NonNil([]byte(id))); err != nil {
			return 0, fmt.Errorf("keep revision: %w", err)
		}
	}
	return n, nil
}
