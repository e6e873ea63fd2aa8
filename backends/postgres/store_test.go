package postgres_test

import (
	"context"
	"errors"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/prism-data/prism/backends/postgres"
	prismv1 "github.com/prism-data/prism/proto/prism/v1"
	"github.com/prism-data/prism/subjects"
)

func TestOpenOptions(t *testing.T) {
	tests := []struct {
		name    string
		opts    []postgres.Option
		wantErr bool
	}{
		{name: "defaults"},
		{name: "clock and max conns", opts: []postgres.Option{postgres.WithClock(time.Now), postgres.WithMaxConns(1)}},
		{name: "nil clock", opts: []postgres.Option{postgres.WithClock(nil)}, wantErr: true},
		{name: "zero max conns", opts: []postgres.Option{postgres.WithMaxConns(0)}, wantErr: true},
		{name: "negative max conns", opts: []postgres.Option{postgres.WithMaxConns(-3)}, wantErr: true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			s, err := postgres.Open(context.Background(), testDSN(t), newNamespace(t), tt.opts...)
			if (err != nil) != tt.wantErr {
				t.Fatalf("Open error = %v, wantErr %v", err, tt.wantErr)
			}
			if err != nil {
				if s != nil {
					t.Fatal("Open returned a Store with an error")
				}
				return
			}
			// One connection must be enough for every operation.
			apply(t, s, 1, put(1, "a", item("k", "v")))
			if _, err := s.GetItems(context.Background(), &prismv1.GetRequest{Id: []byte("a")}); err != nil {
				t.Fatal(err)
			}
			if err := s.Close(); err != nil {
				t.Fatal(err)
			}
		})
	}
}

func TestOpenErrors(t *testing.T) {
	dsn := testDSN(t)
	tests := []struct {
		name    string
		dsn, ns string
		wantErr error // nil: any error
	}{
		{name: "empty namespace", dsn: dsn, ns: "", wantErr: subjects.ErrInvalidNamespace},
		{name: "upper case namespace", dsn: dsn, ns: "Orders", wantErr: subjects.ErrInvalidNamespace},
		{name: "quote in namespace", dsn: dsn, ns: `a"b`, wantErr: subjects.ErrInvalidNamespace},
		{name: "bad dsn", dsn: "postgres://[::1", ns: "a"},
		{name: "nobody listening", dsn: "postgres://postgres@127.0.0.1:1/test?sslmode=disable&connect_timeout=2", ns: "a"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			s, err := postgres.Open(context.Background(), tt.dsn, tt.ns)
			if err == nil {
				s.Close()
				t.Fatal("Open succeeded")
			}
			if tt.wantErr != nil && !errors.Is(err, tt.wantErr) {
				t.Fatalf("Open error = %v, want %v", err, tt.wantErr)
			}
		})
	}
}

// Schema names are valid PostgreSQL identifiers, and distinct namespaces get
// distinct schemas, also where PostgreSQL would truncate the name.
func TestSchemaName(t *testing.T) {
	long := strings.Repeat("a", subjects.MaxNamespaceLen)
	names := []string{"a", "a-b", "a_b", "ab", "prism", "orders-v2", "orders_v2",
		long, long[:63] + "b", long[:58], long[:57], long[:57] + "-", long[:57] + "_"}
	seen := map[string]string{}
	for _, ns := range names {
		schema, err := postgres.SchemaName(ns)
		if err != nil {
			t.Fatalf("SchemaName(%q): %v", ns, err)
		}
		if len(schema) > 63 {
			t.Errorf("SchemaName(%q) = %q: %d bytes, PostgreSQL keeps 63", ns, schema, len(schema))
		}
		if !strings.HasPrefix(schema, "prism_") {
			t.Errorf("SchemaName(%q) = %q, want the prism_ prefix", ns, schema)
		}
		if prev, ok := seen[schema]; ok {
			t.Errorf("SchemaName(%q) = SchemaName(%q) = %q", ns, prev, schema)
		}
		seen[schema] = ns
	}
	if got, _ := postgres.SchemaName("orders-v2"); got != "prism_orders-v2" {
		t.Errorf("SchemaName(orders-v2) = %q, want prism_orders-v2", got)
	}
	if _, err := postgres.SchemaName("dlq"); !errors.Is(err, subjects.ErrInvalidNamespace) {
		t.Errorf("SchemaName(dlq) error = %v, want ErrInvalidNamespace", err)
	}
}

