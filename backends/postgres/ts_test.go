package postgres_test

import (
	"context"
	"errors"
	"fmt"
	"maps"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"
	"google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/types/known/timestamppb"

	"github.com/prism-data/prism/backends/postgres"
	prismv1 "github.com/prism-data/prism/proto/prism/v1"
)

// The behaviour of the TimeSeries API is checked by the conformance suite
// (backendtest, FeatureTimeSeries). The tests here check what only the
// PostgreSQL backend has: the rows of its ts_events and ts_tags tables and
// its *InvalidChangeError. The helpers are prefixed ts so they stay
// independent of the KeyValue test helpers.

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

// tsFill appends n events, each with one tag, to series in batches of 500
// from seq first, one event per second from tsBase+1s.
func tsFill(t testing.TB, s *postgres.Store, series string, n int, first uint64) {
	t.Helper()
	var batch []*prismv1.TimeSeriesChange
	seq := first
	for i := range n {
		id := fmt.Sprintf("id-%06d", n-i)
		batch = append(batch, tsAppend(seq, series, tsEvent(tsAt(int64(i+1), 0), id, "payload "+id, "parity", fmt.Sprint(i%2))))
		seq++
		if len(batch) == 500 || i == n-1 {
			tsApply(t, s, seq-1, batch...)
			batch = batch[:0]
		}
	}
}

// Duplicates of an event, within a batch and across batches, store no tag
// rows; an empty tag key and value are stored and read back.
func TestApplyTimeSeriesIdempotent(t *testing.T) {
	s := tsOpen(t)
	at := tsAt(1, 5)
	tsApply(t, s, 2,
		tsAppend(1, "s", tsEvent(at, "e", "first", "k", "v1")),
		tsAppend(2, "s", tsEvent(at, "e", "second", "k", "v2"), tsEvent(at, "f", "other id")),
	)
	tsApply(t, s, 3, tsAppend(3, "s", tsEvent(at, "e", "third", "k", "v3", "x", "y")))
	if n := tsCount(t, s, "ts_tags"); n != 1 {
		t.Errorf("%d tag rows, want 1", n)
	}

	// The suite's tags all have non-empty keys.
	tags := map[string]string{"": "", "ключ": "значение\x00"}
	tsApply(t, s, 4, &prismv1.TimeSeriesChange{Seq: 4, Append: &prismv1.TimeSeriesAppend{
		SeriesId: []byte("u"), Events: []*prismv1.TimeSeriesEvent{{EventTime: at, EventId: []byte("e"), Tags: tags}},
	}})
	if n := tsCount(t, s, "ts_tags"); n != 3 {
		t.Errorf("%d tag rows, want 3", n)
	}
	resp, err := s.ReadRange(context.Background(), &prismv1.ReadRangeRequest{SeriesId: []byte("u")})
	if err != nil || len(resp.GetEvents()) != 1 {
		t.Fatalf("ReadRange = %v, %v; want one event", resp, err)
	}
	if got := resp.GetEvents()[0].GetEvent().GetTags(); !maps.Equal(got, tags) {
		t.Errorf("tags %q, want %q", got, tags)
	}
	found, err := s.Search(context.Background(), &prismv1.SearchRequest{Tags: map[string]string{"": ""}})
	if err != nil || len(found.GetEvents()) != 1 {
		t.Errorf("Search by the empty tag = %v, %v; want the event", found, err)
	}
}

