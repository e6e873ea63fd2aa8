package postgres

import (
	"context"
	"fmt"

	"github.com/jackc/pgx/v5"

	"github.com/prism-data/prism/backends/internal/kit"
	prismv1 "github.com/prism-data/prism/proto/prism/v1"
)

// ApplyTimeSeries stores the events of changes in order, in one transaction
// that also sets the checkpoint to through, and commits: either all of it is
// stored or none. The checkpoint is the one ApplyKeyValue keeps: a namespace
// has one checkpoint, whatever abstractions it uses.
//
// Changes with Seq <= the stored checkpoint are skipped, so re-applying a
// batch after a redelivery has no further effect. If through <= the stored
// checkpoint the call does nothing. An empty changes slice with through
// above the checkpoint only advances it.
//
// An event is identified by (series_id, event_time, event_id). Storing it
// again, in this batch or a later one, changes nothing: the first write wins,
// its payload and its tags stay, and only its tags are indexed for Search.
//
// A batch above the checkpoint (no redelivery) is one statement: the
// checkpoint update, which takes the namespace's write lock, the events
// and their tag rows, all set-based over unnest arrays.
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
	// The fast path: the checkpoint is below the batch's first seq (no
	// redelivery), so every change is applied, in one statement.
	first := through
	if len(changes) > 0 {
		first = changes[0].GetSeq()
	}
	var w tsWrites
	for _, c := range changes {
		w.add(c.GetAppend())
	}
	var applied int
	err := s.pool.QueryRow(ctx, s.ts.appendIfAbove, append(w.args(), int64(through), int64(first))...).Scan(&applied)
	if err != nil {
		return fmt.Errorf("insert events: %w", err)
	}
	if applied == 1 {
		return nil
	}
	// A batch that overlaps the checkpoint: the changes above it.
	return s.inBatchTx(ctx, through, func(tx pgx.Tx, checkpoint uint64) error {
		var w tsWrites
		for _, c := range changes {
			if c.GetSeq() > checkpoint {
				w.add(c.GetAppend())
			}
		}
		if len(w.series) == 0 {
			return nil
		}
		if _, err := tx.Exec(ctx, s.ts.append, w.args()...); err != nil {
			return fmt.Errorf("insert events: %w", err)
		}
		return nil
	})
}

// tsIdentity is an event's identity, (series_id, event_time, event_id).
type tsIdentity struct {
	series string
	sec    int64
	nanos  int32
	id     string
}

// tsWrites are the rows of a batch as the columns of unnest arrays: the
// events, and one tag row per tag of each event. Only the first event of
// each identity is kept, so the statement's ON CONFLICT only meets events
// stored by earlier batches and first write wins within a batch too.
type tsWrites struct {
	seen map[tsIdentity]struct{}

	series, ids, tags, payloads [][]byte
	secs                        []int64
	nanos                       []int32

	tagKeys, tagValues, tagSeries, tagIDs [][]byte
	tagSecs                               []int64
	tagNanos                              []int32
}

func (w *tsWrites) add(a *prismv1.TimeSeriesAppend) {
	series := a.GetSeriesId()
	for _, ev := range a.GetEvents() {
		t := ev.GetEventTime()
		key := tsIdentity{series: string(series), sec: t.GetSeconds(), nanos: t.GetNanos(), id: string(ev.GetEventId())}
		if w.seen == nil {
			w.seen = make(map[tsIdentity]struct{})
		}
		if _, dup := w.seen[key]; dup {
			continue
		}
		w.seen[key] = struct{}{}
		w.series = append(w.series, series)
		w.secs = append(w.secs, key.sec)
		w.nanos = append(w.nanos, key.nanos)
		w.ids = append(w.ids, ev.GetEventId())
		w.tags = append(w.tags, kit.EncodeTags(ev.GetTags()))
		w.payloads = append(w.payloads, kit.NonNil(ev.GetPayload()))
		w.addTags(ev.GetTags(), series, key.sec, key.nanos, ev.GetEventId())
	}
}

// addTags adds the tag rows of an event.
func (w *tsWrites) addTags(tags map[string]string, series []byte, sec int64, nanos int32, id []byte) {
	for k, v := range tags {
		w.tagKeys = append(w.tagKeys, []byte(k))
		w.tagValues = append(w.tagValues, []byte(v))
		w.tagSecs = append(w.tagSecs, sec)
		w.tagNanos = append(w.tagNanos, nanos)
		w.tagSeries = append(w.tagSeries, series)
		w.tagIDs = append(w.tagIDs, id)
	}
}

// args are the parameters $1..$12 of appendSQL.
func (w *tsWrites) args() []any {
	return []any{w.series, w.secs, w.nanos, w.ids, w.tags, w.payloads,
		w.tagKeys, w.tagValues, w.tagSecs, w.tagNanos, w.tagSeries, w.tagIDs}
}

// appendSQL inserts the events of arrays $1..$6 (series_id, time_s,
// time_ns, event_id, tags, payload) that pass where and are not stored yet,
// then the tag rows of arrays $7..$12 (key, value, time_s, time_ns,
// series_id, event_id) of the events it inserted: an event stored before
// keeps its first tags, and the tags of this write are not indexed.
func appendSQL(where string) string {
	return `e AS (INSERT INTO {s}.ts_events (series_id, time_s, time_ns, event_id, tags, payload)
		SELECT * FROM unnest($1::bytea[], $2::int8[], $3::int4[], $4::bytea[], $5::bytea[], $6::bytea[]) ` + where + `
		ON CONFLICT DO NOTHING
		RETURNING series_id, time_s, time_ns, event_id),
	t AS (INSERT INTO {s}.ts_tags (key, value, time_s, time_ns, series_id, event_id)
		SELECT t.key, t.value, t.time_s, t.time_ns, t.series_id, t.event_id
		FROM unnest($7::bytea[], $8::bytea[], $9::int8[], $10::int4[], $11::bytea[], $12::bytea[])
			t(key, value, time_s, time_ns, series_id, event_id)
		JOIN e ON e.series_id = t.series_id AND e.time_s = t.time_s AND e.time_ns = t.time_ns AND e.event_id = t.event_id
		ON CONFLICT DO NOTHING)`
}
