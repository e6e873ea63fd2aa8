package projectors

import (
	"context"
	"sync"
	"sync/atomic"
	"time"

	"github.com/nats-io/nats.go/jetstream"

	"github.com/prism-data/prism/subjects"
)

// Polling bounds of ConsumerProgress.
const (
	// progressPollEvery is the pause between two looks at the consumer
	// while someone waits: at most this many JetStream API requests per
	// second and namespace, whatever the number of waiters.
	progressPollEvery = 5 * time.Millisecond
	// progressPollTimeout bounds one look.
	progressPollTimeout = 2 * time.Second
)

// ConsumerProgress is how far another process's projector of a target has
// applied the stream, read from the durable consumer they share: a
// projector acknowledges a batch only once the target committed it, so the
// consumer's ack floor is a sequence the target has applied (ADR 022). It
// is what a process that does not project a namespace (a standby, ADR 022)
// waits on for strong writes and min_seq reads. It is safe for concurrent
// use and needs no Close: it looks at the consumer only while someone
// waits, from one goroutine per ConsumerProgress that ends when the last
// waiter is gone.
type ConsumerProgress struct {
	js       jetstream.JetStream
	stream   string
	consumer string

	applied atomic.Uint64

	mu       sync.Mutex
	waiters  int
	polling  bool
	advanced chan struct{} // closed and replaced after each look
	lastErr  error
}

// NewConsumerProgress returns the progress of target's projection of
// namespace, read from its durable consumer (subjects.Consumer(target)).
func NewConsumerProgress(js jetstream.JetStream, namespace, target string) *ConsumerProgress {
	return &ConsumerProgress{js: js, stream: subjects.Stream(namespace), consumer: subjects.Consumer(target), advanced: make(chan struct{})}
}

// Applied is the highest sequence the consumer was seen to have
// acknowledged (0 before the first look).
func (p *ConsumerProgress) Applied() uint64 { return p.applied.Load() }

// Refresh looks at the consumer once and returns Applied, or the error of
// the look (the consumer or the server is gone).
func (p *ConsumerProgress) Refresh(ctx context.Context) (uint64, error) {
	ctx, cancel := context.WithTimeout(ctx, progressPollTimeout)
	defer cancel()
	c, err := p.js.Consumer(ctx, p.stream, p.consumer)
	if err != nil {
		return p.applied.Load(), err
	}
	floor := c.CachedInfo().AckFloor.Stream
	for {
		cur := p.applied.Load()
		if floor <= cur || p.applied.CompareAndSwap(cur, floor) {
			return max(cur, floor), nil
		}
	}
}

// WaitApplied returns nil once the consumer's ack floor is at least seq,
// or ctx's error when ctx ends first; LastError says whether the consumer
// could be read meanwhile.
func (p *ConsumerProgress) WaitApplied(ctx context.Context, seq uint64) error {
	if p.applied.Load() >= seq {
		return nil
	}
	p.mu.Lock()
	p.waiters++
	if !p.polling {
		p.polling = true
		go p.poll()
	}
	p.mu.Unlock()
	defer func() {
		p.mu.Lock()
		p.waiters--
		p.mu.Unlock()
	}()
	for {
		p.mu.Lock()
		ch := p.advanced
		p.mu.Unlock()
		if p.applied.Load() >= seq {
			return nil
		}
		select {
		case <-ch:
		case <-ctx.Done():
			return ctx.Err()
		}
	}
}

// LastError is the error of the last look, nil when it succeeded.
func (p *ConsumerProgress) LastError() error {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.lastErr
}

// poll looks at the consumer every progressPollEvery while anyone waits.
func (p *ConsumerProgress) poll() {
	for {
		_, err := p.Refresh(context.Background())
		p.mu.Lock()
		p.lastErr = err
		close(p.advanced)
		p.advanced = make(chan struct{})
		if p.waiters == 0 {
			p.polling = false
			p.mu.Unlock()
			return
		}
		p.mu.Unlock()
		time.Sleep(progressPollEvery)
	}
}
