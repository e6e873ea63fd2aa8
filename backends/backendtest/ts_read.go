package backendtest

import (
	"context"
	"errors"
	"fmt"
	"maps"
	"slices"
	"testing"

	"google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/types/known/timestamppb"

	prismv1 "github.com/prism-data/prism/proto/prism/v1"
)

// A range is [start, end): start inclusive, end exclusive, either unset.
func (s tsSuite) testRangeEdges(t *testing.T) {
	b := s.open(t)
	// Two series; s1 has events at seconds 0..4, two of them at second 2.
	tsApply(t, b, 2,
		appendTo(1, "s1",
			event(at(3, 0), "d", "3"),
			event(at(0, 0), "a", "0"),
			event(at(2, 0), "c2", "2b"),
			event(at(1, 0), "b", "1"),
			event(at(2, 0), "c1", "2a"),
			event(at(4, 0), "e", "4"),
		),
		appendTo(2, "s2", event(at(2, 0), "x", "other series")),
	)
	r := func(sec int64, id, body string) row {
		return row{series: "s1", sec: at(sec, 0).GetSeconds(), id: id, body: body}
	}
	all := []row{r(0, "a", "0"), r(1, "b", "1"), r(2, "c1", "2a"), r(2, "c2", "2b"), r(3, "d", "3"), r(4, "e", "4")}

	tests := []struct {
		name string
		r    *prismv1.TimeRange
		want []row
	}{
		{"no range", nil, all},
		{"both bounds unset", &prismv1.TimeRange{}, all},
		{"start inclusive, end exclusive", &prismv1.TimeRange{Start: at(1, 0), End: at(3, 0)}, all[1:4]},
		{"unset start", &prismv1.TimeRange{End: at(2, 0)}, all[:2]},
		{"unset end", &prismv1.TimeRange{Start: at(2, 0)}, all[2:]},
		{"one nanosecond after an event", &prismv1.TimeRange{Start: at(2, 1), End: at(4, 1)}, all[4:]},
		{"end one nanosecond after", &prismv1.TimeRange{Start: at(2, 0), End: at(2, 1)}, all[2:4]},
		{"start one nanosecond before", &prismv1.TimeRange{Start: at(1, 999_999_999), End: at(3, 0)}, all[2:4]},
		{"empty range", &prismv1.TimeRange{Start: at(2, 0), End: at(2, 0)}, nil},
		{"inverted range", &prismv1.TimeRange{Start: at(3, 0), End: at(1, 0)}, nil},
		{"before every event", &prismv1.TimeRange{End: at(0, 0)}, nil},
		{"after every event", &prismv1.TimeRange{Start: at(4, 1)}, nil},
	}
	for _, tt := range tests {
		for _, desc := range []bool{false, true} {
			for _, size := range []uint32{0, 1} {
				t.Run(fmt.Sprintf("%s/desc=%v/page=%d", tt.name, desc, size), func(t *testing.T) {
					want := slices.Clone(tt.want)
					if desc {
						slices.Reverse(want)
					}
					got, _ := readAll(t, b, &prismv1.ReadRangeRequest{SeriesId: []byte("s1"), Range: tt.r, Descending: desc, PageSize: size})
					equalRows(t, "ReadRange", got, want)
					// Search of the series without tags has the same edges.
					got, _ = searchAll(t, b, &prismv1.SearchRequest{SeriesId: []byte("s1"), Range: tt.r, Descending: desc, PageSize: size})
					equalRows(t, "Search", got, want)
				})
			}
		}
	}
}

// Events at one time are ordered by the bytes of their ids, not by append
// order.
func (s tsSuite) testEqualTimes(t *testing.T) {
	b := s.open(t)
	when := at(7, 123)
	// Byte order: "\x00" < "A" < "a" < "a\x00" < "b" < "é" < "\xff".
	var evs []*prismv1.TimeSeriesEvent
	for _, id := range []string{"b", "\xff", "a\x00", "é", "a", "A", "\x00"} {
		evs = append(evs, event(when, id, "p"+id))
	}
	tsApply(t, b, 2, appendTo(1, "s", evs[:3]...), appendTo(2, "s", evs[3:]...))
	var want []row
	for _, id := range []string{"\x00", "A", "a", "a\x00", "b", "é", "\xff"} {
		want = append(want, row{series: "s", sec: when.GetSeconds(), nanos: when.GetNanos(), id: id, body: "p" + id})
	}
	for _, size := range []uint32{0, 1, 2} {
		for _, desc := range []bool{false, true} {
			t.Run(fmt.Sprintf("desc=%v/page=%d", desc, size), func(t *testing.T) {
				w := slices.Clone(want)
				if desc {
					slices.Reverse(w)
				}
				got, _ := readAll(t, b, &prismv1.ReadRangeRequest{SeriesId: []byte("s"), PageSize: size, Descending: desc})
				equalRows(t, "ReadRange", got, w)
				got, _ = searchAll(t, b, &prismv1.SearchRequest{PageSize: size, Descending: desc})
				equalRows(t, "Search", got, w)
			})
		}
	}
}

