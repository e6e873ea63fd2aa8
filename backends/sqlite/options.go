package sqlite

import (
	"errors"
	"fmt"
	"time"
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
		if now == nil {
			return errors.New("WithClock: nil clock")
		}
		o.now = now
		return nil
	}
}

// WithReadConns sets the number of connections of the read pool used by
// GetItems, ScanIDs and Checkpoint (default 4). n must be at least 1.
func WithReadConns(n int) Option {
	return func(o *options) error {
		if n < 1 {
			return fmt.Errorf("WithReadConns: %d connections, need at least 1", n)
		}
		o.readConns = n
		return nil
	}
}
