package replay_test

import (
	"context"
	"flag"
	"fmt"
	"runtime"
	"testing"
	"time"

	prismv1 "github.com/prism-data/prism/proto/prism/v1"
	"github.com/prism-data/prism/replay"
)

var benchRecords = flag.Int("verify.records", 200_000, "records in each target of BenchmarkVerify")

// benchChanges writes n records of two items of 64 bytes each, ids in
// random order as a live namespace has them.
func benchChanges(n int) []*prismv1.KeyValueChange {
	changes := make([]*prismv1.KeyValueChange, n)
	for i := range n {
		id := fmt.Sprintf("%08x-%d", uint32(i)*2654435761, i)
		v := fmt.Sprintf("%064d", i)
		changes[i] = putChange(uint64(i+1), id, item("k0", v), item("k1", v))
	}
	return changes
}

// BenchmarkVerify measures Verify of two equal targets of -verify.records
// records: records compared per second and the peak heap in use while it
// runs (sampled every 2 ms). The targets are filled once, outside the
// timer.
func BenchmarkVerify(b *testing.B) {
	n := *benchRecords
	filled := map[string]*target{}
	get := func(b *testing.B, k kind, name string) *target {
		if tg, ok := filled[name]; ok {
			return tg
		}
		tg := k.open(b)
		applyAll(b, benchChanges(n), tg) // not kept: the heap is measured
		filled[name] = tg
		return tg
	}
	for _, bc := range []struct {
		name     string
		old, new kind
	}{
		{"sqlite-sqlite", sqliteKind, sqliteKind},
		{"postgres-postgres", postgresKind, postgresKind},
		{"sqlite-postgres", sqliteKind, postgresKind},
	} {
		b.Run(bc.name, func(sb *testing.B) {
			// The targets belong to the parent, so they outlive the
			// sub-benchmark's runs.
			old := get(b, bc.old, bc.old.name+"-1")
			new := get(b, bc.new, bc.new.name+"-2")
			runtime.GC()
			stop := heapPeak(2 * time.Millisecond)
			sb.ResetTimer()
			var compared int64
			for range sb.N {
				r, err := replay.Verify(context.Background(), old.store, new.store)
				if err != nil {
					sb.Fatal(err)
				}
				if !r.Passed() || r.Compared != int64(n) {
					sb.Fatalf("want %d records matched, got\n%s", n, table(r))
				}
				compared += r.Compared
			}
			sb.StopTimer()
			peak := stop()
			sb.ReportMetric(float64(compared)/sb.Elapsed().Seconds(), "records/s")
			sb.ReportMetric(float64(peak)/(1<<20), "peak-heap-MiB")
		})
	}
}
