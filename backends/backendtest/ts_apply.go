package backendtest

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"slices"
	"testing"

	"google.golang.org/protobuf/types/known/timestamppb"

	prismv1 "github.com/prism-data/prism/proto/prism/v1"
)

// tsBatch is a call of ApplyTimeSeries.
type tsBatch struct {
	through uint64
	changes []*prismv1.TimeSeriesChange
}

func (s tsSuite) testCheckpoint(t *testing.T) {
	ev := func(id string) *prismv1.TimeSeriesEvent { return event(at(1, 0), id, id) }
	tests := []struct {
		name    string
		batches []tsBatch
		wantCP  uint64
		wantIDs []string // of series "s", ascending
	}{
		{"new backend", nil, 0, nil},
		{"empty batch advances", []tsBatch{{5, nil}}, 5, nil},
		{"empty batches advance", []tsBatch{{5, nil}, {9, nil}}, 9, nil},
		{"through above the last seq", []tsBatch{{10, []*prismv1.TimeSeriesChange{appendTo(3, "s", ev("a"))}}}, 10, []string{"a"}},
		{"through below the checkpoint is a no-op", []tsBatch{
			{5, []*prismv1.TimeSeriesChange{appendTo(5, "s", ev("a"))}},
			{3, []*prismv1.TimeSeriesChange{appendTo(3, "s", ev("b"))}},
		}, 5, []string{"a"}},
		{"through at the checkpoint is a no-op", []tsBatch{
			{5, []*prismv1.TimeSeriesChange{appendTo(5, "s", ev("a"))}},
			{5, []*prismv1.TimeSeriesChange{appendTo(5, "s", ev("b"))}},
		}, 5, []string{"a"}},
		{"empty batch below the checkpoint is a no-op", []tsBatch{{5, nil}, {2, nil}}, 5, nil},
		{"changes at or below the checkpoint are skipped", []tsBatch{
			{5, []*prismv1.TimeSeriesChange{appendTo(5, "s", ev("a"))}},
			{8, []*prismv1.TimeSeriesChange{appendTo(4, "s", ev("b")), appendTo(5, "s", ev("c")), appendTo(6, "s", ev("d")), appendTo(8, "s", ev("e"))}},
		}, 8, []string{"a", "d", "e"}},
		{"append without events advances", []tsBatch{{2, []*prismv1.TimeSeriesChange{appendTo(1, "s"), appendTo(2, "t")}}}, 2, nil},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			b := s.open(t)
			for _, batch := range tt.batches {
				tsApply(t, b, batch.through, batch.changes...)
			}
			if cp := checkpoint(t, b); cp != tt.wantCP {
				t.Errorf("checkpoint = %d, want %d", cp, tt.wantCP)
			}
			got, _ := readAll(t, b, &prismv1.ReadRangeRequest{SeriesId: []byte("s")})
			if !slices.Equal(ids(got), tt.wantIDs) {
				t.Errorf("events of s = %v, want ids %q", got, tt.wantIDs)
			}
			if all, _ := searchAll(t, b, &prismv1.SearchRequest{}); len(all) != len(tt.wantIDs) {
				t.Errorf("Search of everything = %v, want %d events", all, len(tt.wantIDs))
			}
		})
	}
}

