package sqlite_test

import (
	"bytes"
	"context"
	"database/sql"
	"encoding/base64"
	"errors"
	"fmt"
	"maps"
	"math/rand/v2"
	"slices"
	"testing"
	"time"

	"google.golang.org/protobuf/types/known/timestamppb"

	"github.com/prism-data/prism/backends/sqlite"
	prismv1 "github.com/prism-data/prism/proto/prism/v1"
)

// The semantics of the TimeSeries methods (checkpoints, idempotent appends,
// ranges, ordering, pagination, search, retention, invalid changes, times,
// ids, payloads, persistence, concurrency, Close) are checked by the
// conformance suite (conformance_test.go); these tests cover what is
// SQLite's own: the tag index rows, the page token format, the error type
// and limits, and the tag encoding.

// tsBase is the event time the tests count from.
var tsBase = time.Unix(1_700_000_000, 0).UTC()

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

func tsApply(t testing.TB, s *sqlite.Store, through uint64, changes ...*prismv1.TimeSeriesChange) {
	t.Helper()
	if err := s.ApplyTimeSeries(context.Background(), changes, through); err != nil {
		t.Fatalf("ApplyTimeSeries(through %d): %v", through, err)
	}
}

// The tag index (ts_tags) holds one row per tag of every stored event and
// nothing else: not the tags of duplicates, of skipped changes or of swept
// events.
func TestTimeSeriesTagRows(t *testing.T) {
	at := tsAt(1, 5)
	pre1970 := timestamppb.New(time.Date(1969, 7, 20, 20, 17, 40, 123456789, time.UTC))
	tests := []struct {
		name     string
		apply    func(t *testing.T, s *sqlite.Store, db *sql.DB)
		wantTags int
	}{
		{"duplicates in a batch and across batches", func(t *testing.T, s *sqlite.Store, _ *sql.DB) {
			tsApply(t, s, 2,
				tsAppend(1, "s", tsEvent(at, "e", "first", "k", "v1")),
				tsAppend(2, "s", tsEvent(at, "e", "second", "k", "v2"), tsEvent(at, "f", "other id")),
			)
			tsApply(t, s, 3, tsAppend(3, "s", tsEvent(at, "e", "third", "k", "v3", "x", "y")))
		}, 1},
		{"same tags again", func(t *testing.T, s *sqlite.Store, _ *sql.DB) {
			tsApply(t, s, 1, tsAppend(1, "s", tsEvent(at, "e", "first", "k", "v", "x", "y")))
			tsApply(t, s, 2, tsAppend(2, "s", tsEvent(at, "e", "again", "x", "y", "k", "v"), tsEvent(at, "f", "", "k", "v")))
		}, 3},
		{"replay and skipped changes", func(t *testing.T, s *sqlite.Store, _ *sql.DB) {
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
		}, 2},
		{"swept in chunks", func(t *testing.T, s *sqlite.Store, db *sql.DB) {
			tsApply(t, s, 2,
				tsAppend(1, "s", tsEvent(pre1970, "moon", "", "k", "v")),
				tsAppend(2, "s", tsEvent(tsAt(10, 0), "keep-exact", "", "k", "v"), tsEvent(tsAt(9, 999_999_999), "drop-last", "", "k", "v", "k2", "v2")),
			)
			// 2500 events, more than one chunk of the sweep.
			var changes []*prismv1.TimeSeriesChange
			for i := range 2500 {
				changes = append(changes, tsAppend(uint64(3+i), "old", tsEvent(tsAt(int64(i/2), 0), fmt.Sprint(i), "", "parity", fmt.Sprint(i%2))))
			}
			tsApply(t, s, 3000, changes...)
			tsApply(t, s, 3001, tsAppend(3001, "new", tsEvent(tsAt(5000, 0), "n", "", "k", "v")))
			if got := count(t, db, "ts_tags"); got != 4+2500+1 {
				t.Fatalf("%d tag rows before the sweeps, want %d", got, 4+2500+1)
			}
			// The moon, drop-last and the first 20 old events go.
			n, err := s.SweepOlderThan(context.Background(), tsAt(10, 0).AsTime())
			if err != nil || n != 2+20 {
				t.Fatalf("first sweep: %d, %v; want 22", n, err)
			}
			if got, want := count(t, db, "ts_tags"), 4+2500+1-(1+2+20); got != want {
				t.Errorf("%d tag rows after the first sweep, want %d", got, want)
			}
			n, err = s.SweepOlderThan(context.Background(), tsAt(4000, 0).AsTime())
			if err != nil || n != 1+2480 {
				t.Fatalf("second sweep: %d, %v; want 2481", n, err)
			}
			if got := count(t, db, "ts_events"); got != 1 {
				t.Errorf("%d events left, want 1", got)
			}
		}, 1},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			s, path := openStore(t)
			db := rawDB(t, path)
			tt.apply(t, s, db)
			if n := count(t, db, "ts_tags"); n != tt.wantTags {
				t.Errorf("%d tag rows, want %d", n, tt.wantTags)
			}
		})
	}
}

