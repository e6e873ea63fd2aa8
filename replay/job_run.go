package replay

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/nats-io/nats.go/jetstream"

	"github.com/prism-data/prism/projectors"
	"github.com/prism-data/prism/subjects"
)

// Running is a Job's projector while it runs: what progress output samples
// and what a backfill reads through.
type Running struct {
	// Start is the target's checkpoint the projector started from; StopAt
	// the last sequence it applies (0 while following).
	Start, StopAt uint64
	// Began is when the projector started.
	Began time.Time

	p          *projectors.Projector
	th         *Throttle
	stream     jetstream.Stream
	head       *headWatcher
	unlock     func()
	closeStore func() error
	stopOnce   sync.Once
	stopErr    error
}

// JobProgress is a Running job at one instant.
type JobProgress struct {
	// Applied is the target's checkpoint; Head the stream's last sequence.
	Applied, Head uint64
	// Throttle is the throttle's state; nil without one.
	Throttle *ThrottleState
}

// Projector is the job's projector (Applied, WaitApplied, Lag, Done).
func (r *Running) Projector() *projectors.Projector { return r.p }

// Throttle is the job's throttle; nil without one.
func (r *Running) Throttle() *Throttle { return r.th }

// Progress samples the job now.
func (r *Running) Progress() JobProgress {
	pr := JobProgress{Applied: r.p.Applied(), Head: r.head.last()}
	if r.th != nil {
		st := r.th.State()
		pr.Throttle = &st
	}
	return pr
}

// Stop stops the projector (it commits the batch in hand), the throttle and
// the head watcher, closes the store and releases the lock. It is
// idempotent; the consumer is kept.
func (r *Running) Stop(ctx context.Context) error {
	r.stopOnce.Do(func() {
		err := r.p.Stop(ctx)
		r.head.stop()
		if r.th != nil {
			_ = r.th.Close()
		}
		r.stopErr = errors.Join(err, r.closeStore())
		r.unlock()
	})
	return r.stopErr
}

// startProjector starts the projector of the target from start to stopAt
// (0: until stopped), throttled as configured.
func (j *Job) startProjector(ctx context.Context, stream jetstream.Stream, store Store, start, stopAt uint64) (*Running, error) {
	c := j.c
	r := &Running{Start: start, StopAt: stopAt, stream: stream}
	// The throttle's latency probe reads the projector made after it.
	var made atomic.Pointer[projectors.Projector]
	th, err := j.throttle(stream, func() time.Duration {
		if p := made.Load(); p != nil {
			return p.ApplyLatency()
		}
		return 0
	})
	if err != nil {
		return nil, err
	}
	opts := []projectors.Option{projectors.WithLogger(j.log), projectors.WithOwner(c.Owner)}
	if c.BatchSize > 0 {
		opts = append(opts, projectors.WithBatchSize(c.BatchSize))
	}
	if stopAt > 0 {
		opts = append(opts, projectors.WithStopAt(stopAt))
	}
	if th != nil {
		opts = append(opts, projectors.WithThrottle(th))
	}
	opts = append(opts, c.ProjectorOptions...)
	var p *projectors.Projector
	switch c.Abstraction {
	case subjects.AbstractionTimeSeries:
		ts, ok := store.(projectors.TimeSeriesTarget)
		if !ok {
			err = fmt.Errorf("store %T does not serve the timeseries abstraction", store)
		} else {
			p, err = projectors.NewTimeSeries(c.JetStream, c.Namespace, c.Target, ts, opts...)
		}
	case subjects.AbstractionEntity:
		en, ok := store.(projectors.EntityTarget)
		if !ok {
			err = fmt.Errorf("store %T does not serve the entity abstraction", store)
		} else {
			p, err = projectors.NewEntity(c.JetStream, c.Namespace, c.Target, en, opts...)
		}
	case subjects.AbstractionGraph:
		gr, ok := store.(projectors.GraphTarget)
		if !ok {
			err = fmt.Errorf("store %T does not serve the graph abstraction", store)
		} else {
			p, err = projectors.NewGraph(c.JetStream, c.Namespace, c.Target, gr, opts...)
		}
	default:
		kv, ok := store.(projectors.KeyValueTarget)
		if !ok {
			err = fmt.Errorf("store %T does not serve the keyvalue abstraction", store)
		} else {
			p, err = projectors.New(c.JetStream, c.Namespace, c.Target, projectors.ResolveChunks(c.JetStream, c.Namespace, kv), opts...)
		}
	}
	if err == nil {
		made.Store(p)
		r.Began = time.Now()
		err = p.Start(ctx)
		if errors.Is(err, projectors.ErrConsumerInUse) {
			err = j.inUse("another process")
		}
	}
	if err != nil {
		if th != nil {
			_ = th.Close()
		}
		return nil, err
	}
	r.p, r.th, r.head = p, th, newHeadWatcher(stream, p)
	return r, nil
}

