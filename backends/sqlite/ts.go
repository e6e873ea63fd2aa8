package sqlite

import (
	"bytes"
	"context"
	"database/sql"
	"fmt"

	"github.com/prism-data/prism/backends/internal/kit"
	prismv1 "github.com/prism-data/prism/proto/prism/v1"
)

const (
	tsEventCols = 6 // series_id, time_s, time_ns, event_id, tags, payload
	tsTagCols   = 6 // key, value, time_s, time_ns, series_id, event_id
)

// ApplyTimeSeries stores the events of changes in order, in one transaction
// that also sets the checkpoint to through, and commits: either all of it is
// stored or none. The checkpoint is the one ApplyKeyValue keeps: a store has
// one checkpoint, whatever abstractions its namespace uses.
//
// Changes with Seq <= the stored checkpoint are skipped, so re-applying a
// batch after a redelivery has no further effect. If through <= the stored
// checkpoint the call does nothing. An empty changes slice with through
// above the checkpoint only advances it.
//
// An event is identified by (series_id, event_time, event_id). Storing it
// again, in this batch or a later one, changes nothing: the first write wins,
// its payload and its tags stay.
//
// Errors: an *InvalidChangeError (errors.Is ErrInvalidChange) for a nil
// change or append, an empty series_id, a nil event, an event without a
// valid event_time, or an event_id that is empty or longer than 256 bytes,
// checked before anything is written, so nothing of the batch is applied;
// ErrInvalidBatch for sequences that are 0, not strictly increasing, greater
// than through or above math.MaxInt64; ErrClosed after Close; otherwise the
// database error, with the transaction rolled back.
func (s *Store) ApplyTimeSeries(ctx context.Context, changes []*prismv1.TimeSeriesChange, through uint64) error {
	return kit.Apply(&s.gate, ErrClosed, "time-series", through, kitErrors.Batch(kit.CheckTimeSeriesBatch(changes, through)), func() error {
		return s.applyTimeSeries(ctx, changes, through)
	})
}

func (s *Store) applyTimeSeries(ctx context.Context, changes []*prismv1.TimeSeriesChange, through uint64) error {
	return s.inBatchTx(ctx, through, func(ctx context.Context, tx *sql.Tx, checkpoint uint64) error {
		w := tsWriter{ctx: ctx, tx: tx}
		for _, c := range changes {
			if c.GetSeq() > checkpoint {
				w.add(c.GetAppend())
			}
		}
		return w.flush()
	})
}

// tsEvent is an event buffered for insertion.
type tsEvent struct {
	series     []byte
	sec, nanos int64
	ev         *prismv1.TimeSeriesEvent
	tags       []byte // kit.EncodeTags of the event's tags
}

// tsWriter inserts the events of one transaction with multi-row statements,
// prepared once per transaction and per row count (Store has no room for
// long-lived time-series statements; one prepare serves a whole batch).
type tsWriter struct {
	ctx context.Context
	tx  *sql.Tx

	events      []tsEvent
	insertEvent [len(chunkSizes)]*sql.Stmt
	insertTags  [len(chunkSizes)]*sql.Stmt
	storedTags  *sql.Stmt
}

// insertEventsSQL[i] and insertTagsSQL[i] insert chunkSizes[i] rows.
var insertEventsSQL, insertTagsSQL = func() (ev, tags [len(chunkSizes)]string) {
	for i, n := range chunkSizes {
		ev[i] = `INSERT INTO ts_events (series_id, time_s, time_ns, event_id, tags, payload) VALUES ` +
			rows(n, tsEventCols) + ` ON CONFLICT DO NOTHING`
		tags[i] = `INSERT INTO ts_tags (key, value, time_s, time_ns, series_id, event_id) VALUES ` +
			rows(n, tsTagCols) + ` ON CONFLICT DO NOTHING`
	}
	return ev, tags
}()

func (w *tsWriter) add(a *prismv1.TimeSeriesAppend) {
	series := a.GetSeriesId()
	for _, ev := range a.GetEvents() {
		e := tsEvent{series: series, sec: ev.GetEventTime().GetSeconds(), nanos: int64(ev.GetEventTime().GetNanos()), ev: ev}
		e.tags = kit.EncodeTags(ev.GetTags())
		w.events = append(w.events, e)
	}
}

// flush inserts the buffered events, then the tag rows of the events that
// are stored with these very tags. An event that was already stored (first
// write wins) keeps the tag rows of its first write: its tags here may
// differ, and must not be indexed.
func (w *tsWriter) flush() error {
	var tagArgs []any
	args := make([]any, 0, chunkSizes[0]*tsEventCols)
	events := w.events
	for i, n := range chunkSizes {
		for len(events) >= n {
			chunk := events[:n]
			events = events[n:]
			args = args[:0]
			for _, e := range chunk {
				args = append(args, e.series, e.sec, e.nanos, e.ev.GetEventId(), e.tags, kit.NonNil(e.ev.GetPayload()))
			}
			st, err := w.stmt(&w.insertEvent[i], insertEventsSQL[i])
			if err != nil {
				return err
			}
			res, err := st.ExecContext(w.ctx, args...)
			if err != nil {
				return fmt.Errorf("insert events: %w", err)
			}
			inserted, err := res.RowsAffected()
			if err != nil {
				return fmt.Errorf("insert events: %w", err)
			}
			for _, e := range chunk {
				if inserted < int64(n) && len(e.tags) > 0 {
					// Some events of the chunk were stored before: index
					// only those whose stored tags are these.
					same, err := w.storedWithTags(e)
					if err != nil {
						return err
					}
					if !same {
						continue
					}
				}
				for k, v := range e.ev.GetTags() {
					tagArgs = append(tagArgs, k, v, e.sec, e.nanos, e.series, e.ev.GetEventId())
				}
			}
		}
	}
	w.events = w.events[:0]

	for i, n := range chunkSizes {
		width := n * tsTagCols
		for len(tagArgs) >= width {
			st, err := w.stmt(&w.insertTags[i], insertTagsSQL[i])
			if err != nil {
				return err
			}
			if _, err := st.ExecContext(w.ctx, tagArgs[:width]...); err != nil {
				return fmt.Errorf("insert tags: %w", err)
			}
			tagArgs = tagArgs[width:]
		}
	}
	return nil
}

// storedWithTags reports whether e is stored with e's tags.
func (w *tsWriter) storedWithTags(e tsEvent) (bool, error) {
	st, err := w.stmt(&w.storedTags, `SELECT tags FROM ts_events
		WHERE series_id = ? AND time_s = ? AND time_ns = ? AND event_id = ?`)
	if err != nil {
		return false, err
	}
	var stored []byte
	if err := st.QueryRowContext(w.ctx, e.series, e.sec, e.nanos, e.ev.GetEventId()).Scan(&stored); err != nil {
		return false, fmt.Errorf("read stored tags: %w", err)
	}
	return bytes.Equal(stored, e.tags), nil
}

// stmt returns *slot, preparing query in the transaction the first time.
// The transaction closes its statements when it ends.
func (w *tsWriter) stmt(slot **sql.Stmt, query string) (*sql.Stmt, error) {
	if *slot == nil {
		st, err := w.tx.PrepareContext(w.ctx, query)
		if err != nil {
			return nil, fmt.Errorf("prepare %q: %w", query, err)
		}
		*slot = st
	}
	return *slot, nil
}