// An *InvalidChangeError says which change of the batch is at fault, for the
// dead-letter record.
func TestTimeSeriesInvalidChangeErrorNamesTheChange(t *testing.T) {
	good := tsAppend(1, "s", tsEvent(tsAt(0, 0), "ok", ""))
	bad := func(mutate func(c *prismv1.TimeSeriesChange)) *prismv1.TimeSeriesChange {
		c := tsAppend(2, "s", tsEvent(tsAt(1, 0), "id", ""))
		mutate(c)
		return c
	}
	tests := []struct {
		name    string
		bad     *prismv1.TimeSeriesChange
		wantSeq uint64
	}{
		{"nil change", nil, 0},
		{"nil append", bad(func(c *prismv1.TimeSeriesChange) { c.Append = nil }), 2},
		{"empty series id", bad(func(c *prismv1.TimeSeriesChange) { c.Append.SeriesId = nil }), 2},
		{"nil event", bad(func(c *prismv1.TimeSeriesChange) { c.Append.Events = append(c.Append.Events, nil) }), 2},
		{"no event time", bad(func(c *prismv1.TimeSeriesChange) { c.Append.Events[0].EventTime = nil }), 2},
		{"invalid event time", bad(func(c *prismv1.TimeSeriesChange) {
			c.Append.Events[0].EventTime = &timestamppb.Timestamp{Nanos: 1e9}
		}), 2},
		{"empty event id", bad(func(c *prismv1.TimeSeriesChange) { c.Append.Events[0].EventId = nil }), 2},
		{"event id of 257 bytes", bad(func(c *prismv1.TimeSeriesChange) {
			c.Append.Events[0].EventId = bytes.Repeat([]byte{'x'}, 257)
		}), 2},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			s, _ := openStore(t)
			err := s.ApplyTimeSeries(context.Background(), []*prismv1.TimeSeriesChange{good, tt.bad, tsAppend(3, "t", tsEvent(tsAt(0, 0), "x", ""))}, 3)
			var ice *sqlite.InvalidChangeError
			if !errors.As(err, &ice) || ice.Index != 1 || ice.Seq != tt.wantSeq || ice.Reason == "" {
				t.Fatalf("err = %#v, want *InvalidChangeError at index 1 seq %d with a reason", err, tt.wantSeq)
			}
			if !ice.Permanent() {
				t.Error("InvalidChangeError is not permanent")
			}
		})
	}
}

// SQLite stores sequences as int64: a through beyond it is the caller's bug.
func TestApplyTimeSeriesThroughBeyondInt64(t *testing.T) {
	s, _ := openStore(t)
	err := s.ApplyTimeSeries(context.Background(), []*prismv1.TimeSeriesChange{tsAppend(2, "s", tsEvent(tsAt(1, 0), "id", ""))}, 1<<63)
	if !errors.Is(err, sqlite.ErrInvalidBatch) {
		t.Fatalf("err = %v, want ErrInvalidBatch", err)
	}
	var ice *sqlite.InvalidChangeError
	if errors.Is(err, sqlite.ErrInvalidChange) || errors.As(err, &ice) {
		t.Fatalf("err = %v is blamed on a change: the caller would dead-letter good events", err)
	}
	if cp := checkpoint(t, s); cp != 0 {
		t.Errorf("checkpoint = %d, want 0", cp)
	}
}

