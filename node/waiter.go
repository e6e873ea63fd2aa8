package node

import (
	"context"
	"sync"

	"github.com/prism-data/prism/projectors"
)

// progress is how far a target has applied the stream: its projector in
// this process, or a standby's view of another process's
// (projectors.ConsumerProgress).
type progress interface {
	Applied() uint64
	WaitApplied(ctx context.Context, seq uint64) error
}

var (
	_ progress = (*projectors.Projector)(nil)
	_ progress = (*projectors.ConsumerProgress)(nil)
)

// swapWaiter is the gateway's AppliedWaiter of a namespace whose progress
// may be replaced: a live change of batch size replaces the projector, a
// standby's takeover the other process's progress by its own projector.
type swapWaiter struct {
	mu      sync.Mutex
	cur     progress
	swapped chan struct{} // closed when cur is replaced
}

func newSwapWaiter(p progress) *swapWaiter {
	return &swapWaiter{cur: p, swapped: make(chan struct{})}
}

func (w *swapWaiter) current() (progress, <-chan struct{}) {
	w.mu.Lock()
	defer w.mu.Unlock()
	return w.cur, w.swapped
}

func (w *swapWaiter) swap(p progress) {
	w.mu.Lock()
	defer w.mu.Unlock()
	w.cur = p
	close(w.swapped)
	w.swapped = make(chan struct{})
}

// Applied implements gateway.AppliedWaiter.
func (w *swapWaiter) Applied() uint64 {
	p, _ := w.current()
	return p.Applied()
}

// WaitApplied implements gateway.AppliedWaiter: it waits on the current
// projector and moves to the next one when it is replaced.
func (w *swapWaiter) WaitApplied(ctx context.Context, seq uint64) error {
	for {
		p, swapped := w.current()
		if p.Applied() >= seq {
			return nil
		}
		wctx, cancel := context.WithCancel(ctx)
		go func() {
			select {
			case <-swapped:
				cancel()
			case <-wctx.Done():
			}
		}()
		err := p.WaitApplied(wctx, seq)
		cancel()
		if err == nil || ctx.Err() != nil {
			return err
		}
	}
}
