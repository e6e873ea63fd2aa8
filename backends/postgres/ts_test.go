package postgres_test

import (
	"bytes"
	"context"
	"encoding/base64"
	"errors"
	"fmt"
	"maps"
	"slices"
	"sort"
	"strings"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"
	"google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/types/known/timestamppb"

	"github.com/prism-data/prism/backends/postgres"
	prismv1 "github.com/prism-data/prism/proto/prism/v1"
)

// The helpers of this file are prefixed ts so they stay independent of the
// KeyValue test helpers.

// tsBase is the event time the tests count from.
var tsBase = time.Unix(1_700_000_000, 0).UTC()

func tsOpen(t testing.TB) *postgres.Store {
	t.Helper()
	return openStore(t, newNamespace(t))
}

// tsAt is tsBase plus sec seconds and nanos nanoseconds.
func tsAt(sec int64, nanos int64) *timestamppb.Timestamp {
	return timestamppb.New(tsBase.Add(time.Duration(sec)*time.Second + time.Duration(nanos)))
}

// tsEvent builds an event; tags are key, value pairs.
func tsEvent(at *timestamppb.Timestamp, id, payload string, tags ...string) *prismv1.TimeSeriesEvent {
	ev := &prismv1.TimeSeriesEvent{EventTime: at, EventId: []byte(id), Payload: []byte(payload)}
	for i := 0; i+1 < len(tags); i += 2 {
		if ev.Tags == nil {
			ev.Tags = map[string]string{}
		}
		ev.Tags[tags[i]] = tags[i+1]
	}
	return ev
}

func tsAppend(seq uint64, series string, events ...*prismv1.TimeSeriesEvent) *prismv1.TimeSeriesChange {
	return &prismv1.TimeSeriesChange{Seq: seq, Append: &prismv1.TimeSeriesAppend{SeriesId: []byte(series), Events: events}}
}

func tsApply(t testing.TB, s *postgres.Store, through uint64, changes ...*prismv1.TimeSeriesChange) {
	t.Helper()
	if err := s.ApplyTimeSeries(context.Background(), changes, through); err != nil {
		t.Fatalf("ApplyTimeSeries(through %d): %v", through, err)
	}
}

func tsCheckpoint(t testing.TB, s *postgres.Store) uint64 {
	t.Helper()
	cp, err := s.Checkpoint(context.Background())
	if err != nil {
		t.Fatalf("Checkpoint: %v", err)
	}
	return cp
}

// tsRow is an event as the tests compare it.
type tsRow struct {
	series string
	sec    int64
	nanos  int32
	id     string
	tags   string // sorted k=v pairs
	body   string
}

func (r tsRow) String() string {
	return fmt.Sprintf("%q@%d.%09d/%q{%s}=%q", r.series, r.sec, r.nanos, r.id, r.tags, r.body)
}

func tsRowOf(series string, ev *prismv1.TimeSeriesEvent) tsRow {
	var tags []string
	for _, k := range slices.Sorted(maps.Keys(ev.GetTags())) {
		tags = append(tags, k+"="+ev.GetTags()[k])
	}
	return tsRow{
		series: series,
		sec:    ev.GetEventTime().GetSeconds(), nanos: ev.GetEventTime().GetNanos(),
		id: string(ev.GetEventId()), tags: strings.Join(tags, ","), body: string(ev.GetPayload()),
	}
}

func tsRows(events []*prismv1.SeriesEvent) []tsRow {
	out := make([]tsRow, 0, len(events))
	for _, e := range events {
		out = append(out, tsRowOf(string(e.GetSeriesId()), e.GetEvent()))
	}
	return out
}

// tsSort orders rows like Search: (time, series, id), reversed if desc.
// Within one series it is ReadRange's (time, id) order.
func tsSort(rows []tsRow, desc bool) []tsRow {
	rows = slices.Clone(rows)
	sort.SliceStable(rows, func(i, j int) bool {
		a, b := rows[i], rows[j]
		less := a.sec < b.sec ||
			a.sec == b.sec && (a.nanos < b.nanos ||
				a.nanos == b.nanos && (a.series < b.series ||
					a.series == b.series && a.id < b.id))
		if desc {
			less = b.sec < a.sec ||
				b.sec == a.sec && (b.nanos < a.nanos ||
					b.nanos == a.nanos && (b.series < a.series ||
						b.series == a.series && b.id < a.id))
		}
		return less
	})
	return rows
}

// tsReadAll reads every page of req and returns the events and page count.
func tsReadAll(t testing.TB, s *postgres.Store, req *prismv1.ReadRangeRequest) ([]tsRow, int) {
	t.Helper()
	req = proto.Clone(req).(*prismv1.ReadRangeRequest)
	var rows []tsRow
	for pages := 1; ; pages++ {
		resp, err := s.ReadRange(context.Background(), req)
		if err != nil {
			t.Fatalf("ReadRange(%v): %v", req, err)
		}
		size := int(req.GetPageSize())
		if size == 0 {
			size = 100
		}
		if n := len(resp.GetEvents()); resp.GetNextPageToken() != "" && n != min(size, 1000) {
			t.Fatalf("page %d: %d events with a next page token (page size %d)", pages, n, req.GetPageSize())
		}
		rows = append(rows, tsRows(resp.GetEvents())...)
		if resp.GetNextPageToken() == "" {
			return rows, pages
		}
		if pages > 100000 {
			t.Fatal("pagination does not end")
		}
		req.PageToken = resp.GetNextPageToken()
	}
}

