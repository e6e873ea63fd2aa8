package projectors_test

import (
	"context"
	"database/sql"
	"fmt"
	"net/url"
	"path/filepath"
	"testing"
	"time"

	_ "modernc.org/sqlite"

	"github.com/prism-data/prism/backends/sqlite"
	"github.com/prism-data/prism/projectors"
	prismv1 "github.com/prism-data/prism/proto/prism/v1"
	"github.com/prism-data/prism/subjects"
)

// The benchmarks write benchEvents puts of one item each: distinct ids,
// key "k", benchValue-byte values. Compare:
//
//	go test -run '^$' -bench 'ProjectSQLite|RawSQLiteUpsert' -benchtime 3x ./projectors/
const (
	benchEvents = 50_000
	benchValue  = 100
	benchBatch  = 256
)

func benchID(i int) []byte { return fmt.Appendf(nil, "rec-%08d", i) }

// BenchmarkProjectSQLite measures a projector catching up from an empty
// SQLite store on a stream that already holds benchEvents puts: the events
// are published once, each iteration projects them all into a fresh store
// through a fresh consumer.
func BenchmarkProjectSQLite(b *testing.B) {
	js := startJetStream(b)
	ctx := context.Background()
	value := make([]byte, benchValue)
	var last uint64
	for i := range benchEvents {
		msg, err := subjects.NewKeyValueEvent(subjects.EventMeta{Namespace: testNS}, &prismv1.KeyValueEvent{
			Id:     benchID(i),
			Change: &prismv1.KeyValueEvent_Put{Put: &prismv1.KeyValuePut{Items: []*prismv1.Item{{Key: []byte("k"), Value: value}}}},
		})
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
	s, err := js.Stream(ctx, subjects.Stream(testNS))
	if err != nil {
		b.Fatal(err)
	}
	last = s.CachedInfo().State.LastSeq
	if last != benchEvents {
		b.Fatalf("stream holds %d events, want %d", last, benchEvents)
	}

	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		b.StopTimer()
		st, err := sqlite.Open(ctx, filepath.Join(b.TempDir(), "kv.db"))
		if err != nil {
			b.Fatal(err)
		}
		p, err := projectors.New(js, testNS, fmt.Sprintf("bench%d", i), st, projectors.WithLogger(testLogger(b)))
		if err != nil {
			b.Fatal(err)
		}
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
		st.Close()
		b.StartTimer()
	}
	b.ReportMetric(float64(b.N)*benchEvents/b.Elapsed().Seconds(), "events/s")
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
		"_pragma": {"busy_timeout(5000)", "journal_mode(WAL)", "synchronous(NORMAL)"},
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
