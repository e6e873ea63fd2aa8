package neptune_test

import (
	"net/http"
	"testing"
	"time"

	"github.com/prism-data/prism/backends/backendtest"
	"github.com/prism-data/prism/backends/neptune"
	"github.com/prism-data/prism/backends/neptune/neptunetest"
)

// The store serves both sides of Graph. backends may not import projectors
// nor gateway; the method sets are asserted here through the suite's
// GraphBackend (the union of projectors.GraphTarget and
// gateway.GraphReader, plus Close) and in node, which wires them.
var _ backendtest.GraphBackend = (*neptune.Store)(nil)

// conformance is the backendtest configuration of the Neptune store on the
// stand-in: a fresh stand-in per test; reopening is a new Store of the
// same namespace on it.
func conformance() backendtest.Config {
	servers := map[any]*neptunetest.Server{}
	return backendtest.Config{
		Features: []backendtest.Feature{backendtest.FeatureGraph},
		Errors: backendtest.Errors{
			InvalidChange:    neptune.ErrInvalidChange,
			InvalidPageToken: neptune.ErrInvalidPageToken,
			Closed:           neptune.ErrClosed,
			InvalidBatch:     neptune.ErrInvalidBatch,
			InvalidRequest:   neptune.ErrInvalidRequest,
		},
		New: func(t testing.TB, _ func() time.Time) (any, func() any) {
			srv := neptunetest.New(t, "eu-west-1")
			open := func() any {
				s := openStore(t, srv, "ns1")
				servers[s] = srv
				return s
			}
			return open(), open
		},
		// The checkpoint is written by the batch's one request: failing
		// that request is failing the checkpoint write.
		FailCheckpointWrites: func(t testing.TB, b any) func() {
			srv := servers[b]
			if srv == nil {
				t.Fatalf("FailCheckpointWrites: %T was not opened by the factory", b)
			}
			srv.FailShape("batch", http.StatusBadRequest, "ConstraintViolationException", 1<<30)
			return srv.ClearFaults
		},
	}
}

func TestConformance(t *testing.T) {
	backendtest.Run(t, conformance())
}
