package postgres

import (
	"fmt"
	"time"

	"github.com/prism-data/prism/backends/internal/kit"
)

type options struct {
	now      func() time.Time
	maxConns int32  // 0: the DSN's pool_max_conns or pgxpool's default
	schema   string // "": SchemaName(namespace)
}

func defaultOptions() options {
	return options{now: time.Now}
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

// WithMaxConns sets the size of the connection pool shared by reads and
// writes. The default is the DSN's pool_max_conns, or else pgxpool's default
// (the greater of 4 and the number of CPUs). n must be at least 1.
func WithMaxConns(n int32) Option {
	return func(o *options) error {
		o.maxConns = n
		return kit.CheckAtLeast("WithMaxConns", n, 1, "connections")
	}
}

// WithSchema makes the store keep its tables in schema instead of
// SchemaName(namespace): a second target of one namespace on the same
// server (a migration to a new schema, a rebuilt projection) lives beside
// the first. See TargetSchemaName. schema must be 1 to 63 bytes.
func WithSchema(schema string) Option {
	return func(o *options) error {
		if schema == "" || len(schema) > maxIdentifierLen {
			return fmt.Errorf("WithSchema: schema name %q must be 1 to %d bytes", schema, maxIdentifierLen)
		}
		o.schema = schema
		return nil
	}
}
