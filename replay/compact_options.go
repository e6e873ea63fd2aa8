package replay

import (
	"errors"
	"fmt"
	"log/slog"
	"math"
	"time"

	"github.com/prometheus/client_golang/prometheus"
)

// Defaults of the compaction options.
const (
	// DefaultTombstoneRetention is how long the last event of a deleted
	// record is kept at least, even once every consumer has acknowledged
	// it: a projection target whose consumer is gone for a while (being
	// recreated, or stopped and deleted) still finds the delete when it
	// resumes from its checkpoint within that time. Kafka's
	// delete.retention.ms defaults to the same day.
	DefaultTombstoneRetention = 24 * time.Hour
	// DefaultCompactConcurrency is how many records a pass rolls up at
	// once: each is a round trip to the server, which overlap.
	DefaultCompactConcurrency = 4
	// DefaultCompactFoldLimit is how many records one scan of the stream
	// folds: a pass holds their states in memory, and scans the stream
	// once for each such group of the records to roll up.
	DefaultCompactFoldLimit = 100_000
	// DefaultCompactRatio is the Compactor's trigger: a pass runs when the
	// stream holds more than this many messages per subject.
	DefaultCompactRatio = 2.0
	// DefaultCompactCheckInterval is how often the Compactor reads the
	// stream's message and subject counts (one stream info request).
	DefaultCompactCheckInterval = 30 * time.Second
	// DefaultCompactorRate paces the Compactor's passes (ADR 028):
	// messages of the stream read per second, a rollup or a purge counting
	// as compactRecordCost (100) messages. A read costs a pass about 25 µs
	// of CPU and a rollup the NATS server about 2.3 ms, so a background
	// pass, in steps of 10 ms, takes at most about a quarter of a core
	// from the requests it runs beside: it reads a million-message stream in under two minutes
	// and rolls up 100 records a second. Compact (prism compact) is not
	// paced unless WithCompactRate says so.
	DefaultCompactorRate = 10_000
	// DefaultCompactMaxInterval is how long the Compactor lets pass without
	// a pass even below the ratio, so that deleted records whose tombstones
	// every consumer has since acknowledged are purged.
	DefaultCompactMaxInterval = time.Hour
)

// ErrInvalidCompactOption is wrapped by the error Compact and NewCompactor
// return for an option with an invalid value.
var ErrInvalidCompactOption = errors.New("invalid compaction option")

type compactOptions struct {
	now                func() time.Time
	logger             *slog.Logger
	concurrency        int
	foldLimit          int
	purgeTombstones    bool
	tombstoneRetention time.Duration
	// rate paces a pass (WithCompactRate); 0 is unpaced. rateSet says
	// whether an option set it, else a Compactor paces at
	// DefaultCompactorRate.
	rate    float64
	rateSet bool

	// Compactor only.
	registerer    prometheus.Registerer
	ratio         float64
	checkInterval time.Duration
	maxInterval   time.Duration

	// hook, set by tests only, runs before each rollup ("rollup") and
	// tombstone purge ("purge") with the record subject.
	hook func(stage, subject string)
	// paceHook, set by tests only, is told the messages each wait of a
	// paced pass asks for.
	paceHook func(n int)
}

func defaultCompactOptions() compactOptions {
	return compactOptions{
		now:                time.Now,
		logger:             slog.Default(),
		concurrency:        DefaultCompactConcurrency,
		foldLimit:          DefaultCompactFoldLimit,
		purgeTombstones:    true,
		tombstoneRetention: DefaultTombstoneRetention,
		ratio:              DefaultCompactRatio,
		checkInterval:      DefaultCompactCheckInterval,
		maxInterval:        DefaultCompactMaxInterval,
	}
}

func newCompactOptions(opts []CompactOption) (compactOptions, error) {
	o := defaultCompactOptions()
	for _, opt := range opts {
		if err := opt(&o); err != nil {
			return o, err
		}
	}
	return o, nil
}

// CompactOption configures Compact and NewCompactor. Options validate their
// values; Compact and NewCompactor return the first error, wrapping
// ErrInvalidCompactOption. Compact ignores the options only a Compactor
// uses (WithCompactRegisterer, WithCompactRatio, WithCompactCheckInterval,
// WithCompactMaxInterval).
type CompactOption func(*compactOptions) error

// WithCompactClock sets the clock that decides which items have expired
// (they are dropped from the folded state) and how old a tombstone is
// (default time.Now).
func WithCompactClock(now func() time.Time) CompactOption {
	return func(o *compactOptions) error {
		if now == nil {
			return fmt.Errorf("%w: nil clock", ErrInvalidCompactOption)
		}
		o.now = now
		return nil
	}
}

