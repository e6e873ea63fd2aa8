package audit

import (
	"log/slog"
	"os"
	"strconv"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/prism-data/prism/status"
)

// Defaults of the Writer's options.
const (
	// DefaultSpoolSize bounds the records a Writer keeps until JetStream
	// has stored them.
	DefaultSpoolSize = 10000
	// DefaultAckTimeout is how long a Writer waits for JetStream to ack a
	// record before it counts the attempt as failed and retries.
	DefaultAckTimeout = 5 * time.Second
	// DefaultMinBackoff and DefaultMaxBackoff bound the wait between
	// retries of failed records: it doubles from the first to the second
	// while attempts keep failing.
	DefaultMinBackoff = 100 * time.Millisecond
	DefaultMaxBackoff = 5 * time.Second
	// DefaultLinger is how long a record no one waits for (a read's)
	// waits for others of its subject before it is sent (WithLinger).
	DefaultLinger = 2 * time.Millisecond
	// maxLinger bounds WithLinger: a lingering record is not yet stored,
	// so a crash loses it.
	maxLinger = 10 * time.Second
)

// Option configures a Writer. Options validate their arguments; NewWriter
// returns the first error, an INVALID_ARGUMENT *status.Error.
type Option func(*options) error

type options struct {
	logger     *slog.Logger
	registerer prometheus.Registerer
	node       string
	spoolSize  int
	ackTimeout time.Duration
	minBackoff time.Duration
	maxBackoff time.Duration
	linger     time.Duration
}

func defaultOptions() options {
	host, _ := os.Hostname()
	if host == "" {
		host = "prism"
	}
	return options{
		logger:     slog.New(slog.DiscardHandler),
		node:       host + ":" + strconv.Itoa(os.Getpid()),
		spoolSize:  DefaultSpoolSize,
		ackTimeout: DefaultAckTimeout,
		minBackoff: DefaultMinBackoff,
		maxBackoff: DefaultMaxBackoff,
		linger:     DefaultLinger,
	}
}

// WithLogger sets where the Writer logs that the audit stream became
// unavailable and available again (default: discard). It never logs a
// record's content.
func WithLogger(l *slog.Logger) Option {
	return func(o *options) error {
		if l == nil {
			return status.Invalidf("audit: nil logger")
		}
		o.logger = l
		return nil
	}
}

// WithRegisterer registers the Writer's metrics with r:
// prism_audit_records_total{result="stored|failed"} (records stored,
// attempts that failed), prism_audit_dropped_total (records lost; see
// Stats.Dropped) and prism_audit_pending (records not yet stored).
// Without it the metrics are kept (Stats) but not registered.
func WithRegisterer(r prometheus.Registerer) Option {
	return func(o *options) error {
		if r == nil {
			return status.Invalidf("audit: nil prometheus registerer")
		}
		o.registerer = r
		return nil
	}
}

// WithNode sets the node field of records that have none (default
// hostname:pid).
func WithNode(node string) Option {
	return func(o *options) error {
		if node == "" {
			return status.Invalidf("audit: empty node name")
		}
		o.node = node
		return nil
	}
}

// WithSpoolSize bounds the records kept until stored (default
// DefaultSpoolSize). While it is full Healthy fails, and new records wait
// for room, or are dropped while records fail to store.
func WithSpoolSize(n int) Option {
	return func(o *options) error {
		if n < 1 {
			return status.Invalidf("audit: spool size must be at least 1, got %d", n)
		}
		o.spoolSize = n
		return nil
	}
}

// WithAckTimeout sets how long to wait for JetStream's ack of a record
// before retrying it (default DefaultAckTimeout).
func WithAckTimeout(d time.Duration) Option {
	return func(o *options) error {
		if d <= 0 {
			return status.Invalidf("audit: ack timeout must be positive, got %v", d)
		}
		o.ackTimeout = d
		return nil
	}
}

// WithRetryBackoff sets the first and the longest wait between retries of
// failed records (default DefaultMinBackoff, DefaultMaxBackoff).
func WithRetryBackoff(first, longest time.Duration) Option {
	return func(o *options) error {
		if first <= 0 || longest < first {
			return status.Invalidf("audit: retry backoff %v to %v: want 0 < first <= longest", first, longest)
		}
		o.minBackoff, o.maxBackoff = first, longest
		return nil
	}
}

// WithLinger sets how long a record no one waits for (Record without
// wait: a read's) waits for more records of its subject before it is
// sent, so that JetStream stores one message for many reads (default
// DefaultLinger, at most 10 s; 0 sends each at once when its subject
// has nothing in flight). A record someone waits for (a write's) is
// never held: it is sent at once, with the records lingering before it.
// Records lingering when the process crashes are lost, as are records
// sent and not yet stored; Close sends them.
func WithLinger(d time.Duration) Option {
	return func(o *options) error {
		if d < 0 || d > maxLinger {
			return status.Invalidf("audit: linger must be between 0 and %v, got %v", maxLinger, d)
		}
		o.linger = d
		return nil
	}
}