// Pages concatenate to the full ordered set, with no event twice, in both
// directions and at every page size.
func (s tsSuite) testPagination(t *testing.T) {
	b := s.open(t)
	want := fill(t, b, "big", 2500, 1)
	other := fill(t, b, "other", 10, 10_000)
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
				got, pages := readAll(t, b, &prismv1.ReadRangeRequest{SeriesId: []byte("big"), PageSize: tt.size, Descending: desc})
				equalRows(t, "concatenated pages", got, sortRows(want, desc))
				if pages != tt.wantPages {
					t.Errorf("%d pages, want %d", pages, tt.wantPages)
				}
			})
		}
	}

	// Pages of a range: the token never leaves the range.
	r := &prismv1.TimeRange{Start: at(100, 0), End: at(200, 0)}
	for _, desc := range []bool{false, true} {
		got, _ := readAll(t, b, &prismv1.ReadRangeRequest{SeriesId: []byte("big"), Range: r, PageSize: 7, Descending: desc})
		equalRows(t, fmt.Sprintf("range pages desc=%v", desc), got, sortRows(inRange(want, r), desc))
	}

	// Search pages across series interleave them by (time, series, id).
	var parity0 []row
	for _, x := range append(slices.Clone(want), other...) {
		if x.hasTag("parity", "0") {
			parity0 = append(parity0, x)
		}
	}
	for _, size := range []uint32{1000, 7} {
		for _, desc := range []bool{false, true} {
			t.Run(fmt.Sprintf("search/page size %d/desc=%v", size, desc), func(t *testing.T) {
				got, pages := searchAll(t, b, &prismv1.SearchRequest{Tags: map[string]string{"parity": "0"}, PageSize: size, Descending: desc})
				equalRows(t, "concatenated pages", got, sortRows(parity0, desc))
				if want := (len(parity0) + int(size) - 1) / int(size); pages != want {
					t.Errorf("%d pages, want %d", pages, want)
				}
			})
		}
	}
}

