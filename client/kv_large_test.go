package client_test

import (
	"bytes"
	"context"
	"errors"
	"math/rand/v2"
	"testing"

	"github.com/prism-data/prism/client"
	"github.com/prism-data/prism/namespaces"
	"github.com/prism-data/prism/node"
	"github.com/prism-data/prism/node/nodetest"
)

// largeKV serves a SQLite KeyValue namespace on an in-process node (an
// embedded NATS server with atomic batch publish) and returns a handle
// that reads its own writes.
func largeKV(t *testing.T) *client.KeyValue {
	t.Helper()
	_, admin, c := nodetest.Start(t, node.Config{})
	res, err := admin.Apply(context.Background(), namespaces.Namespace{Name: "large", Abstraction: namespaces.AbstractionKeyValue, Backend: "sqlite"}, 0, "test")
	if err != nil {
		t.Fatal(err)
	}
	nodetest.WaitServing(t, admin, "large", res.Revision)
	return c.KeyValue("large", client.ReadYourWrites())
}

// TestMutateLargeValue: Mutate uploads a value above MaxInlineValueBytes
// in parts and stores it with a small put and a delete in one batch; Get
// reads it back byte for byte. A mutate refused for a stale revision shows
// nothing, though its large value was uploaded.
func TestMutateLargeValue(t *testing.T) {
	kv := largeKV(t)
	ctx := context.Background()
	if _, err := kv.Put(ctx, []byte("gone"), []client.Item{{Key: []byte("k"), Value: []byte("old")}}); err != nil {
		t.Fatal(err)
	}
	big := make([]byte, 2<<20+321)
	_, _ = rand.NewChaCha8([32]byte{9}).Read(big)
	seqs, err := kv.Mutate(ctx, []client.Mutation{
		{ID: []byte("doc"), Items: []client.Item{{Key: []byte("body"), Value: big}, {Key: []byte("name"), Value: []byte("report.pdf")}}},
		{ID: []byte("small"), Items: []client.Item{{Key: []byte("k"), Value: []byte("v")}}},
		{ID: []byte("gone"), Delete: true},
	})
	if err != nil {
		t.Fatal(err)
	}
	if len(seqs) != 3 || seqs[0]+1 != seqs[1] || seqs[1]+1 != seqs[2] {
		t.Fatalf("seqs = %v; want 3 consecutive", seqs)
	}
	doc, err := kv.Get(ctx, []byte("doc"))
	if err != nil {
		t.Fatal(err)
	}
	if doc.Revision != seqs[0] || len(doc.Items) != 2 || !bytes.Equal(doc.Items[0].Value, big) || string(doc.Items[1].Value) != "report.pdf" {
		t.Fatalf("doc = revision %d, %d items; want revision %d, the %d-byte body and the name", doc.Revision, len(doc.Items), seqs[0], len(big))
	}
	if small, err := kv.Get(ctx, []byte("small")); err != nil || string(small.Items[0].Value) != "v" {
		t.Fatalf("small = %+v, %v", small, err)
	}
	if _, err := kv.Get(ctx, []byte("gone")); !errors.Is(err, client.ErrNotFound) {
		t.Fatalf("get of the deleted record: %v, want ErrNotFound", err)
	}

	stale := uint64(1)
	_, err = kv.Mutate(ctx, []client.Mutation{
		{ID: []byte("doc2"), Items: []client.Item{{Key: []byte("body"), Value: big}}},
		{ID: []byte("small"), Items: []client.Item{{Key: []byte("k"), Value: []byte("w")}}, IfRevision: &stale},
	})
	if !errors.Is(err, client.ErrConflict) {
		t.Fatalf("mutate with a stale revision: %v, want ErrConflict", err)
	}
	if _, err := kv.Get(ctx, []byte("doc2")); !errors.Is(err, client.ErrNotFound) {
		t.Fatalf("get of the refused mutate's record: %v, want ErrNotFound", err)
	}
}
