package itest

import (
	"errors"
	"testing"
	"time"

	"github.com/prism-data/prism/client"
)

// startNATSKVPrism runs prism with one strong KeyValue namespace projected
// into a NATS KV bucket on its embedded server.
func startNATSKVPrism(t *testing.T) *prismProc {
	t.Helper()
	yaml := "name: cache\nabstraction: keyvalue\nbackend: natskv\nconsistency: strong\n"
	cfg := configDir(t, yaml)
	return startPrism(t, t.TempDir(), 0, "--config", cfg)
}

func TestNATSKVNamespaceEndToEnd(t *testing.T) {
	p := startNATSKVPrism(t)
	_, c := p.connect(t)
	kv := c.KeyValue("cache")
	ctx := testCtx(t)
	if _, err := kv.Put(ctx, []byte("user.1"), []client.Item{item("name", "Ada"), item("email", "ada@example.com")}); err != nil {
		t.Fatal(err)
	}
	if _, err := kv.Mutate(ctx, []client.Mutation{
		{ID: []byte("user 2"), Items: []client.Item{item("name", "Grace")}},
		{ID: []byte("user.1"), Delete: true, Keys: [][]byte{[]byte("email")}},
	}); err != nil {
		t.Fatal(err)
	}
	rec, err := kv.Get(ctx, []byte("user.1"))
	if err != nil || len(rec.Items) != 1 || string(rec.Items[0].Value) != "Ada" {
		t.Fatalf("get user.1 = %+v, %v", rec, err)
	}
	ids, _, err := kv.Scan(ctx)
	if err != nil || len(ids) != 2 || string(ids[0]) != "user 2" || string(ids[1]) != "user.1" {
		t.Fatalf("scan = %q, %v", ids, err)
	}
	if _, err := kv.Delete(ctx, []byte("user 2"), nil); err != nil {
		t.Fatal(err)
	}
	if _, err := kv.Get(ctx, []byte("user 2")); !errors.Is(err, client.ErrNotFound) {
		t.Fatalf("get after delete: %v", err)
	}
}

// TestNATSKVKill9KeepsAckedWrites kills prism while it projects into the
// KV bucket and checks every acknowledged write after a restart.
func TestNATSKVKill9KeepsAckedWrites(t *testing.T) {
	p := startNATSKVPrism(t)
	_, c := p.connect(t)
	kv := c.KeyValue("cache")
	acked := &ackedWrites{values: map[string][]byte{}}
	stop := make(chan struct{})
	wg := writeUntil(t, kv, 8, stop, acked)
	time.Sleep(700 * time.Millisecond)
	p.kill()
	close(stop)
	wg.Wait()
	p.restart()
	verifyAcked(t, kv, acked)
}
