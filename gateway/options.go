package gateway

import (
	"errors"
	"fmt"
	"log/slog"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"go.opentelemetry.io/otel"
	"go.opentelemetry.io/otel/trace"

	"github.com/prism-data/prism/namespaces"
	"github.com/prism-data/prism/pii"
)

// Defaults of the options.
const (
	// DefaultConsistencyWait is shorter than the 5 s default timeout of the
	// nats CLI (and of many NATS clients), so a read whose min_seq is not
	// reached, or a strong write whose projection lags, gets its
	// NOT_CONSISTENT_YET reply before the caller gives up on a silent
	// timeout.
	DefaultConsistencyWait = 4 * time.Second
	DefaultQueueGroup      = "prism-gateway"
	DefaultMaxInFlight     = 1024
	// DefaultMaxInFlightBytes bounds the bodies of the requests running at
	// once (docs/operations.md, "Memory bound").
	DefaultMaxInFlightBytes = 256 << 20
	// DefaultPendingMsgs and DefaultPendingBytes bound what each of the
	// gateway's three subscriptions holds before admission looks at it.
	DefaultPendingMsgs  = 1 << 16
	DefaultPendingBytes = 64 << 20
)

// Option configures a Gateway. Options validate their arguments; New returns
// the first error.
type Option func(*options) error

type options struct {
	logger           *slog.Logger
	registerer       prometheus.Registerer
	consistencyWait  time.Duration
	queueGroup       string
	maxInFlight      int
	maxInFlightBytes int64
	pendingMsgs      int
	pendingBytes     int
	clock            func() time.Time
	tracerProvider   trace.TracerProvider
	security         Security     // nil: development mode, everyone allowed
	auditor          Auditor      // nil: no audit
	keyring          *pii.Keyring // nil: namespaces with PII fields refuse writes
	maxChunkedBytes  int          // largest uploaded value
}

func defaultOptions() options {
	return options{
		logger:           slog.New(slog.DiscardHandler),
		consistencyWait:  DefaultConsistencyWait,
		queueGroup:       DefaultQueueGroup,
		maxInFlight:      DefaultMaxInFlight,
		maxInFlightBytes: DefaultMaxInFlightBytes,
		pendingMsgs:      DefaultPendingMsgs,
		pendingBytes:     DefaultPendingBytes,
		clock:            time.Now,
		tracerProvider:   otel.GetTracerProvider(),
		maxChunkedBytes:  namespaces.MaxChunkedValueBytes,
	}
}

// WithLogger sets the logger (default: discard).
func WithLogger(l *slog.Logger) Option {
	return func(o *options) error {
		if l == nil {
			return errors.New("gateway: nil logger")
		}
		o.logger = l
		return nil
	}
}

// WithRegisterer registers the gateway's metrics with r. Without it the
// gateway records no metrics.
func WithRegisterer(r prometheus.Registerer) Option {
	return func(o *options) error {
		if r == nil {
			return errors.New("gateway: nil prometheus registerer")
		}
		o.registerer = r
		return nil
	}
}

// WithConsistencyWait bounds how long a read waits for min_seq and a strong
// write waits for its projection (default DefaultConsistencyWait).
func WithConsistencyWait(d time.Duration) Option {
	return func(o *options) error {
		if d <= 0 {
			return fmt.Errorf("gateway: consistency wait must be positive, got %v", d)
		}
		o.consistencyWait = d
		return nil
	}
}

// WithQueueGroup sets the NATS queue group the gateways of a deployment
// share (default DefaultQueueGroup).
func WithQueueGroup(name string) Option {
	return func(o *options) error {
		if name == "" {
			return errors.New("gateway: empty queue group")
		}
		o.queueGroup = name
		return nil
	}
}

// WithMaxInFlight bounds the requests handled at once (default
// DefaultMaxInFlight): further requests are shed at once with
// RESOURCE_EXHAUSTED, and under load the slots are shared fairly between
// namespaces (ADR 023).
func WithMaxInFlight(n int) Option {
	return func(o *options) error {
		if n <= 0 {
			return fmt.Errorf("gateway: max in flight must be positive, got %d", n)
		}
		o.maxInFlight = n
		return nil
	}
}

// WithMaxInFlightBytes bounds the total body size of the requests handled
// at once (default DefaultMaxInFlightBytes); a request that would pass it
// is shed with RESOURCE_EXHAUSTED.
func WithMaxInFlightBytes(n int64) Option {
	return func(o *options) error {
		if n <= 0 {
			return fmt.Errorf("gateway: max in-flight bytes must be positive, got %d", n)
		}
		o.maxInFlightBytes = n
		return nil
	}
}

// WithPendingLimits bounds the messages and bytes each of the gateway's
// subscriptions buffers before its callback admits or sheds them (default
// DefaultPendingMsgs, DefaultPendingBytes). Beyond them the NATS client
// drops requests (a slow consumer), which their callers see as a timeout;
// admission answers fast enough that this happens only when the process
// cannot even shed at the offered rate.
func WithPendingLimits(msgs, bytes int) Option {
	return func(o *options) error {
		if msgs <= 0 || bytes <= 0 {
			return fmt.Errorf("gateway: pending limits must be positive, got %d messages, %d bytes", msgs, bytes)
		}
		o.pendingMsgs, o.pendingBytes = msgs, bytes
		return nil
	}
}

// WithClock sets the clock used for event times, TTL expiry and the
// namespaces' rate limits (default time.Now). Tests use it to make expire
// times and rate limits predictable: with a clock that stands still a
// token bucket never refills.
func WithClock(now func() time.Time) Option {
	return func(o *options) error {
		if now == nil {
			return errors.New("gateway: nil clock")
		}
		o.clock = now
		return nil
	}
}

// WithTracerProvider sets where the gateway's spans go (default
// otel.GetTracerProvider(), which makes no spans unless the process set a
// global provider). See TracerName.
func WithTracerProvider(tp trace.TracerProvider) Option {
	return func(o *options) error {
		if tp == nil {
			return errors.New("gateway: nil tracer provider")
		}
		o.tracerProvider = tp
		return nil
	}
}