// A redelivered batch stores no rows twice, and a batch that fails stores
// none: an invalid change is an *InvalidChangeError at its index, a through
// above int64 an ErrInvalidBatch.
func TestApplyTimeSeriesReplay(t *testing.T) {
	s := tsOpen(t)
	ctx := context.Background()
	batch := []*prismv1.TimeSeriesChange{
		tsAppend(3, "s", tsEvent(tsAt(1, 0), "a", "a1", "k", "v")),
		tsAppend(5, "s", tsEvent(tsAt(2, 0), "b", "b1", "k", "v")),
	}
	tsApply(t, s, 6, batch...)
	tsApply(t, s, 6, batch...)
	tsApply(t, s, 7,
		tsAppend(5, "s", tsEvent(tsAt(9, 0), "skipped", "old seq", "k", "v")),
		tsAppend(7, "s", tsEvent(tsAt(3, 0), "c", "c1")),
	)
	tsApply(t, s, 4, tsAppend(4, "s", tsEvent(tsAt(9, 0), "skipped", "old batch", "k", "v")))
	if n := tsCount(t, s, "ts_tags"); n != 2 {
		t.Errorf("%d tag rows, want 2", n)
	}
	if n := tsCount(t, s, "ts_events"); n != 3 {
		t.Errorf("%d event rows, want 3", n)
	}

	good := tsAppend(8, "s", tsEvent(tsAt(4, 0), "d", "", "k", "v"))
	err := s.ApplyTimeSeries(ctx, []*prismv1.TimeSeriesChange{good, nil}, 9)
	var ice *postgres.InvalidChangeError
	if !errors.As(err, &ice) || ice.Index != 1 || !ice.Permanent() {
		t.Errorf("err = %v, want a permanent *InvalidChangeError at index 1", err)
	}
	err = s.ApplyTimeSeries(ctx, []*prismv1.TimeSeriesChange{good}, 1<<63)
	if !errors.Is(err, postgres.ErrInvalidBatch) || errors.As(err, &ice) {
		t.Errorf("through above int64: err = %v, want ErrInvalidBatch", err)
	}
	if n := tsCount(t, s, "ts_events"); n != 3 {
		t.Errorf("%d event rows after failed batches, want 3", n)
	}
	if n := tsCount(t, s, "ts_tags"); n != 2 {
		t.Errorf("%d tag rows after failed batches, want 2", n)
	}
}

// A sweep deletes the tag rows of the events it deletes, in chunks.
func TestSweepOlderThan(t *testing.T) {
	s := tsOpen(t)
	ctx := context.Background()
	pre1970 := timestamppb.New(time.Date(1969, 7, 20, 20, 17, 40, 123456789, time.UTC))
	tsApply(t, s, 2,
		tsAppend(1, "s", tsEvent(pre1970, "moon", "", "k", "v")),
		tsAppend(2, "s", tsEvent(tsAt(10, 0), "keep-exact", "", "k", "v"), tsEvent(tsAt(9, 999_999_999), "drop-last", "", "k", "v", "k2", "v2")),
	)
	// 2500 old events in another series: the sweep works in chunks.
	tsFill(t, s, "old", 2500, 3)
	tsApply(t, s, 3000, tsAppend(3000, "new", tsEvent(tsAt(5000, 0), "n", "", "k", "v")))
	eventsBefore, tagsBefore := tsCount(t, s, "ts_events"), tsCount(t, s, "ts_tags")

	n, err := s.SweepOlderThan(ctx, tsAt(10, 0).AsTime())
	if err != nil {
		t.Fatal(err)
	}
	// Every swept event has one tag row, drop-last two.
	if got := tsCount(t, s, "ts_events"); got != eventsBefore-int(n) {
		t.Errorf("%d event rows left after sweeping %d, want %d", got, n, eventsBefore-int(n))
	}
	if got := tsCount(t, s, "ts_tags"); got != tagsBefore-int(n)-1 {
		t.Errorf("%d tag rows left after sweeping %d, want %d", got, n, tagsBefore-int(n)-1)
	}

	// Everything but "new".
	if _, err := s.SweepOlderThan(ctx, tsAt(4000, 0).AsTime()); err != nil {
		t.Fatal(err)
	}
	if got := tsCount(t, s, "ts_events"); got != 1 {
		t.Errorf("%d events left, want 1", got)
	}
	if got := tsCount(t, s, "ts_tags"); got != 1 {
		t.Errorf("%d tag rows left, want 1", got)
	}
}

func TestTimeSeriesReadErrors(t *testing.T) {
	s := tsOpen(t)
	ctx := context.Background()
	tsApply(t, s, 1, tsAppend(1, "s", tsEvent(tsAt(0, 0), "a", ""), tsEvent(tsAt(1, 0), "b", "")))

	tooMany := map[string]string{}
	for i := range 65 {
		tooMany[fmt.Sprint(i)] = "v"
	}
	if _, err := s.Search(ctx, &prismv1.SearchRequest{Tags: tooMany}); !errors.Is(err, postgres.ErrInvalidRequest) {
		t.Errorf("Search by 65 tags: err = %v, want ErrInvalidRequest", err)
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