func tsSearchAll(t testing.TB, s *postgres.Store, req *prismv1.SearchRequest) ([]tsRow, int) {
	t.Helper()
	req = proto.Clone(req).(*prismv1.SearchRequest)
	var rows []tsRow
	for pages := 1; ; pages++ {
		resp, err := s.Search(context.Background(), req)
		if err != nil {
			t.Fatalf("Search(%v): %v", req, err)
		}
		rows = append(rows, tsRows(resp.GetEvents())...)
		if resp.GetNextPageToken() == "" {
			return rows, pages
		}
		if pages > 100000 {
			t.Fatal("pagination does not end")
		}
		req.PageToken = resp.GetNextPageToken()
	}
}

func tsEqual(t testing.TB, what string, got, want []tsRow) {
	t.Helper()
	if !slices.Equal(got, want) {
		t.Errorf("%s: got %d events, want %d\ngot  %v\nwant %v", what, len(got), len(want), got, want)
	}
}

func TestReadRangeEdges(t *testing.T) {
	s := tsOpen(t)
	// Two series; s1 has events at seconds 0..4, two of them at second 2.
	tsApply(t, s, 2,
		tsAppend(1, "s1",
			tsEvent(tsAt(3, 0), "d", "3"),
			tsEvent(tsAt(0, 0), "a", "0"),
			tsEvent(tsAt(2, 0), "c2", "2b"),
			tsEvent(tsAt(1, 0), "b", "1"),
			tsEvent(tsAt(2, 0), "c1", "2a"),
			tsEvent(tsAt(4, 0), "e", "4"),
		),
		tsAppend(2, "s2", tsEvent(tsAt(2, 0), "x", "other series")),
	)
	row := func(sec int64, id, body string) tsRow {
		return tsRow{series: "s1", sec: tsAt(sec, 0).GetSeconds(), id: id, body: body}
	}
	all := []tsRow{row(0, "a", "0"), row(1, "b", "1"), row(2, "c1", "2a"), row(2, "c2", "2b"), row(3, "d", "3"), row(4, "e", "4")}

	tests := []struct {
		name string
		r    *prismv1.TimeRange
		want []tsRow
	}{
		{"no range", nil, all},
		{"both bounds unset", &prismv1.TimeRange{}, all},
		{"start inclusive, end exclusive", &prismv1.TimeRange{Start: tsAt(1, 0), End: tsAt(3, 0)}, all[1:4]},
		{"unset start", &prismv1.TimeRange{End: tsAt(2, 0)}, all[:2]},
		{"unset end", &prismv1.TimeRange{Start: tsAt(2, 0)}, all[2:]},
		{"one nanosecond after an event", &prismv1.TimeRange{Start: tsAt(2, 1), End: tsAt(4, 1)}, all[4:]},
		{"end one nanosecond after", &prismv1.TimeRange{Start: tsAt(2, 0), End: tsAt(2, 1)}, all[2:4]},
		{"empty range", &prismv1.TimeRange{Start: tsAt(2, 0), End: tsAt(2, 0)}, nil},
		{"inverted range", &prismv1.TimeRange{Start: tsAt(3, 0), End: tsAt(1, 0)}, nil},
		{"before every event", &prismv1.TimeRange{End: tsAt(0, 0)}, nil},
		{"after every event", &prismv1.TimeRange{Start: tsAt(4, 1)}, nil},
	}
	for _, tt := range tests {
		for _, desc := range []bool{false, true} {
			t.Run(fmt.Sprintf("%s/desc=%v", tt.name, desc), func(t *testing.T) {
				got, _ := tsReadAll(t, s, &prismv1.ReadRangeRequest{SeriesId: []byte("s1"), Range: tt.r, Descending: desc})
				want := slices.Clone(tt.want)
				if desc {
					slices.Reverse(want)
				}
				tsEqual(t, "events", got, want)
			})
		}
	}
}

func TestReadRangeEqualTimestampsOrderedByEventID(t *testing.T) {
	s := tsOpen(t)
	at := tsAt(7, 123)
	// Byte order, not insertion order: "\x00" < "a" < "a\x00" < "b" < "\xff".
	ids := []string{"b", "\xff", "a\x00", "a", "\x00"}
	var evs []*prismv1.TimeSeriesEvent
	for _, id := range ids {
		evs = append(evs, tsEvent(at, id, "p"+id))
	}
	tsApply(t, s, 1, tsAppend(1, "s", evs...))
	want := []tsRow{}
	for _, id := range []string{"\x00", "a", "a\x00", "b", "\xff"} {
		want = append(want, tsRow{series: "s", sec: at.GetSeconds(), nanos: at.GetNanos(), id: id, body: "p" + id})
	}
	for _, size := range []uint32{0, 1, 2} {
		got, _ := tsReadAll(t, s, &prismv1.ReadRangeRequest{SeriesId: []byte("s"), PageSize: size})
		tsEqual(t, fmt.Sprintf("ascending, page size %d", size), got, want)
		got, _ = tsReadAll(t, s, &prismv1.ReadRangeRequest{SeriesId: []byte("s"), PageSize: size, Descending: true})
		rev := slices.Clone(want)
		slices.Reverse(rev)
		tsEqual(t, fmt.Sprintf("descending, page size %d", size), got, rev)
	}
}

