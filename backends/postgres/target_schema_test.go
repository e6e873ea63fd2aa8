package postgres_test

import (
	"context"
	"errors"
	"strings"
	"testing"

	"github.com/prism-data/prism/backends/postgres"
	"github.com/prism-data/prism/subjects"
)

func TestTargetSchemaNameForm(t *testing.T) {
	for _, c := range []struct{ ns, target, want string }{
		{"orders", "", "prism_orders"},
		{"orders", "postgres", "prism_orders"},
		{"orders", "pg2", "prism__orders__pg2"},
		{"orders", "pg_2", "prism__orders__pg_2"},
		{"orders-v2", "pg-2", "prism__orders-v2__pg-2"},
		{"orders", strings.Repeat("t", 60), "prism__orders__ttttttttttttttttttttttttttttttt~8a64becce4110884"},
	} {
		got, err := postgres.TargetSchemaName(c.ns, c.target)
		if err != nil || got != c.want {
			t.Errorf("TargetSchemaName(%q, %q) = %q, %v; want %q", c.ns, c.target, got, err, c.want)
		}
		if strings.Contains(got, ".") || len(got) > 63 {
			t.Errorf("TargetSchemaName(%q, %q) = %q: a dot in a schema name", c.ns, c.target, got)
		}
	}
	for _, c := range []struct{ ns, target, want string }{
		{"orders", "pg__2", "single '_'"},
		{"orders", "_pg", "starting with a letter or digit"},
		{"orders", "Pg", "lower-case"},
	} {
		if _, err := postgres.TargetSchemaName(c.ns, c.target); !errors.Is(err, postgres.ErrSchemaName) || !strings.Contains(err.Error(), c.want) {
			t.Errorf("TargetSchemaName(%q, %q) error = %v, want ErrSchemaName saying %q", c.ns, c.target, err, c.want)
		}
	}
	if _, err := postgres.TargetSchemaName("dlq", "pg2"); !errors.Is(err, subjects.ErrInvalidNamespace) {
		t.Errorf("TargetSchemaName(dlq, pg2) error = %v, want ErrInvalidNamespace", err)
	}
}

// No two (namespace, target) pairs share a schema, and no target's schema
// is a namespace's own: every name of up to four bytes over a, b, '_' and
// '-' (which a rule mapping '-' to '_', or allowing "__" or a leading '_'
// in a target, would make collide).
func TestTargetSchemaNameIsUnshared(t *testing.T) {
	names, longest := []string{""}, []string{""}
	for range 4 {
		var next []string
		for _, n := range longest {
			for _, c := range "ab_-" {
				next = append(next, n+string(c))
			}
		}
		names, longest = append(names, next...), next
	}
	owner := map[string]string{}
	claim := func(schema, who string) {
		if prev, ok := owner[schema]; ok && prev != who {
			t.Fatalf("%s and %s share schema %q", prev, who, schema)
		}
		owner[schema] = who
	}
	pairs := 0
	for _, ns := range names {
		own, err := postgres.SchemaName(ns)
		if err != nil {
			continue
		}
		claim(own, ns+"/")
		for _, target := range names {
			schema, err := postgres.TargetSchemaName(ns, target)
			if err != nil || target == "" {
				continue
			}
			claim(schema, ns+"/"+target)
			pairs++
		}
	}
	if pairs < 1000 {
		t.Fatalf("only %d pairs named: the rule refuses too much", pairs)
	}
}

// schemaExists reports whether the test database has schema name.
func schemaExists(t *testing.T, name string) bool {
	t.Helper()
	var ok bool
	if err := rawConn(t).QueryRow(context.Background(), "SELECT EXISTS (SELECT 1 FROM pg_namespace WHERE nspname = $1)", name).Scan(&ok); err != nil {
		t.Fatal(err)
	}
	return ok
}

// dropAtEnd drops the schemas when the test ends.
func dropAtEnd(t *testing.T, ns string, schemas ...string) {
	t.Cleanup(func() {
		for _, s := range schemas {
			if err := postgres.DropSchema(context.Background(), testDSN(t), ns, postgres.WithSchema(s)); err != nil {
				t.Errorf("drop %s: %v", s, err)
			}
		}
	})
}

