package postgres_test

import (
	"context"
	"testing"
	"time"

	"github.com/prism-data/prism/backends/backendtest"
	"github.com/prism-data/prism/backends/postgres"
)

func TestConformance(t *testing.T) {
	testDSN(t) // skip (or fail in CI) once here rather than in every sub-test
	backendtest.Run(t, backendtest.Config{
		Features: []backendtest.Feature{backendtest.FeatureKeyValue, backendtest.FeatureKeyValueExport, backendtest.FeatureTimeSeries},
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
				return s
			}
			return open(), open
		},
	})
}
