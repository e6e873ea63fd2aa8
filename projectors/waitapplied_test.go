package projectors_test

import (
	"context"
	"errors"
	"math/rand/v2"
	"testing"

	prismv1 "github.com/prism-data/prism/proto/prism/v1"
)

// TestWaitAppliedNotBefore: WaitApplied(n) returns only once the
// checkpoint is at n. The commit of n is held at the target while the
// checkpoint is n-1: WaitApplied(n) is still waiting then (an ended ctx
// makes it return the ctx's error, not nil), WaitApplied(n-1) is not, and
// a waiter on n returns once the commit goes on, with Applied() >= n.
func TestWaitAppliedNotBefore(t *testing.T) {
	js := startJetStream(t)
	st := openStore(t)
	rec := newRecorder(st)
	pub := newPublisher(js)
	r := rand.New(rand.NewPCG(43, 44))
	pub.publishRandom(t, r, 9, 5)
	const n = 10
	gate := newApplyGate(func(_ []*prismv1.KeyValueChange, through uint64) bool { return through >= n })
	rec.setGate(gate.hold)
	p := startProjector(t, js, "sqlite", rec)
	t.Cleanup(gate.open) // before the projector's Stop
	waitApplied(t, p, n-1)

	pub.publishRandom(t, r, 1, 5)
	if through := gate.waitHeld(t); through != n {
		t.Fatalf("held the commit through %d, want %d alone", through, n)
	}
	if got := p.Applied(); got != n-1 {
		t.Fatalf("Applied() = %d with the commit of %d held, want %d", got, n, n-1)
	}
	ended, end := context.WithCancel(context.Background())
	end()
	if err := p.WaitApplied(ended, n); !errors.Is(err, context.Canceled) {
		t.Fatalf("WaitApplied(%d) at checkpoint %d = %v, want it still waiting (context.Canceled)", n, p.Applied(), err)
	}
	if err := p.WaitApplied(ended, n-1); err != nil {
		t.Fatalf("WaitApplied(%d) at checkpoint %d = %v, want nil", n-1, p.Applied(), err)
	}

	type result struct {
		err     error
		applied uint64
	}
	waiter := make(chan result, 1)
	go func() {
		ctx, cancel := context.WithTimeout(context.Background(), gateTimeout)
		defer cancel()
		err := p.WaitApplied(ctx, n)
		waiter <- result{err, p.Applied()}
	}()
	gate.open()
	if got := <-waiter; got.err != nil || got.applied < n {
		t.Fatalf("WaitApplied(%d) = %v with Applied() = %d, want nil at >= %d", n, got.err, got.applied, n)
	}
	checkCaughtUp(t, p, pub, st, rec)
}
