package node_test

import (
	"context"
	"slices"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/prism-data/prism/backends/postgres"
	"github.com/prism-data/prism/backends/postgres/pgtest"
	"github.com/prism-data/prism/namespaces"
	"github.com/prism-data/prism/node"
	"github.com/prism-data/prism/node/nodetest"
	prismv1 "github.com/prism-data/prism/proto/prism/v1"
)

// A migration target whose data an earlier release kept in
// prism_<ns>.<target> (a schema with a dot) keeps it: serve renames the
// schema to postgres.TargetSchemaName's and the backfill resumes from its
// checkpoint, without applying again what it holds.
func TestMigrationTargetRenamesTheDottedSchema(t *testing.T) {
	ctx := context.Background()
	dsn := pgtest.DSN(t)
	name := pgtest.Namespace(t, "ren")
	legacy := "prism_" + name + ".pg2"
	schema, err := postgres.TargetSchemaName(name, "pg2")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		for _, s := range []string{legacy, schema} {
			_ = postgres.DropSchema(context.Background(), dsn, name, postgres.WithSchema(s))
		}
	})
	_, admin, c := nodetest.Start(t, node.Config{PostgresDSN: dsn})
	res, err := admin.Apply(ctx, namespaces.Namespace{Name: name, Abstraction: namespaces.AbstractionKeyValue, Backend: "sqlite", Consistency: namespaces.Strong}, 0, "test")
	if err != nil {
		t.Fatal(err)
	}
	nodetest.WaitServing(t, admin, name, res.Revision)
	kv := c.KeyValue(name)
	putValues(t, kv, 0, 50, "a-")

	// The old target applied seq 1 (the put of rec-00000) and holds a
	// value of its own for it, so a backfill from scratch would show.
	old, err := postgres.Open(ctx, dsn, name, postgres.WithSchema(legacy))
	if err != nil {
		t.Fatal(err)
	}
	change := &prismv1.KeyValueChange{Seq: 1, Event: &prismv1.KeyValueEvent{Id: []byte("rec-00000"),
		Change: &prismv1.KeyValueEvent_Put{Put: &prismv1.KeyValuePut{Items: []*prismv1.Item{{Key: []byte("v"), Value: []byte("from the old schema")}}}}}}
	if err := old.ApplyKeyValue(ctx, []*prismv1.KeyValueChange{change}, 1); err != nil {
		t.Fatal(err)
	}
	if err := old.Close(); err != nil {
		t.Fatal(err)
	}

	if _, err := admin.StartMigration(ctx, name, namespaces.Target{Name: "pg2", Backend: "postgres"}, namespaces.MigrationOptions{}, "test"); err != nil {
		t.Fatal(err)
	}
	waitMigration(t, admin, name, namespaces.MigrationShadowing)
	// Shadowing starts within two batches of the stream's end: wait for
	// the last of the 50 puts (seq 50) to be applied.
	for deadline := time.Now().Add(10 * time.Second); ; time.Sleep(10 * time.Millisecond) {
		n, err := admin.Get(ctx, name)
		if err == nil && slices.ContainsFunc(n.Targets, func(ts namespaces.TargetStatus) bool { return ts.Target == "pg2" && ts.Checkpoint == 50 }) {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("target pg2 never applied seq 50: %+v, %v", n.Targets, err)
		}
	}
	conn, err := pgx.Connect(ctx, dsn)
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close(ctx)
	var oldExists, newExists bool
	if err := conn.QueryRow(ctx, "SELECT EXISTS (SELECT 1 FROM pg_namespace WHERE nspname = $1), EXISTS (SELECT 1 FROM pg_namespace WHERE nspname = $2)", legacy, schema).Scan(&oldExists, &newExists); err != nil {
		t.Fatal(err)
	}
	if oldExists || !newExists {
		t.Fatalf("after the migration started: %s exists %v, %s exists %v; want it renamed", legacy, oldExists, schema, newExists)
	}
	items := pgx.Identifier{schema, "items"}.Sanitize()
	var first string
	var n int
	if err := conn.QueryRow(ctx, "SELECT (SELECT convert_from(value, 'UTF8') FROM "+items+" WHERE id = 'rec-00000'), (SELECT count(*) FROM "+items+")").Scan(&first, &n); err != nil {
		t.Fatal(err)
	}
	if first != "from the old schema" || n != 50 {
		t.Fatalf("renamed target: rec-00000 = %q, %d records; want the old schema's value and 50 records", first, n)
	}
}
