package postgres

import (
	"context"
	"fmt"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/prism-data/prism/backends/internal/kit"
)

// SweepOlderThan deletes the events whose event_time is before cutoff
// (retention by age) with their tag rows, and returns how many events it
// deleted, also when it fails part way (the chunks committed before the
// error stay deleted). It works in transactions of at most 1000 events,
// each holding the namespace's write lock (the checkpoint row), so it waits
// for and is waited for by the Apply methods. It does not change the
// checkpoint: retention is not a write.
//
// Errors: ErrClosed after Close; otherwise the database error (ctx's error
// when it is cancelled between chunks).
func (s *Store) SweepOlderThan(ctx context.Context, cutoff time.Time) (int64, error) {
	return s.sweep(ctx, "sweep old events", cutoff, s.sweepEventsChunk)
}

func (s *Store) sweepEventsChunk(ctx context.Context, tx pgx.Tx, sec int64, nanos int32) (int64, error) {
	var checkpoint int64
	if err := tx.QueryRow(ctx, s.q.lockCheckpoint).Scan(&checkpoint); err != nil {
		return 0, fmt.Errorf("lock checkpoint: %w", err)
	}
	rows, err := tx.Query(ctx, s.ts.sweep, sec, nanos, sweepChunk)
	if err != nil {
		return 0, fmt.Errorf("delete events: %w", err)
	}
	// ts_tags is keyed by tag first: an event's tag rows are found from
	// the tags it was stored with.
	var n int64
	var w tsWrites
	for rows.Next() {
		var (
			series, id, tags []byte
			sec              int64
			nanos            int32
		)
		if err := rows.Scan(&series, &sec, &nanos, &id, &tags); err != nil {
			rows.Close()
			return 0, fmt.Errorf("delete events: %w", err)
		}
		n++
		decoded, err := kit.DecodeTags(tags)
		if err != nil {
			rows.Close()
			return 0, err
		}
		w.addTags(decoded, series, sec, nanos, id)
	}
	rows.Close()
	if err := rows.Err(); err != nil {
		return 0, fmt.Errorf("delete events: %w", err)
	}
	if len(w.tagKeys) > 0 {
		if _, err := tx.Exec(ctx, s.ts.sweepTags, w.tagKeys, w.tagValues, w.tagSecs, w.tagNanos, w.tagSeries, w.tagIDs); err != nil {
			return 0, fmt.Errorf("delete tags: %w", err)
		}
	}
	return n, nil
}
