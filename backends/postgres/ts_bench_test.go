package postgres_test

import (
	"context"
	"fmt"
	"math/rand/v2"
	"slices"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"
	"google.golang.org/protobuf/types/known/timestamppb"

	prismv1 "github.com/prism-data/prism/proto/prism/v1"
)

// BenchmarkApplyTimeSeries measures Store.ApplyTimeSeries: one op is a batch
// of 256 appends of one event each (100-byte payload, two tags) spread over
// 100 series; rows/s counts events.
//
//	go test -run '^$' -bench 'TimeSeries|ReadRange1k' -benchtime 400x -count 3 ./backends/postgres/
func BenchmarkApplyTimeSeries(b *testing.B) {
	const batch, series = 256, 100
	ctx := context.Background()
	s := tsOpen(b)
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
	s := tsOpen(b)
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
	// Measure the steady state: without this, autovacuum's first pass
	// over the fresh table competes with the reads (p99 20-50 ms here).
	if _, err := rawConn(b).Exec(ctx, "VACUUM ANALYZE "+pgx.Identifier{s.Schema(), "ts_events"}.Sanitize()); err != nil {
		b.Fatal(err)
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
	reportLatency(b, lat)
}

// BenchmarkSearchTag compares the two ways to index tags for equality
// search, for the query "host=<h> in a time range across series": the
// store's ts_tags table (one row per tag, scanned in time order) and a GIN
// index (jsonb_path_ops) on a jsonb copy of the tags, with the same time
// index, in a table filled with the same 100,000 events of 100 series.
// host matches 1 event in 10, rare 1 in 1000; the range covers half the
// events; one op reads one 100-event page at a random place of the range.
func BenchmarkSearchTag(b *testing.B) {
	const events, series = 100_000, 100
	ctx := context.Background()
	s := tsOpen(b)
	payload := make([]byte, 100)
	gin := pgx.Identifier{s.Schema(), "gin_events"}.Sanitize()
	conn := rawConn(b)
	if _, err := conn.Exec(ctx, `CREATE TABLE `+gin+` (series_id bytea NOT NULL, time_s bigint NOT NULL,
		time_ns integer NOT NULL, event_id bytea NOT NULL, tags jsonb, payload bytea NOT NULL,
		PRIMARY KEY (series_id, time_s, time_ns, event_id))`); err != nil {
		b.Fatal(err)
	}
	var ginRows [][]any
	var seq uint64
	for n := 0; n < events; {
		var changes []*prismv1.TimeSeriesChange
		for range 1000 {
			seq++
			tags := map[string]string{"host": fmt.Sprintf("h%d", n%10), "region": fmt.Sprintf("r%d", n%3)}
			if n%1000 == 7 {
				tags["rare"] = "yes"
			}
			ev := &prismv1.TimeSeriesEvent{EventTime: tsAt(int64(n/series), int64(n%series)), EventId: fmt.Appendf(nil, "e%08d", n), Tags: tags, Payload: payload}
			sid := fmt.Appendf(nil, "series-%03d", n%series)
			changes = append(changes, &prismv1.TimeSeriesChange{Seq: seq, Append: &prismv1.TimeSeriesAppend{SeriesId: sid, Events: []*prismv1.TimeSeriesEvent{ev}}})
			ginRows = append(ginRows, []any{sid, ev.EventTime.Seconds, ev.EventTime.Nanos, ev.EventId, tags, payload})
			n++
		}
		tsApply(b, s, seq, changes...)
	}
	if _, err := conn.CopyFrom(ctx, pgx.Identifier{s.Schema(), "gin_events"},
		[]string{"series_id", "time_s", "time_ns", "event_id", "tags", "payload"}, pgx.CopyFromRows(ginRows)); err != nil {
		b.Fatal(err)
	}
	if _, err := conn.Exec(ctx, `CREATE INDEX ON `+gin+` USING gin (tags jsonb_path_ops);
		CREATE INDEX ON `+gin+` (time_s, time_ns, series_id, event_id);
		ANALYZE `+gin+`; ANALYZE `+pgx.Identifier{s.Schema(), "ts_events"}.Sanitize()+`;
		ANALYZE `+pgx.Identifier{s.Schema(), "ts_tags"}.Sanitize()); err != nil {
		b.Fatal(err)
	}
	ginSQL := `SELECT series_id, time_s, time_ns, event_id, tags, payload FROM ` + gin + `
		WHERE tags @> $1 AND (time_s, time_ns, series_id, event_id) >= ($2, $3, $4, $5)
		AND (time_s, time_ns) < ($6, $7)
		ORDER BY time_s, time_ns, series_id, event_id LIMIT 100`
	lastSec := int64(events / series)
	for _, tag := range [][2]string{{"host", "h1"}, {"rare", "yes"}} {
		for _, method := range []string{"tags-table", "gin-jsonb"} {
			b.Run(fmt.Sprintf("tag=%s/method=%s", tag[0], method), func(b *testing.B) {
				rng := rand.New(rand.NewPCG(1, 2))
				var lat []time.Duration
				for b.Loop() {
					// A page starting at a random place of the second half.
					from := lastSec/2 + rng.Int64N(lastSec/2)
					start := time.Now()
					var got int
					if method == "tags-table" {
						resp, err := s.Search(ctx, &prismv1.SearchRequest{
							Tags:  map[string]string{tag[0]: tag[1]},
							Range: &prismv1.TimeRange{Start: tsAt(from, 0), End: tsAt(lastSec, 0)},
						})
						if err != nil {
							b.Fatal(err)
						}
						got = len(resp.GetEvents())
					} else {
						at := tsAt(from, 0)
						rows, err := conn.Query(ctx, ginSQL, map[string]string{tag[0]: tag[1]},
							at.Seconds, at.Nanos, []byte{}, []byte{}, tsAt(lastSec, 0).Seconds, int32(0))
						if err != nil {
							b.Fatal(err)
						}
						for rows.Next() {
							var ev prismv1.TimeSeriesEvent
							var sid []byte
							ev.EventTime = &timestamppb.Timestamp{}
							if err := rows.Scan(&sid, &ev.EventTime.Seconds, &ev.EventTime.Nanos, &ev.EventId, &ev.Tags, &ev.Payload); err != nil {
								b.Fatal(err)
							}
							got++
						}
						if err := rows.Err(); err != nil {
							b.Fatal(err)
						}
					}
					lat = append(lat, time.Since(start))
					if got == 0 && tag[0] == "host" {
						b.Fatal("no events found")
					}
				}
				reportLatency(b, lat)
			})
		}
	}
}

// reportLatency reports the p50 and p99 of lat.
func reportLatency(b *testing.B, lat []time.Duration) {
	slices.Sort(lat)
	q := func(p float64) float64 { return float64(lat[int(p*float64(len(lat)-1))].Microseconds()) }
	b.ReportMetric(q(0.50), "p50-µs")
	b.ReportMetric(q(0.99), "p99-µs")
}
