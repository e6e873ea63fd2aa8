package neptune_test

import (
	"context"
	"fmt"
	"testing"

	"github.com/prism-data/prism/backends/neptune/neptunetest"
	prismv1 "github.com/prism-data/prism/proto/prism/v1"
)

// The benchmarks run against the stand-in: they measure the store's own
// cost (collapse, JSON, SigV4 signing, HTTPS on loopback) and the
// stand-in's, not Neptune's. Run:
//
//	go test ./backends/neptune -run '^$' -bench . -benchtime 2s

// BenchmarkApplyGraph applies batches of 500 changes (vertex upserts and
// an edge each), reporting changes/s.
func BenchmarkApplyGraph(b *testing.B) {
	srv := neptunetest.New(b, "")
	s := openStore(b, srv, "bench")
	ctx := context.Background()
	const batch = 500
	seq := uint64(0)
	b.ResetTimer()
	for range b.N {
		changes := make([]*prismv1.GraphChange, 0, batch)
		for i := range batch / 2 {
			seq++
			id := fmt.Sprintf("v%d", seq%10000)
			changes = append(changes, vertex(seq, id, "person", map[string]string{"name": id}))
			seq++
			changes = append(changes, edge(seq, id, "knows", fmt.Sprintf("v%d", (seq+uint64(i))%10000)))
		}
		if err := s.ApplyGraph(ctx, changes, seq); err != nil {
			b.Fatal(err)
		}
	}
	b.ReportMetric(float64(b.N*batch)/b.Elapsed().Seconds(), "changes/s")
}

// BenchmarkGetVertex is one signed read request.
func BenchmarkGetVertex(b *testing.B) {
	srv := neptunetest.New(b, "")
	s := openStore(b, srv, "bench")
	ctx := context.Background()
	if err := s.ApplyGraph(ctx, []*prismv1.GraphChange{vertex(1, "a", "person", map[string]string{"k": "v"})}, 1); err != nil {
		b.Fatal(err)
	}
	b.ResetTimer()
	for range b.N {
		if v, err := s.GetVertex(ctx, "a"); err != nil || v == nil {
			b.Fatal(v, err)
		}
	}
}
