package replay

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"math"
	"sync"
	"sync/atomic"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"golang.org/x/time/rate"

	"github.com/prism-data/prism/projectors"
)

// Defaults of the throttle options.
const (
	// DefaultMinRate is the floor the adaptive throttle never cuts below
	// (events/s): a backfill always moves.
	DefaultMinRate = 100
	// DefaultThrottleInterval is how often the adaptive throttle reads its
	// probes.
	DefaultThrottleInterval = time.Second
	// DefaultDecrease is the factor the rate is multiplied by each interval
	// a probe is over its threshold.
	DefaultDecrease = 0.5
	// DefaultIncreaseSteps is in how many intervals a healthy throttle
	// climbs from zero back to its ceiling: each adds ceiling/10.
	DefaultIncreaseSteps = 10
)

// Throttle paces a backfill so that it does not hurt live traffic, like
// gh-ost's and Vitess's throttlers. It implements projectors.Throttle: give
// it to a replay projector with projectors.WithThrottle.
//
// It has two parts. A hard cap (WithMaxRate) that the rate never exceeds.
// And, when probes are set (WithLagProbe, WithLatencyProbe), an adaptive
// controller that reads them every interval: while any is over its
// threshold it cuts the rate multiplicatively (×0.5 by default, never below
// the floor, WithMinRate), and while all are healthy it raises the rate
// additively back to the cap — or, without a cap, back to the rate the
// backfill ran at before the first cut, where it lifts the limit (AIMD).
// A probe that fails counts as over its threshold: a throttle that cannot
// see the live targets slows down.
//
// Create it with NewThrottle and release it with Close. Its methods are
// safe for concurrent use; one Throttle may pace several projectors, which
// then share its rate.
type Throttle struct {
	o   throttleOptions
	lim *rate.Limiter
	m   *throttleMetrics

	// granted counts the events let through since the last step: the
	// backfill's actual rate, where a cut starts from without a cap.
	granted atomic.Int64

	mu       sync.Mutex
	st       ThrottleState
	ceiling  float64   // rate the increase stops at; 0 while unlimited
	cause    string    // why the rate was last cut
	lastStep time.Time // when the last step ran (or NewThrottle)

	cancel    context.CancelFunc
	done      chan struct{}
	closeOnce sync.Once
}

var _ projectors.Throttle = (*Throttle)(nil)

// ThrottleState is what a Throttle does right now, for progress output and
// metrics.
type ThrottleState struct {
	// Rate is the events per second allowed now; 0 means unlimited.
	Rate float64 `json:"rate"`
	// MaxRate is the hard cap (WithMaxRate); 0 means none.
	MaxRate float64 `json:"max_rate"`
	// Throttled says whether the adaptive controller holds the rate below
	// its ceiling (the cap, or unlimited).
	Throttled bool `json:"throttled"`
	// Reason says why, while Throttled: the probe over its threshold
	// ("primary lag 12000 > 5000", "apply latency 310ms > 250ms", "lag
	// probe: <error>"), or "recovering after <that>" while the probes are
	// healthy again and the rate climbs back.
	Reason string `json:"reason,omitempty"`
	// Lag and Latency are the probes' last readings (the largest, with
	// several probes of a kind); 0 without probes.
	Lag     uint64        `json:"lag"`
	Latency time.Duration `json:"latency"`
}

// LagProbe returns how many events the live (primary) targets are behind
// their stream's head.
type LagProbe func(ctx context.Context) (uint64, error)

// LatencyProbe returns the target backend's current apply latency, e.g.
// projectors.Projector.ApplyLatency.
type LatencyProbe func(ctx context.Context) (time.Duration, error)

type lagProbe struct {
	probe     LagProbe
	threshold uint64
}

type latencyProbe struct {
	probe     LatencyProbe
	threshold time.Duration
}

type throttleOptions struct {
	maxRate  float64
	minRate  float64
	interval time.Duration
	decrease float64
	lag      []lagProbe
	latency  []latencyProbe
	reg      prometheus.Registerer
	logger   *slog.Logger
	// controller starts the controller goroutine when there is a probe;
	// tests turn it off and call step themselves.
	controller bool
}

// ThrottleOption configures NewThrottle. Options validate their values;
// NewThrottle returns the first error, wrapping ErrInvalidThrottleOption.
type ThrottleOption func(*throttleOptions) error