// WithCompactLogger sets the logger (default slog.Default()); records carry
// the namespace.
func WithCompactLogger(l *slog.Logger) CompactOption {
	return func(o *compactOptions) error {
		if l == nil {
			return fmt.Errorf("%w: nil logger", ErrInvalidCompactOption)
		}
		o.logger = l
		return nil
	}
}

// WithCompactFoldLimit sets how many records one scan of the stream folds
// (default DefaultCompactFoldLimit, at least 1): the most record states a
// pass holds in memory at once. A pass with more records to roll up scans
// the stream once for each group of that many.
func WithCompactFoldLimit(n int) CompactOption {
	return func(o *compactOptions) error {
		if n < 1 {
			return fmt.Errorf("%w: fold limit %d: must be at least 1", ErrInvalidCompactOption, n)
		}
		o.foldLimit = n
		return nil
	}
}

// WithCompactConcurrency sets how many records a pass rolls up at once
// (default DefaultCompactConcurrency, 1 to 64).
func WithCompactConcurrency(n int) CompactOption {
	return func(o *compactOptions) error {
		if n < 1 || n > 64 {
			return fmt.Errorf("%w: concurrency %d: must be 1 to 64", ErrInvalidCompactOption, n)
		}
		o.concurrency = n
		return nil
	}
}

// WithCompactRate paces a pass at perSecond messages of the stream read
// a second, a rollup or a purge counting as compactRecordCost messages; 0
// (Compact's default) does not pace it, and a Compactor's default is
// DefaultCompactorRate. Pacing spreads the pass's work out so that it
// does not delay the requests it runs beside.
func WithCompactRate(perSecond float64) CompactOption {
	return func(o *compactOptions) error {
		if !(perSecond >= 0) || math.IsInf(perSecond, 1) {
			return fmt.Errorf("%w: rate %v: must be 0 (unpaced) or a positive number of messages a second", ErrInvalidCompactOption, perSecond)
		}
		o.rate, o.rateSet = perSecond, true
		return nil
	}
}

// WithTombstoneRetention sets how old the last event of a deleted record
// must be before it may be purged (default DefaultTombstoneRetention); it
// must also be acknowledged by every consumer of the stream. 0 purges it as
// soon as every consumer has acknowledged it.
func WithTombstoneRetention(d time.Duration) CompactOption {
	return func(o *compactOptions) error {
		if d < 0 {
			return fmt.Errorf("%w: tombstone retention %v: must not be negative", ErrInvalidCompactOption, d)
		}
		o.tombstoneRetention = d
		return nil
	}
}

// WithoutTombstonePurge keeps the last event of every deleted record: a
// pass never purges a record subject entirely.
func WithoutTombstonePurge() CompactOption {
	return func(o *compactOptions) error {
		o.purgeTombstones = false
		return nil
	}
}

// WithCompactRegisterer registers the Compactor's metrics with r, labelled
// with the namespace (default: kept but not registered). A second
// Compactor of the same namespace on the same registerer shares the
// registered collectors.
func WithCompactRegisterer(r prometheus.Registerer) CompactOption {
	return func(o *compactOptions) error {
		if r == nil {
			return fmt.Errorf("%w: nil registerer", ErrInvalidCompactOption)
		}
		o.registerer = r
		return nil
	}
}

// WithCompactRatio sets the Compactor's trigger: a pass runs when the
// stream holds more than ratio messages per distinct subject (default
// DefaultCompactRatio; more than 1). Replaying the stream then costs at
// most about ratio times what its live data costs.
func WithCompactRatio(ratio float64) CompactOption {
	return func(o *compactOptions) error {
		if !(ratio > 1) {
			return fmt.Errorf("%w: ratio %v: must be more than 1", ErrInvalidCompactOption, ratio)
		}
		o.ratio = ratio
		return nil
	}
}

// WithCompactCheckInterval sets how often the Compactor checks its trigger
// (default DefaultCompactCheckInterval; positive).
func WithCompactCheckInterval(d time.Duration) CompactOption {
	return func(o *compactOptions) error {
		if d <= 0 {
			return fmt.Errorf("%w: check interval %v: must be positive", ErrInvalidCompactOption, d)
		}
		o.checkInterval = d
		return nil
	}
}

// WithCompactMaxInterval sets the longest time the Compactor goes without
// a pass, whatever the ratio (default DefaultCompactMaxInterval); 0 runs
// passes on the ratio only.
func WithCompactMaxInterval(d time.Duration) CompactOption {
	return func(o *compactOptions) error {
		if d < 0 {
			return fmt.Errorf("%w: max interval %v: must not be negative", ErrInvalidCompactOption, d)
		}
		o.maxInterval = d
		return nil
	}
}
