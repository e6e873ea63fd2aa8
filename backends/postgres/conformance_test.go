package postgres_test

import (
	"context"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/prism-data/prism/backends/backendtest"
	"github.com/prism-data/prism/backends/postgres"
)

func TestConformance(t *testing.T) {
	testDSN(t)              // skip (or fail in CI) once here rather than in every sub-test
	var namespaces sync.Map // *postgres.Store -> its namespace
	backendtest.Run(t, backendtest.Config{
		Features: []backendtest.Feature{backendtest.FeatureKeyValue, backendtest.FeatureKeyValueExport, backendtest.FeatureTimeSeries, backendtest.FeatureEntity, backendtest.FeatureGraph, backendtest.FeatureEntityIndexBuild},
		Errors: backendtest.Errors{
			InvalidChange:    postgres.ErrInvalidChange,
			InvalidPageToken: postgres.ErrInvalidPageToken,
			Closed:           postgres.ErrClosed,
			InvalidBatch:     postgres.ErrInvalidBatch,
			InvalidRequest:   postgres.ErrInvalidRequest,
		},
		New: func(t testing.TB, now func() time.Time) (any, func() any) {
			ns := newNamespace(t)
			dsn := testDSN(t)
			open := func() any {
				s, err := postgres.Open(context.Background(), dsn, ns, postgres.WithClock(now))
				if err != nil {
					t.Fatalf("Open(%q): %v", ns, err)
				}
				t.Cleanup(func() { _ = s.Close() })
				namespaces.Store(s, ns)
				return s
			}
			return open(), open
		},
		FailCheckpointWrites: func(t testing.TB, b any) func() {
			ns, ok := namespaces.Load(b)
			if !ok {
				t.Fatalf("FailCheckpointWrites: %T was not opened by the factory", b)
			}
			return failCheckpointWrites(t, ns.(string))
		},
	})
}

// failCheckpointWrites installs a trigger in namespace ns's schema that
// refuses every write of the checkpoint row, and returns the function that
// drops it.
func failCheckpointWrites(t testing.TB, ns string) func() {
	t.Helper()
	schema, err := postgres.SchemaName(ns)
	if err != nil {
		t.Fatal(err)
	}
	conn := rawConn(t)
	exec := func(q string) {
		t.Helper()
		if _, err := conn.Exec(context.Background(), strings.ReplaceAll(q, "{s}", pgx.Identifier{schema}.Sanitize())); err != nil {
			t.Fatalf("%s: %v", q, err)
		}
	}
	exec(`CREATE FUNCTION {s}.test_fail_checkpoint() RETURNS trigger LANGUAGE plpgsql AS
		$$BEGIN RAISE EXCEPTION 'checkpoint write refused by the test'; END$$;
	CREATE TRIGGER test_fail_checkpoint BEFORE INSERT OR UPDATE ON {s}.checkpoint
		FOR EACH ROW EXECUTE FUNCTION {s}.test_fail_checkpoint()`)
	return func() { exec(`DROP TRIGGER test_fail_checkpoint ON {s}.checkpoint`) }
}
