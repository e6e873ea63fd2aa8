package sqlite_test

import (
	"bytes"
	"context"
	"encoding/base64"
	"errors"
	"fmt"
	"slices"
	"testing"

	"github.com/prism-data/prism/backends/sqlite"
	prismv1 "github.com/prism-data/prism/proto/prism/v1"
)

// fiveItems is a record with keys a..e (values A..E), applied at seq 1.
func fiveItems(t *testing.T) *sqlite.Store {
	t.Helper()
	s, _ := openStore(t)
	apply(t, s, 1, put(1, "r",
		item("a", "A"), item("b", "B"), item("c", "C"), item("d", "D"), item("e", "E")))
	return s
}

func TestGetItemsKeys(t *testing.T) {
	s := fiveItems(t)
	tests := []struct {
		name string
		keys []string
		want []kv
	}{
		{"one", []string{"c"}, []kv{{"c", "C"}}},
		{"unordered with duplicates", []string{"e", "a", "c", "a"}, []kv{{"a", "A"}, {"c", "C"}, {"e", "E"}}},
		{"some missing", []string{"zz", "b", "0"}, []kv{{"b", "B"}}},
		{"all missing", []string{"x", "y"}, []kv{}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			req := &prismv1.GetRequest{Id: []byte("r")}
			for _, k := range tt.keys {
				req.Keys = append(req.Keys, []byte(k))
			}
			resp := get(t, s, req)
			if got := kvs(resp.GetItems()); !slices.Equal(got, tt.want) {
				t.Errorf("items = %v, want %v", got, tt.want)
			}
			// The record exists, so the revision is reported even when no
			// requested key does.
			if resp.GetRevision() != 1 {
				t.Errorf("revision = %d, want 1", resp.GetRevision())
			}
		})
	}
}

func TestGetItemsRange(t *testing.T) {
	s := fiveItems(t)
	tests := []struct {
		name       string
		start, end string
		want       []kv
	}{
		{"start inclusive end exclusive", "b", "d", []kv{{"b", "B"}, {"c", "C"}}},
		{"start between keys", "bb", "d", []kv{{"c", "C"}}},
		{"end between keys", "b", "cc", []kv{{"b", "B"}, {"c", "C"}}},
		{"empty end is unbounded", "c", "", []kv{{"c", "C"}, {"d", "D"}, {"e", "E"}}},
		{"empty start", "", "b", []kv{{"a", "A"}}},
		{"whole range", "", "", []kv{{"a", "A"}, {"b", "B"}, {"c", "C"}, {"d", "D"}, {"e", "E"}}},
		{"start equals end", "c", "c", []kv{}},
		{"end before start", "d", "b", []kv{}},
		{"past the last key", "f", "", []kv{}},
		{"end at first key", "", "a", []kv{}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			resp := get(t, s, &prismv1.GetRequest{Id: []byte("r"),
				Range: &prismv1.KeyRange{Start: []byte(tt.start), End: []byte(tt.end)}})
			if got := kvs(resp.GetItems()); !slices.Equal(got, tt.want) {
				t.Errorf("items = %v, want %v", got, tt.want)
			}
		})
	}
}

func TestGetItemsPagination(t *testing.T) {
	s, _ := openStore(t)
	const n = 2500
	var want []kv
	var changes []*prismv1.KeyValueChange
	// Keys written in reverse, in several puts, so order comes from the store.
	for i := n - 1; i >= 0; i-- {
		k, v := fmt.Sprintf("key-%05d", i), fmt.Sprintf("value-%d", i)
		want = append(want, kv{k, v})
		changes = append(changes, put(uint64(n-i), "big", item(k, v)))
	}
	slices.Reverse(want)
	apply(t, s, n, changes...)

	tests := []struct {
		name      string
		req       *prismv1.GetRequest
		want      []kv
		wantPages int
	}{
		{"page size 1000", &prismv1.GetRequest{PageSize: 1000}, want, 3},
		{"page size 7", &prismv1.GetRequest{PageSize: 7}, want, (n + 6) / 7},
		{"default page size", &prismv1.GetRequest{}, want, n / 100},
		{"page size capped at 1000", &prismv1.GetRequest{PageSize: 5000}, want, 3},
		{"exact multiple has no empty last page", &prismv1.GetRequest{PageSize: 500}, want, 5},
		{"range page size 7", &prismv1.GetRequest{PageSize: 7, Range: &prismv1.KeyRange{
			Start: []byte("key-00100"), End: []byte("key-00200")}}, want[100:200], 15},
		{"keys page size 3", &prismv1.GetRequest{PageSize: 3, Keys: [][]byte{
			[]byte("key-02000"), []byte("key-00001"), []byte("nope"), []byte("key-00002"), []byte("key-01000")}},
			[]kv{want[1], want[2], want[1000], want[2000]}, 2},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			tt.req.Id = []byte("big")
			items, pages := getAll(t, s, tt.req)
			if got := kvs(items); !slices.Equal(got, tt.want) {
				t.Errorf("concatenated pages: %d items, want %d (same order, no duplicates)", len(got), len(tt.want))
			}
			if pages != tt.wantPages {
				t.Errorf("pages = %d, want %d", pages, tt.wantPages)
			}
		})
	}
}