// tsFill appends n events to series in batches of 500 from seq first; every
// third event shares the time of the one before it. It returns the rows in
// ascending order.
func tsFill(t testing.TB, s *postgres.Store, series string, n int, first uint64) []tsRow {
	t.Helper()
	var rows []tsRow
	var batch []*prismv1.TimeSeriesChange
	seq := first
	sec := int64(0)
	for i := range n {
		if i%3 != 2 {
			sec++
		}
		at := tsAt(sec, int64(i%7)*1000)
		// Ids count down so that id order and insertion order differ.
		id := fmt.Sprintf("id-%06d", n-i)
		ev := tsEvent(at, id, "payload "+id, "parity", fmt.Sprint(i%2))
		batch = append(batch, tsAppend(seq, series, ev))
		rows = append(rows, tsRowOf(series, ev))
		seq++
		if len(batch) == 500 || i == n-1 {
			tsApply(t, s, seq-1, batch...)
			batch = batch[:0]
		}
	}
	return tsSort(rows, false)
}

func TestReadRangePagination(t *testing.T) {
	s := tsOpen(t)
	want := tsFill(t, s, "big", 2500, 1)
	tsFill(t, s, "other", 10, 10_000)
	if len(want) != 2500 {
		t.Fatalf("filled %d events", len(want))
	}
	tests := []struct {
		name      string
		size      uint32
		wantPages int
	}{
		{"page size 1000", 1000, 3},
		{"page size 7", 7, 358},
		{"default page size", 0, 25},
		{"page size capped at 1000", 5000, 3},
	}
	for _, tt := range tests {
		for _, desc := range []bool{false, true} {
			t.Run(fmt.Sprintf("%s/desc=%v", tt.name, desc), func(t *testing.T) {
				got, pages := tsReadAll(t, s, &prismv1.ReadRangeRequest{SeriesId: []byte("big"), PageSize: tt.size, Descending: desc})
				tsEqual(t, "concatenated pages", got, tsSort(want, desc))
				if pages != tt.wantPages {
					t.Errorf("%d pages, want %d", pages, tt.wantPages)
				}
			})
		}
	}

	// Pages of a range: the token never leaves the range.
	r := &prismv1.TimeRange{Start: tsAt(100, 0), End: tsAt(200, 0)}
	var inRange []tsRow
	for _, row := range want {
		if row.sec >= tsAt(100, 0).GetSeconds() && row.sec < tsAt(200, 0).GetSeconds() {
			inRange = append(inRange, row)
		}
	}
	for _, desc := range []bool{false, true} {
		got, _ := tsReadAll(t, s, &prismv1.ReadRangeRequest{SeriesId: []byte("big"), Range: r, PageSize: 7, Descending: desc})
		tsEqual(t, fmt.Sprintf("range pages desc=%v", desc), got, tsSort(inRange, desc))
	}
}

func TestApplyTimeSeriesIdempotent(t *testing.T) {
	s := tsOpen(t)
	at := tsAt(1, 5)
	// Within one batch and across batches, the first write of an identity
	// wins: payload and tags.
	tsApply(t, s, 2,
		tsAppend(1, "s", tsEvent(at, "e", "first", "k", "v1")),
		tsAppend(2, "s", tsEvent(at, "e", "second", "k", "v2"), tsEvent(at, "f", "other id")),
	)
	tsApply(t, s, 3, tsAppend(3, "s", tsEvent(at, "e", "third", "k", "v3", "x", "y")))
	// Same id at another time, or in another series, is another event.
	tsApply(t, s, 4, tsAppend(4, "s", tsEvent(tsAt(1, 6), "e", "later")))
	tsApply(t, s, 5, tsAppend(5, "t", tsEvent(at, "e", "series t")))

	got, _ := tsReadAll(t, s, &prismv1.ReadRangeRequest{SeriesId: []byte("s")})
	want := []tsRow{
		{series: "s", sec: at.GetSeconds(), nanos: 5, id: "e", tags: "k=v1", body: "first"},
		{series: "s", sec: at.GetSeconds(), nanos: 5, id: "f", body: "other id"},
		{series: "s", sec: at.GetSeconds(), nanos: 6, id: "e", body: "later"},
	}
	tsEqual(t, "series s", got, want)

	// The tags of the later writes are not indexed.
	for _, tag := range [][2]string{{"k", "v2"}, {"k", "v3"}, {"x", "y"}} {
		got, _ := tsSearchAll(t, s, &prismv1.SearchRequest{Tags: map[string]string{tag[0]: tag[1]}})
		tsEqual(t, "search "+tag[0]+"="+tag[1], got, nil)
	}
	got, _ = tsSearchAll(t, s, &prismv1.SearchRequest{Tags: map[string]string{"k": "v1"}})
	tsEqual(t, "search k=v1", got, want[:1])
	if n := tsCount(t, s, "ts_tags"); n != 1 {
		t.Errorf("%d tag rows, want 1", n)
	}
}

