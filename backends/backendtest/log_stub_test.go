package backendtest_test

import (
	"context"

	"github.com/prism-data/prism/backends/backendtest"
	prismv1 "github.com/prism-data/prism/proto/prism/v1"
)

// logStub has the Log method set and stores nothing.
type logStub struct{ closeOnly }

func (logStub) Checkpoint(context.Context) (uint64, error) { return 0, nil }
func (logStub) ApplyLog(context.Context, []*prismv1.LogChange, uint64) error {
	return nil
}
func (logStub) Fetch(context.Context, *prismv1.LogFetchRequest) (*prismv1.LogFetchResponse, error) {
	return &prismv1.LogFetchResponse{Partitions: 1}, nil
}

var logErrors = backendtest.Errors{InvalidChange: errStub, InvalidBatch: errStub, InvalidRequest: errStub, Closed: errStub}
