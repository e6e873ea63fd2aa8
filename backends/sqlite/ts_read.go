package sqlite

import (
	"bytes"
	"context"
	"database/sql"
	"fmt"
	"strings"

	"google.golang.org/protobuf/types/known/timestamppb"

	"github.com/prism-data/prism/backends/internal/kit"
	prismv1 "github.com/prism-data/prism/proto/prism/v1"
)

// ReadRange reads one page of the events of series req.SeriesId whose
// event_time is in req.Range [start, end) (an unset start is the beginning
// of time, an unset end is unbounded), ordered by (event_time, event_id),
// descending if req.Descending. req.PageSize 0 means 100; it is capped at
// 1000. req.PageToken is the NextPageToken of the previous page, "" for the
// first; NextPageToken is empty on the last page. req.MinSeq is ignored:
// waiting for the projection is the caller's job. Every SeriesEvent of the
// page shares one SeriesId slice.
//
// Events older than the retention cutoff are returned until SweepOlderThan
// deletes them.
//
// Errors: ErrInvalidPageToken (wrapped) for a token ReadRange did not make;
// ErrInvalidRequest for a nil request, an empty series_id or an invalid
// range timestamp; ErrClosed after Close; otherwise the database error.
func (s *Store) ReadRange(ctx context.Context, req *prismv1.ReadRangeRequest) (*prismv1.EventsResponse, error) {
	w, err := kit.RangeWindow(req)
	return kit.Do(&s.gate, ErrClosed, "read range", kitErrors.Request(err), func() (*prismv1.EventsResponse, error) {
		resp, err := s.readRange(ctx, req, w)
		return resp, ctxErr(ctx, err)
	})
}

func (s *Store) readRange(ctx context.Context, req *prismv1.ReadRangeRequest, w kit.Window) (*prismv1.EventsResponse, error) {
	series, lo, hi := req.GetSeriesId(), w.Lo, w.Hi
	q := eventQuery{
		sql:  rangeSQL[boolIndex(req.GetDescending())],
		args: []any{series, lo.Sec, lo.Nanos, kit.NonNil(lo.ID), hi.Sec, hi.Nanos, kit.NonNil(hi.ID)},
		size: w.Size,
		kind: kit.TokenRange,
	}
	return s.queryEvents(ctx, q, w.Empty())
}

// Search reads one page of the events whose tags include every pair of
// req.Tags (equality; no tags matches every event) and whose event_time is
// in req.Range, in series req.SeriesId or, if it is empty, in every series.
// Events are ordered by (event_time, series_id, event_id), descending if
// req.Descending; page size, page token and min_seq work as in ReadRange.
//
// Across series, the scan follows one tag (the least key) in time order and
// looks the others up; within a series it follows the series' events and
// looks every tag up. Either way a page costs at most the events of the
// scanned stretch, and pages never re-read earlier ones.
//
// Errors: ErrInvalidPageToken (wrapped) for a token Search did not make
// (or made for another series); ErrInvalidRequest for a nil request, more
// than 64 tags or an invalid range timestamp; ErrClosed after Close;
// otherwise the database error.
func (s *Store) Search(ctx context.Context, req *prismv1.SearchRequest) (*prismv1.EventsResponse, error) {
	w, keys, err := kit.SearchWindow(req)
	return kit.Do(&s.gate, ErrClosed, "search events", kitErrors.Request(err), func() (*prismv1.EventsResponse, error) {
		resp, err := s.search(ctx, req, w, keys)
		return resp, ctxErr(ctx, err)
	})
}

func (s *Store) search(ctx context.Context, req *prismv1.SearchRequest, w kit.Window, keys []string) (*prismv1.EventsResponse, error) {
	lo, hi, desc := w.Lo, w.Hi, req.GetDescending()
	q := eventQuery{size: w.Size, kind: kit.TokenSearch}

	if series := req.GetSeriesId(); len(series) > 0 {
		q.sql = rangeSQL[boolIndex(desc)]
		q.args = []any{series, lo.Sec, lo.Nanos, kit.NonNil(lo.ID), hi.Sec, hi.Nanos, kit.NonNil(hi.ID)}
	} else {
		bounds := []any{lo.Sec, lo.Nanos, kit.NonNil(lo.Series), kit.NonNil(lo.ID), hi.Sec, hi.Nanos, kit.NonNil(hi.Series), kit.NonNil(hi.ID)}
		if len(keys) == 0 {
			q.sql = allSeriesSQL[boolIndex(desc)]
			q.args = bounds
		} else {
			// The first tag's index drives the scan in page order.
			q.sql = tagSQL[boolIndex(desc)]
			q.args = append([]any{keys[0], req.GetTags()[keys[0]]}, bounds...)
			keys = keys[1:]
		}
	}
	// The other tags are checked on each event's stored tags as the rows
	// stream in index order: one index scan whatever the number of tags.
	// (An EXISTS sub-query per tag made SQLite's planning cost grow with
	// the cube of the tag count: 64 tags took 14 s on 5 events.)
	if len(keys) > 0 {
		q.match = make(map[string]string, len(keys))
		for _, k := range keys {
			q.match[k] = req.GetTags()[k]
		}
	}
	return s.queryEvents(ctx, q, w.Empty())
}

