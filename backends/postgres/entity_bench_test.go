package postgres_test

import (
	"testing"

	"github.com/prism-data/prism/backends/backendtest"
)

// BenchmarkEntityRangeQuery1M measures a page of 100 of a secondary-index
// range on 1M records, as backends/sqlite's does:
//
//	go test -run '^$' -bench EntityRangeQuery1M -benchtime 3000x -timeout 30m ./backends/postgres/
func BenchmarkEntityRangeQuery1M(b *testing.B) {
	s := openStore(b, newNamespace(b))
	backendtest.BenchEntityRangeQuery(b, s, backendtest.EntityBenchRecords(b))
}
