package postgres_test

import (
	"context"
	"encoding/binary"
	"syscall"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgtype"

	prismv1 "github.com/prism-data/prism/proto/prism/v1"
)

// The benchmarks write batches of benchBatch puts of one item each: distinct
// 16-byte ids, sequential or spread over the key space, 100-byte values, as
// backends/sqlite's do. One op is one batch; rows/s counts items.
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

// cpuTime returns the CPU time (user and system) this process has used; the
// server's CPU time is not in it.
func cpuTime(b *testing.B) time.Duration {
	var ru syscall.Rusage
	if err := syscall.Getrusage(syscall.RUSAGE_SELF, &ru); err != nil {
		b.Fatal(err)
	}
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}

func reportRows(b *testing.B, start time.Duration) {
	b.ReportMetric(float64(b.N)*benchBatch/b.Elapsed().Seconds(), "rows/s")
	b.ReportMetric(float64(cpuTime(b)-start)/float64(b.N), "client-cpu-ns/op")
}

// BenchmarkApplyKeyValue measures Store.ApplyKeyValue: the batch, its
// records' revisions and the checkpoint in one transaction. Compare its
// rows/s with BenchmarkRawUpsert's fastest method (best of count on a busy
// machine):
//
//	go test -run '^$' -bench . -benchtime 400x -count 3 ./backends/postgres/
func BenchmarkApplyKeyValue(b *testing.B) {
	for _, order := range idOrders {
		b.Run(order.name, func(b *testing.B) { benchApplyKeyValue(b, order.random) })
	}
}

func benchApplyKeyValue(b *testing.B, random bool) {
	ctx := context.Background()
	s := openStore(b, newNamespace(b))

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
// rows upserted with plain pgx into one table shaped like the store's items
// table, one transaction per batch, no bookkeeping, by the two fastest
// methods: one INSERT ... SELECT FROM unnest(arrays) ON CONFLICT, and COPY
// into a temporary table followed by INSERT ... SELECT ... ON CONFLICT.
func BenchmarkRawUpsert(b *testing.B) {
	for _, order := range idOrders {
		for _, method := range []string{"unnest", "copy"} {
			b.Run(order.name+"/method="+method, func(b *testing.B) { benchRawUpsert(b, method, order.random) })
		}
	}
}

func benchRawUpsert(b *testing.B, method string, random bool) {
	ctx := context.Background()
	conn := rawConn(b)
	// A fresh schema per run, dropped at the end like the store's.
	s := openStore(b, newNamespace(b))
	table := pgx.Identifier{s.Schema(), "raw"}.Sanitize()
	if _, err := conn.Exec(ctx, `CREATE TABLE `+table+` (
		id bytea NOT NULL, key bytea NOT NULL, value bytea NOT NULL,
		expire_sec bigint, expire_nanos integer NOT NULL DEFAULT 0,
		PRIMARY KEY (id, key))`); err != nil {
		b.Fatal(err)
	}
	if _, err := conn.Exec(ctx, `CREATE TEMP TABLE raw_in (
		id bytea, key bytea, value bytea, expire_sec bigint, expire_nanos integer) ON COMMIT DELETE ROWS`); err != nil {
		b.Fatal(err)
	}
	const set = ` ON CONFLICT (id, key) DO UPDATE SET value = excluded.value,
		expire_sec = excluded.expire_sec, expire_nanos = excluded.expire_nanos`
	unnestSQL := `INSERT INTO ` + table + ` (id, key, value, expire_sec, expire_nanos)
		SELECT * FROM unnest($1::bytea[], $2::bytea[], $3::bytea[], $4::int8[], $5::int4[])` + set
	fromTempSQL := `INSERT INTO ` + table + ` SELECT * FROM raw_in` + set

	value := make([]byte, benchValue)
	key := []byte("k")
	ids := make([][]byte, benchBatch)
	keys := make([][]byte, benchBatch)
	values := make([][]byte, benchBatch)
	secs := make([]pgtype.Int8, benchBatch)
	nanos := make([]int32, benchBatch)
	rows := make([][]any, benchBatch)
	for i := range ids {
		ids[i], keys[i], values[i] = make([]byte, 16), key, value
		rows[i] = []any{ids[i], key, value, nil, int32(0)}
	}
	var n uint64
	start := cpuTime(b)
	b.ResetTimer()
	for b.Loop() {
		for _, id := range ids {
			n++
			benchID(id, n, random)
		}
		err := pgx.BeginFunc(ctx, conn, func(tx pgx.Tx) error {
			if method == "unnest" {
				_, err := tx.Exec(ctx, unnestSQL, ids, keys, values, secs, nanos)
				return err
			}
			if _, err := tx.CopyFrom(ctx, pgx.Identifier{"raw_in"},
				[]string{"id", "key", "value", "expire_sec", "expire_nanos"}, pgx.CopyFromRows(rows)); err != nil {
				return err
			}
			_, err := tx.Exec(ctx, fromTempSQL)
			return err
		})
		if err != nil {
			b.Fatal(err)
		}
	}
	reportRows(b, start)
}