func TestApplyTimeSeriesReplay(t *testing.T) {
	s := tsOpen(t)
	batch := []*prismv1.TimeSeriesChange{
		tsAppend(3, "s", tsEvent(tsAt(1, 0), "a", "a1", "k", "v")),
		tsAppend(5, "s", tsEvent(tsAt(2, 0), "b", "b1", "k", "v")),
	}
	tsApply(t, s, 6, batch...)
	before, _ := tsReadAll(t, s, &prismv1.ReadRangeRequest{SeriesId: []byte("s")})
	if len(before) != 2 {
		t.Fatalf("%d events after the first apply, want 2", len(before))
	}

	// The same batch again, and a batch overlapping the checkpoint whose
	// old changes now carry other events: only seq 7 is applied.
	tsApply(t, s, 6, batch...)
	tsApply(t, s, 7,
		tsAppend(5, "s", tsEvent(tsAt(9, 0), "skipped", "old seq")),
		tsAppend(7, "s", tsEvent(tsAt(3, 0), "c", "c1")),
	)
	// A batch entirely at or below the checkpoint changes nothing, not
	// even the checkpoint.
	tsApply(t, s, 4, tsAppend(4, "s", tsEvent(tsAt(9, 0), "skipped", "old batch")))

	got, _ := tsReadAll(t, s, &prismv1.ReadRangeRequest{SeriesId: []byte("s")})
	want := append(slices.Clone(before), tsRow{series: "s", sec: tsAt(3, 0).GetSeconds(), id: "c", body: "c1"})
	tsEqual(t, "events", got, want)
	if cp := tsCheckpoint(t, s); cp != 7 {
		t.Errorf("checkpoint %d, want 7", cp)
	}
	if n := tsCount(t, s, "ts_tags"); n != 2 {
		t.Errorf("%d tag rows, want 2", n)
	}

	// An empty batch only moves the checkpoint.
	tsApply(t, s, 9)
	if cp := tsCheckpoint(t, s); cp != 9 {
		t.Errorf("checkpoint %d after an empty batch, want 9", cp)
	}
}

func TestTimeSeriesSharesCheckpointWithKeyValue(t *testing.T) {
	s := tsOpen(t)
	ctx := context.Background()
	kvPut := func(seq uint64) *prismv1.KeyValueChange {
		return &prismv1.KeyValueChange{Seq: seq, Event: &prismv1.KeyValueEvent{
			Id: []byte("r"),
			Change: &prismv1.KeyValueEvent_Put{Put: &prismv1.KeyValuePut{
				Items: []*prismv1.Item{{Key: []byte("k"), Value: []byte(fmt.Sprint(seq))}},
			}},
		}}
	}
	if err := s.ApplyKeyValue(ctx, []*prismv1.KeyValueChange{kvPut(5)}, 5); err != nil {
		t.Fatal(err)
	}
	// Seq 4 is behind the KeyValue checkpoint: skipped.
	tsApply(t, s, 6, tsAppend(4, "s", tsEvent(tsAt(0, 0), "old", "")), tsAppend(6, "s", tsEvent(tsAt(1, 0), "new", "")))
	if cp := tsCheckpoint(t, s); cp != 6 {
		t.Errorf("checkpoint %d, want 6", cp)
	}
	got, _ := tsReadAll(t, s, &prismv1.ReadRangeRequest{SeriesId: []byte("s")})
	tsEqual(t, "events", got, []tsRow{{series: "s", sec: tsAt(1, 0).GetSeconds(), id: "new"}})

	// And the KeyValue side skips what the TimeSeries side reached.
	if err := s.ApplyKeyValue(ctx, []*prismv1.KeyValueChange{kvPut(6)}, 6); err != nil {
		t.Fatal(err)
	}
	resp, err := s.GetItems(ctx, &prismv1.GetRequest{Id: []byte("r")})
	if err != nil {
		t.Fatal(err)
	}
	if resp.GetRevision() != 5 || string(resp.GetItems()[0].GetValue()) != "5" {
		t.Errorf("record after a KeyValue batch behind the checkpoint: revision %d, items %v; want revision 5, value 5", resp.GetRevision(), resp.GetItems())
	}
}

