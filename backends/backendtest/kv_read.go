package backendtest

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"slices"
	"testing"

	prismv1 "github.com/prism-data/prism/proto/prism/v1"
)

// fiveItems opens a backend with one record "r" of keys a..e (values A..E),
// applied at seq 1.
func (k kvSuite) fiveItems(t testing.TB) KeyValueBackend {
	t.Helper()
	b, _ := k.open(t)
	apply(t, b, 1, put(1, "r",
		item("a", "A"), item("b", "B"), item("c", "C"), item("d", "D"), item("e", "E")))
	return b
}

func (k kvSuite) testGetKeys(t *testing.T) {
	b := k.fiveItems(t)
	tests := []struct {
		name string
		keys []string
		want []kv
	}{
		{"one", []string{"c"}, []kv{{"c", "C"}}},
		{"unordered with duplicates", []string{"e", "a", "c", "a"}, []kv{{"a", "A"}, {"c", "C"}, {"e", "E"}}},
		{"some missing", []string{"zz", "b", "0"}, []kv{{"b", "B"}}},
		{"all missing", []string{"x", "y"}, []kv{}},
		{"empty key missing", []string{""}, []kv{}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			req := &prismv1.GetRequest{Id: []byte("r")}
			for _, key := range tt.keys {
				req.Keys = append(req.Keys, []byte(key))
			}
			resp := get(t, b, req)
			if got := kvs(resp.GetItems()); !slices.Equal(got, tt.want) {
				t.Errorf("items = %v, want %v", got, tt.want)
			}
			// The record exists, so the revision is reported even when no
			// requested key does.
			if resp.GetRevision() != 1 {
				t.Errorf("revision = %d, want 1", resp.GetRevision())
			}
			if resp.GetNextPageToken() != "" {
				t.Errorf("next page token = %q, want none", resp.GetNextPageToken())
			}
		})
	}
	t.Run("missing record", func(t *testing.T) {
		resp := get(t, b, &prismv1.GetRequest{Id: []byte("nope"), Keys: [][]byte{[]byte("a")}})
		if len(resp.GetItems()) != 0 || resp.GetRevision() != 0 || resp.GetNextPageToken() != "" {
			t.Errorf("missing record = %v, want empty response", resp)
		}
	})
}

// A list of keys longer than any one query's bind list still comes back
// whole, in order, on one page.
func (k kvSuite) testGetManyKeys(t *testing.T) {
	b, _ := k.open(t)
	var items []*prismv1.Item
	var keys [][]byte
	for i := range 1200 {
		key := fmt.Sprintf("k%04d", i)
		items = append(items, item(key, "v"+key))
		if i%2 == 0 {
			keys = append(keys, []byte(key))
		}
	}
	apply(t, b, 1, put(1, "r", items...))
	// Asked in reverse: the order of the answer is the store's.
	req := slices.Clone(keys)
	slices.Reverse(req)
	got, pages := getAll(t, b, &prismv1.GetRequest{Id: []byte("r"), Keys: req, PageSize: 1000})
	if len(got) != 600 || pages != 1 {
		t.Fatalf("got %d items in %d pages, want 600 in 1", len(got), pages)
	}
	for i, it := range got {
		if !bytes.Equal(it.GetKey(), keys[i]) || string(it.GetValue()) != "v"+string(keys[i]) {
			t.Fatalf("item %d = %q=%q, want %q=%q", i, it.GetKey(), it.GetValue(), keys[i], "v"+string(keys[i]))
		}
	}
}

func (k kvSuite) testGetRange(t *testing.T) {
	b := k.fiveItems(t)
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
		{"end just after a key", "d", "d\x00", []kv{{"d", "D"}}},
		{"start at last key", "e", "", []kv{{"e", "E"}}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			resp := get(t, b, &prismv1.GetRequest{Id: []byte("r"),
				Range: &prismv1.KeyRange{Start: []byte(tt.start), End: []byte(tt.end)}})
			if got := kvs(resp.GetItems()); !slices.Equal(got, tt.want) {
				t.Errorf("items = %v, want %v", got, tt.want)
			}
			if resp.GetRevision() != 1 {
				t.Errorf("revision = %d, want 1", resp.GetRevision())
			}
		})
	}
}

