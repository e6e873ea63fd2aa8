package projectors_test

import (
	"context"
	"errors"
	"io"
	"net"
	"net/url"
	"sync"
	"testing"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/prism-data/prism/itest/natstest"
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
	// starts beside a, which is pinned.
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

// A projector cut off from the NATS server for longer than its pin loses
// the consumer to a second process, and when the partition heals it
// applies nothing more: the server delivers to the new pinned client
// only, and the old projector, seeing it pinned, stops with Lost. Every
// event published meanwhile is in the new owner's store.
func TestPartitionedProjectorStopsAfterHealing(t *testing.T) {
	srv := natstest.Server(t)
	direct := natstest.Connect(t, srv)
	js := natstest.JetStream(t, direct)
	natstest.NamespaceStreams(t, js, testNS)
	pub := newPublisher(js)
	for i := range 20 {
		pub.publish(t, putEvent(i))
	}

	link := newTCPLink(t, srv.ClientURL())
	cutNC, err := nats.Connect(link.url(), nats.MaxReconnects(-1), nats.ReconnectWait(50*time.Millisecond))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(cutNC.Close)
	stA, stB := openStore(t), openStore(t)
	a := startProjector(t, natstest.JetStream(t, cutNC), "sqlite", stA, projectors.WithOwner("host-a/1"))
	waitApplied(t, a, 20)

	link.cut()
	// The standby's retries: refused while a's pull and pin last.
	var b *projectors.Projector
	deadline := time.Now().Add(20 * time.Second)
	for b == nil {
		p, err := projectors.New(js, testNS, "sqlite", stB, projectors.WithOwner("host-b/2"), projectors.WithLogger(testLogger(t)))
		if err != nil {
			t.Fatal(err)
		}
		switch err := p.Start(context.Background()); {
		case err == nil:
			b = p
			t.Cleanup(func() { _ = b.Stop(context.Background()) })
		case !errors.Is(err, projectors.ErrConsumerInUse) || time.Now().After(deadline):
			t.Fatalf("takeover during the partition: %v", err)
		default:
			time.Sleep(200 * time.Millisecond)
		}
	}
	for i := range 30 {
		pub.publish(t, putEvent(20+i))
	}
	waitApplied(t, b, 50)

	link.heal()
	for i := range 30 {
		pub.publish(t, putEvent(50+i))
	}
	select {
	case <-a.Done():
	case <-time.After(30 * time.Second):
		t.Fatalf("the healed projector still runs (applied %d)", a.Applied())
	}
	if err := a.Lost(); !errors.Is(err, projectors.ErrConsumerInUse) {
		t.Fatalf("healed projector: Lost() = %v, want ErrConsumerInUse", err)
	}
	if cp, err := stA.Checkpoint(context.Background()); err != nil || cp != 20 {
		t.Fatalf("the cut-off store's checkpoint = %d, %v; want 20: it applied events after losing the pin", cp, err)
	}
	checkCaughtUp(t, b, pub, stB, nil)
}

// tcpLink forwards TCP connections to a server until cut: then it drops
// every connection and refuses new ones until heal.
type tcpLink struct {
	t      *testing.T
	ln     net.Listener
	target string
	mu     sync.Mutex
	down   bool
	conns  []net.Conn
}

func newTCPLink(t *testing.T, serverURL string) *tcpLink {
	t.Helper()
	u, err := url.Parse(serverURL)
	if err != nil {
		t.Fatal(err)
	}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	l := &tcpLink{t: t, ln: ln, target: u.Host}
	t.Cleanup(func() { ln.Close(); l.cut() })
	go l.serve()
	return l
}

func (l *tcpLink) url() string { return "nats://" + l.ln.Addr().String() }

func (l *tcpLink) serve() {
	for {
		c, err := l.ln.Accept()
		if err != nil {
			return
		}
		l.mu.Lock()
		if l.down {
			l.mu.Unlock()
			c.Close()
			continue
		}
		up, err := net.Dial("tcp", l.target)
		if err != nil {
			l.mu.Unlock()
			c.Close()
			continue
		}
		l.conns = append(l.conns, c, up)
		l.mu.Unlock()
		go func() { _, _ = io.Copy(up, c); up.Close() }()
		go func() { _, _ = io.Copy(c, up); c.Close() }()
	}
}

func (l *tcpLink) cut() {
	l.mu.Lock()
	defer l.mu.Unlock()
	l.down = true
	for _, c := range l.conns {
		c.Close()
	}
	l.conns = nil
}

func (l *tcpLink) heal() {
	l.mu.Lock()
	defer l.mu.Unlock()
	l.down = false
}

// The consumer of a release before pinned consumers (no priority group) is
// given the group when a projector starts on it, and keeps its position.
func TestConsumerOfAnEarlierReleaseGetsThePin(t *testing.T) {
	js := startJetStream(t)
	pub := newPublisher(js)
	for i := range 10 {
		pub.publish(t, putEvent(i))
	}
	ctx := context.Background()
	if _, err := js.CreateConsumer(ctx, subjects.Stream(testNS), jetstream.ConsumerConfig{
		Durable: subjects.Consumer("sqlite"), AckPolicy: jetstream.AckAllPolicy, DeliverPolicy: jetstream.DeliverAllPolicy,
	}); err != nil {
		t.Fatal(err)
	}
	st := openStore(t)
	p := startProjector(t, js, "sqlite", st, projectors.WithOwner("host/1"))
	checkCaughtUp(t, p, pub, st, nil)
	cons, err := js.Consumer(ctx, subjects.Stream(testNS), subjects.Consumer("sqlite"))
	if err != nil {
		t.Fatal(err)
	}
	cfg := cons.CachedInfo().Config
	if cfg.PriorityPolicy != jetstream.PriorityPolicyPinned || len(cfg.PriorityGroups) != 1 || cfg.PriorityGroups[0] != "prism" || cfg.PinnedTTL != 3*time.Second {
		t.Fatalf("consumer after Start: policy %v, groups %v, pinned TTL %v; want pinned, [prism], 3s", cfg.PriorityPolicy, cfg.PriorityGroups, cfg.PinnedTTL)
	}
}
