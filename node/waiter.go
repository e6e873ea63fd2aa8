package node

import (
	"context"
	"errors"
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
	// moves counts the swaps after which a read must not be answered
	// here (moveReads): a wait that spans one fails.
	moves uint64
}

// errReadsMoved fails a wait that began while this process served the
// namespace's reads from its own copy and ended after another process
// took the projection over: the copy here no longer follows the stream,
// so the gateway answers UNAVAILABLE and the client's retry is handed to
// the process that projects it.
var errReadsMoved = errors.New("another process projects the namespace now; retry")

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

// moveReads swaps in p, the progress of the process that projects the
// target now, and fails every wait in flight (errReadsMoved): this
// process's copy of a process-local target stopped following the stream.
func (w *swapWaiter) moveReads(p progress) {
	w.mu.Lock()
	w.moves++
	w.mu.Unlock()
	w.swap(p)
}

func (w *swapWaiter) movesSoFar() uint64 {
	w.mu.Lock()
	defer w.mu.Unlock()
	return w.moves
}

// Applied implements gateway.AppliedWaiter.
func (w *swapWaiter) Applied() uint64 {
	p, _ := w.current()
	return p.Applied()
}

// WaitApplied implements gateway.AppliedWaiter: it waits on the current
// projector and moves to the next one when it is replaced.
func (w *swapWaiter) WaitApplied(ctx context.Context, seq uint64) error {
	moves := w.movesSoFar()
	for {
		if w.movesSoFar() != moves {
			return errReadsMoved
		}
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