// A namespace with the longest name works end to end and does not share its
// schema with one that differs only in its last character.
func TestLongNamespaces(t *testing.T) {
	base := newNamespace(t)
	a := base + strings.Repeat("x", subjects.MaxNamespaceLen-len(base)-1) + "a"
	b := a[:len(a)-1] + "b"
	for _, ns := range []string{a, b} {
		schema, _ := postgres.SchemaName(ns)
		t.Cleanup(func() {
			conn := rawConn(t)
			if _, err := conn.Exec(context.Background(), "DROP SCHEMA IF EXISTS "+pgx.Identifier{schema}.Sanitize()+" CASCADE"); err != nil {
				t.Error(err)
			}
		})
	}
	sa, sb := openStore(t, a), openStore(t, b)
	if sa.Schema() == sb.Schema() {
		t.Fatalf("namespaces %q and %q share schema %q", a, b, sa.Schema())
	}
	apply(t, sa, 1, put(1, "id", item("k", "a")))
	if resp := getOne(t, sb, "id"); len(resp.GetItems()) != 0 {
		t.Fatalf("namespace b sees a's record: %v", resp)
	}
}

func getOne(t testing.TB, s *postgres.Store, id string) *prismv1.GetResponse {
	t.Helper()
	resp, err := s.GetItems(context.Background(), &prismv1.GetRequest{Id: []byte(id)})
	if err != nil {
		t.Fatalf("GetItems(%q): %v", id, err)
	}
	return resp
}

func schemaVersion(t testing.TB, s *postgres.Store) int {
	t.Helper()
	var v int
	err := rawConn(t).QueryRow(context.Background(),
		"SELECT version FROM "+pgx.Identifier{s.Schema(), "schema_version"}.Sanitize()).Scan(&v)
	if err != nil {
		t.Fatal(err)
	}
	return v
}

// Opening a namespace again migrates nothing and keeps the data.
func TestMigrationIsIdempotent(t *testing.T) {
	ns := newNamespace(t)
	s1 := openStore(t, ns)
	apply(t, s1, 3, put(3, "a", item("k", "v")))
	v := schemaVersion(t, s1)
	if v < 1 {
		t.Fatalf("schema version = %d after Open", v)
	}
	s2 := openStore(t, ns)
	if got := schemaVersion(t, s2); got != v {
		t.Fatalf("schema version after second Open = %d, want %d", got, v)
	}
	if cp, err := s2.Checkpoint(context.Background()); err != nil || cp != 3 {
		t.Fatalf("checkpoint after second Open = %d, %v; want 3", cp, err)
	}
	if resp := getOne(t, s2, "a"); resp.GetRevision() != 3 || len(resp.GetItems()) != 1 {
		t.Fatalf("record after second Open = %v", resp)
	}
}

// Several processes opening a new namespace at the same moment must all
// succeed: the advisory lock serializes CREATE SCHEMA and the migration.
func TestConcurrentOpen(t *testing.T) {
	dsn := testDSN(t)
	for round := range 3 {
		ns := newNamespace(t)
		const openers = 6
		stores := make([]*postgres.Store, openers)
		errs := make([]error, openers)
		var wg sync.WaitGroup
		for i := range openers {
			wg.Go(func() { stores[i], errs[i] = postgres.Open(context.Background(), dsn, ns, postgres.WithMaxConns(2)) })
		}
		wg.Wait()
		for i, err := range errs {
			if err != nil {
				t.Fatalf("round %d: Open %d: %v", round, i, err)
			}
			t.Cleanup(func() { stores[i].Close() })
		}
		// They all see one schema.
		apply(t, stores[0], 1, put(1, "a", item("k", "v")))
		for i, s := range stores {
			if resp := getOne(t, s, "a"); resp.GetRevision() != 1 {
				t.Fatalf("round %d: store %d does not see the write: %v", round, i, resp)
			}
		}
	}
}