// A target's schema made by an earlier release, prism_<ns>.<target> (a
// dot in its name), is renamed to TargetSchemaName's once, with its rows
// and checkpoint; a later call finds it there and renames nothing.
func TestAdoptTargetSchemaRenamesTheDottedOne(t *testing.T) {
	ctx := context.Background()
	ns := newNamespace(t)
	legacy := "prism_" + ns + ".pg2"
	want, err := postgres.TargetSchemaName(ns, "pg2")
	if err != nil {
		t.Fatal(err)
	}
	dropAtEnd(t, ns, legacy, want)
	old, err := postgres.Open(ctx, testDSN(t), ns, postgres.WithSchema(legacy))
	if err != nil {
		t.Fatal(err)
	}
	apply(t, old, 7, put(7, "id", item("k", "kept")))
	if err := old.Close(); err != nil {
		t.Fatal(err)
	}

	schema, renamed, err := postgres.AdoptTargetSchema(ctx, testDSN(t), ns, "pg2")
	if err != nil || schema != want || renamed != legacy {
		t.Fatalf("AdoptTargetSchema = %q, renamed %q, %v; want %q renamed from %q", schema, renamed, err, want, legacy)
	}
	if schemaExists(t, legacy) || !schemaExists(t, want) {
		t.Fatalf("after the rename: %s exists %v, %s exists %v", legacy, schemaExists(t, legacy), want, schemaExists(t, want))
	}
	st := openStore(t, ns, postgres.WithSchema(schema))
	if cp, err := st.Checkpoint(ctx); err != nil || cp != 7 {
		t.Fatalf("checkpoint after the rename = %d, %v; want 7", cp, err)
	}
	if got := getOne(t, st, "id").GetItems(); len(got) != 1 || string(got[0].GetValue()) != "kept" {
		t.Fatalf("record after the rename = %v", got)
	}

	schema, renamed, err = postgres.AdoptTargetSchema(ctx, testDSN(t), ns, "pg2")
	if err != nil || schema != want || renamed != "" {
		t.Fatalf("second AdoptTargetSchema = %q, renamed %q, %v; want %q, nothing renamed", schema, renamed, err, want)
	}
}

// A new target gets the new name and nothing is created by the look-up;
// the first target never had another name; a target the new rule refuses
// keeps an old schema it has, and is refused without one.
func TestAdoptTargetSchemaWithoutOldSchema(t *testing.T) {
	ctx := context.Background()
	ns := newNamespace(t)
	want, _ := postgres.TargetSchemaName(ns, "fresh")
	schema, renamed, err := postgres.AdoptTargetSchema(ctx, testDSN(t), ns, "fresh")
	if err != nil || schema != want || renamed != "" || schemaExists(t, want) {
		t.Fatalf("AdoptTargetSchema of a new target = %q, renamed %q, %v (exists %v); want %q, nothing created", schema, renamed, err, schemaExists(t, want), want)
	}
	first, _ := postgres.SchemaName(ns)
	if schema, renamed, err := postgres.AdoptTargetSchema(ctx, "postgres://127.0.0.1:1/none", ns, "postgres"); err != nil || schema != first || renamed != "" {
		t.Fatalf("AdoptTargetSchema of target postgres = %q, renamed %q, %v; want %q without connecting", schema, renamed, err, first)
	}

	if _, _, err := postgres.AdoptTargetSchema(ctx, testDSN(t), ns, "pg__2"); !errors.Is(err, postgres.ErrSchemaName) {
		t.Fatalf("AdoptTargetSchema of a refused target without an old schema = %v, want ErrSchemaName", err)
	}
	legacy := "prism_" + ns + ".pg__2"
	dropAtEnd(t, ns, legacy)
	old, err := postgres.Open(ctx, testDSN(t), ns, postgres.WithSchema(legacy))
	if err != nil {
		t.Fatal(err)
	}
	if err := old.Close(); err != nil {
		t.Fatal(err)
	}
	if schema, renamed, err := postgres.AdoptTargetSchema(ctx, testDSN(t), ns, "pg__2"); err != nil || schema != legacy || renamed != "" {
		t.Fatalf("AdoptTargetSchema of a refused target with an old schema = %q, renamed %q, %v; want %q kept", schema, renamed, err, legacy)
	}
}
