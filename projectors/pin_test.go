package projectors_test

import (
	"context"
	"errors"
	"testing"
	"time"

	"github.com/nats-io/nats.go/jetstream"

	"github.com/prism-data/prism/projectors"
	"github.com/prism-data/prism/subjects"
)

// Two projectors that both run on one consumer (two processes restarted at
// the same instant on an idle consumer, which both believe they own) never
// split the projection: the server delivers to the one client it pins, the
// other finds another client pinned and stops with Lost, and the one left
// applies every event into its own store.
func TestPinnedClientsNeverSplit(t *testing.T) {
	js := startJetStream(t)
	pub := newPublisher(js)
	for i := range 20 {
		pub.publish(t, putEvent(i))
	}
	stA, stB := openStore(t), openStore(t)
	a := startProjector(t, js, "sqlite", stA, projectors.WithOwner("host/1"))
	waitApplied(t, a, 20)
	// The same owner id is never refused (a restart of one process): b
	// starts beside a, and has the server drop a's pin.
	b := startProjector(t, js, "sqlite", stB, projectors.WithOwner("host/1"))
	for i := range 40 {
		pub.publish(t, putEvent(20+i))
	}

	var winner, loser *projectors.Projector
	select {
	case <-a.Done():
		winner, loser = b, a
	case <-b.Done():
		winner, loser = a, b
	case <-time.After(30 * time.Second):
		t.Fatalf("neither projector stopped: applied %d and %d; one of them is not delivered to", a.Applied(), b.Applied())
	}
	if err := loser.Lost(); !errors.Is(err, projectors.ErrConsumerInUse) {
		t.Fatalf("the projector that stopped: Lost() = %v, want ErrConsumerInUse", err)
	}
	if err := winner.Lost(); err != nil {
		t.Fatalf("the projector left running: Lost() = %v", err)
	}
	st := stA
	if winner == b {
		st = stB
	}
	checkCaughtUp(t, winner, pub, st, nil)

	// The server pins the winner: it is the client delivered to.
	cons, err := js.Consumer(context.Background(), subjects.Stream(testNS), subjects.Consumer("sqlite"))
	if err != nil {
		t.Fatal(err)
	}
	if pinned := pinnedOf(cons.CachedInfo()); pinned == "" {
		t.Fatalf("no client pinned on the consumer after deliveries: %+v", cons.CachedInfo().PriorityGroups)
	}
}

// pinnedOf returns the pinned client of the consumer's "prism" group.
func pinnedOf(info *jetstream.ConsumerInfo) string {
	for _, g := range info.PriorityGroups {
		if g.Group == "prism" {
			return g.PinnedClientID
		}
	}
	return ""
}