// ErrInvalidThrottleOption is wrapped by the error NewThrottle returns for
// an option with an invalid value.
var ErrInvalidThrottleOption = errors.New("invalid throttle option")

// WithMaxRate caps the rate at eventsPerSecond (>= 0; 0, the default, is no
// cap). The adaptive controller only ever lowers the rate below it.
func WithMaxRate(eventsPerSecond float64) ThrottleOption {
	return func(o *throttleOptions) error {
		if eventsPerSecond < 0 || math.IsNaN(eventsPerSecond) || math.IsInf(eventsPerSecond, 0) {
			return fmt.Errorf("%w: max rate %v: want a finite rate >= 0 (0: none)", ErrInvalidThrottleOption, eventsPerSecond)
		}
		o.maxRate = eventsPerSecond
		return nil
	}
}

// WithMinRate sets the floor of the adaptive controller's cuts in events/s
// (> 0; default DefaultMinRate). A cap below it is the floor instead.
func WithMinRate(eventsPerSecond float64) ThrottleOption {
	return func(o *throttleOptions) error {
		if !(eventsPerSecond > 0) || math.IsInf(eventsPerSecond, 0) {
			return fmt.Errorf("%w: min rate %v: want a finite rate > 0", ErrInvalidThrottleOption, eventsPerSecond)
		}
		o.minRate = eventsPerSecond
		return nil
	}
}

// WithLagProbe adds a probe of the live targets' projector lag (events
// behind the stream's head): while it reads more than threshold (> 0), or
// fails, the controller cuts the rate. It may be given several times.
func WithLagProbe(probe LagProbe, threshold uint64) ThrottleOption {
	return func(o *throttleOptions) error {
		if probe == nil || threshold == 0 {
			return fmt.Errorf("%w: lag probe needs a function and a threshold > 0", ErrInvalidThrottleOption)
		}
		o.lag = append(o.lag, lagProbe{probe, threshold})
		return nil
	}
}

// WithLatencyProbe adds a probe of the target backend's apply latency:
// while it reads more than threshold (> 0), or fails, the controller cuts
// the rate. It may be given several times.
func WithLatencyProbe(probe LatencyProbe, threshold time.Duration) ThrottleOption {
	return func(o *throttleOptions) error {
		if probe == nil || threshold <= 0 {
			return fmt.Errorf("%w: latency probe needs a function and a threshold > 0", ErrInvalidThrottleOption)
		}
		o.latency = append(o.latency, latencyProbe{probe, threshold})
		return nil
	}
}

// WithThrottleInterval sets how often the controller reads the probes and
// adjusts the rate (default DefaultThrottleInterval, at least 10ms). Each
// probe call is bounded by it.
func WithThrottleInterval(d time.Duration) ThrottleOption {
	return func(o *throttleOptions) error {
		if d < 10*time.Millisecond {
			return fmt.Errorf("%w: interval %v: want at least 10ms", ErrInvalidThrottleOption, d)
		}
		o.interval = d
		return nil
	}
}

// WithDecrease sets the factor a cut multiplies the rate by (0 < factor <
// 1; default DefaultDecrease).
func WithDecrease(factor float64) ThrottleOption {
	return func(o *throttleOptions) error {
		if !(factor > 0 && factor < 1) {
			return fmt.Errorf("%w: decrease factor %v: want 0 < factor < 1", ErrInvalidThrottleOption, factor)
		}
		o.decrease = factor
		return nil
	}
}

// WithThrottleRegisterer registers the throttle's gauges with r:
// prism_replay_throttle_rate (events/s allowed, 0 = unlimited),
// prism_replay_throttle_max_rate (the cap, 0 = none) and
// prism_replay_throttled (1 while the controller holds the rate down).
// Label several throttles on one registry by wrapping r with
// prometheus.WrapRegistererWith.
func WithThrottleRegisterer(r prometheus.Registerer) ThrottleOption {
	return func(o *throttleOptions) error {
		if r == nil {
			return fmt.Errorf("%w: nil registerer", ErrInvalidThrottleOption)
		}
		o.reg = r
		return nil
	}
}

