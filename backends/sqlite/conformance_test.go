package sqlite_test

import (
	"context"
	"database/sql"
	"path/filepath"
	"sync"
	"testing"
	"time"

	"github.com/prism-data/prism/backends/backendtest"
	"github.com/prism-data/prism/backends/sqlite"
)

// conformance is the backendtest configuration of the SQLite store: a fresh
// database file per test, reopened from the same file.
func conformance() backendtest.Config {
	var paths sync.Map // *sqlite.Store -> its database file
	return backendtest.Config{
		Features: []backendtest.Feature{backendtest.FeatureKeyValue, backendtest.FeatureKeyValueExport, backendtest.FeatureTimeSeries, backendtest.FeatureEntity, backendtest.FeatureGraph, backendtest.FeatureEntityIndexBuild},
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
				paths.Store(s, path)
				return s
			}
			return open(), open
		},
		FailCheckpointWrites: func(t testing.TB, b any) func() {
			path, ok := paths.Load(b)
			if !ok {
				t.Fatalf("FailCheckpointWrites: %T was not opened by the factory", b)
			}
			return failCheckpointWrites(t, path.(string))
		},
	}
}

// failCheckpointWrites installs a trigger in the database at path that
// refuses every update of the checkpoint row, and returns the function that
// drops it. It works from a connection of its own, as another process would.
func failCheckpointWrites(t testing.TB, path string) func() {
	t.Helper()
	db, err := sql.Open("sqlite", "file:"+path+"?_pragma=busy_timeout(5000)")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { db.Close() })
	exec := func(q string) {
		t.Helper()
		if _, err := db.ExecContext(context.Background(), q); err != nil {
			t.Fatalf("%s: %v", q, err)
		}
	}
	exec(`CREATE TRIGGER test_fail_checkpoint BEFORE UPDATE ON checkpoint
		BEGIN SELECT RAISE(ABORT, 'checkpoint write refused by the test'); END`)
	return func() { exec(`DROP TRIGGER test_fail_checkpoint`) }
}

func TestConformance(t *testing.T) {
	backendtest.Run(t, conformance())
}