func TestSearch(t *testing.T) {
	s := tsOpen(t)
	var all []tsRow
	var changes []*prismv1.TimeSeriesChange
	seq := uint64(0)
	// Three series interleaved in time, with tags host (h0..h2), zone
	// (z0, z1) and, on some, "only-a".
	for i := range 90 {
		series := fmt.Sprintf("series-%d", i%3)
		tags := []string{"host", fmt.Sprintf("h%d", i%7%3), "zone", fmt.Sprintf("z%d", i%2)}
		if series == "series-0" && i%5 == 0 {
			tags = append(tags, "only-a", "yes")
		}
		// Pairs of events share a time across series.
		ev := tsEvent(tsAt(int64(i/2), 0), fmt.Sprintf("e%02d", 90-i), fmt.Sprint(i), tags...)
		seq++
		changes = append(changes, tsAppend(seq, series, ev))
		all = append(all, tsRowOf(series, ev))
	}
	tsApply(t, s, seq, changes...)

	match := func(series string, tags map[string]string, r *prismv1.TimeRange) []tsRow {
		var out []tsRow
		for _, row := range all {
			if series != "" && row.series != series {
				continue
			}
			ok := true
			for k, v := range tags {
				ok = ok && slices.Contains(strings.Split(row.tags, ","), k+"="+v)
			}
			if r != nil && (r.GetStart() != nil && row.sec < r.GetStart().GetSeconds() || r.GetEnd() != nil && row.sec >= r.GetEnd().GetSeconds()) {
				ok = false
			}
			if ok {
				out = append(out, row)
			}
		}
		return out
	}

	window := &prismv1.TimeRange{Start: tsAt(10, 0), End: tsAt(30, 0)}
	tests := []struct {
		name      string
		series    string
		tags      map[string]string
		r         *prismv1.TimeRange
		wantCount int
	}{
		{"no tags, all series", "", nil, nil, 90},
		{"no tags, one series", "series-1", nil, nil, 30},
		{"no tags, range", "", nil, window, 40},
		{"one tag, all series", "", map[string]string{"zone": "z0"}, nil, 45},
		{"one tag, one series", "series-0", map[string]string{"zone": "z0"}, nil, 15},
		{"one tag, range", "", map[string]string{"host": "h1"}, window, -1},
		{"two tags, all series", "", map[string]string{"zone": "z1", "host": "h2"}, nil, -1},
		{"two tags, one series", "series-2", map[string]string{"zone": "z1", "host": "h2"}, nil, -1},
		{"two tags, range", "", map[string]string{"zone": "z0", "host": "h0"}, window, -1},
		{"three tags", "", map[string]string{"zone": "z0", "host": "h0", "only-a": "yes"}, nil, -1},
		{"rare tag", "", map[string]string{"only-a": "yes"}, nil, 6},
		{"no match, unknown value", "", map[string]string{"zone": "z9"}, nil, 0},
		{"no match, disjoint tags", "series-1", map[string]string{"only-a": "yes"}, nil, 0},
		{"no match, unknown series", "series-9", map[string]string{"zone": "z0"}, nil, 0},
		{"no match, empty range", "", map[string]string{"zone": "z0"}, &prismv1.TimeRange{Start: tsAt(5, 0), End: tsAt(5, 0)}, 0},
	}
	for _, tt := range tests {
		for _, desc := range []bool{false, true} {
			for _, size := range []uint32{0, 4} {
				t.Run(fmt.Sprintf("%s/desc=%v/page=%d", tt.name, desc, size), func(t *testing.T) {
					want := tsSort(match(tt.series, tt.tags, tt.r), desc)
					if tt.wantCount >= 0 && len(want) != tt.wantCount {
						t.Fatalf("test data: %d matching events, want %d", len(want), tt.wantCount)
					}
					if tt.wantCount < 0 && len(want) == 0 {
						t.Fatal("test data: no matching events")
					}
					got, pages := tsSearchAll(t, s, &prismv1.SearchRequest{
						SeriesId: []byte(tt.series), Tags: tt.tags, Range: tt.r, Descending: desc, PageSize: size,
					})
					tsEqual(t, "events", got, want)
					if size == 4 && pages != max(1, (len(want)+3)/4) {
						t.Errorf("%d pages of 4 for %d events", pages, len(want))
					}
				})
			}
		}
	}
}

func TestSweepOlderThan(t *testing.T) {
	s := tsOpen(t)
	ctx := context.Background()
	pre1970 := timestamppb.New(time.Date(1969, 7, 20, 20, 17, 40, 123456789, time.UTC))
	tsApply(t, s, 2,
		tsAppend(1, "s", tsEvent(pre1970, "moon", "", "k", "v")),
		tsAppend(2, "s", tsEvent(tsAt(10, 0), "keep-exact", "", "k", "v"), tsEvent(tsAt(9, 999_999_999), "drop-last", "", "k", "v", "k2", "v2")),
	)
	// 2500 old events in another series: the sweep works in chunks.
	old := tsFill(t, s, "old", 2500, 3)
	tsApply(t, s, 3000, tsAppend(3000, "new", tsEvent(tsAt(5000, 0), "n", "", "k", "v")))
	if last := old[len(old)-1]; last.sec >= tsAt(10, 0).GetSeconds()+2000 {
		t.Fatalf("test data: old events reach %d", last.sec)
	}
	tagsBefore := tsCount(t, s, "ts_tags")

	n, err := s.SweepOlderThan(ctx, tsAt(10, 0).AsTime())
	if err != nil {
		t.Fatal(err)
	}
	// "old" starts at tsBase+1s: the events of its first 9 seconds go.
	var oldGone int
	for _, row := range old {
		if row.sec < tsAt(10, 0).GetSeconds() {
			oldGone++
		}
	}
	if want := int64(2 + oldGone); n != want {
		t.Errorf("swept %d events, want %d", n, want)
	}
	got, _ := tsReadAll(t, s, &prismv1.ReadRangeRequest{SeriesId: []byte("s")})
	tsEqual(t, "series s", got, []tsRow{{series: "s", sec: tsAt(10, 0).GetSeconds(), id: "keep-exact", tags: "k=v"}})
	if n := tsCount(t, s, "ts_tags"); n != tagsBefore-int(3+oldGone) {
		t.Errorf("%d tag rows left, want %d", n, tagsBefore-int(3+oldGone))
	}
	got, _ = tsSearchAll(t, s, &prismv1.SearchRequest{Tags: map[string]string{"k2": "v2"}})
	tsEqual(t, "search of a swept tag", got, nil)

	// Everything but "new" in chunks of at most 1000.
	n, err = s.SweepOlderThan(ctx, tsAt(4000, 0).AsTime())
	if err != nil {
		t.Fatal(err)
	}
	if want := int64(2500 - oldGone + 1); n != want {
		t.Errorf("second sweep: %d events, want %d", n, want)
	}
	if got := tsCount(t, s, "ts_events"); got != 1 {
		t.Errorf("%d events left, want 1", got)
	}
	if got := tsCount(t, s, "ts_tags"); got != 1 {
		t.Errorf("%d tag rows left, want 1", got)
	}
	if n, err := s.SweepOlderThan(ctx, tsAt(4000, 0).AsTime()); err != nil || n != 0 {
		t.Errorf("sweep again: %d, %v; want 0, nil", n, err)
	}
	if cp := tsCheckpoint(t, s); cp != 3000 {
		t.Errorf("checkpoint %d after sweeps, want 3000", cp)
	}
}