// Namespaces are isolated: the same id in two namespaces are two records,
// and checkpoints are separate.
func TestSchemaIsolation(t *testing.T) {
	a, b := openStore(t, newNamespace(t)), openStore(t, newNamespace(t))
	apply(t, a, 10, put(9, "only-a", item("k", "v")), put(10, "id", item("k", "in a")))
	apply(t, b, 2, put(2, "id", item("k", "in b")))
	apply(t, a, 11, del(11, "id"))

	if resp := getOne(t, b, "id"); resp.GetRevision() != 2 || string(resp.GetItems()[0].GetValue()) != "in b" {
		t.Fatalf("b's record after a deleted its own = %v", resp)
	}
	if resp := getOne(t, a, "id"); len(resp.GetItems()) != 0 {
		t.Fatalf("a's deleted record = %v", resp)
	}
	for _, tc := range []struct {
		s    *postgres.Store
		cp   uint64
		want []string
	}{{a, 11, []string{"only-a"}}, {b, 2, []string{"id"}}} {
		cp, err := tc.s.Checkpoint(context.Background())
		if err != nil || cp != tc.cp {
			t.Errorf("%s checkpoint = %d, %v; want %d", tc.s.Schema(), cp, err, tc.cp)
		}
		resp, err := tc.s.ScanIDs(context.Background(), &prismv1.ScanRequest{})
		if err != nil {
			t.Fatal(err)
		}
		var ids []string
		for _, id := range resp.GetIds() {
			ids = append(ids, string(id))
		}
		if !slices.Equal(ids, tc.want) {
			t.Errorf("%s ids = %q, want %q", tc.s.Schema(), ids, tc.want)
		}
	}
}

// A schema written by a newer build must be refused, not silently used.
func TestOpenRefusesNewerSchema(t *testing.T) {
	ns := newNamespace(t)
	s := openStore(t, ns)
	if _, err := rawConn(t).Exec(context.Background(),
		"UPDATE "+pgx.Identifier{s.Schema(), "schema_version"}.Sanitize()+" SET version = 999"); err != nil {
		t.Fatal(err)
	}
	s2, err := postgres.Open(context.Background(), testDSN(t), ns)
	if err == nil {
		s2.Close()
		t.Fatal("Open accepted schema version 999")
	}
	if !strings.Contains(err.Error(), "999") {
		t.Errorf("error %q does not name the version", err)
	}
}

// The tables are where the ADR says, so operators can find them.
func TestSchemaLayout(t *testing.T) {
	s := openStore(t, newNamespace(t))
	rows, err := rawConn(t).Query(context.Background(),
		`SELECT table_name FROM information_schema.tables WHERE table_schema = $1 ORDER BY table_name`, s.Schema())
	if err != nil {
		t.Fatal(err)
	}
	tables, err := pgx.CollectRows(rows, pgx.RowTo[string])
	if err != nil {
		t.Fatal(err)
	}
	if want := []string{"checkpoint", "en_index", "en_index_state", "en_records", "g_edges", "g_vertices", "items", "schema_version", "ts_events", "ts_tags"}; !slices.Equal(tables, want) {
		t.Fatalf("tables in %s = %v, want %v", s.Schema(), tables, want)
	}
}

// A second target of a namespace gets its own schema, distinct from the
// namespace's first one and from every other namespace's, also when long.
func TestTargetSchemaName(t *testing.T) {
	long := strings.Repeat("a", subjects.MaxNamespaceLen)
	seen := map[string]string{}
	for _, c := range []struct{ ns, target string }{
		{"orders", ""}, {"orders", "postgres"}, {"orders", "pg2"}, {"orders", "pg3"},
		{"orders-pg2", ""}, {long, "pg2"}, {long, "pg3"}, {long[:60], "pg2"},
	} {
		schema, err := postgres.TargetSchemaName(c.ns, c.target)
		if err != nil {
			t.Fatalf("TargetSchemaName(%q, %q): %v", c.ns, c.target, err)
		}
		if len(schema) > 63 {
			t.Errorf("TargetSchemaName(%q, %q) = %q: %d bytes", c.ns, c.target, schema, len(schema))
		}
		key := c.ns + "/" + c.target
		if c.target == "postgres" {
			key = c.ns + "/"
		}
		if prev, ok := seen[schema]; ok && prev != key {
			t.Errorf("%s and %s share schema %q", prev, key, schema)
		}
		seen[schema] = key
	}
	if a, _ := postgres.TargetSchemaName("orders", ""); a != "prism_orders" {
		t.Errorf("first target schema = %q, want prism_orders (the schema before targets existed)", a)
	}
}
