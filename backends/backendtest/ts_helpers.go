package backendtest

import (
	"cmp"
	"context"
	"fmt"
	"maps"
	"slices"
	"strings"
	"testing"
	"time"

	"google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/types/known/timestamppb"

	prismv1 "github.com/prism-data/prism/proto/prism/v1"
)

// The TimeSeries helpers are prefixed ts where a KeyValue helper has the
// plain name.

// tsBase is the event time the tests count from.
var tsBase = time.Unix(1_700_000_000, 0).UTC()

// at is tsBase plus sec seconds and nanos nanoseconds.
func at(sec, nanos int64) *timestamppb.Timestamp {
	return timestamppb.New(tsBase.Add(time.Duration(sec)*time.Second + time.Duration(nanos)))
}

// event builds an event; tags are key, value pairs.
func event(when *timestamppb.Timestamp, id, payload string, tags ...string) *prismv1.TimeSeriesEvent {
	ev := &prismv1.TimeSeriesEvent{EventTime: when, EventId: []byte(id), Payload: []byte(payload)}
	for i := 0; i+1 < len(tags); i += 2 {
		if ev.Tags == nil {
			ev.Tags = map[string]string{}
		}
		ev.Tags[tags[i]] = tags[i+1]
	}
	return ev
}

// appendTo is the change of seq that appends events to series.
func appendTo(seq uint64, series string, events ...*prismv1.TimeSeriesEvent) *prismv1.TimeSeriesChange {
	return &prismv1.TimeSeriesChange{Seq: seq, Append: &prismv1.TimeSeriesAppend{SeriesId: []byte(series), Events: events}}
}

func tsApply(t testing.TB, b TimeSeriesBackend, through uint64, changes ...*prismv1.TimeSeriesChange) {
	t.Helper()
	if err := b.ApplyTimeSeries(context.Background(), changes, through); err != nil {
		t.Fatalf("ApplyTimeSeries(through %d): %v", through, err)
	}
}

// row is an event with its series as the tests compare it (with
// slices.Equal); strings hold bytes, so they compare bytewise.
type row struct {
	series string
	sec    int64
	nanos  int32
	id     string
	tags   string // sorted k=v pairs, comma-separated
	body   string
}

func (r row) String() string {
	body := r.body
	if len(body) > 32 {
		body = fmt.Sprintf("%.32q…(%d bytes)", body, len(body))
	} else {
		body = fmt.Sprintf("%q", body)
	}
	return fmt.Sprintf("%q@%d.%09d/%q{%.64s}=%s", r.series, r.sec, r.nanos, r.id, r.tags, body)
}

// timeOf is the time of r as a timestamp.
func (r row) timeOf() *timestamppb.Timestamp {
	return &timestamppb.Timestamp{Seconds: r.sec, Nanos: r.nanos}
}

func rowOf(series string, ev *prismv1.TimeSeriesEvent) row {
	var tags []string
	for _, k := range slices.Sorted(maps.Keys(ev.GetTags())) {
		tags = append(tags, k+"="+ev.GetTags()[k])
	}
	return row{
		series: series,
		sec:    ev.GetEventTime().GetSeconds(), nanos: ev.GetEventTime().GetNanos(),
		id: string(ev.GetEventId()), tags: strings.Join(tags, ","), body: string(ev.GetPayload()),
	}
}

func rowsOf(events []*prismv1.SeriesEvent) []row {
	out := make([]row, 0, len(events))
	for _, e := range events {
		out = append(out, rowOf(string(e.GetSeriesId()), e.GetEvent()))
	}
	return out
}

// hasTag reports whether r has the tag k=v.
func (r row) hasTag(k, v string) bool {
	return slices.Contains(strings.Split(r.tags, ","), k+"="+v)
}

// compareRows is Search's order, (time, series, id); within one series it
// is ReadRange's (time, id).
func compareRows(a, b row) int {
	return cmp.Or(cmp.Compare(a.sec, b.sec), cmp.Compare(a.nanos, b.nanos),
		strings.Compare(a.series, b.series), strings.Compare(a.id, b.id))
}

// sortRows returns rows in Search's order, reversed if desc.
func sortRows(rows []row, desc bool) []row {
	rows = slices.Clone(rows)
	slices.SortStableFunc(rows, compareRows)
	if desc {
		slices.Reverse(rows)
	}
	return rows
}

// inRange returns the rows whose time is in [start, end) of r.
func inRange(rows []row, r *prismv1.TimeRange) []row {
	var out []row
	for _, x := range rows {
		if s := r.GetStart(); s != nil && compareTimes(x.timeOf(), s) < 0 {
			continue
		}
		if e := r.GetEnd(); e != nil && compareTimes(x.timeOf(), e) >= 0 {
			continue
		}
		out = append(out, x)
	}
	return out
}

