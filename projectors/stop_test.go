package projectors_test

import (
	"context"
	"errors"
	"math/rand/v2"
	"sync"
	"testing"
	"time"

	"github.com/nats-io/nats.go/jetstream"

	"github.com/prism-data/prism/projectors"
	prismv1 "github.com/prism-data/prism/proto/prism/v1"
	"github.com/prism-data/prism/subjects"
)

// isClosed reports whether ch is closed.
func isClosed(ch <-chan struct{}) bool {
	select {
	case <-ch:
		return true
	default:
		return false
	}
}

// ackFloor returns the stream sequence at or below which the target's
// consumer has every message acknowledged.
func ackFloor(tb testing.TB, js jetstream.JetStream, target string) uint64 {
	tb.Helper()
	cons, err := js.Consumer(context.Background(), subjects.Stream(testNS), subjects.Consumer(target))
	if err != nil {
		tb.Fatal(err)
	}
	return cons.CachedInfo().AckFloor.Stream
}

// TestAbortAndRestart aborts a projector mid-stream (like a crash: nothing
// in hand is acked) while a publisher keeps writing, then starts a new
// projector on the same store and consumer. Each round holds the third
// commit at the target, so a batch is in hand when the plug is pulled and
// the abort path runs every time.
func TestAbortAndRestart(t *testing.T) {
	js := startJetStream(t)
	st := openStore(t)
	rec := newRecorder(st)
	rec.delay = time.Millisecond // keep batches in flight
	pub := newPublisher(js)

	var wg sync.WaitGroup
	wg.Add(1)
	go func() {
		defer wg.Done()
		pub.publishRandom(t, rand.New(rand.NewPCG(5, 6)), 3000, 200)
	}()

	newProjector := func() *projectors.Projector {
		p, err := projectors.New(js, testNS, "sqlite", rec, projectors.WithLogger(testLogger(t)), projectors.WithBatchSize(32))
		if err != nil {
			t.Fatal(err)
		}
		if err := p.Start(context.Background()); err != nil {
			t.Fatal(err)
		}
		return p
	}

	for round := range 3 {
		base, err := st.Checkpoint(context.Background())
		if err != nil {
			t.Fatal(err)
		}
		// Let it apply something, then hold a batch and pull the plug.
		calls := 0
		gate := newApplyGate(func(changes []*prismv1.KeyValueChange, _ uint64) bool {
			calls++
			return calls >= 3 && len(changes) > 0
		})
		rec.setGate(gate.hold)
		t.Cleanup(gate.open)
		p := newProjector()
		held := gate.waitHeld(t)
		aborted, abort := context.WithCancel(context.Background())
		abort()
		if err := p.Stop(aborted); !errors.Is(err, projectors.ErrStopTimeout) {
			t.Fatalf("round %d: abort with the batch through %d in hand: Stop = %v, want ErrStopTimeout", round, held, err)
		}
		// The abort cancels the commit in flight.
		if err := gate.waitReturned(t); !errors.Is(err, context.Canceled) {
			t.Fatalf("round %d: the commit in hand ended with %v, want it cancelled by the abort", round, err)
		}
		// The goroutine exits promptly once aborted.
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		if err := p.Stop(ctx); err != nil {
			t.Fatalf("round %d: second stop: %v", round, err)
		}
		cancel()
		applied := p.Applied()
		if applied <= base || applied >= held {
			t.Fatalf("round %d: aborted at %d, want above %d (applied something) and below %d (the batch in hand)", round, applied, base, held)
		}
		if cp, err := st.Checkpoint(context.Background()); err != nil || cp != applied {
			t.Fatalf("round %d: store checkpoint %d, %v; Applied() %d", round, cp, err, applied)
		}
		if floor := ackFloor(t, js, "sqlite"); floor > applied {
			t.Fatalf("round %d: ack floor %d above the checkpoint %d: the aborted batch was acknowledged", round, floor, applied)
		}
		rec.setGate(nil)
		t.Logf("round %d: aborted at %d of %d published", round, applied, pub.lastSeq())
	}
	wg.Wait()

	p := newProjector()
	t.Cleanup(func() { _ = p.Stop(context.Background()) })
	checkCaughtUp(t, p, pub, st, rec)
}

// TestStopDrainsAndRestartResumes: Stop with a batch in hand (held at the
// target) waits for it to commit, and returns only once the loop has
// returned; a stopped projector applies nothing, and a new one resumes at
// its checkpoint.
func TestStopDrainsAndRestartResumes(t *testing.T) {
	js := startJetStream(t)
	st := openStore(t)
	rec := newRecorder(st)
	pub := newPublisher(js)
	r := rand.New(rand.NewPCG(15, 16))

	p, err := projectors.New(js, testNS, "sqlite", rec, projectors.WithLogger(testLogger(t)))
	if err != nil {
		t.Fatal(err)
	}
	if err := p.Stop(context.Background()); err != nil {
		t.Fatalf("stop before start: %v", err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	gate := newApplyGate(func(changes []*prismv1.KeyValueChange, _ uint64) bool { return len(changes) > 0 })
	rec.setGate(gate.hold)
	t.Cleanup(gate.open)
	if err := p.Start(ctx); err != nil {
		t.Fatal(err)
	}
	if err := p.Start(ctx); !errors.Is(err, projectors.ErrAlreadyStarted) {
		t.Fatalf("second start: %v, want ErrAlreadyStarted", err)
	}
	pub.publishRandom(t, r, 500, 40)
	held := gate.waitHeld(t)

	type result struct {
		err     error
		done    bool
		applied uint64
	}
	stopped := make(chan result, 1)
	waiting := newWaitingCtx(ctx)
	go func() {
		err := p.Stop(waiting)
		stopped <- result{err, isClosed(p.Done()), p.Applied()}
	}()
	select {
	case <-waiting.waiting: // Stop has asked the loop to stop and waits for it
	case got := <-stopped:
		t.Fatalf("Stop returned %v with the batch through %d in hand", got.err, held)
	}
	gate.open()
	got := <-stopped
	if got.err != nil {
		t.Fatalf("stop: %v", got.err)
	}
	if !got.done {
		t.Fatal("Stop returned before the loop did")
	}
	if got.applied < held {
		t.Fatalf("stopped at %d: the batch in hand (through %d) was not drained", got.applied, held)
	}
	if err := gate.waitReturned(t); err != nil {
		t.Fatalf("the batch in hand ended with %v, want committed", err)
	}
	if err := p.Stop(ctx); err != nil {
		t.Fatalf("second stop: %v", err)
	}
	stoppedAt := p.Applied()
	if cp, err := st.Checkpoint(ctx); err != nil || cp != stoppedAt {
		t.Fatalf("store checkpoint %d, %v; Applied() %d", cp, err, stoppedAt)
	}
	// Its loop has returned (Done is closed): nothing can apply now.
	pub.publishRandom(t, r, 500, 40)
	if p.Applied() != stoppedAt {
		t.Fatalf("a stopped projector applied: %d -> %d", stoppedAt, p.Applied())
	}

	p2 := startProjector(t, js, "sqlite", rec)
	if p2.Applied() != stoppedAt {
		t.Fatalf("restarted at %d, want the checkpoint %d", p2.Applied(), stoppedAt)
	}
	checkCaughtUp(t, p2, pub, st, rec)
}
