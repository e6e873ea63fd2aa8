package kafka_test

import (
	"context"
	"fmt"
	"sync/atomic"
	"testing"
	"time"

	"github.com/prism-data/prism/backends/backendtest"
	"github.com/prism-data/prism/backends/kafka"
	"github.com/prism-data/prism/backends/kafka/kafkatest"
)

var nsCounter atomic.Int64

// newNamespace returns a namespace name no other test of this process uses.
func newNamespace() string { return fmt.Sprintf("log%d", nsCounter.Add(1)) }

// TestConformance runs the Log suite on one kfake cluster, each test on a
// topic of its own with 3 partitions, reopened from the same topic. The
// other features are not declared, and the suite checks that they are not
// implemented either.
func TestConformance(t *testing.T) {
	_, brokers := kafkatest.Start(t)
	backendtest.Run(t, backendtest.Config{
		Features: []backendtest.Feature{backendtest.FeatureLog},
		Errors: backendtest.Errors{
			InvalidChange:  kafka.ErrInvalidChange,
			InvalidBatch:   kafka.ErrInvalidBatch,
			InvalidRequest: kafka.ErrInvalidRequest,
			Closed:         kafka.ErrClosed,
		},
		New: func(t testing.TB, _ func() time.Time) (any, func() any) {
			ns := newNamespace()
			open := func() any {
				t.Helper()
				s, err := kafka.Open(context.Background(), brokers, ns, kafka.WithPartitions(3))
				if err != nil {
					t.Fatalf("Open: %v", err)
				}
				return s
			}
			return open(), open
		},
	})
}