func TestApplyTimeSeriesInvalid(t *testing.T) {
	good := tsAppend(1, "s", tsEvent(tsAt(0, 0), "ok", "stored only if the batch is valid"))
	bad := func(seq uint64, mutate func(c *prismv1.TimeSeriesChange)) *prismv1.TimeSeriesChange {
		c := tsAppend(seq, "s", tsEvent(tsAt(1, 0), "id", ""))
		mutate(c)
		return c
	}
	tests := []struct {
		name      string
		change    *prismv1.TimeSeriesChange
		through   uint64
		wantErr   error
		wantIndex int
	}{
		{"nil change", nil, 2, postgres.ErrInvalidChange, 1},
		{"nil append", bad(2, func(c *prismv1.TimeSeriesChange) { c.Append = nil }), 2, postgres.ErrInvalidChange, 1},
		{"empty series id", bad(2, func(c *prismv1.TimeSeriesChange) { c.Append.SeriesId = nil }), 2, postgres.ErrInvalidChange, 1},
		{"nil event", bad(2, func(c *prismv1.TimeSeriesChange) { c.Append.Events = append(c.Append.Events, nil) }), 2, postgres.ErrInvalidChange, 1},
		{"no event time", bad(2, func(c *prismv1.TimeSeriesChange) { c.Append.Events[0].EventTime = nil }), 2, postgres.ErrInvalidChange, 1},
		{"invalid event time", bad(2, func(c *prismv1.TimeSeriesChange) {
			c.Append.Events[0].EventTime = &timestamppb.Timestamp{Nanos: 1e9}
		}), 2, postgres.ErrInvalidChange, 1},
		{"event time after 9999", bad(2, func(c *prismv1.TimeSeriesChange) {
			c.Append.Events[0].EventTime = &timestamppb.Timestamp{Seconds: 253402300800}
		}), 2, postgres.ErrInvalidChange, 1},
		{"empty event id", bad(2, func(c *prismv1.TimeSeriesChange) { c.Append.Events[0].EventId = nil }), 2, postgres.ErrInvalidChange, 1},
		{"event id of 257 bytes", bad(2, func(c *prismv1.TimeSeriesChange) {
			c.Append.Events[0].EventId = bytes.Repeat([]byte{'x'}, 257)
		}), 2, postgres.ErrInvalidChange, 1},
		{"seq 0", bad(0, func(*prismv1.TimeSeriesChange) {}), 2, postgres.ErrInvalidBatch, -1},
		{"seq not increasing", bad(1, func(*prismv1.TimeSeriesChange) {}), 2, postgres.ErrInvalidBatch, -1},
		{"seq above through", bad(3, func(*prismv1.TimeSeriesChange) {}), 2, postgres.ErrInvalidBatch, -1},
		{"through above int64", bad(2, func(*prismv1.TimeSeriesChange) {}), 1 << 63, postgres.ErrInvalidBatch, -1},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			s := tsOpen(t)
			err := s.ApplyTimeSeries(context.Background(), []*prismv1.TimeSeriesChange{good, tt.change}, tt.through)
			if !errors.Is(err, tt.wantErr) {
				t.Fatalf("err = %v, want %v", err, tt.wantErr)
			}
			var ice *postgres.InvalidChangeError
			if isChange := errors.As(err, &ice); isChange != (tt.wantIndex >= 0) {
				t.Errorf("errors.As(*InvalidChangeError) = %v for %v", isChange, err)
			} else if isChange && (ice.Index != tt.wantIndex || !ice.Permanent()) {
				t.Errorf("InvalidChangeError index %d permanent %v, want %d true", ice.Index, ice.Permanent(), tt.wantIndex)
			}
			if n := tsCount(t, s, "ts_events"); n != 0 {
				t.Errorf("%d events stored, want none", n)
			}
			if cp := tsCheckpoint(t, s); cp != 0 {
				t.Errorf("checkpoint %d, want 0", cp)
			}
		})
	}
	t.Run("event id of 256 bytes is valid", func(t *testing.T) {
		s := tsOpen(t)
		id := strings.Repeat("x", 256)
		tsApply(t, s, 1, tsAppend(1, "s", tsEvent(tsAt(0, 0), id, "")))
		resp, err := s.ReadRange(context.Background(), &prismv1.ReadRangeRequest{SeriesId: []byte("s"), PageSize: 1})
		if err != nil || len(resp.GetEvents()) != 1 || string(resp.GetEvents()[0].GetEvent().GetEventId()) != id {
			t.Fatalf("ReadRange = %v, %v; want the event", resp, err)
		}
	})
}

