package neptune_test

import (
	"testing"

	"github.com/prism-data/prism/backends/backendtest"
	"github.com/prism-data/prism/backends/neptune/neptunetest"
)

// BenchmarkGraph runs backendtest.BenchGraph (the benchmarks of SQLite and
// PostgreSQL) on the stand-in. It measures the store's own cost —
// collapsing a batch, JSON, SigV4 signing, HTTPS on loopback, one request
// per BFS level — plus the stand-in's in-memory graph, not Neptune's:
//
//	go test -run '^$' -bench Graph -benchtime 200x ./backends/neptune/
func BenchmarkGraph(b *testing.B) {
	backendtest.BenchGraph(b, backendtest.DefaultGraphBenchSize(b), func(b *testing.B) backendtest.GraphBackend {
		return openStore(b, neptunetest.New(b, ""), "bench")
	})
}