// WithThrottleLogger logs each change between throttled and not, with the
// reason (default: no logs).
func WithThrottleLogger(l *slog.Logger) ThrottleOption {
	return func(o *throttleOptions) error {
		if l == nil {
			return fmt.Errorf("%w: nil logger", ErrInvalidThrottleOption)
		}
		o.logger = l
		return nil
	}
}

// NewThrottle returns a Throttle with opts, running at the cap (or
// unlimited). With a probe it starts the controller goroutine, which runs
// until Close. Errors: ErrInvalidThrottleOption (wrapped), or a metrics
// registration error.
func NewThrottle(opts ...ThrottleOption) (*Throttle, error) {
	o := defaultThrottleOptions()
	for _, opt := range opts {
		if err := opt(&o); err != nil {
			return nil, fmt.Errorf("new throttle: %w", err)
		}
	}
	return newThrottle(o)
}

func defaultThrottleOptions() throttleOptions {
	return throttleOptions{
		minRate:    DefaultMinRate,
		interval:   DefaultThrottleInterval,
		decrease:   DefaultDecrease,
		logger:     slog.New(slog.NewTextHandler(io.Discard, nil)),
		controller: true,
	}
}

func newThrottle(o throttleOptions) (*Throttle, error) {
	m, err := newThrottleMetrics(o.reg)
	if err != nil {
		return nil, fmt.Errorf("new throttle: %w", err)
	}
	t := &Throttle{o: o, m: m, lastStep: time.Now(), done: make(chan struct{})}
	t.st.MaxRate = o.maxRate
	t.lim = rate.NewLimiter(rate.Inf, 1)
	t.setRate(o.maxRate)
	ctx, cancel := context.WithCancel(context.Background())
	t.cancel = cancel
	if !o.controller || (len(o.lag) == 0 && len(o.latency) == 0) {
		close(t.done)
		return t, nil
	}
	go func() {
		defer close(t.done)
		tick := time.NewTicker(o.interval)
		defer tick.Stop()
		for {
			select {
			case <-ctx.Done():
				return
			case now := <-tick.C:
				t.step(ctx, now)
			}
		}
	}()
	return t, nil
}

// Close stops the controller goroutine and waits for it. It is idempotent;
// Wait keeps working at the last rate afterwards.
func (t *Throttle) Close() error {
	t.closeOnce.Do(t.cancel)
	<-t.done
	return nil
}

// Wait blocks until events more events may go at the current rate and
// returns nil, or returns ctx's error once ctx ends. A rate change takes
// effect within a tenth of a second of waiting.
func (t *Throttle) Wait(ctx context.Context, events int) error {
	t.granted.Add(int64(max(events, 0)))
	for events > 0 {
		n := min(events, t.lim.Burst())
		if err := t.lim.WaitN(ctx, n); err != nil {
			if ctx.Err() == nil && n <= t.lim.Burst() {
				// The wait would outlast ctx's deadline: WaitN says so at
				// once; the contract is to return ctx's error when it ends.
				<-ctx.Done()
			}
			if ctx.Err() != nil {
				return ctx.Err()
			}
			continue // the burst shrank meanwhile
		}
		events -= n
	}
	return nil
}

// State returns what the throttle does right now.
func (t *Throttle) State() ThrottleState {
	t.mu.Lock()
	defer t.mu.Unlock()
	return t.st
}

// setRate sets the allowed rate (0: unlimited), and the limiter's burst to
// a tenth of a second of it, so a rate change bites promptly. t.mu is held
// (or t is not shared yet).
func (t *Throttle) setRate(r float64) {
	t.st.Rate = r
	if r == 0 {
		t.lim.SetLimit(rate.Inf)
		t.lim.SetBurst(1)
	} else {
		t.lim.SetLimit(rate.Limit(r))
		t.lim.SetBurst(max(1, int(r/10)))
	}
	t.m.set(t.st)
}

// floor is the lowest rate a cut goes to.
func (t *Throttle) floor() float64 {
	if t.o.maxRate > 0 {
		return min(t.o.minRate, t.o.maxRate)
	}
	return t.o.minRate
}