func (k kvSuite) testGetPagination(t *testing.T) {
	b, _ := k.open(t)
	const n = 2500
	var want []kv
	var changes []*prismv1.KeyValueChange
	// Keys written in reverse, in several puts, so order comes from the store.
	for i := n - 1; i >= 0; i-- {
		key, value := fmt.Sprintf("key-%05d", i), fmt.Sprintf("value-%d", i)
		want = append(want, kv{key, value})
		changes = append(changes, put(uint64(n-i), "big", item(key, value)))
	}
	slices.Reverse(want)
	apply(t, b, n, changes...)

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
			items, pages := getAll(t, b, tt.req)
			if got := kvs(items); !slices.Equal(got, tt.want) {
				t.Errorf("concatenated pages: %d items, want %d (same order, no duplicates)", len(got), len(tt.want))
			}
			if pages != tt.wantPages {
				t.Errorf("pages = %d, want %d", pages, tt.wantPages)
			}
		})
	}
	t.Run("every page full but the last, same revision", func(t *testing.T) {
		req := &prismv1.GetRequest{Id: []byte("big"), PageSize: 1000}
		for i, wantLen := range []int{1000, 1000, 500} {
			resp := get(t, b, req)
			if len(resp.GetItems()) != wantLen || resp.GetRevision() != n {
				t.Fatalf("page %d: %d items rev %d, want %d rev %d", i, len(resp.GetItems()), resp.GetRevision(), wantLen, n)
			}
			if last := i == 2; last != (resp.GetNextPageToken() == "") {
				t.Fatalf("page %d: next page token %q", i, resp.GetNextPageToken())
			}
			req.PageToken = resp.GetNextPageToken()
		}
	})
}

func (k kvSuite) testScanPagination(t *testing.T) {
	b, _ := k.open(t)
	const n = 3000
	var want [][]byte
	var changes []*prismv1.KeyValueChange
	for i := range n {
		id := fmt.Sprintf("id-%05d", (i*7919)%n) // written out of order
		changes = append(changes, put(uint64(i+1), id, item("k", "v")))
		want = append(want, fmt.Appendf(nil, "id-%05d", i))
	}
	// Records that must not be listed: deleted, and emptied item by item.
	changes = append(changes, put(n+1, "gone", item("k", "v")), del(n+2, "gone"),
		put(n+3, "emptied", item("k", "v")), del(n+4, "emptied", "k"))
	apply(t, b, n+4, changes...)
	tests := []struct {
		size      uint32
		wantPages int
	}{
		{0, n / 100},
		{7, (n + 6) / 7},
		{1000, 3},
		{3000, 3},
		{5000, 3},
	}
	for _, tt := range tests {
		t.Run(fmt.Sprint("page size ", tt.size), func(t *testing.T) {
			got, pages := scanAll(t, b, tt.size)
			if !slices.EqualFunc(got, want, bytes.Equal) {
				t.Errorf("ScanIDs: %d ids, want %d in byte order without duplicates", len(got), len(want))
			}
			if pages != tt.wantPages {
				t.Errorf("pages = %d, want %d", pages, tt.wantPages)
			}
		})
	}
}