// eventQuery is a page query: sql takes args then the row limit and returns
// series_id, time_s, time_ns, event_id, tags, payload.
type eventQuery struct {
	sql  string
	args []any
	size int
	kind byte // of the next page token
	// match, if not empty, are tags every returned event must have; the
	// query then runs without a row limit and stops reading once the page
	// is full.
	match map[string]string
}

// queryEvents runs q on the read pool; empty skips the query (an empty
// range) but still fails after Close.
func (s *Store) queryEvents(ctx context.Context, q eventQuery, empty bool) (*prismv1.EventsResponse, error) {
	resp := &prismv1.EventsResponse{}
	if empty {
		return resp, nil
	}
	// One row more than the page tells whether a next page exists.
	limit := q.size + 1
	if len(q.match) > 0 {
		limit = -1 // SQLite: no limit; rows stream in index order
	}
	rows, err := s.r.QueryContext(ctx, q.sql, append(q.args, limit)...)
	if err != nil {
		return nil, fmt.Errorf("query events: %w", err)
	}
	defer rows.Close()
	var series []byte
	for rows.Next() {
		var (
			sec, nanos  int64
			sid, tags   sql.RawBytes
			id, payload []byte
			ev          = &prismv1.TimeSeriesEvent{}
		)
		if err := rows.Scan(&sid, &sec, &nanos, &id, &tags, &payload); err != nil {
			return nil, fmt.Errorf("scan event: %w", err)
		}
		if ev.Tags, err = kit.DecodeTags(tags); err != nil {
			return nil, err
		}
		if !hasTags(ev.Tags, q.match) {
			continue
		}
		// Consecutive events of one series share its id.
		if !bytes.Equal(series, sid) {
			series = bytes.Clone(sid)
		}
		ev.EventTime = &timestamppb.Timestamp{Seconds: sec, Nanos: int32(nanos)}
		ev.EventId = id
		ev.Payload = payload
		resp.Events = append(resp.Events, &prismv1.SeriesEvent{SeriesId: series, Event: ev})
		if len(resp.Events) > q.size {
			break
		}
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("query events: %w", err)
	}
	resp.Events, resp.NextPageToken = kit.EventPage(q.kind, resp.Events, q.size)
	return resp, nil
}

const eventCols = `e.series_id, e.time_s, e.time_ns, e.event_id, e.tags, e.payload`

var (
	// allSeriesSQL[desc] reads every series in the time index's order.
	allSeriesSQL = [2]string{
		`SELECT ` + eventCols + ` FROM ts_events e INDEXED BY ts_events_by_time WHERE ` + bounds4 + orderBy("e", true, false),
		`SELECT ` + eventCols + ` FROM ts_events e INDEXED BY ts_events_by_time WHERE ` + bounds4 + orderBy("e", true, true),
	}
	// rangeSQL[desc] reads one series in a range: ReadRange, and Search in
	// one series.
	rangeSQL = [2]string{buildSeriesSQL(false), buildSeriesSQL(true)}
)

// orderBy returns the ORDER BY and LIMIT of a page query on table alias t.
func orderBy(t string, withSeries, desc bool) string {
	dir := ""
	if desc {
		dir = " DESC"
	}
	cols := []string{"time_s", "time_ns", "event_id"}
	if withSeries {
		cols = []string{"time_s", "time_ns", "series_id", "event_id"}
	}
	for i, c := range cols {
		cols[i] = t + "." + c + dir
	}
	return " ORDER BY " + strings.Join(cols, ", ") + " LIMIT ?"
}

const bounds4 = `(e.time_s, e.time_ns, e.series_id, e.event_id) >= (?, ?, ?, ?)
	AND (e.time_s, e.time_ns, e.series_id, e.event_id) < (?, ?, ?, ?)`

func boolIndex(b bool) int {
	if b {
		return 1
	}
	return 0
}

// buildSeriesSQL reads one series (args: series_id, the bounds) by its
// primary key.
func buildSeriesSQL(desc bool) string {
	return `SELECT ` + eventCols + ` FROM ts_events e WHERE e.series_id = ?
		AND (e.time_s, e.time_ns, e.event_id) >= (?, ?, ?)
		AND (e.time_s, e.time_ns, e.event_id) < (?, ?, ?)` + orderBy("e", false, desc)
}

// tagSQL[desc] reads every series by one tag's rows in ts_tags (args: that
// tag, the bounds). CROSS JOIN keeps d the outer loop, so rows come in index
// order and reading stops at the limit.
var tagSQL = [2]string{buildTagSQL(false), buildTagSQL(true)}

func buildTagSQL(desc bool) string {
	return `SELECT ` + eventCols + ` FROM ts_tags d CROSS JOIN ts_events e
		ON e.series_id = d.series_id AND e.time_s = d.time_s AND e.time_ns = d.time_ns AND e.event_id = d.event_id
		WHERE d.key = ? AND d.value = ?
		AND (d.time_s, d.time_ns, d.series_id, d.event_id) >= (?, ?, ?, ?)
		AND (d.time_s, d.time_ns, d.series_id, d.event_id) < (?, ?, ?, ?)` + orderBy("d", true, desc)
}

// hasTags reports whether tags includes every pair of want.
func hasTags(tags, want map[string]string) bool {
	for k, v := range want {
		if got, ok := tags[k]; !ok || got != v {
			return false
		}
	}
	return true
}