// probe reads every probe and returns the largest readings and, when one
// is over its threshold or failed, why (else "").
func (t *Throttle) probe(ctx context.Context) (lag uint64, latency time.Duration, reason string) {
	ctx, cancel := context.WithTimeout(ctx, t.o.interval)
	defer cancel()
	for _, p := range t.o.lag {
		v, err := p.probe(ctx)
		switch {
		case err != nil:
			reason = cmpReason(reason, "lag probe: "+err.Error())
		case v > p.threshold:
			reason = cmpReason(reason, fmt.Sprintf("primary lag %d > %d", v, p.threshold))
		}
		lag = max(lag, v)
	}
	for _, p := range t.o.latency {
		v, err := p.probe(ctx)
		switch {
		case err != nil:
			reason = cmpReason(reason, "latency probe: "+err.Error())
		case v > p.threshold:
			reason = cmpReason(reason, fmt.Sprintf("apply latency %v > %v", v.Round(time.Millisecond), p.threshold))
		}
		latency = max(latency, v)
	}
	return lag, latency, reason
}

// cmpReason keeps the first reason found.
func cmpReason(have, found string) string {
	if have != "" {
		return have
	}
	return found
}

// step is one interval of the controller: read the probes, then cut the
// rate (a probe over its threshold) or raise it towards the ceiling (all
// healthy). now is the time of the tick.
func (t *Throttle) step(ctx context.Context, now time.Time) {
	lag, latency, reason := t.probe(ctx)
	granted := t.granted.Swap(0)
	t.mu.Lock()
	defer t.mu.Unlock()
	elapsed := now.Sub(t.lastStep).Seconds()
	t.lastStep = now
	t.st.Lag, t.st.Latency = lag, latency
	was := t.st.Throttled
	switch {
	case reason != "":
		cur := t.st.Rate
		if cur == 0 {
			// Unlimited so far: cut from the rate the backfill actually
			// ran at, and come back to it.
			if elapsed > 0 {
				cur = float64(granted) / elapsed
			}
			cur = max(cur, t.floor())
			t.ceiling = cur
		} else if !t.st.Throttled {
			t.ceiling = cur
		}
		t.cause = reason
		t.st.Throttled, t.st.Reason = true, reason
		t.setRate(max(cur*t.o.decrease, t.floor()))
	case t.st.Throttled:
		next := min(t.st.Rate+t.ceiling/DefaultIncreaseSteps, t.ceiling)
		if next >= t.ceiling {
			t.st.Throttled, t.st.Reason = false, ""
			t.setRate(t.o.maxRate) // back to the cap, or unlimited
			break
		}
		t.st.Reason = "recovering after " + t.cause
		t.setRate(next)
	}
	t.m.set(t.st)
	if t.st.Throttled != was {
		if t.st.Throttled {
			t.o.logger.Info("backfill throttled", "reason", reason, "rate", t.st.Rate)
		} else {
			t.o.logger.Info("backfill no longer throttled", "rate", t.st.Rate)
		}
	}
}

// throttleMetrics are the Throttle's gauges.
type throttleMetrics struct {
	rate, maxRate, throttled prometheus.Gauge
}

func newThrottleMetrics(reg prometheus.Registerer) (*throttleMetrics, error) {
	m := &throttleMetrics{
		rate: prometheus.NewGauge(prometheus.GaugeOpts{
			Name: "prism_replay_throttle_rate",
			Help: "Events per second the backfill throttle allows now; 0 is unlimited.",
		}),
		maxRate: prometheus.NewGauge(prometheus.GaugeOpts{
			Name: "prism_replay_throttle_max_rate",
			Help: "The backfill throttle's hard cap in events per second; 0 is none.",
		}),
		throttled: prometheus.NewGauge(prometheus.GaugeOpts{
			Name: "prism_replay_throttled",
			Help: "1 while the adaptive throttle holds the backfill below its cap because live targets lag or the target is slow.",
		}),
	}
	if reg == nil {
		return m, nil
	}
	for _, c := range []prometheus.Collector{m.rate, m.maxRate, m.throttled} {
		if err := reg.Register(c); err != nil {
			return nil, fmt.Errorf("register metrics: %w", err)
		}
	}
	return m, nil
}

func (m *throttleMetrics) set(st ThrottleState) {
	m.rate.Set(st.Rate)
	m.maxRate.Set(st.MaxRate)
	if st.Throttled {
		m.throttled.Set(1)
	} else {
		m.throttled.Set(0)
	}
}
