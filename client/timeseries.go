package client

import (
	"context"
	"slices"
	"time"

	"google.golang.org/protobuf/types/known/timestamppb"

	prismv1 "github.com/prism-data/prism/proto/prism/v1"
	"github.com/prism-data/prism/subjects"
)

// TimeSeries is a handle on one TimeSeries namespace: series of events
// ordered by (Time, ID). It is safe for concurrent use.
type TimeSeries struct {
	handle
}

// TimeSeriesOption configures a TimeSeries handle (ReadYourWrites).
type TimeSeriesOption = HandleOption

// TimeSeries returns a handle on namespace ns.
func (c *Client) TimeSeries(ns string, opts ...TimeSeriesOption) *TimeSeries {
	ts := new(TimeSeries)
	ts.init(c, ns, opts)
	return ts
}

// Event is one event of a series. An event is stored once per (series, Time,
// ID): appending it again changes nothing.
type Event struct {
	// Time is when the event happened; it must be set.
	Time time.Time
	// ID tells apart the events of one series at the same Time: 1 to 256
	// bytes.
	ID []byte
	// Tags are indexed for Search by equality.
	Tags    map[string]string
	Payload []byte
	// SeriesID, on reads, is the series the event belongs to. Append
	// ignores it.
	SeriesID []byte
}

// RangeOption configures a ReadRange, Latest or Search. It is ReadOption, so
// PageSize, PageToken and MinSeq apply as well as Between, Descending and
// InSeries.
type RangeOption = ReadOption

// Between reads event times in [start, end). A zero start is the beginning
// of time, a zero end is unbounded.
func Between(start, end time.Time) RangeOption {
	return func(o *readOpts) { o.from, o.until, o.timed = start, end, true }
}

// Descending reads the newest events first.
func Descending() RangeOption { return func(o *readOpts) { o.descending = true } }

// InSeries makes a Search look in series id only.
func InSeries(id []byte) RangeOption {
	return func(o *readOpts) { o.series, o.inSeries = id, true }
}

// Append appends events to series seriesID and returns the stream sequence
// of the stored append; pass it to MinSeq to read the events back. The
// append is stored all or nothing. Every call gets a fresh idempotency
// token (or the one of IdempotencyToken), reused when the client retries.
//
// Errors: ErrInvalidArgument (a limit broken, an event without Time; IfRevision
// does not apply), ErrIdempotencyMismatch, ErrNamespaceNotFound,
// ErrUnimplemented (ns is not a TimeSeries namespace), ErrUnavailable,
// ErrNotConsistentYet (strong namespace, stored but not yet applied;
// Error.Seq says where).
func (ts *TimeSeries) Append(ctx context.Context, seriesID []byte, events []Event, opts ...WriteOption) (uint64, error) {
	op := "append " + ts.ns
	o := newWriteOpts(opts)
	if o.revision != nil {
		return 0, misuse(op, "IfRevision does not apply to Append: a series has no revision")
	}
	req := &prismv1.AppendRequest{SeriesId: seriesID, IdempotencyToken: o.token, Events: make([]*prismv1.TimeSeriesEvent, len(events))}
	for i, ev := range events {
		if ev.Time.IsZero() {
			return 0, misuse(op, "event %d has no Time; every event needs the time it happened", i+1)
		}
		req.Events[i] = &prismv1.TimeSeriesEvent{EventTime: timestamppb.New(ev.Time), EventId: ev.ID, Tags: ev.Tags, Payload: ev.Payload}
	}
	resp, err := ts.c.write(ctx, op, subjects.Write(ts.ns, "append"), req)
	if err != nil {
		return 0, err
	}
	ts.remember(resp.GetSeq())
	return resp.GetSeq(), nil
}

// timeRange is the wire range of o, nil when Between was not given.
func (o *readOpts) timeRange() *prismv1.TimeRange {
	if !o.timed || (o.from.IsZero() && o.until.IsZero()) {
		return nil
	}
	r := new(prismv1.TimeRange)
	if !o.from.IsZero() {
		r.Start = timestamppb.New(o.from)
	}
	if !o.until.IsZero() {
		r.End = timestamppb.New(o.until)
	}
	return r
}