func (s tsSuite) testSearch(t *testing.T) {
	b := s.open(t)
	var all []row
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
		ev := event(at(int64(i/2), 0), fmt.Sprintf("e%02d", 90-i), fmt.Sprint(i), tags...)
		seq++
		changes = append(changes, appendTo(seq, series, ev))
		all = append(all, rowOf(series, ev))
	}
	tsApply(t, b, seq, changes...)

	match := func(series string, tags map[string]string, r *prismv1.TimeRange) []row {
		var out []row
		for _, x := range inRange(all, r) {
			if series != "" && x.series != series {
				continue
			}
			ok := true
			for k, v := range tags {
				ok = ok && x.hasTag(k, v)
			}
			if ok {
				out = append(out, x)
			}
		}
		return out
	}

	window := &prismv1.TimeRange{Start: at(10, 0), End: at(30, 0)}
	tests := []struct {
		name      string
		series    string
		tags      map[string]string
		r         *prismv1.TimeRange
		wantCount int // -1: some
	}{
		{"no tags, all series", "", nil, nil, 90},
		{"empty tags, all series", "", map[string]string{}, nil, 90},
		{"no tags, one series", "series-1", nil, nil, 30},
		{"no tags, range", "", nil, window, 40},
		{"no tags, one series, range", "series-2", nil, window, -1},
		{"one tag, all series", "", map[string]string{"zone": "z0"}, nil, 45},
		{"one tag, one series", "series-0", map[string]string{"zone": "z0"}, nil, 15},
		{"one tag, range", "", map[string]string{"host": "h1"}, window, -1},
		{"two tags, all series", "", map[string]string{"zone": "z1", "host": "h2"}, nil, -1},
		{"two tags, one series", "series-2", map[string]string{"zone": "z1", "host": "h2"}, nil, -1},
		{"two tags, range", "", map[string]string{"zone": "z0", "host": "h0"}, window, -1},
		{"three tags", "", map[string]string{"zone": "z0", "host": "h0", "only-a": "yes"}, nil, -1},
		{"rare tag", "", map[string]string{"only-a": "yes"}, nil, 6},
		{"no match, unknown value", "", map[string]string{"zone": "z9"}, nil, 0},
		{"no match, unknown key", "", map[string]string{"rack": "z0"}, nil, 0},
		{"no match, value of another key", "", map[string]string{"host": "z0"}, nil, 0},
		{"no match, disjoint tags", "series-1", map[string]string{"only-a": "yes"}, nil, 0},
		{"no match, unknown series", "series-9", map[string]string{"zone": "z0"}, nil, 0},
		{"no match, unknown series, no tags", "series-9", nil, nil, 0},
		{"no match, empty range", "", map[string]string{"zone": "z0"}, &prismv1.TimeRange{Start: at(5, 0), End: at(5, 0)}, 0},
	}
	for _, tt := range tests {
		for _, desc := range []bool{false, true} {
			for _, size := range []uint32{0, 4} {
				t.Run(fmt.Sprintf("%s/desc=%v/page=%d", tt.name, desc, size), func(t *testing.T) {
					want := sortRows(match(tt.series, tt.tags, tt.r), desc)
					if tt.wantCount >= 0 && len(want) != tt.wantCount {
						t.Fatalf("test data: %d matching events, want %d", len(want), tt.wantCount)
					}
					if tt.wantCount < 0 && len(want) == 0 {
						t.Fatal("test data: no matching events")
					}
					got, pages := searchAll(t, b, &prismv1.SearchRequest{
						SeriesId: []byte(tt.series), Tags: tt.tags, Range: tt.r, Descending: desc, PageSize: size,
					})
					equalRows(t, "events", got, want)
					if size == 4 && pages != max(1, (len(want)+3)/4) {
						t.Errorf("%d pages of 4 for %d events", pages, len(want))
					}
				})
			}
		}
	}
}

func (s tsSuite) testInvalidPageToken(t *testing.T) {
	b := s.open(t)
	ctx := context.Background()
	tsApply(t, b, 1, appendTo(1, "s", event(at(0, 0), "a", ""), event(at(1, 0), "b", "")))
	// Tokens no backend makes; the token format itself is the backend's.
	for _, token := range []string{"!!!", "not a page token", "\x00\xff", "%%"} {
		t.Run(fmt.Sprintf("%q", token), func(t *testing.T) {
			if _, err := b.ReadRange(ctx, &prismv1.ReadRangeRequest{SeriesId: []byte("s"), PageToken: token}); !errors.Is(err, s.cfg.Errors.InvalidPageToken) {
				t.Errorf("ReadRange: err = %v, want %v", err, s.cfg.Errors.InvalidPageToken)
			}
			if _, err := b.Search(ctx, &prismv1.SearchRequest{PageToken: token}); !errors.Is(err, s.cfg.Errors.InvalidPageToken) {
				t.Errorf("Search: err = %v, want %v", err, s.cfg.Errors.InvalidPageToken)
			}
			if _, err := b.Search(ctx, &prismv1.SearchRequest{SeriesId: []byte("s"), PageToken: token}); !errors.Is(err, s.cfg.Errors.InvalidPageToken) {
				t.Errorf("Search of a series: err = %v, want %v", err, s.cfg.Errors.InvalidPageToken)
			}
		})
	}
	// A token stays valid: the second page is "b", however often it is
	// asked for.
	first, err := b.ReadRange(ctx, &prismv1.ReadRangeRequest{SeriesId: []byte("s"), PageSize: 1})
	if err != nil || first.GetNextPageToken() == "" {
		t.Fatalf("ReadRange: %v, %v; want a page with a next page token", first, err)
	}
	for range 2 {
		resp, err := b.ReadRange(ctx, &prismv1.ReadRangeRequest{SeriesId: []byte("s"), PageToken: first.GetNextPageToken()})
		if err != nil || len(resp.GetEvents()) != 1 || string(resp.GetEvents()[0].GetEvent().GetEventId()) != "b" || resp.GetNextPageToken() != "" {
			t.Errorf("second page: %v, %v; want event b and no next page", resp, err)
		}
	}
}

