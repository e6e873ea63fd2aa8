package itest

import (
	"context"
	"strconv"
	"testing"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/prism-data/prism/client"
	"github.com/prism-data/prism/subjects"
)

// TestPoisonEventGoesToDeadLetters publishes garbage straight into a
// namespace stream of a running prism: it must land in PRISM_DLQ with the
// reason, and the writes after it must still be applied.
func TestPoisonEventGoesToDeadLetters(t *testing.T) {
	p := startPrism(t, t.TempDir(), 0)
	nc, c := p.connect(t)
	ctx := testCtx(t)
	js, err := jetstream.New(nc)
	if err != nil {
		t.Fatal(err)
	}
	poison := nats.NewMsg(subjects.KeyValueEvent("demo", []byte("poison")))
	poison.Data = []byte("not a protobuf event")
	poison.Header.Set(subjects.HeaderType, subjects.TypeKeyValuePut)
	ack, err := js.PublishMsg(ctx, poison)
	if err != nil {
		t.Fatal(err)
	}
	kv := c.KeyValue("demo")
	seq, err := kv.Put(ctx, []byte("after"), []client.Item{item("k", "v")})
	if err != nil {
		t.Fatalf("write after a poison event: %v", err)
	}
	rec, err := kv.Get(ctx, []byte("after"), client.MinSeq(seq))
	if err != nil || string(rec.Items[0].Value) != "v" {
		t.Fatalf("write after a poison event not applied: %+v, %v", rec, err)
	}

	dlq, err := js.Stream(ctx, subjects.DeadLetterStream)
	if err != nil {
		t.Fatal(err)
	}
	msg, err := dlq.GetLastMsgForSubject(ctx, subjects.DeadLetter("demo"))
	if err != nil {
		t.Fatalf("no dead letter for demo: %v", err)
	}
	if string(msg.Data) != "not a protobuf event" ||
		msg.Header.Get(subjects.HeaderDLQSeq) != strconv.FormatUint(ack.Sequence, 10) ||
		msg.Header.Get(subjects.HeaderDLQStream) != subjects.Stream("demo") ||
		msg.Header.Get(subjects.HeaderDLQReason) == "" {
		t.Fatalf("dead letter = %q, headers %v", msg.Data, msg.Header)
	}
	if _, err := kv.Get(context.Background(), []byte("poison")); err == nil {
		t.Fatal("the poison event was applied")
	}
}