// ReadRange reads one page of series seriesID's events in (Time, ID) order,
// oldest first unless Descending, and returns them with the token of the
// next page ("" on the last one). Options: Between, Descending, PageSize,
// PageToken, MinSeq.
//
// Errors: ErrInvalidArgument, ErrNotConsistentYet (MinSeq not reached in
// time), ErrNamespaceNotFound, ErrUnimplemented, ErrUnavailable.
func (ts *TimeSeries) ReadRange(ctx context.Context, seriesID []byte, opts ...RangeOption) ([]Event, string, error) {
	op := "range " + ts.ns
	o := ts.readOpts(opts)
	bad := o.keyValueOnly()
	if bad == "" && o.inSeries {
		bad = "InSeries"
	}
	if bad != "" {
		return nil, "", misuse(op, "%s do not apply to ReadRange", bad)
	}
	req := &prismv1.ReadRangeRequest{SeriesId: seriesID, Range: o.timeRange(), Descending: o.descending, PageSize: o.pageSize, PageToken: o.pageToken, MinSeq: o.minSeq}
	var resp prismv1.EventsResponse
	if err := ts.c.call(ctx, op, subjects.Read(ts.ns, "range"), req, &resp); err != nil {
		return nil, "", err
	}
	return fromProtoEvents(resp.GetEvents()), resp.GetNextPageToken(), nil
}

// Latest returns the n newest events of series seriesID, newest first: a
// descending ReadRange of page size n. Between and MinSeq apply; n is 1 to
// 1000.
func (ts *TimeSeries) Latest(ctx context.Context, seriesID []byte, n int, opts ...RangeOption) ([]Event, error) {
	if n <= 0 || n > 1000 {
		return nil, misuse("range "+ts.ns, "Latest(%d): n must be 1 to 1000", n)
	}
	opts = append(slices.Clip(opts), Descending(), PageSize(uint32(n)), PageToken(""))
	events, _, err := ts.ReadRange(ctx, seriesID, opts...)
	return events, err
}

// Search returns one page of the events whose tags include every one of
// tags (none: every event), across all series or InSeries, in (Time,
// series, ID) order, oldest first unless Descending, and the token of the
// next page. Options: InSeries, Between, Descending, PageSize, PageToken,
// MinSeq. Errors: as ReadRange.
func (ts *TimeSeries) Search(ctx context.Context, tags map[string]string, opts ...RangeOption) ([]Event, string, error) {
	op := "search " + ts.ns
	o := ts.readOpts(opts)
	if bad := o.keyValueOnly(); bad != "" {
		return nil, "", misuse(op, "%s do not apply to Search", bad)
	}
	if o.inSeries && len(o.series) == 0 {
		return nil, "", misuse(op, "InSeries needs a series id; leave it out to search every series")
	}
	req := &prismv1.SearchRequest{SeriesId: o.series, Tags: tags, Range: o.timeRange(), Descending: o.descending, PageSize: o.pageSize, PageToken: o.pageToken, MinSeq: o.minSeq}
	var resp prismv1.EventsResponse
	if err := ts.c.call(ctx, op, subjects.Read(ts.ns, "search"), req, &resp); err != nil {
		return nil, "", err
	}
	return fromProtoEvents(resp.GetEvents()), resp.GetNextPageToken(), nil
}

func fromProtoEvents(evs []*prismv1.SeriesEvent) []Event {
	out := make([]Event, len(evs))
	for i, se := range evs {
		ev := se.GetEvent()
		out[i] = Event{
			Time:     ev.GetEventTime().AsTime(),
			ID:       ev.GetEventId(),
			Tags:     ev.GetTags(),
			Payload:  ev.GetPayload(),
			SeriesID: se.GetSeriesId(),
		}
	}
	return out
}