func (s tsSuite) testInvalidRequest(t *testing.T) {
	if s.cfg.Errors.InvalidRequest == nil {
		t.Skip("Config.Errors.InvalidRequest is not set: set it to the backend's invalid-request sentinel to run this test")
	}
	b := s.open(t)
	ctx := context.Background()
	tsApply(t, b, 1, appendTo(1, "s", event(at(0, 0), "a", "")))
	invalid := &timestamppb.Timestamp{Nanos: -1}
	tooLate := &timestamppb.Timestamp{Seconds: 253402300800}
	tests := []struct {
		name string
		call func() error
	}{
		{"ReadRange nil request", func() error { _, err := b.ReadRange(ctx, nil); return err }},
		{"ReadRange empty series", func() error { _, err := b.ReadRange(ctx, &prismv1.ReadRangeRequest{}); return err }},
		{"ReadRange invalid start", func() error {
			_, err := b.ReadRange(ctx, &prismv1.ReadRangeRequest{SeriesId: []byte("s"), Range: &prismv1.TimeRange{Start: invalid}})
			return err
		}},
		{"ReadRange invalid end", func() error {
			_, err := b.ReadRange(ctx, &prismv1.ReadRangeRequest{SeriesId: []byte("s"), Range: &prismv1.TimeRange{End: invalid}})
			return err
		}},
		{"ReadRange end after 9999", func() error {
			_, err := b.ReadRange(ctx, &prismv1.ReadRangeRequest{SeriesId: []byte("s"), Range: &prismv1.TimeRange{End: tooLate}})
			return err
		}},
		{"Search nil request", func() error { _, err := b.Search(ctx, nil); return err }},
		{"Search invalid start", func() error {
			_, err := b.Search(ctx, &prismv1.SearchRequest{Range: &prismv1.TimeRange{Start: invalid}})
			return err
		}},
		{"Search invalid end", func() error {
			_, err := b.Search(ctx, &prismv1.SearchRequest{SeriesId: []byte("s"), Range: &prismv1.TimeRange{End: invalid}})
			return err
		}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if err := tt.call(); !errors.Is(err, s.cfg.Errors.InvalidRequest) {
				t.Errorf("err = %v, want %v", err, s.cfg.Errors.InvalidRequest)
			}
		})
	}
}

// Every valid time, from year 1 to 9999, before and after 1970, round-trips
// to the nanosecond and is ordered and bounded at nanosecond precision.
func (s tsSuite) testTimesRoundTrip(t *testing.T) {
	b := s.open(t)
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
	// Appended in reverse, in two series.
	var evs []*prismv1.TimeSeriesEvent
	var want []row
	for i, ts := range slices.Backward(times) {
		ev := event(ts, fmt.Sprint(i), "", "i", fmt.Sprint(i), "all", "yes")
		evs = append(evs, ev)
		want = append(want, rowOf("s", ev))
	}
	// Non-ASCII tags, and a zero byte in a value, round-trip too.
	evs[0].Tags = map[string]string{"ключ": "значение\x00", "i": "8", "all": "yes"}
	want[0] = rowOf("s", evs[0])
	tsApply(t, b, 2, appendTo(1, "s", evs...), appendTo(2, "t", event(times[4], "t", "")))
	want = sortRows(want, false)

	resp, err := b.ReadRange(context.Background(), &prismv1.ReadRangeRequest{SeriesId: []byte("s")})
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
	equalRows(t, "ReadRange", rowsOf(resp.GetEvents()), want)
	got, _ := searchAll(t, b, &prismv1.SearchRequest{Tags: map[string]string{"ключ": "значение\x00"}})
	equalRows(t, "search of the non-ASCII tag", got, want[len(want)-1:])

	tests := []struct {
		name    string
		r       *prismv1.TimeRange
		desc    bool
		wantIDs []string
	}{
		{"around 1970, descending", &prismv1.TimeRange{Start: times[2], End: times[5]}, true, []string{"4", "3", "2"}},
		{"around 1970, ascending", &prismv1.TimeRange{Start: times[2], End: times[5]}, false, []string{"2", "3", "4"}},
		{"from the first valid time", &prismv1.TimeRange{Start: times[0], End: times[1]}, false, []string{"0"}},
		{"to the last valid time", &prismv1.TimeRange{Start: times[7], End: times[8]}, false, []string{"7"}},
		{"the last valid time, unbounded", &prismv1.TimeRange{Start: times[8]}, true, []string{"8"}},
		{"before 1970", &prismv1.TimeRange{End: times[4]}, true, []string{"3", "2", "1", "0"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, _ := readAll(t, b, &prismv1.ReadRangeRequest{SeriesId: []byte("s"), Range: tt.r, PageSize: 1, Descending: tt.desc})
			if !slices.Equal(ids(got), tt.wantIDs) {
				t.Errorf("ReadRange [%v, %v): %q, want %q", tt.r.GetStart(), tt.r.GetEnd(), ids(got), tt.wantIDs)
			}
			// Search pages carry the time through the token too.
			got, _ = searchAll(t, b, &prismv1.SearchRequest{Tags: map[string]string{"all": "yes"}, Range: tt.r, PageSize: 1, Descending: tt.desc})
			if !slices.Equal(ids(got), tt.wantIDs) {
				t.Errorf("Search [%v, %v): %q, want %q", tt.r.GetStart(), tt.r.GetEnd(), ids(got), tt.wantIDs)
			}
		})
	}
	// Across series without tags, 1970-01-01 holds an event of s and of t.
	got, _ = searchAll(t, b, &prismv1.SearchRequest{Range: &prismv1.TimeRange{Start: times[3], End: times[5]}, PageSize: 1})
	if want := []string{"3", "4", "t"}; !slices.Equal(ids(got), want) {
		t.Errorf("Search of both series around 1970: %q, want %q", ids(got), want)
	}
}

