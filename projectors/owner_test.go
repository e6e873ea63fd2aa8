package projectors_test

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"testing"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/prism-data/prism/projectors"
	prismv1 "github.com/prism-data/prism/proto/prism/v1"
	"github.com/prism-data/prism/subjects"
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
	firstStore := openStore(t)
	first := startProjector(t, js, "sqlite", firstStore, projectors.WithOwner("host-a/1"))
	waitApplied(t, first, 50)

	other, err := projectors.New(js, testNS, "sqlite", openStore(t), projectors.WithOwner("host-b/2"), projectors.WithLogger(testLogger(t)))
	if err != nil {
		t.Fatal(err)
	}
	ctx := context.Background()
	if err := other.Start(ctx); !errors.Is(err, projectors.ErrConsumerInUse) {
		t.Fatalf("second owner's Start = %v, want ErrConsumerInUse", err)
	}

	// The same owner may start again (restart of one process) while pulls
	// it left are still waiting, as after a crash; another owner may not.
	// A clean Stop leaves no pull, so the test holds one of its own. The
	// restart reuses the first store, at the checkpoint the consumer
	// delivered up to, so nothing is delivered to the held pull.
	if err := first.Stop(ctx); err != nil {
		t.Fatal(err)
	}
	release := holdPull(t, js)
	if err := other.Start(ctx); !errors.Is(err, projectors.ErrConsumerInUse) {
		t.Fatalf("second owner's Start with a pull waiting = %v, want ErrConsumerInUse", err)
	}
	again := startProjector(t, js, "sqlite", firstStore, projectors.WithOwner("host-a/1"))
	waitApplied(t, again, 50)
	if err := again.Stop(ctx); err != nil {
		t.Fatal(err)
	}
	release()

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

// holdPull sends a pull request for the projector's consumer that waits a
// minute, and waits until the server counts it. release withdraws it.
func holdPull(t *testing.T, js jetstream.JetStream) (release func()) {
	t.Helper()
	ctx := context.Background()
	stream, consumer := subjects.Stream(testNS), subjects.Consumer("sqlite")
	nc := js.Conn()
	sub, err := nc.SubscribeSync(nats.NewInbox())
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = sub.Unsubscribe() })
	req := fmt.Sprintf(`{"batch":1,"expires":%d,"group":"prism"}`, time.Minute.Nanoseconds())
	if err := nc.PublishRequest("$JS.API.CONSUMER.MSG.NEXT."+stream+"."+consumer, sub.Subject, []byte(req)); err != nil {
		t.Fatal(err)
	}
	cons, err := js.Consumer(ctx, stream, consumer)
	if err != nil {
		t.Fatal(err)
	}
	deadline := time.Now().Add(10 * time.Second)
	for {
		info, err := cons.Info(ctx)
		if err != nil {
			t.Fatal(err)
		}
		if info.NumWaiting > 0 {
			break
		}
		if time.Now().After(deadline) {
			t.Fatal("the held pull request is not waiting on the consumer")
		}
		time.Sleep(10 * time.Millisecond)
	}
	return func() {
		if err := sub.Unsubscribe(); err != nil {
			t.Fatal(err)
		}
	}
}

func putEvent(i int) *prismv1.KeyValueEvent {
	return &prismv1.KeyValueEvent{Id: fmt.Appendf(nil, "rec-%d", i), Change: &prismv1.KeyValueEvent_Put{Put: &prismv1.KeyValuePut{Items: []*prismv1.Item{{Key: []byte("k"), Value: []byte("v")}}}}}
}

// A throttled projector waiting on its throttle has no pull request
// outstanding; it still counts as consuming (it delivered moments ago), so
// another owner is refused — e.g. prism replay --reset of a target prism
// serve is backfilling.
func TestConsumerOwnerThrottled(t *testing.T) {
	js := startJetStream(t)
	pub := newPublisher(js)
	for i := range 50 {
		pub.publish(t, putEvent(i))
	}
	th := &countingThrottle{free: 1, gate: make(chan struct{}), waiting: make(chan struct{}, 1)}
	first := startProjector(t, js, "sqlite", openStore(t), projectors.WithOwner("host-a/1"), projectors.WithThrottle(th))
	select {
	case <-th.waiting:
	case <-time.After(10 * time.Second): // liveness bound, not a speed assertion
		t.Fatal("the throttled projector never waited on its throttle")
	}
	ctx := context.Background()
	other, err := projectors.New(js, testNS, "sqlite", openStore(t), projectors.WithOwner("host-b/2"), projectors.WithLogger(testLogger(t)))
	if err != nil {
		t.Fatal(err)
	}
	if err := other.Start(ctx); !errors.Is(err, projectors.ErrConsumerInUse) {
		t.Fatalf("second owner's Start while the first waits on its throttle = %v, want ErrConsumerInUse", err)
	}
	close(th.gate)
	waitApplied(t, first, 50)
}

// Two projectors of other owners that find the consumer free at the same
// moment (two processes restarted together) do not both start: each
// claims it, and only the last claim stands. The one that starts gets
// every event; the other is refused with ErrConsumerInUse.
func TestSimultaneousClaimsStartOne(t *testing.T) {
	js := startJetStream(t)
	pub := newPublisher(js)
	for i := range 20 {
		pub.publish(t, putEvent(i))
	}
	first := startProjector(t, js, "sqlite", openStore(t), projectors.WithOwner("host-a/1"))
	waitApplied(t, first, 20)
	ctx := context.Background()
	if err := first.Stop(ctx); err != nil {
		t.Fatal(err)
	}
	// Idle for longer than the in-use window: both find it free.
	time.Sleep(3500 * time.Millisecond)
	type started struct {
		p   *projectors.Projector
		err error
	}
	results := make(chan started, 2)
	// Both have looked the consumer up and found it free before either
	// claims it.
	var found sync.WaitGroup
	found.Add(2)
	for _, owner := range []string{"host-b/2", "host-c/3"} {
		hook := projectors.WithClaimHook(sync.OnceFunc(func() { found.Done(); found.Wait() }))
		p, err := projectors.New(js, testNS, "sqlite", openStore(t), projectors.WithOwner(owner), projectors.WithLogger(testLogger(t)), hook)
		if err != nil {
			t.Fatal(err)
		}
		go func() { results <- started{p, p.Start(ctx)} }()
	}
	var running []*projectors.Projector
	for range 2 {
		r := <-results
		switch {
		case r.err == nil:
			running = append(running, r.p)
			t.Cleanup(func() { _ = r.p.Stop(context.Background()) })
		case !errors.Is(r.err, projectors.ErrConsumerInUse):
			t.Fatalf("Start = %v, want nil or ErrConsumerInUse", r.err)
		}
	}
	if len(running) != 1 {
		t.Fatalf("%d projectors started of two claiming at once; want 1", len(running))
	}
	waitApplied(t, running[0], 20)
}