// Keys lists longer than one query's IN list are read in chunks.
func TestGetItemsManyKeys(t *testing.T) {
	s, _ := openStore(t)
	var items []*prismv1.Item
	var keys [][]byte
	for i := range 1200 {
		k := fmt.Sprintf("k%04d", i)
		items = append(items, item(k, "v"))
		if i%2 == 0 {
			keys = append(keys, []byte(k))
		}
	}
	apply(t, s, 1, put(1, "r", items...))
	got, pages := getAll(t, s, &prismv1.GetRequest{Id: []byte("r"), Keys: keys, PageSize: 1000})
	if len(got) != 600 || pages != 1 {
		t.Fatalf("got %d items in %d pages, want 600 in 1", len(got), pages)
	}
	var gotKeys [][]byte
	for _, it := range got {
		gotKeys = append(gotKeys, it.GetKey())
	}
	if !slices.EqualFunc(gotKeys, keys, bytes.Equal) {
		t.Fatal("keys differ from the requested ones")
	}
}

func TestScanIDsPagination(t *testing.T) {
	s, _ := openStore(t)
	const n = 3000
	var want [][]byte
	var changes []*prismv1.KeyValueChange
	for i := range n {
		id := fmt.Sprintf("id-%05d", (i*7919)%n) // written out of order
		changes = append(changes, put(uint64(i+1), id, item("k", "v")))
		want = append(want, []byte(fmt.Sprintf("id-%05d", i)))
	}
	apply(t, s, n, changes...)
	for _, size := range []uint32{0, 7, 1000, 3000, 5000} {
		t.Run(fmt.Sprint("page size ", size), func(t *testing.T) {
			got := scanAll(t, s, size)
			if !slices.EqualFunc(got, want, bytes.Equal) {
				t.Fatalf("ScanIDs: %d ids, want %d in byte order without duplicates", len(got), len(want))
			}
		})
	}
}

