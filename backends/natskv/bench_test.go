package natskv_test

import (
	"context"
	"encoding/binary"
	"testing"

	"github.com/nats-io/nats.go/jetstream"

	"github.com/prism-data/prism/backends/natskv"
	"github.com/prism-data/prism/itest/natstest"
	prismv1 "github.com/prism-data/prism/proto/prism/v1"
)

// The benchmarks write batches of benchBatch puts of one item each: distinct
// 16-byte ids, 100-byte values. One op is one batch; rows/s counts items.
// Compare BenchmarkApplyKeyValue with BenchmarkRawKVPut, the same entries
// written with KeyValue.Put one by one:
//
//	go test -run '^$' -bench . -benchtime 200x -count 3 ./backends/natskv/
const (
	benchBatch = 256
	benchValue = 100
)

func benchID(id []byte, n uint64) {
	z := n + 0x9e3779b97f4a7c15
	z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9
	binary.BigEndian.PutUint64(id[:8], z^(z>>31))
	binary.BigEndian.PutUint64(id[8:], n)
}

func reportRows(b *testing.B) {
	b.ReportMetric(float64(b.N)*benchBatch/b.Elapsed().Seconds(), "rows/s")
}

// BenchmarkApplyKeyValue measures Store.ApplyKeyValue: one atomic batch of
// 256 items, 256 record entries and the checkpoint per op, after reading
// the checkpoint and the 256 record entries.
func BenchmarkApplyKeyValue(b *testing.B) {
	s, _, _ := openStore(b)
	ctx := context.Background()
	value := make([]byte, benchValue)
	changes := make([]*prismv1.KeyValueChange, benchBatch)
	for i := range changes {
		c := put(0, "", &prismv1.Item{Key: []byte("v"), Value: value})
		c.Event.Id = make([]byte, 16)
		changes[i] = c
	}
	var seq uint64
	b.ResetTimer()
	for range b.N {
		for _, c := range changes {
			seq++
			c.Seq = seq
			benchID(c.Event.Id, seq)
		}
		if err := s.ApplyKeyValue(ctx, changes, seq); err != nil {
			b.Fatal(err)
		}
	}
	reportRows(b)
}

// BenchmarkRawKVPut writes the same entries with KeyValue.Put, one
// acknowledged put per item, no checkpoint and no record entry.
func BenchmarkRawKVPut(b *testing.B) {
	_, js := natstest.Start(b)
	ctx := context.Background()
	kv, err := js.CreateKeyValue(ctx, jetstream.KeyValueConfig{Bucket: "RAW", History: 1})
	if err != nil {
		b.Fatal(err)
	}
	value := make([]byte, benchValue+1) // the store's envelope adds a byte
	id := make([]byte, 16)
	var seq uint64
	b.ResetTimer()
	for range b.N {
		for range benchBatch {
			seq++
			benchID(id, seq)
			if _, err := kv.Put(ctx, "i."+natskv.EncodeToken(id)+".v", value); err != nil {
				b.Fatal(err)
			}
		}
	}
	reportRows(b)
}
