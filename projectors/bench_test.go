package projectors_test

import (
	"context"
	"database/sql"
	"fmt"
	"net/url"
	"path/filepath"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
	"google.golang.org/protobuf/types/known/timestamppb"
	_ "modernc.org/sqlite"

	"github.com/prism-data/prism/backends/postgres"
	"github.com/prism-data/prism/backends/postgres/pgtest"
	"github.com/prism-data/prism/backends/sqlite"
	"github.com/prism-data/prism/projectors"
	prismv1 "github.com/prism-data/prism/proto/prism/v1"
	"github.com/prism-data/prism/subjects"
)

// The benchmarks write benchEvents puts of one item each: distinct ids,
// key "k", benchValue-byte values (or as many TimeSeries appends). Compare:
//
//	go test -run '^$' -bench 'ProjectSQLite|RawSQLiteUpsert' -benchtime 3x ./projectors/
//	go test -run '^$' -bench 'ProjectPostgres|RawPostgresUpsert' -benchtime 3x ./projectors/
//	go test -run '^$' -bench 'ProjectTimeSeries' -benchtime 3x ./projectors/
const (
	benchEvents = 50_000
	benchValue  = 100
	benchBatch  = 256
)

func benchID(i int) []byte { return fmt.Appendf(nil, "rec-%08d", i) }

// publishKeyValue puts benchEvents puts on the stream and returns the last
// sequence.
func publishKeyValue(b *testing.B, js jetstream.JetStream) uint64 {
	b.Helper()
	value := make([]byte, benchValue)
	return publishAll(b, js, func(i int) (*nats.Msg, error) {
		return subjects.NewKeyValueEvent(subjects.EventMeta{Namespace: testNS}, &prismv1.KeyValueEvent{
			Id:     benchID(i),
			Change: &prismv1.KeyValueEvent_Put{Put: &prismv1.KeyValuePut{Items: []*prismv1.Item{{Key: []byte("k"), Value: value}}}},
		})
	})
}

// publishTimeSeries puts benchEvents appends of one event (100 series, two
// tags, benchValue-byte payloads) on the stream and returns the last
// sequence.
func publishTimeSeries(b *testing.B, js jetstream.JetStream) uint64 {
	b.Helper()
	payload := make([]byte, benchValue)
	base := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
	return publishAll(b, js, func(i int) (*nats.Msg, error) {
		series := fmt.Appendf(nil, "series-%03d", i%100)
		return subjects.NewTimeSeriesEvent(subjects.EventMeta{Namespace: testNS}, &prismv1.TimeSeriesAppend{
			SeriesId: series,
			Events: []*prismv1.TimeSeriesEvent{{
				EventTime: timestamppb.New(base.Add(time.Duration(i) * time.Millisecond)),
				EventId:   []byte("e"),
				Tags:      map[string]string{"host": fmt.Sprint("h", i%10), "region": "eu"},
				Payload:   payload,
			}},
		})
	})
}

func publishAll(b *testing.B, js jetstream.JetStream, event func(i int) (*nats.Msg, error)) uint64 {
	b.Helper()
	for i := range benchEvents {
		msg, err := event(i)
		if err != nil {
			b.Fatal(err)
		}
		if _, err := js.PublishMsgAsync(msg); err != nil {
			b.Fatal(err)
		}
	}
	select {
	case <-js.PublishAsyncComplete():
	case <-time.After(time.Minute):
		b.Fatal("publish timed out")
	}
	s, err := js.Stream(context.Background(), subjects.Stream(testNS))
	if err != nil {
		b.Fatal(err)
	}
	last := s.CachedInfo().State.LastSeq
	if last != benchEvents {
		b.Fatalf("stream holds %d events, want %d", last, benchEvents)
	}
	return last
}

