package node_test

import (
	"context"
	"errors"
	"testing"
	"time"

	"github.com/prism-data/prism/client"
	"github.com/prism-data/prism/namespaces"
	"github.com/prism-data/prism/node"
	"github.com/prism-data/prism/node/nodetest"
	"github.com/prism-data/prism/subjects"
)

// The consistency levels of docs/consistency on a node's real projector
// and SQLite. A test holds the projector back by pausing its durable
// consumer on the server (JetStream's consumer pause): nothing it has
// not applied yet can reach the projection until it is resumed, so what
// a read returns meanwhile is fixed, whatever the timing.

// consistencyNode serves one sqlite keyvalue namespace name with
// consistency c and returns its node and client.
func consistencyNode(t *testing.T, name string, c namespaces.Consistency) (*node.Node, *client.KeyValue) {
	t.Helper()
	st, admin, cl := nodetest.Start(t, node.Config{})
	res, err := admin.Apply(context.Background(), namespaces.Namespace{Name: name, Abstraction: namespaces.AbstractionKeyValue, Backend: "sqlite", Consistency: c}, 0, "test")
	if err != nil {
		t.Fatal(err)
	}
	nodetest.WaitServing(t, admin, name, res.Revision)
	return st, cl.KeyValue(name)
}

// pauseProjector pauses the consumer of namespace ns's sqlite target until
// the returned func resumes it (Cleanup resumes it too).
func pauseProjector(t *testing.T, st *node.Node, ns string) (resume func()) {
	t.Helper()
	ctx := context.Background()
	stream, consumer := subjects.Stream(ns), subjects.Consumer("sqlite")
	if _, err := st.JetStream().PauseConsumer(ctx, stream, consumer, time.Now().Add(time.Hour)); err != nil {
		t.Fatal(err)
	}
	resumed := false
	resume = func() {
		if resumed {
			return
		}
		resumed = true
		if _, err := st.JetStream().ResumeConsumer(ctx, stream, consumer); err != nil {
			t.Fatal(err)
		}
	}
	t.Cleanup(resume)
	return resume
}

func putOne(t *testing.T, kv *client.KeyValue, id, value string) uint64 {
	t.Helper()
	seq, err := kv.Put(context.Background(), []byte(id), []client.Item{{Key: []byte("v"), Value: []byte(value)}})
	if err != nil {
		t.Fatalf("put %s=%s: %v", id, value, err)
	}
	return seq
}

// wantValue checks that rec is record id holding value at revision rev.
func wantValue(t *testing.T, what string, rec *client.Record, err error, value string, rev uint64) {
	t.Helper()
	if err != nil || len(rec.Items) != 1 || string(rec.Items[0].Value) != value || rec.Revision != rev {
		t.Fatalf("%s = %+v, %v; want %s at revision %d", what, rec, err, value, rev)
	}
}

// wantAt checks that a get of id with min_seq seq returns value at
// revision seq.
func wantAt(t *testing.T, what string, kv *client.KeyValue, id, value string, seq uint64) {
	t.Helper()
	rec, err := kv.Get(context.Background(), []byte(id), client.MinSeq(seq))
	wantValue(t, what, rec, err, value, seq)
}

// A strong write is acknowledged only once the projector applied it, so
// the very next get (no min_seq) returns it; while the projector is held
// back, the write is stored but not acknowledged (NOT_CONSISTENT_YET with
// its seq), and a get still reads the value before it.
func TestStrongWriteIsReadByTheNextGet(t *testing.T) {
	ctx := context.Background()
	st, kv := consistencyNode(t, "strong", namespaces.Strong)
	for _, v := range []string{"v1", "v2", "v3"} {
		seq := putOne(t, kv, "rec", v)
		rec, err := kv.Get(ctx, []byte("rec"))
		wantValue(t, "get right after strong put "+v, rec, err, v, seq)
	}
	before, err := kv.Get(ctx, []byte("rec"))
	if err != nil {
		t.Fatal(err)
	}

	resume := pauseProjector(t, st, "strong")
	_, err = kv.Put(ctx, []byte("rec"), []client.Item{{Key: []byte("v"), Value: []byte("held")}})
	var ce *client.Error
	if !errors.As(err, &ce) || !errors.Is(err, client.ErrNotConsistentYet) || ce.Seq <= before.Revision {
		t.Fatalf("strong put with its projector paused = %v; want NOT_CONSISTENT_YET carrying the stored seq", err)
	}
	held := ce.Seq
	rec, err := kv.Get(ctx, []byte("rec"))
	wantValue(t, "get while the projector is paused", rec, err, "v3", before.Revision)

	resume()
	wantAt(t, "get with the held write's seq after the resume", kv, "rec", "held", held)
	seq := putOne(t, kv, "rec", "v4")
	rec, err = kv.Get(ctx, []byte("rec"))
	wantValue(t, "get right after a strong put after the resume", rec, err, "v4", seq)
}

// heldWrite serves namespace name with consistency c, writes rec = v1 and
// reads it back applied, pauses the projector and writes rec = v2: it
// returns the client, the seqs of both writes and what resumes the
// projector.
func heldWrite(t *testing.T, name string, c namespaces.Consistency) (kv *client.KeyValue, first, held uint64, resume func()) {
	t.Helper()
	st, kv := consistencyNode(t, name, c)
	first = putOne(t, kv, "rec", "v1")
	wantAt(t, "get with min_seq of the first write", kv, "rec", "v1", first)
	resume = pauseProjector(t, st, name)
	held = putOne(t, kv, "rec", "v2")
	if held <= first {
		t.Fatalf("second write at seq %d, first at %d", held, first)
	}
	return kv, first, held, resume
}

// A read-your-writes write is acknowledged once stored, and a get with
// min_seq = its seq returns it: it waits for the projector, never answers
// from a projection that has not applied the write.
func TestReadYourWritesGetWithMinSeq(t *testing.T) {
	ctx := context.Background()
	kv, first, seq, resume := heldWrite(t, "ryw", namespaces.ReadYourWrites)
	rec, err := kv.Get(ctx, []byte("rec"), client.MinSeq(seq))
	if !errors.Is(err, client.ErrNotConsistentYet) {
		t.Fatalf("get with min_seq %d while its write is held back = %+v, %v; want NOT_CONSISTENT_YET", seq, rec, err)
	}
	rec, err = kv.Get(ctx, []byte("rec"))
	wantValue(t, "get without min_seq while the write is held back", rec, err, "v1", first)

	resume()
	wantAt(t, "get with min_seq after the resume", kv, "rec", "v2", seq)
}

// An eventual write is acknowledged once stored, and a get answers at once
// from the projection as it is: while the projector is held back, the
// value before the write.
func TestEventualGetReadsTheProjectionAsItIs(t *testing.T) {
	ctx := context.Background()
	kv, first, seq, resume := heldWrite(t, "eventual", namespaces.Eventual)
	fresh := putOne(t, kv, "new", "n1")
	rec, err := kv.Get(ctx, []byte("rec"))
	wantValue(t, "eventual get while the projector is paused", rec, err, "v1", first)
	if rec, err := kv.Get(ctx, []byte("new")); !errors.Is(err, client.ErrNotFound) {
		t.Fatalf("eventual get of a record written while paused = %+v, %v; want NOT_FOUND", rec, err)
	}

	resume()
	wantAt(t, "get with min_seq after the resume", kv, "rec", "v2", seq)
	wantAt(t, "get of the new record after the resume", kv, "new", "n1", fresh)
}