// An event is stored once per (series, time, id): the first write wins,
// within a batch and across batches, with its payload and its tags; the
// tags of the duplicates are not indexed.
func (s tsSuite) testIdempotent(t *testing.T) {
	b := s.open(t)
	when := at(1, 5)
	tsApply(t, b, 2,
		appendTo(1, "s", event(when, "e", "first", "k", "v1")),
		appendTo(2, "s", event(when, "e", "second", "k", "v2"), event(when, "f", "other id")),
	)
	tsApply(t, b, 3, appendTo(3, "s", event(when, "e", "third", "k", "v3", "x", "y")))
	// Same id at another time, or in another series, is another event.
	tsApply(t, b, 4, appendTo(4, "s", event(at(1, 6), "e", "later")))
	tsApply(t, b, 5, appendTo(5, "t", event(when, "e", "series t")))

	want := []row{
		{series: "s", sec: when.GetSeconds(), nanos: 5, id: "e", tags: "k=v1", body: "first"},
		{series: "s", sec: when.GetSeconds(), nanos: 5, id: "f", body: "other id"},
		{series: "s", sec: when.GetSeconds(), nanos: 6, id: "e", body: "later"},
	}
	got, _ := readAll(t, b, &prismv1.ReadRangeRequest{SeriesId: []byte("s")})
	equalRows(t, "series s", got, want)
	got, _ = readAll(t, b, &prismv1.ReadRangeRequest{SeriesId: []byte("t")})
	equalRows(t, "series t", got, []row{{series: "t", sec: when.GetSeconds(), nanos: 5, id: "e", body: "series t"}})

	tests := []struct {
		name   string
		series string
		tags   map[string]string
		want   []row
	}{
		{"first write's tag", "", map[string]string{"k": "v1"}, want[:1]},
		{"first write's tag in its series", "s", map[string]string{"k": "v1"}, want[:1]},
		{"tag of a duplicate in the batch", "", map[string]string{"k": "v2"}, nil},
		{"tag of a later duplicate", "", map[string]string{"k": "v3"}, nil},
		{"new tag key of a later duplicate", "", map[string]string{"x": "y"}, nil},
		{"tag of a later duplicate in its series", "s", map[string]string{"x": "y"}, nil},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, _ := searchAll(t, b, &prismv1.SearchRequest{SeriesId: []byte(tt.series), Tags: tt.tags})
			equalRows(t, "search", got, tt.want)
		})
	}
}

// Re-applying a batch after a redelivery changes nothing; a batch that
// overlaps the checkpoint applies only its new changes.
func (s tsSuite) testReplay(t *testing.T) {
	b := s.open(t)
	batch := []*prismv1.TimeSeriesChange{
		appendTo(3, "s", event(at(1, 0), "a", "a1", "k", "v")),
		appendTo(5, "s", event(at(2, 0), "b", "b1", "k", "v")),
	}
	tsApply(t, b, 6, batch...)
	before, _ := readAll(t, b, &prismv1.ReadRangeRequest{SeriesId: []byte("s")})
	if len(before) != 2 {
		t.Fatalf("%d events after the first apply, want 2", len(before))
	}

	// The same batch again, and a batch overlapping the checkpoint whose
	// old changes now carry other events: only seq 7 is applied.
	tsApply(t, b, 6, batch...)
	tsApply(t, b, 7,
		appendTo(5, "s", event(at(9, 0), "skipped", "old seq", "k", "v")),
		appendTo(7, "s", event(at(3, 0), "c", "c1")),
	)
	// A batch entirely at or below the checkpoint changes nothing, not
	// even the checkpoint.
	tsApply(t, b, 4, appendTo(4, "s", event(at(9, 0), "skipped", "old batch", "k", "v")))

	got, _ := readAll(t, b, &prismv1.ReadRangeRequest{SeriesId: []byte("s")})
	want := append(slices.Clone(before), row{series: "s", sec: at(3, 0).GetSeconds(), id: "c", body: "c1"})
	equalRows(t, "events", got, want)
	if cp := checkpoint(t, b); cp != 7 {
		t.Errorf("checkpoint %d, want 7", cp)
	}
	// The skipped events' tags are not indexed: k=v finds a and b once.
	got, _ = searchAll(t, b, &prismv1.SearchRequest{Tags: map[string]string{"k": "v"}})
	equalRows(t, "search k=v", got, before)

	// An empty batch only moves the checkpoint.
	tsApply(t, b, 9)
	if cp := checkpoint(t, b); cp != 9 {
		t.Errorf("checkpoint %d after an empty batch, want 9", cp)
	}
	got, _ = readAll(t, b, &prismv1.ReadRangeRequest{SeriesId: []byte("s")})
	equalRows(t, "events after an empty batch", got, want)
}

