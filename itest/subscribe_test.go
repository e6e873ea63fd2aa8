package itest

import (
	"errors"
	"fmt"
	"testing"
	"time"

	"github.com/prism-data/prism/client"
)

// TestSubscribeAcrossRestart writes through the client while a subscription
// follows the namespace, restarts prism (and so its NATS server) in the
// middle, and checks that the same subscription sees every write once, in
// order, with the sequences the writes returned.
func TestSubscribeAcrossRestart(t *testing.T) {
	subscribeAcrossRestart(t, client.SubscribeAuto)
}

// TestSubscribeThroughPrismAcrossRestart is the same through the gateway
// (ADR 017): the consumer Prism opened is gone with the restarted
// server, and the client reopens it from the last change.
func TestSubscribeThroughPrismAcrossRestart(t *testing.T) {
	subscribeAcrossRestart(t, client.SubscribeThroughPrism)
}

func subscribeAcrossRestart(t *testing.T, via client.SubscribeVia) {
	p := startPrism(t, t.TempDir(), 0)
	nc, _ := p.connect(t)
	c, err := client.New(nc, client.WithTimeout(15*time.Second), client.WithSubscribeVia(via))
	if err != nil {
		t.Fatal(err)
	}
	kv := c.KeyValue("demo")
	ctx := testCtx(t)

	sub, err := c.Subscribe(ctx, "demo")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		if err := sub.Stop(); err != nil {
			t.Error(err)
		}
	})

	var want []uint64
	// write puts record w<i>, retrying with the same idempotency token
	// while prism comes back, so a write is stored once.
	write := func(i int) {
		t.Helper()
		deadline := time.Now().Add(time.Minute)
		for {
			seq, err := kv.Put(ctx, fmt.Appendf(nil, "w%d", i), []client.Item{item("n", fmt.Sprint(i))},
				client.IdempotencyToken(fmt.Sprint("sub-w", i)))
			if err == nil {
				want = append(want, seq)
				return
			}
			if time.Now().After(deadline) {
				t.Fatalf("write %d: %v", i, err)
			}
			time.Sleep(100 * time.Millisecond)
		}
	}
	var got []client.Change
	read := func(n int) {
		t.Helper()
		for range n {
			ch, err := sub.Next(ctx)
			if err != nil {
				t.Fatalf("after %d changes: %v", len(got), err)
			}
			if ch.Err != nil || ch.KeyValue == nil || ch.ID == "" {
				t.Fatalf("change %+v", ch)
			}
			got = append(got, ch)
		}
	}

	for i := range 20 {
		write(i)
	}
	read(10)
	p.stop()
	p.restart()
	for i := 20; i < 40; i++ {
		write(i)
	}
	read(30)

	if len(got) != len(want) {
		t.Fatalf("got %d changes, want %d", len(got), len(want))
	}
	for i, ch := range got {
		if ch.Seq != want[i] || string(ch.KeyValue.GetId()) != fmt.Sprintf("w%d", i) {
			t.Fatalf("change %d: seq %d id %q, want seq %d id w%d", i, ch.Seq, ch.KeyValue.GetId(), want[i], i)
		}
	}
	if sub.LastSeq() != want[len(want)-1] {
		t.Fatalf("LastSeq %d, want %d", sub.LastSeq(), want[len(want)-1])
	}

	// A subscription resumed after the last seen change has nothing more.
	resumed, err := c.Subscribe(ctx, "demo", client.FromSeq(sub.LastSeq()+1))
	if err != nil {
		t.Fatal(err)
	}
	defer resumed.Stop()
	write(40)
	ch, err := resumed.Next(ctx)
	if err != nil || ch.Seq != want[len(want)-1] || string(ch.KeyValue.GetId()) != "w40" {
		t.Fatalf("resumed Next = seq %d %v, want seq %d (w40)", ch.Seq, err, want[len(want)-1])
	}
	if err := resumed.Stop(); err != nil {
		t.Fatal(err)
	}
	if _, err := resumed.Next(ctx); !errors.Is(err, client.ErrSubscriptionClosed) {
		t.Fatalf("Next after Stop: %v", err)
	}
}
