package projectors_test

import (
	"context"
	"math/rand/v2"
	"sync"
	"testing"
	"time"

	"github.com/prism-data/prism/projectors"
	"github.com/prism-data/prism/subjects"
)

// countingThrottle lets everything through and counts the events it was
// asked for. With a gate, every Wait after the first free ones blocks until
// the gate is closed.
type countingThrottle struct {
	mu      sync.Mutex
	events  int
	calls   int
	passed  int // events of the calls that returned nil
	free    int
	gate    chan struct{}
	waiting chan struct{} // receives each time a Wait blocks on the gate
}

func (c *countingThrottle) Wait(ctx context.Context, events int) error {
	c.mu.Lock()
	c.events += events
	c.calls++
	gate, waiting := c.gate, c.waiting
	free := c.calls <= c.free
	c.mu.Unlock()
	if gate != nil && !free {
		select {
		case waiting <- struct{}{}:
		default:
		}
		select {
		case <-gate:
		case <-ctx.Done():
			return ctx.Err()
		}
	}
	c.mu.Lock()
	c.passed += events
	c.mu.Unlock()
	return nil
}

func (c *countingThrottle) counts() (events, calls int) {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.events, c.calls
}

// A throttled projector pays the throttle for every message delivered, and
// while the throttle holds it back nothing is delivered and left waiting:
// the messages of the pull it let through are applied and acknowledged,
// the rest stays undelivered on the stream (so no ack timer runs out and
// JetStream redelivers nothing). Once the throttle opens, every event is
// applied.
func TestThrottleHoldsBackBeforeDelivery(t *testing.T) {
	js := startJetStream(t)
	st := openStore(t)
	pub := newPublisher(js)
	pub.publishRandom(t, rand.New(rand.NewPCG(31, 32)), 3000, 100)

	th := &countingThrottle{free: 1, gate: make(chan struct{}), waiting: make(chan struct{}, 1)}
	const batch = 64 // a pull takes up to 4 batches: 256 messages
	p := startProjector(t, js, "replay", st, projectors.WithThrottle(th), projectors.WithBatchSize(batch))
	select {
	case <-th.waiting:
	case <-time.After(20 * time.Second): // generous: the first pull is immediate
		t.Fatal("the throttle was never asked")
	}
	th.mu.Lock()
	first := th.passed // the pull the throttle let through
	th.mu.Unlock()
	if first < 1 || first > 4*batch {
		t.Fatalf("first pull of %d messages, want 1 to a catch-up batch (%d)", first, 4*batch)
	}
	waitApplied(t, p, uint64(first))
	cons, err := js.Consumer(context.Background(), subjects.Stream(testNS), subjects.Consumer("replay"))
	if err != nil {
		t.Fatal(err)
	}
	// The commit is followed by the ack; give it a moment to land.
	deadline := time.Now().Add(10 * time.Second)
	for {
		info, err := cons.Info(context.Background())
		if err != nil {
			t.Fatal(err)
		}
		if info.NumAckPending == 0 {
			if info.Delivered.Stream != uint64(first) || info.NumPending != uint64(3000-first) {
				t.Fatalf("while throttled: delivered up to %d with %d pending on the stream; want %d and %d",
					info.Delivered.Stream, info.NumPending, first, 3000-first)
			}
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("while throttled: %d messages delivered and not acknowledged", info.NumAckPending)
		}
		time.Sleep(10 * time.Millisecond)
	}
	if got := p.Applied(); got != uint64(first) {
		t.Fatalf("Applied() = %d while throttled, want the first pull's %d", got, first)
	}

	close(th.gate)
	checkCaughtUp(t, p, pub, st, nil)
	// The last pull is paid for when it ends: full, or expired after 5s.
	deadline = time.Now().Add(20 * time.Second)
	for {
		events, calls := th.counts()
		if events == 3000 && calls >= 3000/(4*batch) {
			break
		}
		if events > 3000 || time.Now().After(deadline) {
			t.Fatalf("throttle paid for %d events in %d calls, want 3000 in at least %d (pulls of a catch-up batch at most)", events, calls, 3000/(4*batch))
		}
		time.Sleep(50 * time.Millisecond)
	}
	if p.ApplyLatency() <= 0 {
		t.Fatalf("ApplyLatency() = %v after commits, want > 0", p.ApplyLatency())
	}
	if p.Lag() != 0 {
		t.Fatalf("Lag() = %d when caught up, want 0", p.Lag())
	}
}

// A throttled projector tails live writes: a write after it caught up is
// applied without waiting for a pull to fill.
func TestThrottledProjectorTailsLiveWrites(t *testing.T) {
	js := startJetStream(t)
	st := openStore(t)
	pub := newPublisher(js)
	p := startProjector(t, js, "replay", st, projectors.WithThrottle(&countingThrottle{}))
	for i := range 5 {
		seq := pub.publish(t, putEvent(i))
		waitApplied(t, p, seq)
	}
	checkStore(t, st, pub.model)
}
