package node_test

import (
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/prism-data/prism/client"
	"github.com/prism-data/prism/namespaces"
	"github.com/prism-data/prism/node"
	"github.com/prism-data/prism/node/nodetest"
	prismv1 "github.com/prism-data/prism/proto/prism/v1"
)

// Two nodes that both project a SQLite namespace (the second has the
// first's instance id, as two processes restarted at once on an idle
// consumer both find it free) end with one projecting and the other on
// standby (ADR 026): the server pins one client, the other finds it
// pinned and goes on standby. Reads through either never miss a write
// read-your-writes promised, before, during and after the demotion.
func TestPinnedNodeDemotesTheOther(t *testing.T) {
	ctx := context.Background()
	a, admin, cl := nodetest.Start(t, node.Config{})
	const ns = "pinned"
	res, err := admin.Apply(ctx, namespaces.Namespace{Name: ns, Abstraction: namespaces.AbstractionKeyValue, Backend: "sqlite", Consistency: namespaces.ReadYourWrites}, 0, "test")
	if err != nil {
		t.Fatal(err)
	}
	nodetest.WaitServing(t, admin, ns, res.Revision)
	kv := cl.KeyValue(ns)
	for i := range 20 {
		if _, err := kv.Put(ctx, fmt.Appendf(nil, "r%03d", i), []client.Item{{Key: []byte("v"), Value: []byte("x")}}); err != nil {
			t.Fatal(err)
		}
	}

	dirB := t.TempDir()
	id, err := os.ReadFile(filepath.Join(a.Config().DataDir, "instance-id"))
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(dirB, "instance-id"), id, 0o600); err != nil {
		t.Fatal(err)
	}
	b, _, _ := nodetest.Start(t, node.Config{NATSURL: a.URL(), DataDir: dirB})
	deadline := time.Now().Add(15 * time.Second)
	for !node.ProjectsPrimary(b, ns) {
		if time.Now().After(deadline) {
			t.Fatal("the second node does not project the namespace: the race this test needs did not happen")
		}
		time.Sleep(10 * time.Millisecond)
	}
	if !node.ProjectsPrimary(a, ns) {
		t.Fatal("the first node stopped projecting before any write")
	}

	// Writes pin one client; with nothing more to deliver, the other,
	// idle, finds it pinned and goes on standby (and, having the same
	// owner id, which is never refused, tries again a second later).
	var last uint64
	for i := range 5 {
		if last, err = kv.Put(ctx, fmt.Appendf(nil, "r%03d", 20+i), []client.Item{{Key: []byte("v"), Value: []byte("x")}}); err != nil {
			t.Fatal(err)
		}
	}
	deadline = time.Now().Add(30 * time.Second)
	for node.ProjectsPrimary(a, ns) == node.ProjectsPrimary(b, ns) {
		if time.Now().After(deadline) {
			t.Fatal("both nodes still project the namespace 30 s after the writes: neither went on standby")
		}
		time.Sleep(5 * time.Millisecond)
	}
	t.Logf("one node projects (first: %t), the other is on standby", node.ProjectsPrimary(a, ns))

	// Reads spread over both gateways (one queue group): each is complete
	// or a retryable refusal, never short.
	for i := range 8 {
		ids, _, err := kv.Scan(ctx, client.PageSize(1000), client.MinSeq(last))
		var pe *client.Error
		switch {
		case errors.As(err, &pe) && (pe.Code == prismv1.Code_UNAVAILABLE || pe.Code == prismv1.Code_NOT_CONSISTENT_YET):
		case err != nil:
			t.Fatalf("read %d: scan: %v", i, err)
		case len(ids) != 25:
			t.Fatalf("read %d: scan at min_seq %d read %d of 25 records: stale", i, last, len(ids))
		}
	}
}