func (s tsSuite) testInvalidChange(t *testing.T) {
	good := appendTo(11, "s", event(at(0, 0), "ok", "stored only if the batch is valid", "k", "v"))
	after := appendTo(13, "after", event(at(0, 0), "ok", "", "k", "v"))
	bad := func(mutate func(c *prismv1.TimeSeriesChange)) *prismv1.TimeSeriesChange {
		c := appendTo(12, "s", event(at(1, 0), "id", "", "k", "v"))
		mutate(c)
		return c
	}
	tests := []struct {
		name string
		bad  *prismv1.TimeSeriesChange
	}{
		{"nil change", nil},
		{"nil append", bad(func(c *prismv1.TimeSeriesChange) { c.Append = nil })},
		{"empty series id", bad(func(c *prismv1.TimeSeriesChange) { c.Append.SeriesId = nil })},
		{"nil event", bad(func(c *prismv1.TimeSeriesChange) { c.Append.Events = append(c.Append.Events, nil) })},
		{"no event time", bad(func(c *prismv1.TimeSeriesChange) { c.Append.Events[0].EventTime = nil })},
		{"nanos out of range", bad(func(c *prismv1.TimeSeriesChange) {
			c.Append.Events[0].EventTime = &timestamppb.Timestamp{Nanos: 1e9}
		})},
		{"negative nanos", bad(func(c *prismv1.TimeSeriesChange) {
			c.Append.Events[0].EventTime = &timestamppb.Timestamp{Seconds: 1, Nanos: -1}
		})},
		{"event time after 9999", bad(func(c *prismv1.TimeSeriesChange) {
			c.Append.Events[0].EventTime = &timestamppb.Timestamp{Seconds: 253402300800}
		})},
		{"event time before year 1", bad(func(c *prismv1.TimeSeriesChange) {
			c.Append.Events[0].EventTime = &timestamppb.Timestamp{Seconds: -62135596801}
		})},
		{"empty event id", bad(func(c *prismv1.TimeSeriesChange) { c.Append.Events[0].EventId = nil })},
		{"event id of 257 bytes", bad(func(c *prismv1.TimeSeriesChange) {
			c.Append.Events[0].EventId = bytes.Repeat([]byte{'x'}, 257)
		})},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			b := s.open(t)
			tsApply(t, b, 10, appendTo(10, "before", event(at(0, 0), "ok", "", "k", "v")))
			err := b.ApplyTimeSeries(context.Background(), []*prismv1.TimeSeriesChange{good, tt.bad, after}, 13)
			if !errors.Is(err, s.cfg.Errors.InvalidChange) {
				t.Fatalf("err = %v, want %v", err, s.cfg.Errors.InvalidChange)
			}
			if !isPermanent(err) {
				t.Errorf("err = %v does not implement Permanent() bool returning true: the projector would retry it forever", err)
			}
			if cp := checkpoint(t, b); cp != 10 {
				t.Errorf("checkpoint = %d, want 10 (unchanged)", cp)
			}
			got, _ := searchAll(t, b, &prismv1.SearchRequest{})
			equalRows(t, "events after the failed batch", got, []row{{series: "before", sec: at(0, 0).GetSeconds(), id: "ok", tags: "k=v"}})
			if got, _ := searchAll(t, b, &prismv1.SearchRequest{Tags: map[string]string{"k": "v"}}); len(got) != 1 {
				t.Errorf("search k=v after the failed batch = %v, want the event of before only", got)
			}
			// The backend is still usable and the batch applies without the
			// bad change.
			tsApply(t, b, 13, good, after)
			if got, _ := searchAll(t, b, &prismv1.SearchRequest{Tags: map[string]string{"k": "v"}}); len(got) != 3 {
				t.Errorf("search k=v after the good batch = %v, want 3 events", got)
			}
		})
	}
}