// Ids and keys are bytes: the empty one, zero bytes, invalid UTF-8, and
// Unicode must round-trip and sort bytewise; values may be empty or large.
func TestBinaryIDsKeysAndValues(t *testing.T) {
	s, _ := openStore(t)
	big := bytes.Repeat([]byte{0xAB, 0x00, 0xFF}, 512*1024/3+1)[:512*1024]
	ids := [][]byte{{}, {0x00}, {0x00, 0x00}, {0xFF, 0xFE}, []byte("日本語"), []byte("a.b*c>d e\n")}
	keys := [][]byte{{}, {0x00}, {0x01}, []byte("é"), {0xFF}}
	values := [][]byte{{}, nil, big, []byte("ünïcødé"), {0x00}}
	var seq uint64
	var changes []*prismv1.KeyValueChange
	for _, id := range ids {
		var items []*prismv1.Item
		for i, k := range keys {
			items = append(items, &prismv1.Item{Key: k, Value: values[i]})
		}
		seq++
		changes = append(changes, &prismv1.KeyValueChange{Seq: seq, Event: &prismv1.KeyValueEvent{
			Id: id, Change: &prismv1.KeyValueEvent_Put{Put: &prismv1.KeyValuePut{Items: items}}}})
	}
	apply(t, s, seq, changes...)

	sortedKeys := slices.Clone(keys)
	slices.SortFunc(sortedKeys, bytes.Compare)
	for i, id := range ids {
		// Page size 1 makes the empty key the last key of a page.
		got, pages := getAll(t, s, &prismv1.GetRequest{Id: id, PageSize: 1})
		if pages != len(keys) || len(got) != len(keys) {
			t.Fatalf("id %x: %d items in %d pages, want %d", id, len(got), pages, len(keys))
		}
		for j, it := range got {
			if !bytes.Equal(it.GetKey(), sortedKeys[j]) {
				t.Errorf("id %x item %d key = %x, want %x", id, j, it.GetKey(), sortedKeys[j])
			}
			want := values[slices.IndexFunc(keys, func(k []byte) bool { return bytes.Equal(k, it.GetKey()) })]
			if !bytes.Equal(it.GetValue(), want) {
				t.Errorf("id %x key %x: value of %d bytes, want %d", id, it.GetKey(), len(it.GetValue()), len(want))
			}
		}
		resp := get(t, s, &prismv1.GetRequest{Id: id, Keys: [][]byte{{}}})
		if len(resp.GetItems()) != 1 || len(resp.GetItems()[0].GetKey()) != 0 || resp.GetRevision() != uint64(i+1) {
			t.Errorf("id %x: get of the empty key = %v", id, resp)
		}
	}

	gotIDs := scanAll(t, s, 1)
	wantIDs := slices.Clone(ids)
	slices.SortFunc(wantIDs, bytes.Compare)
	if !slices.EqualFunc(gotIDs, wantIDs, bytes.Equal) {
		t.Errorf("ScanIDs = %x, want %x", gotIDs, wantIDs)
	}

	// Deleting the empty key of the empty id leaves its other items.
	apply(t, s, seq+1, &prismv1.KeyValueChange{Seq: seq + 1, Event: &prismv1.KeyValueEvent{
		Change: &prismv1.KeyValueEvent_Delete{Delete: &prismv1.KeyValueDelete{Keys: [][]byte{{}}}}}})
	if got, _ := getAll(t, s, &prismv1.GetRequest{}); len(got) != len(keys)-1 || len(got[0].GetKey()) == 0 {
		t.Errorf("empty id after deleting its empty key: %d items", len(got))
	}
}

func TestInvalidPageToken(t *testing.T) {
	s := fiveItems(t)
	ctx := context.Background()
	for _, token := range []string{"!!!", "a=", "YQ==", "~~", base64.RawURLEncoding.EncodeToString(nil) + "@", "Y"} {
		t.Run(token, func(t *testing.T) {
			if _, err := s.GetItems(ctx, &prismv1.GetRequest{Id: []byte("r"), PageToken: token}); !errors.Is(err, sqlite.ErrInvalidPageToken) {
				t.Errorf("GetItems: err = %v, want ErrInvalidPageToken", err)
			}
			if _, err := s.ScanIDs(ctx, &prismv1.ScanRequest{PageToken: token}); !errors.Is(err, sqlite.ErrInvalidPageToken) {
				t.Errorf("ScanIDs: err = %v, want ErrInvalidPageToken", err)
			}
		})
	}
	// A well-formed token continues after the key it names.
	resp := get(t, s, &prismv1.GetRequest{Id: []byte("r"), PageToken: base64.RawURLEncoding.EncodeToString([]byte("c"))})
	if got := kvs(resp.GetItems()); !slices.Equal(got, []kv{{"d", "D"}, {"e", "E"}}) {
		t.Errorf("after token of %q: %v", "c", got)
	}
}

func TestInvalidRequest(t *testing.T) {
	s := fiveItems(t)
	ctx := context.Background()
	tests := []struct {
		name string
		call func() error
	}{
		{"nil get", func() error { _, err := s.GetItems(ctx, nil); return err }},
		{"nil scan", func() error { _, err := s.ScanIDs(ctx, nil); return err }},
		{"keys and range", func() error {
			_, err := s.GetItems(ctx, &prismv1.GetRequest{Id: []byte("r"), Keys: [][]byte{[]byte("a")}, Range: &prismv1.KeyRange{}})
			return err
		}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if err := tt.call(); !errors.Is(err, sqlite.ErrInvalidRequest) {
				t.Errorf("err = %v, want ErrInvalidRequest", err)
			}
		})
	}
}
