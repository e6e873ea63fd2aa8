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

// Two targets of one namespace on one server keep separate schemas
// (WithSchema); dropping one leaves the other.
func TestWithSchemaSecondTarget(t *testing.T) {
	ctx := context.Background()
	ns := newNamespace(t)
	second, err := postgres.TargetSchemaName(ns, "pg2")
	if err != nil {
		t.Fatal(err)
	}
	first := openStore(t, ns)
	apply(t, first, 4, put(4, "id", item("k", "first")))
	b, err := postgres.Open(ctx, testDSN(t), ns, postgres.WithSchema(second))
	if err != nil {
		t.Fatal(err)
	}
	if b.Schema() != second {
		t.Fatalf("schema = %q, want %q", b.Schema(), second)
	}
	if cp, err := b.Checkpoint(ctx); err != nil || cp != 0 {
		t.Fatalf("second target checkpoint = %d, %v; want 0", cp, err)
	}
	apply(t, b, 2, put(2, "id", item("k", "second")))
	if got := getOne(t, first, "id").GetItems()[0].GetValue(); string(got) != "first" {
		t.Fatalf("first target value = %q after writing the second", got)
	}
	if err := b.Close(); err != nil {
		t.Fatal(err)
	}
	if err := postgres.DropSchema(ctx, testDSN(t), ns, postgres.WithSchema(second)); err != nil {
		t.Fatal(err)
	}
	var n int
	if err := rawConn(t).QueryRow(ctx, "SELECT count(*) FROM information_schema.schemata WHERE schema_name = $1", second).Scan(&n); err != nil || n != 0 {
		t.Fatalf("schema %s after drop: count %d, %v", second, n, err)
	}
	if got := getOne(t, first, "id").GetItems(); len(got) != 1 {
		t.Fatalf("first target after dropping the second = %v", got)
	}
}