// Series ids and event ids are bytes: zero bytes, invalid UTF-8, Unicode,
// one byte and long ones round-trip and sort bytewise.
func (s tsSuite) testBinaryIDs(t *testing.T) {
	b := s.open(t)
	long := func(n int, seed byte) string {
		p := make([]byte, n)
		for i := range p {
			p[i] = byte(i*7) + seed
		}
		return string(p)
	}
	seriesIDs := []string{"\x00", "x", "\xff\xfe", "\xc3\x28", "日本語", "a.b*c>d e\n", long(256, 1), long(1024, 2)}
	eventIDs := []string{"\x00", "\xff", "é", "\xc3\x28", "a\x00b", "日", long(255, 3), long(256, 4)}
	var all []row
	var changes []*prismv1.TimeSeriesChange
	for i, series := range seriesIDs {
		var evs []*prismv1.TimeSeriesEvent
		for j, id := range eventIDs {
			// Two times: one shared by every event, one per series.
			when := at(1, 0)
			if j%2 == 1 {
				when = at(2, int64(i))
			}
			ev := event(when, id, series+"/"+id, "series", fmt.Sprint(i), "even", fmt.Sprint(j%2 == 0))
			evs = append(evs, ev)
			all = append(all, rowOf(series, ev))
		}
		changes = append(changes, &prismv1.TimeSeriesChange{Seq: uint64(i + 1), Append: &prismv1.TimeSeriesAppend{
			SeriesId: []byte(series), Events: evs,
		}})
	}
	tsApply(t, b, uint64(len(changes)), changes...)

	for i, series := range seriesIDs {
		var want []row
		for _, x := range all {
			if x.series == series {
				want = append(want, x)
			}
		}
		for _, desc := range []bool{false, true} {
			t.Run(fmt.Sprintf("series %d/desc=%v", i, desc), func(t *testing.T) {
				got, _ := readAll(t, b, &prismv1.ReadRangeRequest{SeriesId: []byte(series), PageSize: 1, Descending: desc})
				equalRows(t, "ReadRange", got, sortRows(want, desc))
				got, _ = searchAll(t, b, &prismv1.SearchRequest{SeriesId: []byte(series), PageSize: 3, Descending: desc,
					Tags: map[string]string{"even": "true"}})
				var even []row
				for _, x := range want {
					if x.hasTag("even", "true") {
						even = append(even, x)
					}
				}
				equalRows(t, "Search within the series", got, sortRows(even, desc))
			})
		}
	}
	// A prefix of a series id is another series.
	if got, _ := readAll(t, b, &prismv1.ReadRangeRequest{SeriesId: []byte(seriesIDs[6][:255])}); len(got) != 0 {
		t.Errorf("ReadRange of a prefix of a series id: %v", got)
	}
	for _, desc := range []bool{false, true} {
		for _, size := range []uint32{1, 5} {
			t.Run(fmt.Sprintf("all series/desc=%v/page=%d", desc, size), func(t *testing.T) {
				got, _ := searchAll(t, b, &prismv1.SearchRequest{PageSize: size, Descending: desc})
				equalRows(t, "Search", got, sortRows(all, desc))
				got, _ = searchAll(t, b, &prismv1.SearchRequest{PageSize: size, Descending: desc, Tags: map[string]string{"even": "false"}})
				var odd []row
				for _, x := range all {
					if x.hasTag("even", "false") {
						odd = append(odd, x)
					}
				}
				equalRows(t, "Search by tag", got, sortRows(odd, desc))
			})
		}
	}
}