func (s tsSuite) testInvalidBatch(t *testing.T) {
	if s.cfg.Errors.InvalidBatch == nil {
		t.Skip("Config.Errors.InvalidBatch is not set: set it to the backend's malformed-batch sentinel to run this test")
	}
	ev := event(at(1, 0), "id", "")
	tests := []struct {
		name    string
		changes []*prismv1.TimeSeriesChange
		through uint64
	}{
		{"seq zero", []*prismv1.TimeSeriesChange{appendTo(0, "s", ev)}, 2},
		{"seqs not increasing", []*prismv1.TimeSeriesChange{appendTo(1, "s", ev), appendTo(1, "t", ev)}, 2},
		{"seqs decreasing", []*prismv1.TimeSeriesChange{appendTo(2, "s", ev), appendTo(1, "t", ev)}, 2},
		{"seq above through", []*prismv1.TimeSeriesChange{appendTo(1, "s", ev), appendTo(3, "t", ev)}, 2},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			b := s.open(t)
			err := b.ApplyTimeSeries(context.Background(), tt.changes, tt.through)
			if !errors.Is(err, s.cfg.Errors.InvalidBatch) {
				t.Fatalf("err = %v, want %v", err, s.cfg.Errors.InvalidBatch)
			}
			if errors.Is(err, s.cfg.Errors.InvalidChange) || isPermanent(err) {
				t.Fatalf("err = %v is blamed on the changes: the projector would dead-letter good events", err)
			}
			if cp := checkpoint(t, b); cp != 0 {
				t.Errorf("checkpoint = %d, want 0", cp)
			}
			if got, _ := searchAll(t, b, &prismv1.SearchRequest{}); len(got) != 0 {
				t.Errorf("events stored by a malformed batch: %v", got)
			}
		})
	}
}

// A backend serving KeyValue and TimeSeries has one checkpoint: a namespace
// stream holds both kinds of events, and its projector resumes from one
// sequence.
func (s tsSuite) testSharedCheckpoint(t *testing.T) {
	if !s.declares(FeatureKeyValue) {
		t.Skipf("the backend does not declare %q: there is no checkpoint to share", FeatureKeyValue)
	}
	ts := s.open(t)
	kvb := asKV(t, ts)
	ctx := context.Background()
	kvPut := func(seq uint64) *prismv1.KeyValueChange { return put(seq, "r", item("k", fmt.Sprint(seq))) }

	apply(t, kvb, 5, kvPut(5))
	if cp := checkpoint(t, ts); cp != 5 {
		t.Fatalf("checkpoint after a KeyValue batch through 5 = %d, want 5", cp)
	}
	// Seq 4 is behind the KeyValue checkpoint: skipped.
	tsApply(t, ts, 6, appendTo(4, "s", event(at(0, 0), "old", "")), appendTo(6, "s", event(at(1, 0), "new", "")))
	if cp := checkpoint(t, kvb); cp != 6 {
		t.Errorf("checkpoint = %d, want 6", cp)
	}
	got, _ := readAll(t, ts, &prismv1.ReadRangeRequest{SeriesId: []byte("s")})
	equalRows(t, "events", got, []row{{series: "s", sec: at(1, 0).GetSeconds(), id: "new"}})

	// The KeyValue side skips what the TimeSeries side reached.
	apply(t, kvb, 6, kvPut(6))
	resp := getID(t, kvb, "r")
	if got := kvs(resp.GetItems()); resp.GetRevision() != 5 || !slices.Equal(got, []kv{{"k", "5"}}) {
		t.Errorf("record after a KeyValue batch behind the checkpoint: revision %d, items %v; want revision 5, k=5", resp.GetRevision(), got)
	}
	// And an empty TimeSeries batch moves the one checkpoint for both.
	tsApply(t, ts, 8)
	apply(t, kvb, 8, kvPut(7), kvPut(8)) // a no-op: through 8 is not above the checkpoint
	if resp := getID(t, kvb, "r"); resp.GetRevision() != 5 {
		t.Errorf("KeyValue batch through the TimeSeries checkpoint was applied: revision %d, want 5", resp.GetRevision())
	}
	apply(t, kvb, 9, kvPut(9))
	if resp := getID(t, kvb, "r"); resp.GetRevision() != 9 {
		t.Errorf("revision %d after a KeyValue batch through 9, want 9", resp.GetRevision())
	}
	if cp, err := ts.Checkpoint(ctx); err != nil || cp != 9 {
		t.Errorf("checkpoint = %d, %v; want 9", cp, err)
	}
}
