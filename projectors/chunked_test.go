package projectors_test

import (
	"bytes"
	"context"
	"math/rand/v2"
	"strconv"
	"testing"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/prism-data/prism/projectors"
	prismv1 "github.com/prism-data/prism/proto/prism/v1"
	"github.com/prism-data/prism/subjects"
)

// publishBlob stores value as parts of partBytes on the blob stream, the
// last part first and part 0 twice (a retried part), and returns the
// reference a put event carries.
func publishBlob(t *testing.T, js jetstream.JetStream, upload string, value []byte, partBytes int) *prismv1.ChunkedValue {
	t.Helper()
	ctx := context.Background()
	var parts [][]byte
	for off := 0; off < len(value); off += partBytes {
		parts = append(parts, value[off:min(off+partBytes, len(value))])
	}
	order := []int{len(parts) - 1}
	for i := range len(parts) - 1 {
		order = append(order, i)
	}
	order = append(order, 0)
	ref := &prismv1.ChunkedValue{UploadId: upload, Size: uint64(len(value)), Parts: uint32(len(parts))}
	for _, i := range order {
		m := nats.NewMsg(subjects.Blob(testNS, upload))
		m.Header.Set(subjects.HeaderPart, strconv.Itoa(i))
		m.Data = parts[i]
		ack, err := js.PublishMsg(ctx, m)
		if err != nil {
			t.Fatal(err)
		}
		if ref.FirstSeq == 0 {
			ref.FirstSeq = ack.Sequence
		}
	}
	return ref
}

// TestResolveChunks: put events that reference large values are applied
// with the whole values, assembled from parts stored out of order and
// twice; a batch whose values exceed the resolver's bound is applied in
// several calls, each change exactly once.
func TestResolveChunks(t *testing.T) {
	js := startJetStream(t)
	if _, err := js.CreateStream(context.Background(), jetstream.StreamConfig{Name: subjects.BlobStream(testNS), Subjects: subjects.BlobStreamSubjects(testNS), AllowDirect: true}); err != nil {
		t.Fatal(err)
	}
	st := openStore(t)
	rec := newRecorder(st)
	target := projectors.ResolveChunks(js, testNS, rec)
	projectors.SetResolvedBatchBytes(target, 400<<10)

	r := rand.New(rand.NewPCG(1, 2))
	pub := newPublisher(js)
	values := map[string][]byte{}
	var seqs []uint64
	for _, id := range []string{"a", "b", "c"} {
		v := make([]byte, 300<<10)
		for i := range v {
			v[i] = byte(r.Uint32())
		}
		values[id] = v
		ref := publishBlob(t, js, "up"+id, v, 100<<10)
		ev := &prismv1.KeyValueEvent{Id: []byte(id), Change: &prismv1.KeyValueEvent_Put{Put: &prismv1.KeyValuePut{Items: []*prismv1.Item{{Key: []byte("body"), Chunked: ref}}}}}
		seqs = append(seqs, pub.publish(t, ev))
	}
	var maxHeld int
	rec.setGate(func(_ context.Context, changes []*prismv1.KeyValueChange, _ uint64) error {
		n := 0
		for _, c := range changes {
			for _, it := range c.GetEvent().GetPut().GetItems() {
				n += len(it.GetValue())
			}
		}
		maxHeld = max(maxHeld, n)
		return nil
	})
	p := startProjector(t, js, "sqlite", target)
	waitApplied(t, p, seqs[len(seqs)-1])
	for id, want := range values {
		resp, err := st.GetItems(context.Background(), &prismv1.GetRequest{Id: []byte(id)})
		if err != nil || len(resp.GetItems()) != 1 || !bytes.Equal(resp.GetItems()[0].GetValue(), want) || resp.GetItems()[0].GetChunked() != nil {
			t.Fatalf("record %s: %v; want the %d bytes of its parts", id, err, len(want))
		}
	}
	rec.checkExactlyOnce(t, seqs)
	rec.mu.Lock()
	calls := rec.calls
	rec.mu.Unlock()
	if calls < 3 || maxHeld > 400<<10 {
		t.Fatalf("%d apply calls, at most %d value bytes in one, for 3 values of 300 KiB under a 400 KiB bound; want 3 calls or more, each within the bound", calls, maxHeld)
	}
}