func TestTimeSeriesReadErrors(t *testing.T) {
	s := tsOpen(t)
	ctx := context.Background()
	tsApply(t, s, 1, tsAppend(1, "s", tsEvent(tsAt(0, 0), "a", ""), tsEvent(tsAt(1, 0), "b", "")))
	first, err := s.ReadRange(ctx, &prismv1.ReadRangeRequest{SeriesId: []byte("s"), PageSize: 1})
	if err != nil || first.GetNextPageToken() == "" {
		t.Fatalf("ReadRange: %v, %v", first, err)
	}
	searchFirst, err := s.Search(ctx, &prismv1.SearchRequest{SeriesId: []byte("s"), PageSize: 1})
	if err != nil || searchFirst.GetNextPageToken() == "" {
		t.Fatalf("Search: %v, %v", searchFirst, err)
	}
	enc := base64.RawURLEncoding.EncodeToString
	badTokens := map[string]string{
		"not base64":       "!!!",
		"padded base64":    enc([]byte("r")) + "==",
		"too short":        enc([]byte("r1234")),
		"unknown kind":     enc(append([]byte("x"), make([]byte, 13)...)),
		"no event id":      enc(append([]byte("r"), make([]byte, 12)...)),
		"nanos too large":  enc(append(append([]byte("r"), 0, 0, 0, 0, 0, 0, 0, 0, 0x3b, 0x9a, 0xca, 0x00), 'a')),
		"search token":     searchFirst.GetNextPageToken(),
		"key-value token":  enc([]byte("some-key")),
		"event id too big": enc(append(append([]byte("r"), make([]byte, 12)...), bytes.Repeat([]byte{'a'}, 257)...)),
	}
	for name, token := range badTokens {
		t.Run("ReadRange/"+name, func(t *testing.T) {
			_, err := s.ReadRange(ctx, &prismv1.ReadRangeRequest{SeriesId: []byte("s"), PageToken: token})
			if !errors.Is(err, postgres.ErrInvalidPageToken) {
				t.Errorf("err = %v, want ErrInvalidPageToken", err)
			}
		})
	}
	for name, token := range map[string]string{
		"range token":           first.GetNextPageToken(),
		"not base64":            "%%",
		"token of other series": mustSearchToken(t, s, "t"),
	} {
		t.Run("Search/"+name, func(t *testing.T) {
			_, err := s.Search(ctx, &prismv1.SearchRequest{SeriesId: []byte("s"), PageToken: token})
			if !errors.Is(err, postgres.ErrInvalidPageToken) {
				t.Errorf("err = %v, want ErrInvalidPageToken", err)
			}
		})
	}

	invalid := &timestamppb.Timestamp{Nanos: -1}
	for name, req := range map[string]*prismv1.ReadRangeRequest{
		"nil request":   nil,
		"empty series":  {},
		"invalid start": {SeriesId: []byte("s"), Range: &prismv1.TimeRange{Start: invalid}},
		"invalid end":   {SeriesId: []byte("s"), Range: &prismv1.TimeRange{End: invalid}},
	} {
		t.Run("ReadRange/"+name, func(t *testing.T) {
			if _, err := s.ReadRange(ctx, req); !errors.Is(err, postgres.ErrInvalidRequest) {
				t.Errorf("err = %v, want ErrInvalidRequest", err)
			}
		})
	}
	tooMany := map[string]string{}
	for i := range 65 {
		tooMany[fmt.Sprint(i)] = "v"
	}
	for name, req := range map[string]*prismv1.SearchRequest{
		"nil request":   nil,
		"invalid range": {Range: &prismv1.TimeRange{Start: invalid}},
		"65 tags":       {Tags: tooMany},
	} {
		t.Run("Search/"+name, func(t *testing.T) {
			if _, err := s.Search(ctx, req); !errors.Is(err, postgres.ErrInvalidRequest) {
				t.Errorf("err = %v, want ErrInvalidRequest", err)
			}
		})
	}

	// The token of a page stays valid: the second page is "b".
	resp, err := s.ReadRange(ctx, &prismv1.ReadRangeRequest{SeriesId: []byte("s"), PageToken: first.GetNextPageToken()})
	if err != nil || len(resp.GetEvents()) != 1 || string(resp.GetEvents()[0].GetEvent().GetEventId()) != "b" {
		t.Errorf("second page: %v, %v; want event b", resp, err)
	}

	if err := s.Close(); err != nil {
		t.Fatal(err)
	}
	if _, err := s.ReadRange(ctx, &prismv1.ReadRangeRequest{SeriesId: []byte("s")}); !errors.Is(err, postgres.ErrClosed) {
		t.Errorf("ReadRange after Close: %v, want ErrClosed", err)
	}
	if _, err := s.Search(ctx, &prismv1.SearchRequest{}); !errors.Is(err, postgres.ErrClosed) {
		t.Errorf("Search after Close: %v, want ErrClosed", err)
	}
	if err := s.ApplyTimeSeries(ctx, nil, 5); !errors.Is(err, postgres.ErrClosed) {
		t.Errorf("ApplyTimeSeries after Close: %v, want ErrClosed", err)
	}
	if _, err := s.SweepOlderThan(ctx, time.Now()); !errors.Is(err, postgres.ErrClosed) {
		t.Errorf("SweepOlderThan after Close: %v, want ErrClosed", err)
	}
}