// Page tokens are base64url of a kind byte, the time and the ids: a token
// of the wrong kind, of another series or malformed is refused.
func TestTimeSeriesPageTokens(t *testing.T) {
	s, _ := openStore(t)
	ctx := context.Background()
	tsApply(t, s, 2,
		tsAppend(1, "s", tsEvent(tsAt(0, 0), "a", ""), tsEvent(tsAt(1, 0), "b", "")),
		tsAppend(2, "t", tsEvent(tsAt(0, 0), "a", ""), tsEvent(tsAt(1, 0), "b", "")),
	)
	first, err := s.ReadRange(ctx, &prismv1.ReadRangeRequest{SeriesId: []byte("s"), PageSize: 1})
	if err != nil || first.GetNextPageToken() == "" {
		t.Fatalf("ReadRange: %v, %v", first, err)
	}
	searchFirst, err := s.Search(ctx, &prismv1.SearchRequest{SeriesId: []byte("s"), PageSize: 1})
	if err != nil || searchFirst.GetNextPageToken() == "" {
		t.Fatalf("Search: %v, %v", searchFirst, err)
	}
	otherSeries, err := s.Search(ctx, &prismv1.SearchRequest{SeriesId: []byte("t"), PageSize: 1})
	if err != nil || otherSeries.GetNextPageToken() == "" {
		t.Fatalf("Search: %v, %v", otherSeries, err)
	}
	enc := base64.RawURLEncoding.EncodeToString
	for name, token := range map[string]string{
		"not base64":       "!!!",
		"padded base64":    enc([]byte("r")) + "==",
		"too short":        enc([]byte("r1234")),
		"unknown kind":     enc(append([]byte("x"), make([]byte, 13)...)),
		"no event id":      enc(append([]byte("r"), make([]byte, 12)...)),
		"nanos too large":  enc(append(append([]byte("r"), 0, 0, 0, 0, 0, 0, 0, 0, 0x3b, 0x9a, 0xca, 0x00), 'a')),
		"search token":     searchFirst.GetNextPageToken(),
		"key-value token":  enc([]byte("some-key")),
		"event id too big": enc(append(append([]byte("r"), make([]byte, 12)...), bytes.Repeat([]byte{'a'}, 257)...)),
	} {
		t.Run("ReadRange/"+name, func(t *testing.T) {
			_, err := s.ReadRange(ctx, &prismv1.ReadRangeRequest{SeriesId: []byte("s"), PageToken: token})
			if !errors.Is(err, sqlite.ErrInvalidPageToken) {
				t.Errorf("err = %v, want ErrInvalidPageToken", err)
			}
		})
	}
	for name, token := range map[string]string{
		"range token":           first.GetNextPageToken(),
		"not base64":            "%%",
		"token of other series": otherSeries.GetNextPageToken(),
	} {
		t.Run("Search/"+name, func(t *testing.T) {
			_, err := s.Search(ctx, &prismv1.SearchRequest{SeriesId: []byte("s"), PageToken: token})
			if !errors.Is(err, sqlite.ErrInvalidPageToken) {
				t.Errorf("err = %v, want ErrInvalidPageToken", err)
			}
		})
	}
}

// A search names at most 64 tags, so its query stays far below SQLite's
// limit on bound parameters.
func TestSearchTooManyTags(t *testing.T) {
	s, _ := openStore(t)
	tooMany := map[string]string{}
	for i := range 65 {
		tooMany[fmt.Sprint(i)] = "v"
	}
	if _, err := s.Search(context.Background(), &prismv1.SearchRequest{Tags: tooMany}); !errors.Is(err, sqlite.ErrInvalidRequest) {
		t.Errorf("err = %v, want ErrInvalidRequest", err)
	}
}

// The tags column encodes any strings, even an empty key (which the gateway
// refuses) and zero bytes.
func TestTagEncodingRoundTrip(t *testing.T) {
	s, _ := openStore(t)
	tags := map[string]string{"": "", "ключ": "значение\x00", "i": "8", "\x00": "\x00\x00"}
	tsApply(t, s, 1, tsAppend(1, "s", &prismv1.TimeSeriesEvent{EventTime: tsAt(0, 0), EventId: []byte("e"), Tags: tags}))
	resp, err := s.ReadRange(context.Background(), &prismv1.ReadRangeRequest{SeriesId: []byte("s")})
	if err != nil || len(resp.GetEvents()) != 1 {
		t.Fatalf("ReadRange = %v, %v; want one event", resp, err)
	}
	if got := resp.GetEvents()[0].GetEvent().GetTags(); !maps.Equal(got, tags) {
		t.Errorf("tags %q, want %q", got, tags)
	}
	for k, v := range tags {
		resp, err := s.Search(context.Background(), &prismv1.SearchRequest{Tags: map[string]string{k: v}})
		if err != nil || len(resp.GetEvents()) != 1 {
			t.Errorf("Search %q=%q = %v, %v; want the event", k, v, resp, err)
		}
	}
}

