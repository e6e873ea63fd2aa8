package sqlite_test

import (
	"context"
	"database/sql"
	"encoding/binary"
	"net/url"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	prismv1 "github.com/prism-data/prism/proto/prism/v1"
)

// The benchmarks write batches of benchBatch puts of one item each: distinct
// 16-byte ids spread over the key space, 100-byte values. One op is one
// batch; rows/s counts items.
const (
	benchBatch = 256
	benchValue = 100
)

// benchID writes the n-th distinct benchmark id into id: n itself for
// sequential ids (appends to the B-trees), or a mix of n first for random
// ones, so inserts land all over the B-trees as real ids do.
func benchID(id []byte, n uint64, random bool) {
	binary.BigEndian.PutUint64(id[8:], n)
	if !random {
		binary.BigEndian.PutUint64(id[:8], 0)
		return
	}
	z := n + 0x9e3779b97f4a7c15
	z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9
	z = (z ^ (z >> 27)) * 0x94d049bb133111eb
	binary.BigEndian.PutUint64(id[:8], z^(z>>31))
}

var idOrders = []struct {
	name   string
	random bool
}{{"ids=sequential", false}, {"ids=random", true}}

// cpuTime returns the CPU time (user and system) the process has used.
func cpuTime(b *testing.B) time.Duration {
	var ru syscall.Rusage
	if err := syscall.Getrusage(syscall.RUSAGE_SELF, &ru); err != nil {
		b.Fatal(err)
	}
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}

// reportRows reports rows/s and the CPU time per batch since start, which
// varies less than wall time on a busy machine.
func reportRows(b *testing.B, start time.Duration) {
	b.ReportMetric(float64(b.N)*benchBatch/b.Elapsed().Seconds(), "rows/s")
	b.ReportMetric(float64(cpuTime(b)-start)/float64(b.N), "cpu-ns/op")
}

// BenchmarkApplyKeyValue measures Store.ApplyKeyValue. Compare with
// BenchmarkRawUpsert (compare best-of-count on a busy machine):
//
//	go test -run '^$' -bench . -benchtime 400x -count 3 ./backends/sqlite/
func BenchmarkApplyKeyValue(b *testing.B) {
	for _, order := range idOrders {
		b.Run(order.name, func(b *testing.B) { benchApplyKeyValue(b, order.random) })
	}
}

func benchApplyKeyValue(b *testing.B, random bool) {
	// Cancellable, as the projector's is.
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	s, _ := openStore(b)

	// The changes are built once and their ids rewritten per batch, so the
	// benchmark measures the store, not protobuf allocation.
	value := make([]byte, benchValue)
	changes := make([]*prismv1.KeyValueChange, benchBatch)
	for i := range changes {
		changes[i] = &prismv1.KeyValueChange{Event: &prismv1.KeyValueEvent{
			Id: make([]byte, 16),
			Change: &prismv1.KeyValueEvent_Put{Put: &prismv1.KeyValuePut{
				Items: []*prismv1.Item{{Key: []byte("k"), Value: value}},
			}},
		}}
	}
	var seq uint64
	start := cpuTime(b)
	b.ResetTimer()
	for b.Loop() {
		for _, c := range changes {
			seq++
			c.Seq = seq
			benchID(c.Event.Id, seq, random)
		}
		if err := s.ApplyKeyValue(ctx, changes, seq); err != nil {
			b.Fatal(err)
		}
	}
	reportRows(b, start)
}

// BenchmarkRawUpsert is the baseline for BenchmarkApplyKeyValue: the same
// rows upserted into one table shaped like the store's items table, with
// the same pragmas, in one transaction per batch and no bookkeeping.
func BenchmarkRawUpsert(b *testing.B) {
	for _, order := range idOrders {
		for _, perStmt := range []int{1, benchBatch} {
			b.Run(order.name+"/rows_per_stmt="+strconv.Itoa(perStmt), func(b *testing.B) {
				benchRawUpsert(b, perStmt, order.random)
			})
		}
	}
}

// openRawDB opens a new database file with the store's pragmas and one
// connection, for the raw baselines.
func openRawDB(b *testing.B) *sql.DB {
	b.Helper()
	u := url.URL{Scheme: "file", Path: filepath.Join(b.TempDir(), "raw.db"), RawQuery: url.Values{
		"_pragma": {"busy_timeout(5000)", "journal_mode(WAL)", "synchronous(NORMAL)", "foreign_keys(OFF)", "cache_size(-32768)", "temp_store(MEMORY)"},
		"_txlock": {"immediate"},
	}.Encode()}
	db, err := sql.Open("sqlite", u.String())
	if err != nil {
		b.Fatal(err)
	}
	b.Cleanup(func() { db.Close() })
	db.SetMaxOpenConns(1)
	return db
}

func benchRawUpsert(b *testing.B, perStmt int, random bool) {
	ctx := context.Background()
	db := openRawDB(b)
	if _, err := db.ExecContext(ctx, `CREATE TABLE items (
		id BLOB NOT NULL, key BLOB NOT NULL, value BLOB NOT NULL,
		expire_sec INTEGER, expire_nanos INTEGER NOT NULL DEFAULT 0,
		PRIMARY KEY (id, key)) WITHOUT ROWID`); err != nil {
		b.Fatal(err)
	}
	group := "(?,?,?,?,?)"
	stmt, err := db.PrepareContext(ctx, `INSERT INTO items (id, key, value, expire_sec, expire_nanos) VALUES `+
		strings.Repeat(group+",", perStmt-1)+group+
		` ON CONFLICT (id, key) DO UPDATE SET value = excluded.value,
		expire_sec = excluded.expire_sec, expire_nanos = excluded.expire_nanos`)
	if err != nil {
		b.Fatal(err)
	}
	b.Cleanup(func() { stmt.Close() })

	value := make([]byte, benchValue)
	key := []byte("k")
	ids := make([][]byte, benchBatch)
	for i := range ids {
		ids[i] = make([]byte, 16)
	}
	args := make([]any, 0, benchBatch*5)
	var n uint64
	start := cpuTime(b)
	b.ResetTimer()
	for b.Loop() {
		args = args[:0]
		for _, id := range ids {
			n++
			benchID(id, n, random)
			args = append(args, id, key, value, nil, int64(0))
		}
		tx, err := db.BeginTx(ctx, nil)
		if err != nil {
			b.Fatal(err)
		}
		st := tx.StmtContext(ctx, stmt)
		for a := args; len(a) > 0; a = a[perStmt*5:] {
			if _, err := st.ExecContext(ctx, a[:perStmt*5]...); err != nil {
				b.Fatal(err)
			}
		}
		if err := tx.Commit(); err != nil {
			b.Fatal(err)
		}
	}
	reportRows(b, start)
}
