package sqlite_test

import (
	"context"
	"testing"
	"time"

	prismv1 "github.com/prism-data/prism/proto/prism/v1"
)

// BenchmarkGetItems measures Store.GetItems of a whole record (one item of
// benchValue bytes) from 10,000, from parallel callers as the gateway's
// workers are:
//
//	go test -run '^$' -bench GetItems -count 3 ./backends/sqlite/
func BenchmarkGetItems(b *testing.B) {
	ctx := context.Background()
	s, _ := openStore(b)
	const records = 10000
	value := make([]byte, benchValue)
	var changes []*prismv1.KeyValueChange
	for n := range uint64(records) {
		id := make([]byte, 16)
		benchID(id, n, true)
		changes = append(changes, &prismv1.KeyValueChange{Seq: n + 1, Event: &prismv1.KeyValueEvent{
			Id:     id,
			Change: &prismv1.KeyValueEvent_Put{Put: &prismv1.KeyValuePut{Items: []*prismv1.Item{{Key: []byte("k"), Value: value}}}},
		}})
	}
	if err := s.ApplyKeyValue(ctx, changes, records); err != nil {
		b.Fatal(err)
	}
	start := cpuTime(b)
	b.ResetTimer()
	b.RunParallel(func(pb *testing.PB) {
		var n uint64
		id := make([]byte, 16)
		for pb.Next() {
			n = (n + 7919) % records
			benchID(id, n, true)
			cctx, cancel := context.WithTimeout(ctx, time.Minute)
			resp, err := s.GetItems(cctx, &prismv1.GetRequest{Id: id})
			cancel()
			if err != nil {
				b.Fatal(err)
			}
			if len(resp.GetItems()) != 1 || resp.GetRevision() != n+1 {
				b.Fatalf("record %d: %d items at revision %d", n, len(resp.GetItems()), resp.GetRevision())
			}
		}
	})
	b.ReportMetric(float64(b.N)/b.Elapsed().Seconds(), "gets/s")
	b.ReportMetric(float64(cpuTime(b)-start)/float64(b.N), "cpu-ns/op")
}
