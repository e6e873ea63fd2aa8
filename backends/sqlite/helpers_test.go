package sqlite_test

import (
	"context"
	"database/sql"
	"net/url"
	"path/filepath"
	"sync"
	"testing"
	"time"

	"google.golang.org/protobuf/types/known/timestamppb"

	"github.com/prism-data/prism/backends/sqlite"
	prismv1 "github.com/prism-data/prism/proto/prism/v1"
)

// openStore opens a store in a fresh file under t.TempDir and closes it at
// the end of the test.
func openStore(t testing.TB, opts ...sqlite.Option) (*sqlite.Store, string) {
	t.Helper()
	path := filepath.Join(t.TempDir(), "ns.db")
	s, err := sqlite.Open(context.Background(), path, opts...)
	if err != nil {
		t.Fatalf("Open: %v", err)
	}
	t.Cleanup(func() {
		if err := s.Close(); err != nil {
			t.Errorf("Close: %v", err)
		}
	})
	return s, path
}

// clock is a settable clock for WithClock.
type clock struct {
	mu  sync.Mutex
	now time.Time
}

func (c *clock) Now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.now
}

func (c *clock) Set(t time.Time) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.now = t
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

func apply(t testing.TB, s *sqlite.Store, through uint64, changes ...*prismv1.KeyValueChange) {
	t.Helper()
	if err := s.ApplyKeyValue(context.Background(), changes, through); err != nil {
		t.Fatalf("ApplyKeyValue(through %d): %v", through, err)
	}
}

func checkpoint(t testing.TB, s *sqlite.Store) uint64 {
	t.Helper()
	cp, err := s.Checkpoint(context.Background())
	if err != nil {
		t.Fatalf("Checkpoint: %v", err)
	}
	return cp
}

func get(t testing.TB, s *sqlite.Store, req *prismv1.GetRequest) *prismv1.GetResponse {
	t.Helper()
	resp, err := s.GetItems(context.Background(), req)
	if err != nil {
		t.Fatalf("GetItems(%v): %v", req, err)
	}
	return resp
}

// kv is an item as the tests compare it (with slices.Equal).
type kv struct{ key, value string }

func kvs(items []*prismv1.Item) []kv {
	out := make([]kv, 0, len(items))
	for _, it := range items {
		out = append(out, kv{string(it.GetKey()), string(it.GetValue())})
	}
	return out
}

// scanAll lists every id with page size n.
func scanAll(t testing.TB, s *sqlite.Store, n uint32) [][]byte {
	t.Helper()
	var ids [][]byte
	token := ""
	for pages := 0; ; pages++ {
		resp, err := s.ScanIDs(context.Background(), &prismv1.ScanRequest{PageSize: n, PageToken: token})
		if err != nil {
			t.Fatalf("ScanIDs: %v", err)
		}
		ids = append(ids, resp.GetIds()...)
		if resp.GetNextPageToken() == "" {
			return ids
		}
		if pages > 100000 {
			t.Fatal("pagination does not end")
		}
		token = resp.GetNextPageToken()
	}
}

// rawDB opens the store's file directly, to look at rows the API hides.
func rawDB(t testing.TB, path string) *sql.DB {
	t.Helper()
	u := url.URL{Scheme: "file", Path: path, RawQuery: "_pragma=busy_timeout(5000)"}
	db, err := sql.Open("sqlite", u.String())
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { db.Close() })
	return db
}

func count(t testing.TB, db *sql.DB, table string) int {
	t.Helper()
	var n int
	if err := db.QueryRow("SELECT count(*) FROM " + table).Scan(&n); err != nil {
		t.Fatal(err)
	}
	return n
}
