package node_test

import (
	"bytes"
	"context"
	"math/rand/v2"
	"testing"

	"github.com/prism-data/prism/backends/postgres/pgtest"
	"github.com/prism-data/prism/client"
	"github.com/prism-data/prism/namespaces"
	"github.com/prism-data/prism/node"
	"github.com/prism-data/prism/node/nodetest"
	"github.com/prism-data/prism/replay"
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

// getBody reads item "body" of record id and checks it is want, byte for
// byte.
func getBody(t *testing.T, what string, kv *client.KeyValue, id string, want []byte) {
	t.Helper()
	rec, err := kv.Get(context.Background(), []byte(id), client.Keys([]byte("body")))
	if err != nil {
		t.Fatalf("%s: get %s: %v", what, id, err)
	}
	if len(rec.Items) != 1 || !bytes.Equal(rec.Items[0].Value, want) {
		t.Fatalf("%s: get %s = %d items (first %d bytes); want the %d bytes written", what, id, len(rec.Items), len(rec.Items[0].Value), len(want))
	}
}

// TestLargeValueCompactMigrate overwrites a 20 MiB value, compacts the
// stream (the rollup carries the reference, not the value), and migrates
// the namespace from SQLite to PostgreSQL: the backfill replays the
// compacted stream into the new backend, verify passes, and after the
// cutover PostgreSQL returns the latest value byte for byte.
func TestLargeValueCompactMigrate(t *testing.T) {
	ctx := context.Background()
	dsn := pgtest.DSN(t)
	name := pgtest.Namespace(t, "large")
	st, admin, c := nodetest.Start(t, node.Config{PostgresDSN: dsn})
	res, err := admin.Apply(ctx, namespaces.Namespace{Name: name, Abstraction: namespaces.AbstractionKeyValue, Backend: "sqlite", Consistency: namespaces.Strong}, 0, "test")
	if err != nil {
		t.Fatal(err)
	}
	nodetest.WaitServing(t, admin, name, res.Revision)
	kv := c.KeyValue(name)
	first, latest := largeValue(20<<20, 2), largeValue(20<<20, 3)
	// Without tokens: compaction leaves a record whose last write has one
	// alone for the duplicate window.
	noToken := client.IdempotencyToken("")
	for _, v := range [][]byte{first, latest} {
		if _, err := kv.Put(ctx, []byte("doc"), []client.Item{{Key: []byte("body"), Value: v}}, noToken); err != nil {
			t.Fatal(err)
		}
	}
	if _, err := kv.Put(ctx, []byte("small"), []client.Item{{Key: []byte("body"), Value: []byte("tiny")}}, noToken); err != nil {
		t.Fatal(err)
	}
	stats, err := replay.Compact(ctx, st.JetStream(), name)
	if err != nil || stats.RolledUp != 1 {
		t.Fatalf("compact = %+v, %v; want the large record rolled up", stats, err)
	}
	getBody(t, "sqlite after compaction", kv, "doc", latest)

	if _, err := admin.StartMigration(ctx, name, namespaces.Target{Backend: "postgres"}, namespaces.MigrationOptions{}, "test"); err != nil {
		t.Fatal(err)
	}
	waitMigration(t, admin, name, namespaces.MigrationShadowing)
	if rep := verifyNow(t, admin, name); !rep.Report.Passed() || rep.Report.Compared != 2 {
		t.Fatalf("verify: %+v", rep)
	}
	if _, err := admin.Migrate(ctx, namespaces.AdminMigrateCutover, name, "test"); err != nil {
		t.Fatal(err)
	}
	waitRoles(t, admin, name, map[string]string{"sqlite": "shadow", "postgres": "primary"})
	getBody(t, "postgres", kv, "doc", latest)
	getBody(t, "postgres", kv, "small", []byte("tiny"))
}
