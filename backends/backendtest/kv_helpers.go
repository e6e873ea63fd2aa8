package backendtest

import (
	"context"
	"sync"
	"testing"
	"time"

	"google.golang.org/protobuf/types/known/timestamppb"

	prismv1 "github.com/prism-data/prism/proto/prism/v1"
)

// clock is a settable clock handed to the factory.
type clock struct {
	mu  sync.Mutex
	now time.Time
}

func newClock(t time.Time) *clock { return &clock{now: t} }

// Now returns the time the clock was last set to.
func (c *clock) Now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.now
}

// Set moves the clock to t.
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
	return putBytes(seq, []byte(id), items...)
}

func putBytes(seq uint64, id []byte, items ...*prismv1.Item) *prismv1.KeyValueChange {
	return &prismv1.KeyValueChange{Seq: seq, Event: &prismv1.KeyValueEvent{
		Id:     id,
		Change: &prismv1.KeyValueEvent_Put{Put: &prismv1.KeyValuePut{Items: items}},
	}}
}

// replace is a change that sets the whole record id to items (none: the
// record is deleted), as compaction writes it.
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

func apply(t testing.TB, b KeyValueBackend, through uint64, changes ...*prismv1.KeyValueChange) {
	t.Helper()
	if err := b.ApplyKeyValue(context.Background(), changes, through); err != nil {
		t.Fatalf("ApplyKeyValue(through %d): %v", through, err)
	}
}

func checkpoint(t testing.TB, b checkpointer) uint64 {
	t.Helper()
	cp, err := b.Checkpoint(context.Background())
	if err != nil {
		t.Fatalf("Checkpoint: %v", err)
	}
	return cp
}

func get(t testing.TB, b KeyValueBackend, req *prismv1.GetRequest) *prismv1.GetResponse {
	t.Helper()
	resp, err := b.GetItems(context.Background(), req)
	if err != nil {
		t.Fatalf("GetItems(%v): %v", req, err)
	}
	return resp
}

// getID reads the first page of record id with the default page size.
func getID(t testing.TB, b KeyValueBackend, id string) *prismv1.GetResponse {
	t.Helper()
	return get(t, b, &prismv1.GetRequest{Id: []byte(id)})
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

// maxPages stops a pagination that never ends.
const maxPages = 100000

// getAll reads every page of req (its PageToken is reset first) and returns
// the items of all pages and the number of pages.
func getAll(t testing.TB, b KeyValueBackend, req *prismv1.GetRequest) (items []*prismv1.Item, pages int) {
	t.Helper()
	req.PageToken = ""
	for {
		resp := get(t, b, req)
		pages++
		items = append(items, resp.GetItems()...)
		if resp.GetNextPageToken() == "" {
			return items, pages
		}
		if pages > maxPages {
			t.Fatal("pagination does not end")
		}
		req.PageToken = resp.GetNextPageToken()
	}
}

// scanAll lists every id with page size n and returns them and the number of
// pages.
func scanAll(t testing.TB, b KeyValueBackend, n uint32) (ids [][]byte, pages int) {
	t.Helper()
	token := ""
	for {
		resp, err := b.ScanIDs(context.Background(), &prismv1.ScanRequest{PageSize: n, PageToken: token})
		if err != nil {
			t.Fatalf("ScanIDs: %v", err)
		}
		pages++
		ids = append(ids, resp.GetIds()...)
		if resp.GetNextPageToken() == "" {
			return ids, pages
		}
		if pages > maxPages {
			t.Fatal("pagination does not end")
		}
		token = resp.GetNextPageToken()
	}
}

// scanStrings lists every id as a string.
func scanStrings(t testing.TB, b KeyValueBackend) []string {
	t.Helper()
	ids, _ := scanAll(t, b, 0)
	var out []string
	for _, id := range ids {
		out = append(out, string(id))
	}
	return out
}
