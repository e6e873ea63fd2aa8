package natskv

import (
	"fmt"
	"time"

	"github.com/nats-io/nats.go/jetstream"

	"github.com/prism-data/prism/backends/internal/kit"
)

type options struct {
	now      func() time.Time
	replicas int
	storage  jetstream.StorageType
}

func defaultOptions() options {
	return options{now: time.Now, replicas: 1, storage: jetstream.FileStorage}
}

// Option configures Open. Each option validates its argument and makes Open
// fail with a descriptive error when it is invalid.
type Option func(*options) error

// WithClock sets the clock that decides which items have expired (reads and
// SweepExpired). The default is time.Now. now must not be nil.
func WithClock(now func() time.Time) Option {
	return func(o *options) error {
		o.now = now
		return kit.CheckClock(now)
	}
}

// WithReplicas sets the replicas of a bucket Open creates (default 1; 3 on a
// three-node cluster for production). n must be 1 to 5. An existing
// bucket keeps its replicas.
func WithReplicas(n int) Option {
	return func(o *options) error {
		o.replicas = n
		return kit.CheckRange("WithReplicas", n, 1, 5, "replicas")
	}
}

// WithStorage sets the storage of a bucket Open creates (default
// jetstream.FileStorage). An existing bucket keeps its storage.
func WithStorage(st jetstream.StorageType) Option {
	return func(o *options) error {
		if st != jetstream.FileStorage && st != jetstream.MemoryStorage {
			return fmt.Errorf("WithStorage: unknown storage type %d", st)
		}
		o.storage = st
		return nil
	}
}