// mustSearchToken returns a next page token of a Search of series, which
// gets two events for it.
func mustSearchToken(t testing.TB, s *postgres.Store, series string) string {
	t.Helper()
	cp := tsCheckpoint(t, s)
	tsApply(t, s, cp+1, tsAppend(cp+1, series, tsEvent(tsAt(0, 0), "a", ""), tsEvent(tsAt(1, 0), "b", "")))
	resp, err := s.Search(context.Background(), &prismv1.SearchRequest{SeriesId: []byte(series), PageSize: 1})
	if err != nil || resp.GetNextPageToken() == "" {
		t.Fatalf("Search: %v, %v", resp, err)
	}
	return resp.GetNextPageToken()
}

func TestTimeSeriesTimesRoundTrip(t *testing.T) {
	s := tsOpen(t)
	times := []*timestamppb.Timestamp{
		{Seconds: -62135596800, Nanos: 0}, // 0001-01-01, the first valid time
		{Seconds: -86400*365*100 - 1, Nanos: 999_999_999},
		{Seconds: -1, Nanos: 1},           // 1969-12-31T23:59:59.000000001
		{Seconds: -1, Nanos: 999_999_999}, // one nanosecond before 1970
		{Seconds: 0, Nanos: 0},
		{Seconds: 0, Nanos: 1},
		{Seconds: 1_700_000_000, Nanos: 123_456_789},
		{Seconds: 9_300_000_000, Nanos: 5},          // after 2262, past int64 nanoseconds
		{Seconds: 253402300799, Nanos: 999_999_999}, // 9999-12-31T23:59:59.999999999
	}
	var evs []*prismv1.TimeSeriesEvent
	for i, ts := range slices.Backward(times) {
		evs = append(evs, tsEvent(ts, fmt.Sprint(i), "", "i", fmt.Sprint(i)))
	}
	// Empty and non-ASCII tags round-trip too.
	evs[0].Tags = map[string]string{"": "", "ключ": "значение\x00", "i": "8"}
	tsApply(t, s, 1, tsAppend(1, "s", evs...))
	resp, err := s.ReadRange(context.Background(), &prismv1.ReadRangeRequest{SeriesId: []byte("s")})
	if err != nil {
		t.Fatal(err)
	}
	if len(resp.GetEvents()) != len(times) {
		t.Fatalf("%d events, want %d", len(resp.GetEvents()), len(times))
	}
	if got, want := resp.GetEvents()[len(times)-1].GetEvent().GetTags(), evs[0].GetTags(); !maps.Equal(got, want) {
		t.Errorf("tags %q, want %q", got, want)
	}
	for i, e := range resp.GetEvents() {
		if !proto.Equal(e.GetEvent().GetEventTime(), times[i]) || string(e.GetEvent().GetEventId()) != fmt.Sprint(i) {
			t.Errorf("event %d: time %v id %q, want %v id %d", i, e.GetEvent().GetEventTime(), e.GetEvent().GetEventId(), times[i], i)
		}
	}

	// Range edges at nanosecond precision on both sides of 1970.
	r := &prismv1.TimeRange{Start: times[2], End: times[5]}
	got, _ := tsReadAll(t, s, &prismv1.ReadRangeRequest{SeriesId: []byte("s"), Range: r, PageSize: 1, Descending: true})
	var ids []string
	for _, row := range got {
		ids = append(ids, row.id)
	}
	if want := []string{"4", "3", "2"}; !slices.Equal(ids, want) {
		t.Errorf("range [%v, %v) descending: %v, want %v", times[2], times[5], ids, want)
	}
	// Search pages carry the time through the token too.
	sgot, _ := tsSearchAll(t, s, &prismv1.SearchRequest{Range: r, PageSize: 1})
	ids = ids[:0]
	for _, row := range sgot {
		ids = append(ids, row.id)
	}
	if want := []string{"2", "3", "4"}; !slices.Equal(ids, want) {
		t.Errorf("search [%v, %v): %v, want %v", times[2], times[5], ids, want)
	}
}

// tsCount counts the rows of table in the store's schema, which the API
// hides.
func tsCount(t testing.TB, s *postgres.Store, table string) int {
	t.Helper()
	var n int
	if err := rawConn(t).QueryRow(context.Background(),
		"SELECT count(*) FROM "+pgx.Identifier{s.Schema(), table}.Sanitize()).Scan(&n); err != nil {
		t.Fatal(err)
	}
	return n
}
