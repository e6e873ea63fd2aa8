package postgres

import (
	"context"
	"fmt"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/prism-data/prism/backends/internal/kit"
)

// sweepChunk bounds the items one sweep transaction deletes, so a large
// sweep holds the namespace's write lock in short slices and batches
// interleave.
const sweepChunk = 1000

// SweepExpired deletes the items whose expire_time <= now (the Store's
// clock, read once per call); a record left without items is gone.
// It works in transactions of at most 1000 items, each holding the
// namespace's write lock (the checkpoint row), so it waits for and is waited
// for by ApplyKeyValue. It does not change the checkpoint or any revision:
// expiry is not a write. It returns the number of items deleted, also when
// it fails part way (the chunks committed before the error stay deleted).
//
// Errors: ErrClosed after Close; otherwise the database error (ctx's error
// when it is cancelled between chunks).
func (s *Store) SweepExpired(ctx context.Context) (int64, error) {
	return s.sweep(ctx, "sweep expired items", s.now(), s.sweepChunk)
}

// sweep runs a sweep named op in transactions of at most sweepChunk rows,
// each deleting what is before t (as seconds and nanoseconds); see
// kit.SweepChunks.
func (s *Store) sweep(ctx context.Context, op string, t time.Time, chunk func(ctx context.Context, tx pgx.Tx, sec int64, nanos int32) (int64, error)) (int64, error) {
	if err := s.acquire(); err != nil {
		return 0, fmt.Errorf("%s: %w", op, err)
	}
	defer s.gate.Leave()
	sec, nanos := kit.SplitTime(t)
	n, err := kit.SweepChunks(ctx, sweepChunk, func() (int64, error) {
		var n int64
		err := pgx.BeginFunc(ctx, s.pool, func(tx pgx.Tx) error {
			var err error
			n, err = chunk(ctx, tx, sec, nanos)
			return err
		})
		return n, err
	})
	if err != nil {
		return n, fmt.Errorf("%s: %w", op, err)
	}
	return n, nil
}

func (s *Store) sweepChunk(ctx context.Context, tx pgx.Tx, sec int64, nanos int32) (int64, error) {
	// The write lock keeps a batch from writing a record between the
	// delete of its expired rows and the move of its revision.
	var checkpoint int64
	if err := tx.QueryRow(ctx, s.q.lockCheckpoint).Scan(&checkpoint); err != nil {
		return 0, fmt.Errorf("lock checkpoint: %w", err)
	}
	rows, err := tx.Query(ctx, s.q.sweep, sec, nanos, sweepChunk)
	if err != nil {
		return 0, fmt.Errorf("delete items: %w", err)
	}
	var n int64
	// The largest rev each record lost: its revision if a swept row held
	// it. Expiry is not a write, so the first row left carries it on.
	lost := make(map[string]int)
	var ids [][]byte
	var revs []int64
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
		if i, ok := lost[string(id)]; ok {
			revs[i] = max(revs[i], rev)
			continue
		}
		lost[string(id)] = len(ids)
		ids = append(ids, kit.NonNil(id))
		revs = append(revs, rev)
	}
	rows.Close()
	if err := rows.Err(); err != nil {
		return 0, fmt.Errorf("delete items: %w", err)
	}
	if len(ids) > 0 {
		if _, err := tx.Exec(ctx, s.q.raiseRevs, ids, revs); err != nil {
			return 0, fmt.Errorf("keep revisions: %w", err)
		}
	}
	return n, nil
}
