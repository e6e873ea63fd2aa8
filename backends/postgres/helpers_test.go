package postgres_test

import (
	"context"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"
	"google.golang.org/protobuf/types/known/timestamppb"

	"github.com/prism-data/prism/backends/postgres"
	"github.com/prism-data/prism/backends/postgres/pgtest"
	prismv1 "github.com/prism-data/prism/proto/prism/v1"
)

// testDSN is the test database; see pgtest.DSN.
func testDSN(t testing.TB) string {
	t.Helper()
	return pgtest.DSN(t)
}

// newNamespace returns a namespace name no other test or run uses, and drops
// its schema when the test ends. The '-' checks that schema names are quoted.
func newNamespace(t testing.TB) string {
	t.Helper()
	return pgtest.Namespace(t, "test-")
}

// openStore opens namespace ns and closes the store at the end of the test.
func openStore(t testing.TB, ns string, opts ...postgres.Option) *postgres.Store {
	t.Helper()
	s, err := postgres.Open(context.Background(), testDSN(t), ns, opts...)
	if err != nil {
		t.Fatalf("Open(%q): %v", ns, err)
	}
	t.Cleanup(func() {
		if err := s.Close(); err != nil {
			t.Errorf("Close: %v", err)
		}
	})
	return s
}

// rawConn connects to the test database directly, to look at rows the API
// hides.
func rawConn(t testing.TB) *pgx.Conn {
	t.Helper()
	ctx := context.Background()
	conn, err := pgx.Connect(ctx, testDSN(t))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { conn.Close(ctx) })
	return conn
}

func item(key, value string) *prismv1.Item {
	return &prismv1.Item{Key: []byte(key), Value: []byte(value)}
}

func itemExpiring(key, value string, at time.Time) *prismv1.Item {
	it := item(key, value)
	it.ExpireTime = timestamppb.New(at)
	return it
}

func put(seq uint64, id string, items ...*prismv1.Item) *prismv1.KeyValueChange {
	return &prismv1.KeyValueChange{Seq: seq, Event: &prismv1.KeyValueEvent{
		Id:     []byte(id),
		Change: &prismv1.KeyValueEvent_Put{Put: &prismv1.KeyValuePut{Items: items}},
	}}
}

func replace(seq uint64, id string, items ...*prismv1.Item) *prismv1.KeyValueChange {
	return &prismv1.KeyValueChange{Seq: seq, Event: &prismv1.KeyValueEvent{
		Id:     []byte(id),
		Change: &prismv1.KeyValueEvent_Replace{Replace: &prismv1.KeyValueReplace{Items: items}},
	}}
}

func del(seq uint64, id string, keys ...string) *prismv1.KeyValueChange {
	d := &prismv1.KeyValueDelete{}
	for _, k := range keys {
		d.Keys = append(d.Keys, []byte(k))
	}
	return &prismv1.KeyValueChange{Seq: seq, Event: &prismv1.KeyValueEvent{
		Id:     []byte(id),
		Change: &prismv1.KeyValueEvent_Delete{Delete: d},
	}}
}

func apply(t testing.TB, s *postgres.Store, through uint64, changes ...*prismv1.KeyValueChange) {
	t.Helper()
	if err := s.ApplyKeyValue(context.Background(), changes, through); err != nil {
		t.Fatalf("ApplyKeyValue(through %d): %v", through, err)
	}
}
