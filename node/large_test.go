package node_test

import (
	"bytes"
	"context"
	"math/rand/v2"
	"testing"

	"github.com/prism-data/prism/client"
	"github.com/prism-data/prism/namespaces"
	"github.com/prism-data/prism/node"
	"github.com/prism-data/prism/node/nodetest"
)

// largeValue returns n pseudo-random bytes (incompressible, so nothing
// can pass by accident through a shortcut).
func largeValue(n int, seed uint64) []byte {
	r := rand.New(rand.NewPCG(seed, seed))
	b := make([]byte, n)
	for i := 0; i+8 <= n; i += 8 {
		v := r.Uint64()
		for j := range 8 {
			b[i+j] = byte(v >> (8 * j))
		}
	}
	return b
}

// largeNode serves one keyvalue namespace on backend and returns its node
// and a handle.
func largeNode(t *testing.T, name, backend string) (*node.Node, *namespaces.AdminClient, *client.KeyValue) {
	t.Helper()
	st, admin, cl := nodetest.Start(t, node.Config{})
	res, err := admin.Apply(context.Background(), namespaces.Namespace{Name: name, Abstraction: namespaces.AbstractionKeyValue, Backend: backend}, 0, "test")
	if err != nil {
		t.Fatal(err)
	}
	nodetest.WaitServing(t, admin, name, res.Revision)
	return st, admin, cl.KeyValue(name, client.ReadYourWrites())
}

// TestLargeValueSQLite writes a 20 MiB value beside a small one through
// the Go client, which uploads it in parts, and reads both back byte for
// byte from SQLite.
func TestLargeValueSQLite(t *testing.T) {
	_, _, kv := largeNode(t, "large", "sqlite")
	ctx := context.Background()
	big := largeValue(20<<20, 1)
	seq, err := kv.Put(ctx, []byte("doc"), []client.Item{{Key: []byte("body"), Value: big}, {Key: []byte("name"), Value: []byte("report.pdf")}})
	if err != nil {
		t.Fatal(err)
	}
	rec, err := kv.Get(ctx, []byte("doc"))
	if err != nil {
		t.Fatal(err)
	}
	if rec.Revision != seq || len(rec.Items) != 2 {
		t.Fatalf("get = revision %d, %d items; want revision %d, 2 items", rec.Revision, len(rec.Items), seq)
	}
	if !bytes.Equal(rec.Items[0].Value, big) {
		t.Fatalf("body: got %d bytes, not the 20 MiB written", len(rec.Items[0].Value))
	}
	if string(rec.Items[1].Value) != "report.pdf" {
		t.Fatalf("name = %q", rec.Items[1].Value)
	}
}