// Ids and keys are bytes: the empty one, zero bytes, invalid UTF-8, Unicode
// and long ids must round-trip and sort bytewise; values may be empty or
// large.
func (k kvSuite) testBinary(t *testing.T) {
	b, _ := k.open(t)
	big := bytes.Repeat([]byte{0xAB, 0x00, 0xFF}, 512*1024/3+1)[:512*1024]
	long := make([]byte, 1024)
	for i := range long {
		long[i] = byte(i * 7)
	}
	ids := [][]byte{{}, {0x00}, {0x00, 0x00}, {0xFF, 0xFE}, []byte("日本語"), []byte("a.b*c>d e\n"), long}
	keys := [][]byte{{}, {0x00}, {0x01}, []byte("é"), {0xFF}}
	values := [][]byte{{}, nil, big, []byte("ünïcødé"), {0x00}}
	var seq uint64
	var changes []*prismv1.KeyValueChange
	for _, id := range ids {
		var items []*prismv1.Item
		for i, key := range keys {
			items = append(items, &prismv1.Item{Key: key, Value: values[i]})
		}
		seq++
		changes = append(changes, putBytes(seq, id, items...))
	}
	apply(t, b, seq, changes...)

	sortedKeys := slices.Clone(keys)
	slices.SortFunc(sortedKeys, bytes.Compare)
	for i, id := range ids {
		// Page size 1 makes the empty key the last key of a page.
		got, pages := getAll(t, b, &prismv1.GetRequest{Id: id, PageSize: 1})
		if pages != len(keys) || len(got) != len(keys) {
			t.Fatalf("id %x: %d items in %d pages, want %d", id, len(got), pages, len(keys))
		}
		for j, it := range got {
			if !bytes.Equal(it.GetKey(), sortedKeys[j]) {
				t.Errorf("id %x item %d key = %x, want %x", id, j, it.GetKey(), sortedKeys[j])
			}
			want := values[slices.IndexFunc(keys, func(key []byte) bool { return bytes.Equal(key, it.GetKey()) })]
			if !bytes.Equal(it.GetValue(), want) {
				t.Errorf("id %x key %x: value of %d bytes, want %d", id, it.GetKey(), len(it.GetValue()), len(want))
			}
		}
		resp := get(t, b, &prismv1.GetRequest{Id: id, Keys: [][]byte{{}}})
		if len(resp.GetItems()) != 1 || len(resp.GetItems()[0].GetKey()) != 0 || resp.GetRevision() != uint64(i+1) {
			t.Errorf("id %x: get of the empty key = %v", id, resp)
		}
		if !bytes.Equal(resp.GetId(), id) {
			t.Errorf("id %x: response id = %x", id, resp.GetId())
		}
	}

	// Page size 1 makes the empty id the last id of a page.
	gotIDs, _ := scanAll(t, b, 1)
	wantIDs := slices.Clone(ids)
	slices.SortFunc(wantIDs, bytes.Compare)
	if !slices.EqualFunc(gotIDs, wantIDs, bytes.Equal) {
		t.Errorf("ScanIDs = %x, want %x", gotIDs, wantIDs)
	}

	// Deleting the empty key of the empty id leaves its other items.
	apply(t, b, seq+1, &prismv1.KeyValueChange{Seq: seq + 1, Event: &prismv1.KeyValueEvent{
		Change: &prismv1.KeyValueEvent_Delete{Delete: &prismv1.KeyValueDelete{Keys: [][]byte{{}}}}}})
	if got, _ := getAll(t, b, &prismv1.GetRequest{}); len(got) != len(keys)-1 || len(got[0].GetKey()) == 0 {
		t.Errorf("empty id after deleting its empty key: %d items", len(got))
	}
	// Deleting the whole long id leaves the others.
	apply(t, b, seq+2, &prismv1.KeyValueChange{Seq: seq + 2, Event: &prismv1.KeyValueEvent{
		Id: long, Change: &prismv1.KeyValueEvent_Delete{Delete: &prismv1.KeyValueDelete{}}}})
	if gotIDs, _ := scanAll(t, b, 0); len(gotIDs) != len(ids)-1 || slices.ContainsFunc(gotIDs, func(id []byte) bool { return bytes.Equal(id, long) }) {
		t.Errorf("ScanIDs after deleting the long id = %x", gotIDs)
	}
}

func (k kvSuite) testInvalidPageToken(t *testing.T) {
	b := k.fiveItems(t)
	ctx := context.Background()
	// Tokens no backend makes; the token format itself is the backend's.
	for _, token := range []string{"!!!", "not a page token", "\x00\xff"} {
		t.Run(fmt.Sprintf("%q", token), func(t *testing.T) {
			if _, err := b.GetItems(ctx, &prismv1.GetRequest{Id: []byte("r"), PageToken: token}); !errors.Is(err, k.cfg.Errors.InvalidPageToken) {
				t.Errorf("GetItems: err = %v, want %v", err, k.cfg.Errors.InvalidPageToken)
			}
			if _, err := b.ScanIDs(ctx, &prismv1.ScanRequest{PageToken: token}); !errors.Is(err, k.cfg.Errors.InvalidPageToken) {
				t.Errorf("ScanIDs: err = %v, want %v", err, k.cfg.Errors.InvalidPageToken)
			}
		})
	}
}

func (k kvSuite) testInvalidRequest(t *testing.T) {
	if k.cfg.Errors.InvalidRequest == nil {
		t.Skip("Config.Errors.InvalidRequest is not set: set it to the backend's invalid-request sentinel to run this test")
	}
	b := k.fiveItems(t)
	ctx := context.Background()
	tests := []struct {
		name    string
		call    func() error
		wantErr error
	}{
		{"nil get", func() error { _, err := b.GetItems(ctx, nil); return err }, k.cfg.Errors.InvalidRequest},
		{"nil scan", func() error { _, err := b.ScanIDs(ctx, nil); return err }, k.cfg.Errors.InvalidRequest},
		{"keys and range", func() error {
			_, err := b.GetItems(ctx, &prismv1.GetRequest{Id: []byte("r"), Keys: [][]byte{[]byte("a")}, Range: &prismv1.KeyRange{}})
			return err
		}, k.cfg.Errors.InvalidRequest},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if err := tt.call(); !errors.Is(err, tt.wantErr) {
				t.Errorf("err = %v, want %v", err, tt.wantErr)
			}
		})
	}
}
