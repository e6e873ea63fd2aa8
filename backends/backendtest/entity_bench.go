package backendtest

import (
	"context"
	"encoding/binary"
	"fmt"
	"math/rand/v2"
	"os"
	"slices"
	"strconv"
	"testing"
	"time"

	prismv1 "github.com/prism-data/prism/proto/prism/v1"
)

// EntityBenchRecords is the number of records BenchEntityRangeQuery fills
// a store with: 1,000,000, or $PRISM_BENCH_RECORDS.
func EntityBenchRecords(b *testing.B) int {
	if v := os.Getenv("PRISM_BENCH_RECORDS"); v != "" {
		n, err := strconv.Atoi(v)
		if err != nil || n < 2000 {
			b.Fatalf("PRISM_BENCH_RECORDS=%q: want a number of at least 2000", v)
		}
		return n
	}
	return 1_000_000
}

// BenchEntityRangeQuery fills s with records records through ApplyEntity
// (batches of 1024 puts of 100-byte records, 16-byte sequential ids, one
// secondary index "at" whose values are a permutation of the record
// numbers, so an index range lands on records all over en_records), then
// measures a query of one page of 100 of a range of 1000 values of "at",
// from a random start, ascending and descending. It reports the p50 and
// p99 latency and the queries and records per second of one caller.
func BenchEntityRangeQuery(b *testing.B, s EntityBackend, records int) {
	ctx := context.Background()
	start := time.Now()
	record := make([]byte, 100)
	var seq uint64
	for seq < uint64(records) {
		changes := make([]*prismv1.EntityChange, 0, 1024)
		for range min(1024, uint64(records)-seq) {
			seq++
			id := binary.BigEndian.AppendUint64(make([]byte, 8, 16), seq)
			at := (seq * 999_983) % uint64(records) // 999983 is prime: a bijection
			changes = append(changes, &prismv1.EntityChange{Seq: seq, Event: &prismv1.EntityEvent{Id: id, Record: record,
				Indexes: []*prismv1.IndexEntry{{Index: "at", Key: binary.BigEndian.AppendUint64(nil, at)}}}})
		}
		if err := s.ApplyEntity(ctx, changes, seq); err != nil {
			b.Fatal(err)
		}
	}
	b.Logf("filled %d records in %v", records, time.Since(start).Round(time.Millisecond))
	for _, desc := range []bool{false, true} {
		b.Run(fmt.Sprintf("page=100/descending=%v", desc), func(b *testing.B) {
			rng := rand.New(rand.NewPCG(1, 2))
			lat := make([]time.Duration, 0, b.N)
			b.ResetTimer()
			for range b.N {
				from := rng.Uint64N(uint64(records - 1000))
				t0 := time.Now()
				resp, err := s.ScanEntities(ctx, &prismv1.EntityScanRequest{Index: "at", Descending: desc, PageSize: 100,
					From: binary.BigEndian.AppendUint64(nil, from), To: binary.BigEndian.AppendUint64(nil, from+1000)})
				lat = append(lat, time.Since(t0))
				if err != nil || len(resp.GetRecords()) != 100 {
					b.Fatalf("ScanEntities: %d records, %v", len(resp.GetRecords()), err)
				}
			}
			b.StopTimer()
			slices.Sort(lat)
			q := func(p float64) float64 { return float64(lat[int(p*float64(len(lat)-1))]) / 1e3 }
			b.ReportMetric(q(0.5), "p50-µs")
			b.ReportMetric(q(0.99), "p99-µs")
			b.ReportMetric(float64(b.N)/b.Elapsed().Seconds(), "queries/s")
			b.ReportMetric(100*float64(b.N)/b.Elapsed().Seconds(), "records/s")
		})
	}
}