// benchProjection times, per iteration, a fresh projector (newProjector)
// catching up to seq last from an empty target, and reports events/s. The
// projector's target is set up and torn down outside the timer.
func benchProjection(b *testing.B, last uint64, newProjector func(i int) (*projectors.Projector, func())) {
	b.Helper()
	ctx := context.Background()
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		b.StopTimer()
		p, done := newProjector(i)
		b.StartTimer()

		if err := p.Start(ctx); err != nil {
			b.Fatal(err)
		}
		wctx, cancel := context.WithTimeout(ctx, 5*time.Minute)
		if err := p.WaitApplied(wctx, last); err != nil {
			b.Fatal(err)
		}
		cancel()
		if err := p.Stop(ctx); err != nil {
			b.Fatal(err)
		}

		b.StopTimer()
		done()
		b.StartTimer()
	}
	b.ReportMetric(float64(b.N)*benchEvents/b.Elapsed().Seconds(), "events/s")
}

// BenchmarkProjectSQLite measures a projector catching up from an empty
// SQLite store on a stream that already holds benchEvents puts: the events
// are published once, each iteration projects them all into a fresh store
// through a fresh consumer.
func BenchmarkProjectSQLite(b *testing.B) {
	js := startJetStream(b)
	last := publishKeyValue(b, js)
	benchProjection(b, last, func(i int) (*projectors.Projector, func()) {
		st, err := sqlite.Open(context.Background(), filepath.Join(b.TempDir(), "kv.db"))
		if err != nil {
			b.Fatal(err)
		}
		p, err := projectors.New(js, testNS, fmt.Sprintf("bench%d", i), st, projectors.WithLogger(testLogger(b)))
		if err != nil {
			b.Fatal(err)
		}
		return p, func() { st.Close() }
	})
}

// BenchmarkProjectPostgres is BenchmarkProjectSQLite into PostgreSQL, each
// iteration into a fresh schema. Compare with BenchmarkRawPostgresUpsert.
func BenchmarkProjectPostgres(b *testing.B) {
	js := startJetStream(b)
	last := publishKeyValue(b, js)
	dsn := pgtest.DSN(b)
	benchProjection(b, last, func(i int) (*projectors.Projector, func()) {
		st, err := postgres.Open(context.Background(), dsn, pgtest.Namespace(b, "bench-"))
		if err != nil {
			b.Fatal(err)
		}
		p, err := projectors.New(js, testNS, fmt.Sprintf("bench%d", i), st, projectors.WithLogger(testLogger(b)))
		if err != nil {
			b.Fatal(err)
		}
		return p, func() { st.Close() }
	})
}

// BenchmarkRawPostgresUpsert is the floor for BenchmarkProjectPostgres: the
// same rows upserted into one (id, key, value) table with the fastest raw
// method measured here, one unnest INSERT ... ON CONFLICT of 256 rows per
// transaction.
func BenchmarkRawPostgresUpsert(b *testing.B) {
	ctx := context.Background()
	dsn := pgtest.DSN(b)
	conn, err := pgx.Connect(ctx, dsn)
	if err != nil {
		b.Fatal(err)
	}
	defer conn.Close(ctx)
	table := pgx.Identifier{"bench_raw_" + fmt.Sprint(time.Now().UnixNano())}.Sanitize()
	if _, err := conn.Exec(ctx, "CREATE TABLE "+table+" (id bytea, key bytea, value bytea, PRIMARY KEY (id, key))"); err != nil {
		b.Fatal(err)
	}
	defer conn.Exec(ctx, "DROP TABLE "+table)
	value := make([]byte, benchValue)
	ids := make([][]byte, benchEvents)
	keys := make([][]byte, benchEvents)
	values := make([][]byte, benchEvents)
	for i := range ids {
		ids[i], keys[i], values[i] = benchID(i), []byte("k"), value
	}
	upsert := "INSERT INTO " + table + " (id, key, value) SELECT * FROM unnest($1::bytea[], $2::bytea[], $3::bytea[]) " +
		"ON CONFLICT (id, key) DO UPDATE SET value = excluded.value"
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		b.StopTimer()
		if _, err := conn.Exec(ctx, "TRUNCATE "+table); err != nil {
			b.Fatal(err)
		}
		b.StartTimer()
		for start := 0; start < len(ids); start += benchBatch {
			end := min(start+benchBatch, len(ids))
			if _, err := conn.Exec(ctx, upsert, ids[start:end], keys[start:end], values[start:end]); err != nil {
				b.Fatal(err)
			}
		}
	}
	b.ReportMetric(float64(b.N)*benchEvents/b.Elapsed().Seconds(), "rows/s")
}