func compareTimes(a, b *timestamppb.Timestamp) int {
	return cmp.Or(cmp.Compare(a.GetSeconds(), b.GetSeconds()), cmp.Compare(a.GetNanos(), b.GetNanos()))
}

// effectivePageSize is the page size a request with size asks for.
func effectivePageSize(size uint32) int {
	if size == 0 {
		return 100
	}
	return int(min(size, 1000))
}

// readAll reads every page of req (from its first page) and returns the
// events and the page count. Every page but the last must be full.
func readAll(t testing.TB, b TimeSeriesBackend, req *prismv1.ReadRangeRequest) ([]row, int) {
	t.Helper()
	req = proto.Clone(req).(*prismv1.ReadRangeRequest)
	req.PageToken = ""
	var rows []row
	for pages := 1; ; pages++ {
		resp, err := b.ReadRange(context.Background(), req)
		if err != nil {
			t.Fatalf("ReadRange(%v): %v", req, err)
		}
		checkPage(t, pages, len(resp.GetEvents()), resp.GetNextPageToken(), req.GetPageSize())
		for _, e := range resp.GetEvents() {
			if string(e.GetSeriesId()) != string(req.GetSeriesId()) {
				t.Fatalf("ReadRange of series %q returned an event of series %q", req.GetSeriesId(), e.GetSeriesId())
			}
		}
		rows = append(rows, rowsOf(resp.GetEvents())...)
		if resp.GetNextPageToken() == "" {
			return rows, pages
		}
		if pages > maxPages {
			t.Fatal("pagination does not end")
		}
		req.PageToken = resp.GetNextPageToken()
	}
}

// searchAll is readAll for Search.
func searchAll(t testing.TB, b TimeSeriesBackend, req *prismv1.SearchRequest) ([]row, int) {
	t.Helper()
	req = proto.Clone(req).(*prismv1.SearchRequest)
	req.PageToken = ""
	var rows []row
	for pages := 1; ; pages++ {
		resp, err := b.Search(context.Background(), req)
		if err != nil {
			t.Fatalf("Search(%v): %v", req, err)
		}
		checkPage(t, pages, len(resp.GetEvents()), resp.GetNextPageToken(), req.GetPageSize())
		rows = append(rows, rowsOf(resp.GetEvents())...)
		if resp.GetNextPageToken() == "" {
			return rows, pages
		}
		if pages > maxPages {
			t.Fatal("pagination does not end")
		}
		req.PageToken = resp.GetNextPageToken()
	}
}

func checkPage(t testing.TB, page, n int, next string, size uint32) {
	t.Helper()
	want := effectivePageSize(size)
	if n > want || next != "" && n != want {
		t.Fatalf("page %d: %d events (next page token %q) with page size %d: want at most %d, and %d unless it is the last page",
			page, n, next, size, want, want)
	}
}

// equalRows reports a difference of got and want.
func equalRows(t testing.TB, what string, got, want []row) {
	t.Helper()
	if slices.Equal(got, want) {
		return
	}
	i := 0
	for i < len(got) && i < len(want) && got[i] == want[i] {
		i++
	}
	const show = 8
	t.Errorf("%s: got %d events, want %d; first difference at %d:\ngot  %v\nwant %v",
		what, len(got), len(want), i, got[i:min(len(got), i+show)], want[i:min(len(want), i+show)])
}

// fill appends n events to series, one a change, in batches of 500 from seq
// first; every third event shares the time of the one before it, and ids
// count down so id order and append order differ. Events alternate the tag
// parity=0 and parity=1. It returns the rows in ascending order.
func fill(t testing.TB, b TimeSeriesBackend, series string, n int, first uint64) []row {
	t.Helper()
	var rows []row
	var batch []*prismv1.TimeSeriesChange
	seq := first
	sec := int64(0)
	for i := range n {
		if i%3 != 2 {
			sec++
		}
		id := fmt.Sprintf("id-%06d", n-i)
		ev := event(at(sec, int64(i%7)*1000), id, "payload "+id, "parity", fmt.Sprint(i%2))
		batch = append(batch, appendTo(seq, series, ev))
		rows = append(rows, rowOf(series, ev))
		seq++
		if len(batch) == 500 || i == n-1 {
			tsApply(t, b, seq-1, batch...)
			batch = batch[:0]
		}
	}
	return sortRows(rows, false)
}

// ids returns the event ids of rows.
func ids(rows []row) []string {
	out := make([]string, 0, len(rows))
	for _, r := range rows {
		out = append(out, r.id)
	}
	return out
}
