package postgres_test

import (
	"testing"

	"github.com/prism-data/prism/backends/backendtest"
)

// BenchmarkGraph runs backendtest.BenchGraph on PostgreSQL schemas
// (docs/graph.md has the numbers):
//
//	PRISM_BENCH_GRAPH_VERTICES=100000 go test -run '^$' -bench Graph -benchtime 2000x ./backends/postgres/
func BenchmarkGraph(b *testing.B) {
	backendtest.BenchGraph(b, backendtest.DefaultGraphBenchSize(b), func(b *testing.B) backendtest.GraphBackend {
		return openStore(b, newNamespace(b))
	})
}