// timeSeriesStore is what BenchmarkProjectTimeSeries needs of a backend.
type timeSeriesStore interface {
	projectors.TimeSeriesTarget
	Close() error
}

// BenchmarkProjectTimeSeries measures TimeSeries append+project: a
// projector catching up on benchEvents appends into each backend.
func BenchmarkProjectTimeSeries(b *testing.B) {
	backends := []struct {
		name string
		open func(b *testing.B) any
	}{
		{"sqlite", func(b *testing.B) any {
			st, err := sqlite.Open(context.Background(), filepath.Join(b.TempDir(), "ts.db"))
			if err != nil {
				b.Fatal(err)
			}
			return st
		}},
		{"postgres", func(b *testing.B) any {
			st, err := postgres.Open(context.Background(), pgtest.DSN(b), pgtest.Namespace(b, "bench-"))
			if err != nil {
				b.Fatal(err)
			}
			return st
		}},
	}
	for _, be := range backends {
		b.Run(be.name, func(b *testing.B) {
			js := startJetStream(b)
			last := publishTimeSeries(b, js)
			benchProjection(b, last, func(i int) (*projectors.Projector, func()) {
				st, ok := be.open(b).(timeSeriesStore)
				if !ok {
					b.Skipf("backend %s does not serve TimeSeries", be.name)
				}
				p, err := projectors.NewTimeSeries(js, testNS, fmt.Sprintf("bench%d", i), st, projectors.WithLogger(testLogger(b)))
				if err != nil {
					b.Fatal(err)
				}
				return p, func() { st.Close() }
			})
		})
	}
}

// BenchmarkRawSQLiteUpsert is the floor for BenchmarkProjectSQLite: the same
// rows upserted straight into one (id, key, value) WITHOUT ROWID table with
// a prepared single-row INSERT ... ON CONFLICT, one transaction per 256
// rows, same pragmas as the SQLite store, no stream, no protobuf.
func BenchmarkRawSQLiteUpsert(b *testing.B) {
	ctx := context.Background()
	value := make([]byte, benchValue)
	ids := make([][]byte, benchEvents)
	for i := range ids {
		ids[i] = benchID(i)
	}
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		b.StopTimer()
		db := openRaw(b, filepath.Join(b.TempDir(), "raw.db"))
		stmt, err := db.PrepareContext(ctx, `INSERT INTO items (id, key, value) VALUES (?, ?, ?)
			ON CONFLICT (id, key) DO UPDATE SET value = excluded.value`)
		if err != nil {
			b.Fatal(err)
		}
		b.StartTimer()

		for start := 0; start < len(ids); start += benchBatch {
			tx, err := db.BeginTx(ctx, nil)
			if err != nil {
				b.Fatal(err)
			}
			txStmt := tx.StmtContext(ctx, stmt)
			for _, id := range ids[start:min(start+benchBatch, len(ids))] {
				if _, err := txStmt.ExecContext(ctx, id, []byte("k"), value); err != nil {
					b.Fatal(err)
				}
			}
			if err := tx.Commit(); err != nil {
				b.Fatal(err)
			}
		}

		b.StopTimer()
		stmt.Close()
		db.Close()
		b.StartTimer()
	}
	b.ReportMetric(float64(b.N)*benchEvents/b.Elapsed().Seconds(), "rows/s")
}

func openRaw(tb testing.TB, path string) *sql.DB {
	tb.Helper()
	u := url.URL{Scheme: "file", Path: filepath.ToSlash(path), RawQuery: url.Values{
		"_pragma": {"busy_timeout(5000)", "journal_mode(WAL)", "synchronous(NORMAL)", "cache_size(-32768)", "temp_store(MEMORY)"},
		"_txlock": {"immediate"},
	}.Encode()}
	db, err := sql.Open("sqlite", u.String())
	if err != nil {
		tb.Fatal(err)
	}
	db.SetMaxOpenConns(1)
	if _, err := db.Exec(`CREATE TABLE items (id BLOB NOT NULL, key BLOB NOT NULL, value BLOB NOT NULL,
		PRIMARY KEY (id, key)) WITHOUT ROWID`); err != nil {
		tb.Fatal(err)
	}
	return db
}
