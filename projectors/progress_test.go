package projectors_test

import (
	"context"
	"errors"
	"math/rand/v2"
	"sync"
	"testing"
	"time"

	"github.com/prism-data/prism/projectors"
)

// TestConsumerProgress: a process that does not project a target sees
// what the projector of another has applied, through the consumer they
// share: waits end once the projection reached their sequence, never
// before, and a wait past the stream's end ends with its context.
func TestConsumerProgress(t *testing.T) {
	js := startJetStream(t)
	pub := newPublisher(js)
	r := rand.New(rand.NewPCG(7, 7))
	pub.publishRandom(t, r, 50, 10)
	progress := projectors.NewConsumerProgress(js, testNS, "sqlite")

	// No consumer yet: a look fails, a wait times out.
	if _, err := progress.Refresh(context.Background()); err == nil {
		t.Fatal("refresh before the projector made its consumer: no error")
	}
	short, cancel := context.WithTimeout(context.Background(), 50*time.Millisecond)
	if err := progress.WaitApplied(short, 1); !errors.Is(err, context.DeadlineExceeded) {
		t.Fatalf("wait with no consumer: %v, want deadline exceeded", err)
	}
	cancel()
	if progress.LastError() == nil {
		t.Fatal("LastError is nil after failed looks")
	}

	st := openStore(t)
	p := startProjector(t, js, "sqlite", st)
	waitApplied(t, p, pub.lastSeq())

	// Many waiters at once, each for a sequence not yet written: each
	// returns once, and only once, the projection applied its sequence.
	var wg sync.WaitGroup
	errs := make(chan error, 20)
	for i := range 20 {
		want := pub.lastSeq() + uint64(1+i%5)
		wg.Go(func() {
			ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
			defer cancel()
			if err := progress.WaitApplied(ctx, want); err != nil {
				errs <- err
				return
			}
			if got := p.Applied(); got < want {
				errs <- errors.New("a wait returned before the projector applied its sequence")
			}
		})
	}
	time.Sleep(20 * time.Millisecond)
	pub.publishRandom(t, r, 5, 10)
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Error(err)
	}
	if got := progress.Applied(); got < pub.lastSeq() {
		t.Fatalf("Applied %d, want at least %d", got, pub.lastSeq())
	}
	if progress.LastError() != nil {
		t.Fatalf("LastError %v after good looks", progress.LastError())
	}
	short, cancel = context.WithTimeout(context.Background(), 50*time.Millisecond)
	defer cancel()
	if err := progress.WaitApplied(short, pub.lastSeq()+1); !errors.Is(err, context.DeadlineExceeded) {
		t.Fatalf("wait past the stream's end: %v, want deadline exceeded", err)
	}
}
