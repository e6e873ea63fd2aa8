package natstest_test

import (
	"context"
	"fmt"
	"runtime"
	"testing"
	"time"

	"github.com/nats-io/nats-server/v2/server"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/prism-data/prism/itest/natstest"
	prismv1 "github.com/prism-data/prism/proto/prism/v1"
	"github.com/prism-data/prism/subjects"
)

func TestNamespaceStreams(t *testing.T) {
	_, js := natstest.Start(t)
	s := natstest.NamespaceStreams(t, js, "orders")
	cfg := s.CachedInfo().Config
	if cfg.Name != "PRISM_ORDERS" || len(cfg.Subjects) != 1 || cfg.Subjects[0] != "prism.orders.events.>" ||
		!cfg.AllowAtomicPublish || !cfg.AllowDirect || !cfg.AllowRollup || cfg.Duplicates != 2*time.Minute ||
		cfg.Storage != jetstream.FileStorage || cfg.MaxMsgSize != 1<<20 {
		t.Fatalf("stream config %+v", cfg)
	}
	if got := natstest.Msgs(t, js, subjects.Stream("orders")); got != nil {
		t.Fatalf("new stream holds %d messages", len(got))
	}
	if got := natstest.Msgs(t, js, subjects.DeadLetterStream); got != nil {
		t.Fatalf("new dead-letter stream holds %d messages", len(got))
	}

	ctx := context.Background()
	var sent []string
	for i := range 3 {
		id := fmt.Sprintf("r%d", i)
		msg, err := subjects.NewKeyValueEvent(subjects.EventMeta{Namespace: "orders"}, &prismv1.KeyValueEvent{
			Id:     []byte(id),
			Change: &prismv1.KeyValueEvent_Delete{Delete: &prismv1.KeyValueDelete{}},
		})
		if err != nil {
			t.Fatal(err)
		}
		ack, err := js.PublishMsg(ctx, msg)
		if err != nil {
			t.Fatal(err)
		}
		if ack.Sequence != uint64(i+1) {
			t.Fatalf("publish %d: seq %d", i, ack.Sequence)
		}
		sent = append(sent, msg.Subject)
	}
	if m := natstest.Msg(t, js, subjects.Stream("orders"), 2); m.Sequence != 2 || m.Subject != sent[1] {
		t.Fatalf("Msg 2 = seq %d subject %q, want seq 2 subject %q", m.Sequence, m.Subject, sent[1])
	}
	msgs := natstest.Msgs(t, js, subjects.Stream("orders"))
	if len(msgs) != len(sent) {
		t.Fatalf("Msgs returned %d messages, want %d", len(msgs), len(sent))
	}
	for i, m := range msgs {
		if m.Sequence != uint64(i+1) || m.Subject != sent[i] {
			t.Errorf("message %d: seq %d subject %q, want seq %d subject %q", i, m.Sequence, m.Subject, i+1, sent[i])
		}
	}
	// The dead-letter stream takes dead letters of any namespace.
	if _, err := js.Publish(ctx, subjects.DeadLetter("users"), []byte("x")); err != nil {
		t.Fatalf("publish dead letter: %v", err)
	}
	if dl := natstest.Msgs(t, js, subjects.DeadLetterStream); len(dl) != 1 || string(dl[0].Data) != "x" {
		t.Fatalf("dead letters %v, want the one published", dl)
	}
}

func TestServerShutDownAtCleanup(t *testing.T) {
	var s *server.Server
	t.Run("uses", func(t *testing.T) {
		s = natstest.Server(t)
		nc := natstest.Connect(t, s)
		if err := nc.Flush(); err != nil {
			t.Fatal(err)
		}
		if !s.Running() || !s.JetStreamEnabled() {
			t.Fatalf("running %v, JetStream %v", s.Running(), s.JetStreamEnabled())
		}
	})
	if s.Running() {
		t.Fatal("server still running after the test that started it")
	}
}

// fatalTB records a Fatal instead of failing the real test.
type fatalTB struct {
	testing.TB
	msg string
}

func (f *fatalTB) Fatalf(format string, args ...any) {
	f.msg = fmt.Sprintf(format, args...)
	runtime.Goexit()
}

func TestNamespaceStreamsRefusesInvalidName(t *testing.T) {
	_, js := natstest.Start(t)
	for _, ns := range []string{"", "dlq", "Orders", "a.b"} {
		f := &fatalTB{TB: t}
		done := make(chan struct{})
		go func() {
			defer close(done)
			natstest.NamespaceStreams(f, js, ns)
		}()
		<-done
		if f.msg == "" {
			t.Errorf("NamespaceStreams(%q) did not fail the test", ns)
		}
	}
}
