package sqlite_test

import (
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
