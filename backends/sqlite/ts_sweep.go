package sqlite

import (
	"context"
	"database/sql"
	"fmt"
	"time"

	"github.com/prism-data/prism/backends/internal/kit"
)

// SweepOlderThan deletes the events whose event_time is before cutoff
// (retention by age) with their tag index rows, and returns how many events
// it deleted, also when it fails part way (the chunks committed before the
// error stay deleted). It works in transactions of at most 1000 events on
// the writer connection, so it waits for and is waited for by the Apply
// methods. It does not change the checkpoint: retention is not a write.
//
// Errors: ErrClosed after Close; otherwise the database error (ctx's error
// when it is cancelled between chunks).
func (s *Store) SweepOlderThan(ctx context.Context, cutoff time.Time) (int64, error) {
	return s.sweep(ctx, "sweep old events", cutoff, s.sweepEventsChunk)
}

func (s *Store) sweepEventsChunk(ctx context.Context, tx *sql.Tx, sec, nanos int64) (n int64, err error) {
	rows, err := tx.QueryContext(ctx, `DELETE FROM ts_events WHERE (series_id, time_s, time_ns, event_id) IN (
			SELECT series_id, time_s, time_ns, event_id FROM ts_events INDEXED BY ts_events_by_time
			WHERE (time_s, time_ns) < (?, ?) LIMIT ?
		) RETURNING series_id, time_s, time_ns, event_id, tags`, sec, nanos, sweepChunk)
	if err != nil {
		return 0, fmt.Errorf("delete events: %w", err)
	}
	// The tag rows of an event are found from its tags.
	type swept struct {
		series, id, tags []byte
		sec, nanos       int64
	}
	var tagged []swept
	for rows.Next() {
		var e swept
		if err := rows.Scan(&e.series, &e.sec, &e.nanos, &e.id, &e.tags); err != nil {
			rows.Close()
			return 0, fmt.Errorf("delete events: %w", err)
		}
		n++
		if len(e.tags) > 0 {
			tagged = append(tagged, e)
		}
	}
	if err := rows.Err(); err != nil {
		rows.Close()
		return 0, fmt.Errorf("delete events: %w", err)
	}
	if err := rows.Close(); err != nil {
		return 0, fmt.Errorf("delete events: %w", err)
	}
	if len(tagged) > 0 {
		del, err := tx.PrepareContext(ctx, `DELETE FROM ts_tags
			WHERE key = ? AND value = ? AND time_s = ? AND time_ns = ? AND series_id = ? AND event_id = ?`)
		if err != nil {
			return 0, fmt.Errorf("prepare tag delete: %w", err)
		}
		for _, e := range tagged {
			tags, err := kit.DecodeTags(e.tags)
			if err != nil {
				return 0, err
			}
			for k, v := range tags {
				if _, err := del.ExecContext(ctx, k, v, e.sec, e.nanos, e.series, e.id); err != nil {
					return 0, fmt.Errorf("delete tags: %w", err)
				}
			}
		}
	}
	return n, nil
}
