package node_test

import (
	"bytes"
	"context"
	"errors"
	"testing"
	"time"

	"github.com/prism-data/prism/namespaces"
	"github.com/prism-data/prism/node"
	"github.com/prism-data/prism/node/nodetest"
	prismv1 "github.com/prism-data/prism/proto/prism/v1"
	"github.com/prism-data/prism/status"
	"github.com/prism-data/prism/subjects"
)

// The dead-letter verbs through the admin API of a node: a poison event
// shows in dlq.list with its origin and in prism_dlq_depth, dlq.show
// returns it as stored, a redrive of what is still poison is refused again
// (a new dead letter), a drop needs confirm and then removes it, and an
// unknown dead letter is NOT_FOUND.
func TestDeadLettersThroughTheAdminAPI(t *testing.T) {
	ctx := context.Background()
	n, admin, _ := nodetest.Start(t, node.Config{})
	res, err := admin.Apply(ctx, namespaces.Namespace{Name: "orders", Abstraction: namespaces.AbstractionKeyValue, Backend: "sqlite"}, 0, "test")
	if err != nil {
		t.Fatal(err)
	}
	nodetest.WaitServing(t, admin, "orders", res.Revision)
	msg, err := subjects.NewKeyValueEvent(subjects.EventMeta{Namespace: "orders"}, &prismv1.KeyValueEvent{Id: []byte("o1"),
		Change: &prismv1.KeyValueEvent_Put{Put: &prismv1.KeyValuePut{}}})
	if err != nil {
		t.Fatal(err)
	}
	msg.Data = []byte{0xff, 0xff, 0xff} // does not decode
	ack, err := n.JetStream().PublishMsg(ctx, msg)
	if err != nil {
		t.Fatal(err)
	}
	var l namespaces.DLQListReply
	for deadline := time.Now().Add(20 * time.Second); len(l.DeadLetters) == 0 || l.Depth == 0; time.Sleep(20 * time.Millisecond) {
		if l, err = admin.DLQListAll(ctx, "orders", ""); err != nil {
			t.Fatal(err)
		}
		if time.Now().After(deadline) {
			t.Fatal("no dead letter for the poison event")
		}
	}
	d := l.DeadLetters[0]
	if len(l.DeadLetters) != 1 || l.Depth != 1 || d.StreamSeq != ack.Sequence || d.Target != "sqlite" || d.Subject != msg.Subject || d.Reason == "" {
		t.Fatalf("list = %+v; want one dead letter of seq %d, target sqlite, subject %s, with a reason", l, ack.Sequence, msg.Subject)
	}
	if got := gatherNode(t, n)["prism_dlq_depth"]; got != 1 {
		t.Errorf("prism_dlq_depth = %v, want 1", got)
	}
	ev, err := admin.DLQShow(ctx, "orders", d.Seq)
	if err != nil || !bytes.Equal(ev.Data, msg.Data) || ev.Headers[subjects.HeaderType] == nil {
		t.Fatalf("show = %+v, %v; want the payload as stored and its CloudEvent headers", ev, err)
	}
	var buf bytes.Buffer
	rr, err := admin.DLQRedrive(ctx, namespaces.DLQSelection{Name: "orders", Seqs: []uint64{d.Seq}}, 5*time.Second, "test", &buf)
	if err != nil || len(rr.Redriven) != 1 || rr.Redriven[0].Outcome != namespaces.RedriveFailedAgain || rr.Remaining != 1 {
		t.Fatalf("redrive = %+v, %v; want it refused again, one dead letter left", rr, err)
	}
	again := rr.Redriven[0].NewSeq
	var dr namespaces.DLQDropReply
	err = admin.Request(ctx, subjects.Admin(namespaces.AdminDLQDrop), namespaces.AdminDLQDrop, namespaces.DLQDropRequest{DLQSelection: namespaces.DLQSelection{Name: "orders", All: true}}, &dr)
	if !errors.Is(err, status.ErrFailedPrecondition) {
		t.Fatalf("drop without confirm: %v, want FAILED_PRECONDITION", err)
	}
	if dr, err = admin.DLQDrop(ctx, namespaces.DLQSelection{Name: "orders", All: true}, "test", &buf); err != nil || len(dr.Dropped) != 1 || dr.Dropped[0] != again || dr.Remaining != 0 {
		t.Fatalf("drop = %+v, %v; want dead letter %d dropped, none left", dr, err, again)
	}
	if _, err := admin.DLQShow(ctx, "orders", again); !errors.Is(err, status.ErrNotFound) {
		t.Fatalf("show of a dropped dead letter: %v, want NOT_FOUND", err)
	}
}

// gatherNode returns the node's metrics by name, each the sum of its
// series.
func gatherNode(t *testing.T, n *node.Node) map[string]float64 {
	t.Helper()
	mfs, err := n.Metrics().Gather()
	if err != nil {
		t.Fatal(err)
	}
	out := map[string]float64{}
	for _, mf := range mfs {
		for _, m := range mf.GetMetric() {
			out[mf.GetName()] += m.GetGauge().GetValue() + m.GetCounter().GetValue()
		}
	}
	return out
}
