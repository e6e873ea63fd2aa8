package postgres_test

import (
	"context"
	"errors"
	"testing"

	"github.com/prism-data/prism/backends/postgres"
	"github.com/prism-data/prism/subjects"
)

func TestDropSchema(t *testing.T) {
	ctx := context.Background()
	gone, kept := newNamespace(t), newNamespace(t)
	a, err := postgres.Open(ctx, testDSN(t), gone)
	if err != nil {
		t.Fatal(err)
	}
	apply(t, a, 5, put(5, "id", item("k", "v")))
	if err := a.Close(); err != nil {
		t.Fatal(err)
	}
	b := openStore(t, kept)
	apply(t, b, 3, put(3, "id", item("k", "kept")))

	if err := postgres.DropSchema(ctx, testDSN(t), gone); err != nil {
		t.Fatal(err)
	}
	if err := postgres.DropSchema(ctx, testDSN(t), gone); err != nil {
		t.Fatalf("second drop: %v, want nil for a schema that does not exist", err)
	}
	var n int
	schema, _ := postgres.SchemaName(gone)
	if err := rawConn(t).QueryRow(ctx, "SELECT count(*) FROM information_schema.schemata WHERE schema_name = $1", schema).Scan(&n); err != nil || n != 0 {
		t.Fatalf("schema %s after drop: count %d, %v", schema, n, err)
	}
	again := openStore(t, gone)
	if cp, err := again.Checkpoint(ctx); err != nil || cp != 0 {
		t.Fatalf("checkpoint of a dropped namespace reopened = %d, %v; want 0", cp, err)
	}
	if resp := getOne(t, again, "id"); len(resp.GetItems()) != 0 {
		t.Fatalf("record of a dropped namespace = %v", resp)
	}
	if resp := getOne(t, b, "id"); len(resp.GetItems()) != 1 {
		t.Fatalf("other namespace after drop = %v", resp)
	}
}

// An invalid namespace name is refused before connecting (the dsn here
// points nowhere).
func TestDropSchemaInvalidNamespace(t *testing.T) {
	err := postgres.DropSchema(context.Background(), "postgres://127.0.0.1:1/none", "Not Valid")
	if !errors.Is(err, subjects.ErrInvalidNamespace) {
		t.Fatalf("DropSchema = %v, want ErrInvalidNamespace", err)
	}
}
