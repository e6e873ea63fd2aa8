package sqlite

import (
	"time"

	"github.com/prism-data/prism/backends/internal/kit"
)

const defaultReadConns = 4

type options struct {
	now       func() time.Time
	readConns int
}

func defaultOptions() options {
	return options{now: time.Now, readConns: defaultReadConns}
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

// WithReadConns sets the number of connections of the read pool used by
// GetItems, ScanIDs and Checkpoint (default 4). n must be at least 1.
func WithReadConns(n int) Option {
	return func(o *options) error {
		o.readConns = n
		return kit.CheckAtLeast("WithReadConns", n, 1, "connections")
	}
}
