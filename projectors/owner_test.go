package projectors_test

import (
	"context"
	"errors"
	"fmt"
	"testing"
	"time"

	"github.com/prism-data/prism/projectors"
	prismv1 "github.com/prism-data/prism/proto/prism/v1"
)

// A second projector of another owner on the same consumer refuses to
// start while the first consumes; once the first stopped and its pull
// requests expired, it takes over from its own checkpoint. The same owner
// restarting (a crash and restart of one process) is never refused.
func TestConsumerOwner(t *testing.T) {
	js := startJetStream(t)
	pub := newPublisher(js)
	for i := range 50 {
		pub.publish(t, putEvent(i))
	}
	first := startProjector(t, js, "sqlite", openStore(t), projectors.WithOwner("host-a/1"))
	waitApplied(t, first, 50)

	other, err := projectors.New(js, testNS, "sqlite", openStore(t), projectors.WithOwner("host-b/2"), projectors.WithLogger(testLogger(t)))
	if err != nil {
		t.Fatal(err)
	}
	ctx := context.Background()
	if err := other.Start(ctx); !errors.Is(err, projectors.ErrConsumerInUse) {
		t.Fatalf("second owner's Start = %v, want ErrConsumerInUse", err)
	}

	// The same owner may start again (restart of one process).
	if err := first.Stop(ctx); err != nil {
		t.Fatal(err)
	}
	again := startProjector(t, js, "sqlite", openStore(t), projectors.WithOwner("host-a/1"))
	waitApplied(t, again, 50)
	if err := again.Stop(ctx); err != nil {
		t.Fatal(err)
	}

	// The other owner takes over once nobody consumes: its own, empty
	// store gets every event.
	st := openStore(t)
	deadline := time.Now().Add(30 * time.Second)
	for {
		p, err := projectors.New(js, testNS, "sqlite", st, projectors.WithOwner("host-b/2"), projectors.WithLogger(testLogger(t)))
		if err != nil {
			t.Fatal(err)
		}
		err = p.Start(ctx)
		if err == nil {
			t.Cleanup(func() { _ = p.Stop(context.Background()) })
			waitApplied(t, p, 50)
			break
		}
		if !errors.Is(err, projectors.ErrConsumerInUse) || time.Now().After(deadline) {
			t.Fatalf("takeover: %v", err)
		}
		time.Sleep(100 * time.Millisecond)
	}
	if cp, err := st.Checkpoint(ctx); err != nil || cp != 50 {
		t.Fatalf("takeover store checkpoint = %d, %v; want 50", cp, err)
	}
}

func putEvent(i int) *prismv1.KeyValueEvent {
	return &prismv1.KeyValueEvent{Id: fmt.Appendf(nil, "rec-%d", i), Change: &prismv1.KeyValueEvent_Put{Put: &prismv1.KeyValuePut{Items: []*prismv1.Item{{Key: []byte("k"), Value: []byte("v")}}}}}
}