// Payloads up to 512 KiB and events with 64 tags of the longest keys and
// values the gateway accepts round-trip, and every one of those tags finds
// its event.
func (s tsSuite) testLarge(t *testing.T) {
	b := s.open(t)
	const payloadBytes = 512 << 10
	var evs []*prismv1.TimeSeriesEvent
	var payloads [][]byte
	for i := range 4 {
		p := make([]byte, payloadBytes)
		for j := range p {
			p[j] = byte(j*31 + i)
		}
		payloads = append(payloads, p)
		evs = append(evs, &prismv1.TimeSeriesEvent{EventTime: at(int64(i), 0), EventId: []byte{byte('a' + i)}, Payload: p})
	}
	// Empty and nil payloads read back empty.
	evs = append(evs,
		&prismv1.TimeSeriesEvent{EventTime: at(10, 0), EventId: []byte("empty"), Payload: []byte{}},
		&prismv1.TimeSeriesEvent{EventTime: at(11, 0), EventId: []byte("nil")})
	payloads = append(payloads, nil, nil)
	// 63 tags with keys of 128 bytes and values of 1024, and an empty value.
	tags := map[string]string{"empty-value": ""}
	for i := range 63 {
		tags[fmt.Sprintf("%03d-", i)+string(bytesOf(124, byte(i)))] = fmt.Sprintf("%04d-ü", i) + string(bytesOf(1024-7, byte(i)))
	}
	evs = append(evs, &prismv1.TimeSeriesEvent{EventTime: at(12, 0), EventId: []byte("tags"), Tags: tags, Payload: []byte("tagged")})
	payloads = append(payloads, []byte("tagged"))
	tsApply(t, b, 2, appendTo(1, "big", evs[:3]...), appendTo(2, "big", evs[3:]...))

	got, _ := readAll(t, b, &prismv1.ReadRangeRequest{SeriesId: []byte("big"), PageSize: 2})
	if len(got) != len(evs) {
		t.Fatalf("%d events, want %d", len(got), len(evs))
	}
	for i, x := range got {
		if x.id != string(evs[i].GetEventId()) || x.body != string(payloads[i]) {
			t.Errorf("event %d: id %q payload of %d bytes, want id %q payload of %d bytes (equal bytes)",
				i, x.id, len(x.body), evs[i].GetEventId(), len(payloads[i]))
		}
	}
	if want := rowOf("big", evs[len(evs)-1]); got[len(got)-1] != want {
		t.Errorf("tagged event = %v, want %v", got[len(got)-1], want)
	}
	tagged := got[len(got)-1:]
	for k, v := range tags {
		if got, _ := searchAll(t, b, &prismv1.SearchRequest{Tags: map[string]string{k: v}}); !slices.Equal(got, tagged) {
			t.Errorf("search by tag %.16q=%.16q: %v, want the tagged event", k, v, got)
		}
	}
	// All 64 long tags at once, across series and in the series; one tag
	// off and nothing matches. (A search by many tags must not cost more
	// than by one: a backend that plans a sub-query per tag can take
	// seconds here.)
	all := maps.Clone(tags)
	got, _ = searchAll(t, b, &prismv1.SearchRequest{Tags: all})
	equalRows(t, "search by 64 tags", got, tagged)
	got, _ = searchAll(t, b, &prismv1.SearchRequest{SeriesId: []byte("big"), Tags: all})
	equalRows(t, "search of the series by 64 tags", got, tagged)
	all["empty-value"] = "x"
	if got, _ := searchAll(t, b, &prismv1.SearchRequest{Tags: all}); len(got) != 0 {
		t.Errorf("search by 63 matching tags and one other: %v, want none", got)
	}
	if got, _ := searchAll(t, b, &prismv1.SearchRequest{SeriesId: []byte("big"), Tags: all}); len(got) != 0 {
		t.Errorf("search of the series by 63 matching tags and one other: %v, want none", got)
	}
}

// bytesOf is n printable ASCII bytes starting at first.
func bytesOf(n int, first byte) []byte {
	p := make([]byte, n)
	for i := range p {
		p[i] = ' ' + (first+byte(i))%95
	}
	return p
}
