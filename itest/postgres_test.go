package itest

import (
	"errors"
	"fmt"
	"testing"
	"time"

	"github.com/prism-data/prism/backends/postgres/pgtest"
	"github.com/prism-data/prism/client"
)

// startPostgresPrism runs prism with one strong KeyValue namespace on the
// test PostgreSQL, whose DSN comes from --postgres-dsn.
func startPostgresPrism(t *testing.T) (*prismProc, string) {
	t.Helper()
	dsn := pgtest.DSN(t)
	ns := pgtest.Namespace(t, "itest-")
	yaml := fmt.Sprintf("name: %s\nabstraction: keyvalue\nbackend: postgres\nconsistency: strong\n", ns)
	cfg := configDir(t, yaml)
	return startPrism(t, t.TempDir(), 0, "--config", cfg, "--postgres-dsn", dsn), ns
}

func TestPostgresNamespaceEndToEnd(t *testing.T) {
	p, ns := startPostgresPrism(t)
	_, c := p.connect(t)
	kv := c.KeyValue(ns)
	ctx := testCtx(t)
	if _, err := kv.Put(ctx, []byte("user-1"), []client.Item{item("name", "Ada"), item("email", "ada@example.com")}); err != nil {
		t.Fatal(err)
	}
	if _, err := kv.Mutate(ctx, []client.Mutation{
		{ID: []byte("user-2"), Items: []client.Item{item("name", "Grace")}},
		{ID: []byte("user-1"), Delete: true, Keys: [][]byte{[]byte("email")}},
	}); err != nil {
		t.Fatal(err)
	}
	rec, err := kv.Get(ctx, []byte("user-1"))
	if err != nil || len(rec.Items) != 1 || string(rec.Items[0].Value) != "Ada" {
		t.Fatalf("get user-1 = %+v, %v", rec, err)
	}
	ids, _, err := kv.Scan(ctx)
	if err != nil || len(ids) != 2 || string(ids[1]) != "user-2" {
		t.Fatalf("scan = %q, %v", ids, err)
	}
	if _, err := kv.Delete(ctx, []byte("user-2"), nil); err != nil {
		t.Fatal(err)
	}
	if _, err := kv.Get(ctx, []byte("user-2")); !errors.Is(err, client.ErrNotFound) {
		t.Fatalf("get after delete: %v", err)
	}
}

// TestPostgresKill9KeepsAckedWrites kills prism while it projects into
// PostgreSQL and checks, after a restart, that every acknowledged write is
// there exactly as acknowledged.
func TestPostgresKill9KeepsAckedWrites(t *testing.T) {
	p, ns := startPostgresPrism(t)
	_, c := p.connect(t)
	kv := c.KeyValue(ns)
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
