package natskv

import (
	"errors"
	"fmt"
	"time"

	"github.com/nats-io/nats.go/jetstream"
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
		if now == nil {
			return errors.New("WithClock: nil clock")
		}
		o.now = now
		return nil
	}
}

// WithReplicas sets the replicas of a bucket Open creates (default 1; 3 on a
// three-node cluster for production). n must be 1 to 5. An existing
// bucket keeps its replicas.
func WithReplicas(n int) Option {
	return func(o *options) error {
		if n < 1 || n > 5 {
			return fmt.Errorf("WithReplicas: %d replicas, need 1 to 5", n)
		}
		o.replicas = n
		return nil
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
