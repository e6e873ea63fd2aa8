package natskv_test

import (
	"context"
	"testing"
	"time"

	"github.com/prism-data/prism/backends/backendtest"
	"github.com/prism-data/prism/backends/natskv"
	"github.com/prism-data/prism/itest/natstest"
)

// TestConformance runs the KeyValue suite on one in-process server, each
// test on a bucket of its own, reopened from the same bucket. TimeSeries is
// not declared, and the suite checks that it is not implemented either.
func TestConformance(t *testing.T) {
	_, js := natstest.Start(t)
	backendtest.Run(t, backendtest.Config{
		Features: []backendtest.Feature{backendtest.FeatureKeyValue, backendtest.FeatureKeyValueExport},
		Errors: backendtest.Errors{
			InvalidChange:    natskv.ErrInvalidChange,
			InvalidPageToken: natskv.ErrInvalidPageToken,
			Closed:           natskv.ErrClosed,
			InvalidBatch:     natskv.ErrInvalidBatch,
			InvalidRequest:   natskv.ErrInvalidRequest,
		},
		New: func(t testing.TB, now func() time.Time) (any, func() any) {
			ns := newNamespace()
			open := func() any {
				t.Helper()
				s, err := natskv.Open(context.Background(), js, ns, natskv.WithClock(now))
				if err != nil {
					t.Fatalf("Open: %v", err)
				}
				return s
			}
			return open(), open
		},
	})
}