// BenchmarkApplyTimeSeries measures Store.ApplyTimeSeries: one op is a batch
// of 256 appends of one event each (100-byte payload, two tags) spread over
// 100 series; rows/s counts events.
//
//	go test -run '^$' -bench 'TimeSeries|ReadRange1k' -benchtime 400x -count 3 ./backends/sqlite/
func BenchmarkApplyTimeSeries(b *testing.B) {
	const batch, series = 256, 100
	ctx := context.Background()
	s, _ := openStore(b)
	payload := make([]byte, 100)
	changes := make([]*prismv1.TimeSeriesChange, batch)
	for i := range changes {
		changes[i] = tsAppend(0, fmt.Sprintf("series-%03d", i%series), &prismv1.TimeSeriesEvent{
			EventTime: &timestamppb.Timestamp{},
			EventId:   []byte("event-0000000000"),
			Payload:   payload,
			Tags:      map[string]string{"host": fmt.Sprintf("host-%d", i%10), "region": fmt.Sprintf("region-%d", i%3)},
		})
	}
	var seq uint64
	for b.Loop() {
		for _, c := range changes {
			seq++
			c.Seq = seq
			ev := c.Append.Events[0]
			ev.EventTime.Seconds = tsBase.Unix() + int64(seq/10)
			ev.EventTime.Nanos = int32(seq % 10 * 1000)
			ev.EventId = fmt.Appendf(ev.EventId[:0], "event-%010d", seq)
		}
		if err := s.ApplyTimeSeries(ctx, changes, seq); err != nil {
			b.Fatal(err)
		}
	}
	b.ReportMetric(float64(b.N)*batch/b.Elapsed().Seconds(), "events/s")
}

// BenchmarkReadRange1k measures ReadRange of 1000-event pages at random
// places of a 100,000-event series, and reports the p50 and p99 latency.
func BenchmarkReadRange1k(b *testing.B) {
	const events, page = 100_000, 1000
	ctx := context.Background()
	s, _ := openStore(b)
	payload := make([]byte, 100)
	for seq := uint64(1); seq <= events/page; seq++ {
		app := tsAppend(seq, "series")
		for i := range page {
			n := int64(seq-1)*page + int64(i)
			app.Append.Events = append(app.Append.Events, &prismv1.TimeSeriesEvent{
				EventTime: tsAt(n, 0),
				EventId:   fmt.Appendf(nil, "event-%010d", n),
				Payload:   payload,
				Tags:      map[string]string{"host": fmt.Sprintf("host-%d", n%10), "region": fmt.Sprintf("region-%d", n%3)},
			})
		}
		tsApply(b, s, seq, app)
	}
	rng := rand.New(rand.NewPCG(1, 2))
	var lat []time.Duration
	for b.Loop() {
		req := &prismv1.ReadRangeRequest{
			SeriesId:   []byte("series"),
			Range:      &prismv1.TimeRange{Start: tsAt(rng.Int64N(events-page), 0)},
			PageSize:   page,
			Descending: rng.IntN(2) == 1,
		}
		start := time.Now()
		resp, err := s.ReadRange(ctx, req)
		lat = append(lat, time.Since(start))
		if err != nil {
			b.Fatal(err)
		}
		if len(resp.GetEvents()) != page && !req.Descending {
			b.Fatalf("%d events, want %d", len(resp.GetEvents()), page)
		}
	}
	slices.Sort(lat)
	q := func(p float64) float64 { return float64(lat[int(p*float64(len(lat)-1))].Microseconds()) }
	b.ReportMetric(q(0.50), "p50-µs")
	b.ReportMetric(q(0.99), "p99-µs")
}
