package sqlite_test

import (
	"context"
	"path/filepath"
	"testing"
	"time"

	"github.com/prism-data/prism/backends/backendtest"
	"github.com/prism-data/prism/backends/sqlite"
)

// conformance is the backendtest configuration of the SQLite store: a fresh
// database file per test, reopened from the same file.
func conformance() backendtest.Config {
	return backendtest.Config{
		Features: []backendtest.Feature{backendtest.FeatureKeyValue, backendtest.FeatureKeyValueExport, backendtest.FeatureTimeSeries},
		Errors: backendtest.Errors{
			InvalidChange:    sqlite.ErrInvalidChange,
			InvalidPageToken: sqlite.ErrInvalidPageToken,
			Closed:           sqlite.ErrClosed,
			InvalidBatch:     sqlite.ErrInvalidBatch,
			InvalidRequest:   sqlite.ErrInvalidRequest,
		},
		New: func(t testing.TB, now func() time.Time) (any, func() any) {
			path := filepath.Join(t.TempDir(), "ns.db")
			open := func() any {
				t.Helper()
				s, err := sqlite.Open(context.Background(), path, sqlite.WithClock(now))
				if err != nil {
					t.Fatalf("Open: %v", err)
				}
				return s
			}
			return open(), open
		},
	}
}

func TestConformance(t *testing.T) {
	backendtest.Run(t, conformance())
}
