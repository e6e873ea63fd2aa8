package projectors_test

import (
	"context"
	"maps"
	"math/rand/v2"
	"testing"
	"time"

	"github.com/prism-data/prism/projectors"
	"github.com/prism-data/prism/subjects"
)

// clone returns a deep copy of m: the expected state at one point of the
// stream while the publisher goes on.
func (m *model) clone() *model {
	c := newModel()
	for id, items := range m.items {
		c.items[id] = maps.Clone(items)
	}
	maps.Copy(c.rev, m.rev)
	return c
}

// waitDone waits until p stopped by itself.
func waitDone(tb testing.TB, p *projectors.Projector) {
	tb.Helper()
	select {
	case <-p.Done():
	case <-time.After(20 * time.Second): // generous: a stuck loop, not a slow one
		tb.Fatalf("projector not done within 20s (applied %d)", p.Applied())
	}
}

// A projector with a stop sequence applies exactly the events up to it,
// with events after it already on the stream, then stops by itself; the
// next projector of the target goes on from there.
func TestStopAtAppliesUpToTheStopSequence(t *testing.T) {
	for _, throttled := range []bool{false, true} {
		name := "consume"
		if throttled {
			name = "throttled"
		}
		t.Run(name, func(t *testing.T) {
			js := startJetStream(t)
			st := openStore(t)
			pub := newPublisher(js)
			r := rand.New(rand.NewPCG(21, 22))
			pub.publishRandom(t, r, 600, 40)
			stop := pub.lastSeq()
			atStop := pub.model.clone()
			pub.publishRandom(t, r, 400, 40)

			opts := []projectors.Option{projectors.WithStopAt(stop), projectors.WithBatchSize(64)}
			if throttled {
				opts = append(opts, projectors.WithThrottle(&countingThrottle{}))
			}
			p := startProjector(t, js, "replay", st, opts...)
			waitDone(t, p)
			if got := p.Applied(); got != stop {
				t.Fatalf("Applied() = %d after Done, want the stop sequence %d", got, stop)
			}
			if cp, err := st.Checkpoint(context.Background()); err != nil || cp != stop {
				t.Fatalf("store checkpoint = %d, %v; want %d", cp, err, stop)
			}
			checkStore(t, st, atStop)

			next := startProjector(t, js, "replay", st)
			checkCaughtUp(t, next, pub, st, nil)
		})
	}
}

// A stop sequence that no longer exists on the stream (deleted, expired)
// is reached once a later message arrives.
func TestStopAtDeletedSequence(t *testing.T) {
	js := startJetStream(t)
	st := openStore(t)
	pub := newPublisher(js)
	for i := range 20 {
		pub.publish(t, putEvent(i))
	}
	stream, err := js.Stream(context.Background(), subjects.Stream(testNS))
	if err != nil {
		t.Fatal(err)
	}
	if err := stream.DeleteMsg(context.Background(), 15); err != nil {
		t.Fatal(err)
	}
	p := startProjector(t, js, "replay", st, projectors.WithStopAt(15))
	waitDone(t, p)
	if cp, err := st.Checkpoint(context.Background()); err != nil || cp != 15 {
		t.Fatalf("store checkpoint = %d, %v; want 15", cp, err)
	}
}

// A target already at or past the stop sequence stops at once, and Stop
// still works on it.
func TestStopAtAlreadyReached(t *testing.T) {
	js := startJetStream(t)
	st := openStore(t)
	pub := newPublisher(js)
	for i := range 10 {
		pub.publish(t, putEvent(i))
	}
	first := startProjector(t, js, "replay", st)
	waitApplied(t, first, 10)
	if err := first.Stop(context.Background()); err != nil {
		t.Fatal(err)
	}
	p := startProjector(t, js, "replay", st, projectors.WithStopAt(8))
	waitDone(t, p)
	if got := p.Applied(); got != 10 {
		t.Fatalf("Applied() = %d, want the checkpoint 10", got)
	}
}

func TestStopAtZeroIsInvalid(t *testing.T) {
	js := startJetStream(t)
	if _, err := projectors.New(js, testNS, "replay", openStore(t), projectors.WithStopAt(0)); err == nil {
		t.Fatal("WithStopAt(0) accepted")
	}
	if _, err := projectors.New(js, testNS, "replay", openStore(t), projectors.WithThrottle(nil)); err == nil {
		t.Fatal("WithThrottle(nil) accepted")
	}
}
