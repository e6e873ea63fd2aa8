package projectors

import (
	"errors"
	"fmt"
	"log/slog"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"go.opentelemetry.io/otel"
	"go.opentelemetry.io/otel/trace"
)

// Defaults of the options.
const (
	DefaultBatchSize  = 256
	DefaultMinBackoff = 50 * time.Millisecond
	DefaultMaxBackoff = 5 * time.Second
	// MaxBatchSize bounds WithBatchSize; larger batches only grow the
	// in-flight window and the backend transaction.
	MaxBatchSize = 10000
)

// ErrInvalidOption is wrapped by the error New returns for an option with an
// invalid value.
var ErrInvalidOption = errors.New("invalid projector option")

type options struct {
	batchSize      int
	linger         time.Duration
	minBackoff     time.Duration
	maxBackoff     time.Duration
	logger         *slog.Logger
	registerer     prometheus.Registerer
	tracerProvider trace.TracerProvider
	onApplied      func(ids [][]byte, through uint64)
	owner          string
	throttle       Throttle
	stopAt         uint64
	// claimHook, set by tests only, runs when the projector has found an
	// existing consumer free, before it claims it.
	claimHook func()
}

func defaultOptions() options {
	return options{
		batchSize:      DefaultBatchSize,
		linger:         DefaultLinger,
		minBackoff:     DefaultMinBackoff,
		maxBackoff:     DefaultMaxBackoff,
		logger:         slog.Default(),
		tracerProvider: otel.GetTracerProvider(),
	}
}

// Option configures a Projector. Options validate their values; New returns
// the first error, wrapping ErrInvalidOption.
type Option func(*options) error

// WithBatchSize sets the most changes applied in one backend transaction
// while the projector keeps up (default 256, 1 to MaxBatchSize). The
// projector applies what is at hand, waiting up to WithLinger for more only
// while writers are concurrent. When more than a batch is waiting
// (catching up, replaying) it takes up to 4 batches at once, at most 4096
// changes (or one batch, if larger).
func WithBatchSize(n int) Option {
	return func(o *options) error {
		if n < 1 || n > MaxBatchSize {
			return fmt.Errorf("%w: batch size %d: must be 1 to %d", ErrInvalidOption, n, MaxBatchSize)
		}
		o.batchSize = n
		return nil
	}
}

// WithBackoff sets the bounds of the exponential backoff (with jitter)
// between retries of a failed batch (default 50ms to 5s). 0 < min <= max.
func WithBackoff(minimum, maximum time.Duration) Option {
	return func(o *options) error {
		if minimum <= 0 || maximum < minimum {
			return fmt.Errorf("%w: backoff %v..%v: need 0 < min <= max", ErrInvalidOption, minimum, maximum)
		}
		o.minBackoff, o.maxBackoff = minimum, maximum
		return nil
	}
}

// WithOwner names the process the projector runs in (e.g. host/instance
// id, stable across restarts of that process). It is recorded on the
// durable consumer, and Start refuses with ErrConsumerInUse while a
// projector of another owner is consuming it. Without it the check is off.
func WithOwner(id string) Option {
	return func(o *options) error {
		o.owner = id
		return nil
	}
}

// WithThrottle paces the projector with t (see Throttle): a backfill that
// must not hurt live traffic. A throttled projector pulls its messages in
// explicit requests of up to one catch-up batch and calls t.Wait with the
// number of messages each request delivered before it sends the next one,
// so no delivered message waits on the throttle (its ack timer would run
// and JetStream would redeliver it). Without it (the default) the
// projector consumes as fast as the target applies.
func WithThrottle(t Throttle) Option {
	return func(o *options) error {
		if t == nil {
			return fmt.Errorf("%w: nil throttle", ErrInvalidOption)
		}
		o.throttle = t
		return nil
	}
}

// WithStopAt makes the projector apply the stream up to and including
// stream sequence seq and then stop by itself: it commits the checkpoint
// seq (also when seq itself was deleted from the stream), stops fetching,
// and closes Done. Messages delivered past seq are not applied or
// acknowledged; the next projector of the target repositions the consumer
// at its checkpoint. A projector started at or past seq stops at once. seq
// must be at least 1; without the option (the default) the projector runs
// until Stop.
func WithStopAt(seq uint64) Option {
	return func(o *options) error {
		if seq == 0 {
			return fmt.Errorf("%w: stop sequence 0: must be at least 1", ErrInvalidOption)
		}
		o.stopAt = seq
		return nil
	}
}

// WithAppliedHook sets fn to be called after each batch the target
// committed, before Applied moves to through, with the ids the batch
// changed: record ids (KeyValue), series ids (TimeSeries) or keys (Log),
// in stream order, repeats included. It runs on the projector's goroutine:
// it must be fast and must not block. A read cache uses it to drop the
// records it holds (gateway.Gateway.RecordsApplied).
func WithAppliedHook(fn func(ids [][]byte, through uint64)) Option {
	return func(o *options) error {
		o.onApplied = fn
		return nil
	}
}

// WithLogger sets the logger (default slog.Default()). Records carry the
// namespace and target.
func WithLogger(l *slog.Logger) Option {
	return func(o *options) error {
		if l == nil {
			return fmt.Errorf("%w: nil logger", ErrInvalidOption)
		}
		o.logger = l
		return nil
	}
}

// WithRegisterer registers the projector's metrics with r, labelled with
// namespace and target (default: metrics are kept but not registered). A
// second projector of the same (namespace, target) on the same registerer
// reuses the registered collectors.
func WithRegisterer(r prometheus.Registerer) Option {
	return func(o *options) error {
		if r == nil {
			return fmt.Errorf("%w: nil registerer", ErrInvalidOption)
		}
		o.registerer = r
		return nil
	}
}

// WithTracerProvider sets where the projector's batch spans go (default
// otel.GetTracerProvider(), which makes no spans unless the process set a
// global provider). See TracerName.
func WithTracerProvider(tp trace.TracerProvider) Option {
	return func(o *options) error {
		if tp == nil {
			return fmt.Errorf("%w: nil tracer provider", ErrInvalidOption)
		}
		o.tracerProvider = tp
		return nil
	}
}

// DefaultLinger is how long a busy projector waits to fill a batch
// (WithLinger). Measured with prism bench, 64 writers: 11 % less CPU per
// acknowledged put than 0, for at most 1 ms more until a write is visible
// (docs/performance.md).
const DefaultLinger = time.Millisecond

// WithLinger sets how long the projector waits for more changes when a
// batch is not full and the one before it held more than one change, that
// is while writers are concurrent (default DefaultLinger, 0 to 100 ms; 0
// never waits). Fewer, larger commits cost the backend less per change; a
// lone write is still applied at once. A write becomes visible up to d
// later under load.
func WithLinger(d time.Duration) Option {
	return func(o *options) error {
		if d < 0 || d > 100*time.Millisecond {
			return fmt.Errorf("%w: linger %v: must be 0 to 100ms", ErrInvalidOption, d)
		}
		o.linger = d
		return nil
	}
}
