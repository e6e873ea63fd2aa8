package projectors

import (
	"context"
	"errors"
	"sync"
	"time"

	"github.com/nats-io/nats.go/jetstream"
)

// Throttle paces a projector (WithThrottle), e.g. a backfill that must leave
// room for live traffic (replay.Throttle).
//
// Contract: Wait blocks until events more events may be applied and returns
// nil, or returns ctx's error once ctx ends. The projector calls it from one
// goroutine at a time, between pull requests, with the number of messages
// the last request delivered (at least 1); the throttle may be shared by
// several projectors, so Wait must be safe for concurrent use.
type Throttle interface {
	Wait(ctx context.Context, events int) error
}

// fetchExpiry is how long one pull request of a throttled projector waits
// for messages on the server; like the unthrottled pulls (consumer.go) it is
// short, with heartbeats, so a lost pull stalls for seconds at most, and
// each pull renews the projector's pin (pin.go).
const fetchExpiry = pullExpiry

// A throttled projector sizes its pulls so that paying for one takes about
// pullWaitTarget: a low rate gets small, frequent pulls (steady progress,
// small commits) instead of a catch-up batch every many seconds; a rate
// the target cannot reach gets full ones. Pulls stay between minPull
// messages and a catch-up batch.
const (
	pullWaitTarget = 100 * time.Millisecond
	minPull        = 16
)

// nextPull is the size of the pull after one of size n whose payment
// took waited: halved when it waited longer than pullWaitTarget, doubled
// when it hardly waited, within [min(minPull, most), most].
func nextPull(n, most int, waited time.Duration) int {
	switch {
	case waited > pullWaitTarget:
		return max(min(minPull, most), n/2)
	case waited < pullWaitTarget/4:
		return min(most, n*2)
	}
	return n
}

// fetchSession feeds a session by explicit pull requests, one at a time,
// and pays the throttle between them: a message is only delivered once the
// throttle let it through, so none waits on the throttle with its ack
// timer running. While a full pull is waiting on the stream (catching up)
// the throttle is paid for it before it is sent; at the head, where a pull
// may bring fewer messages, it is paid after for what it brought. It is
// the jetstream.ConsumeContext of a throttled projector's session.
type fetchSession struct {
	cancel context.CancelFunc
	closed chan struct{}
	once   sync.Once
}

// Stop ends the session; the messages of the request in flight are handed
// over unless the session aborted (session.close).
func (f *fetchSession) Stop() { f.once.Do(f.cancel) }

// Drain is Stop: a throttled session buffers at most one pull request,
// whose messages are handed over either way.
func (f *fetchSession) Drain() { f.Stop() }

// Closed is closed once the fetching goroutine has returned.
func (f *fetchSession) Closed() <-chan struct{} { return f.closed }

var _ jetstream.ConsumeContext = (*fetchSession)(nil)

// startFetching starts the goroutine that pulls from cons for a throttled
// projector and hands each message to handler, in delivery order; pending
// is how many messages wait on the stream for the consumer. It ends
// (closing Closed) on Stop or Drain, or when a pull fails: the session then
// ends by itself and the loop repositions the consumer (errResync).
func (p *Projector) startFetching(cons jetstream.Consumer, pending uint64, pinned bool, handler func(jetstream.Msg)) *fetchSession {
	opts := []jetstream.FetchOpt{jetstream.FetchHeartbeat(fetchExpiry / 4)}
	if pinned {
		opts = append(opts, jetstream.FetchPriorityGroup(priorityGroup))
	}
	ctx, cancel := context.WithCancel(context.Background())
	f := &fetchSession{cancel: cancel, closed: make(chan struct{})}
	most := batchLimit(p.opts.batchSize, p.opts.batchSize)
	n := min(most, minPull)
	pay := func(ctx context.Context, events int) error {
		start := time.Now()
		if err := p.opts.throttle.Wait(ctx, events); err != nil {
			return err
		}
		n = nextPull(n, most, time.Since(start))
		return nil
	}
	go func() {
		defer close(f.closed)
		for ctx.Err() == nil {
			size, paid := n, 0
			if pending >= uint64(size) {
				paid = size
				if pay(ctx, paid) != nil {
					return
				}
			}
			got, left, err := fetchOnce(ctx, cons, size, opts, handler)
			if err != nil {
				p.log.Warn("pull", "consumer", p.consumer, "err", err)
				return
			}
			pending = left
			if got > paid && pay(ctx, got-paid) != nil {
				return
			}
		}
	}()
	return f
}

// fetchOnce sends one pull request for up to n messages, hands what it
// delivers to handler, and returns how many it handed over and how many
// were left on the stream after the last (0 when none came). A request
// that expires or is cancelled is not an error.
func fetchOnce(ctx context.Context, cons jetstream.Consumer, n int, opts []jetstream.FetchOpt, handler func(jetstream.Msg)) (got int, pending uint64, err error) {
	fctx, cancel := context.WithTimeout(ctx, fetchExpiry)
	defer cancel()
	b, err := cons.Fetch(n, append(opts, jetstream.FetchContext(fctx))...)
	if err != nil {
		if ctx.Err() != nil {
			return 0, 0, nil
		}
		return 0, 0, err
	}
	for m := range b.Messages() {
		if meta, err := m.Metadata(); err == nil {
			pending = meta.NumPending
		}
		handler(m)
		got++
	}
	if err := b.Error(); err != nil && !errors.Is(err, context.DeadlineExceeded) && !errors.Is(err, context.Canceled) {
		return got, pending, err
	}
	return got, pending, nil
}