// throttle returns the job's throttle, nil when not configured. latency
// reads the projector's apply latency.
func (j *Job) throttle(stream jetstream.Stream, latency func() time.Duration) (*Throttle, error) {
	tc := j.c.Throttle
	if !tc.enabled() {
		return nil, nil
	}
	// The projector names its namespace and target in its logs; the
	// throttle's say which replay they are about the same way.
	opts := []ThrottleOption{WithMaxRate(tc.MaxRate), WithThrottleLogger(j.log.With("namespace", j.c.Namespace, "target", j.c.Target))}
	if tc.Adaptive {
		lag := tc.LagProbe
		if lag == nil {
			lag = LiveLagProbe(stream, subjects.Consumer(j.c.Target))
		}
		opts = append(opts,
			WithLagProbe(lag, tc.MaxLag),
			WithLatencyProbe(func(context.Context) (time.Duration, error) { return latency(), nil }, tc.MaxLatency))
	}
	return NewThrottle(opts...)
}

// liveActivity is how recently a consumer must have acknowledged (unless
// it has a pull request waiting) to count as a live projector for the lag
// probe: the consumer of a finished replay, or of a target nobody
// projects any more, falls further behind with every write and would
// otherwise hold the replay at its floor.
const liveActivity = 5 * time.Second

// LiveLagProbe reads how far the namespace's live projectors (every proj_*
// consumer of stream other than own that is being consumed: a pull
// waiting, or an ack in the last five seconds) are behind the stream: the
// most events not yet delivered or not yet acknowledged.
func LiveLagProbe(stream jetstream.Stream, own string) LagProbe {
	return func(ctx context.Context) (uint64, error) {
		var lag uint64
		l := stream.ListConsumers(ctx)
		for info := range l.Info() {
			if info.Name == own || !strings.HasPrefix(info.Name, subjects.Consumer("")) {
				continue
			}
			acked := info.AckFloor.Last
			if info.NumWaiting > 0 || (acked != nil && time.Since(*acked) < liveActivity) {
				lag = max(lag, info.NumPending+uint64(info.NumAckPending))
			}
		}
		return lag, l.Err()
	}
}

// headWatcher keeps the stream's last sequence for progress output,
// refreshed once a second from the stream's info.
type headWatcher struct {
	p      *projectors.Projector
	cancel context.CancelFunc
	done   chan struct{}
	val    atomic.Uint64
}

func newHeadWatcher(stream jetstream.Stream, p *projectors.Projector) *headWatcher {
	ctx, cancel := context.WithCancel(context.Background())
	h := &headWatcher{p: p, cancel: cancel, done: make(chan struct{})}
	refresh := func() {
		rctx, cancel := context.WithTimeout(ctx, 2*time.Second)
		defer cancel()
		if info, err := stream.Info(rctx); err == nil {
			h.val.Store(info.State.LastSeq)
		}
	}
	refresh()
	go func() {
		defer close(h.done)
		tk := time.NewTicker(time.Second)
		defer tk.Stop()
		for {
			select {
			case <-ctx.Done():
				return
			case <-tk.C:
				refresh()
			}
		}
	}()
	return h
}

// last is the stream's last sequence as last read, or as the projector saw
// it in a later delivery.
func (h *headWatcher) last() uint64 { return max(h.val.Load(), h.p.Applied()+h.p.Lag()) }

func (h *headWatcher) stop() {
	h.cancel()
	<-h.done
}
