package sqlite_test

import (
	"context"
	"fmt"
	"math/rand/v2"
	"testing"

	"github.com/prism-data/prism/backends/backendtest"
)

// BenchmarkGraph runs backendtest.BenchGraph on SQLite files (docs/graph.md
// has the numbers):
//
//	PRISM_BENCH_GRAPH_VERTICES=100000 go test -run '^$' -bench Graph -benchtime 2000x ./backends/sqlite/
func BenchmarkGraph(b *testing.B) {
	backendtest.BenchGraph(b, backendtest.DefaultGraphBenchSize(b), func(b *testing.B) backendtest.GraphBackend {
		s, _ := openStore(b)
		return s
	})
}

// BenchmarkGraphRawEdgeUpsert is the baseline for
// BenchmarkGraph/upsert_edges: the same random edges upserted into a
// table shaped like g_edges (with its reverse index), with the store's
// pragmas, one prepared statement per edge and one transaction per batch
// of 256, and nothing else:
//
//	go test -run '^$' -bench 'GraphRawEdgeUpsert|Graph/upsert_edges' -benchtime 1000x ./backends/sqlite/
func BenchmarkGraphRawEdgeUpsert(b *testing.B) {
	ctx := context.Background()
	db := openRawDB(b)
	for _, q := range []string{
		`CREATE TABLE g_edges (src TEXT NOT NULL, label TEXT NOT NULL, dst TEXT NOT NULL, props BLOB NOT NULL, rev INTEGER NOT NULL,
			PRIMARY KEY (src, label, dst)) WITHOUT ROWID`,
		`CREATE INDEX g_edges_in ON g_edges (dst, label, src)`,
	} {
		if _, err := db.ExecContext(ctx, q); err != nil {
			b.Fatal(err)
		}
	}
	props := make([]byte, 30)
	rng := rand.New(rand.NewPCG(1, 2))
	var seq int64
	b.ResetTimer()
	for range b.N {
		tx, err := db.BeginTx(ctx, nil)
		if err != nil {
			b.Fatal(err)
		}
		st, err := tx.PrepareContext(ctx, `INSERT INTO g_edges (src, label, dst, props, rev) VALUES (?, ?, ?, ?, ?)
			ON CONFLICT (src, label, dst) DO UPDATE SET props = excluded.props, rev = excluded.rev`)
		if err != nil {
			b.Fatal(err)
		}
		for range 256 {
			seq++
			if _, err := st.ExecContext(ctx, fmt.Sprintf("v%07d", rng.IntN(100_000)), "knows", fmt.Sprintf("v%07d", rng.IntN(100_000)), props, seq); err != nil {
				b.Fatal(err)
			}
		}
		_ = st.Close()
		if err := tx.Commit(); err != nil {
			b.Fatal(err)
		}
	}
	b.ReportMetric(float64(b.N*256)/b.Elapsed().Seconds(), "rows/s")
}
