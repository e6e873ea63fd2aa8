package backendtest

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"math/rand/v2"
	"slices"
	"testing"
	"time"

	"google.golang.org/protobuf/proto"

	prismv1 "github.com/prism-data/prism/proto/prism/v1"
)

// KeyValueExporter is a KeyValue backend that also reads records in bulk,
// for verification and copies (FeatureKeyValueExport).
//
// ExportRecords returns up to limit records with id >= from (nil or empty
// from is the start: the empty id is the smallest), in byte order of id,
// each with all its items that are live at now (not the backend's clock) in
// key order and its revision as GetItems reports it. Records without a live
// item at now are left out. It returns fewer than limit records only when
// no more exist; the next page starts at the last id followed by a zero
// byte. A limit below 1 fails with Errors.InvalidRequest.
type KeyValueExporter interface {
	KeyValueBackend
	ExportRecords(ctx context.Context, from []byte, limit int, now time.Time) ([]*prismv1.GetResponse, error)
}

func checkExportConfig(t testing.TB, cfg Config) {
	t.Helper()
	if !slices.Contains(cfg.Features, FeatureKeyValue) {
		t.Fatalf("backendtest: feature %q needs feature %q", FeatureKeyValueExport, FeatureKeyValue)
	}
	if cfg.Errors.InvalidRequest == nil {
		t.Fatalf("backendtest: feature %q needs Config.Errors.InvalidRequest", FeatureKeyValueExport)
	}
}

// runExport is the KeyValue export sub-suite.
func runExport(t *testing.T, cfg Config) {
	e := exportSuite{kvSuite{cfg: cfg}}
	tests := []struct {
		name string
		run  func(t *testing.T)
	}{
		{"Order", e.testOrder},
		{"EmptyID", e.testEmptyID},
		{"ManyItems", e.testManyItems},
		{"Expiry", e.testExpiry},
		{"Deletes", e.testDeletes},
		{"MatchesGetItems", e.testMatchesGet},
		{"InvalidLimit", e.testInvalidLimit},
		{"Closed", e.testClosed},
		{"CancelledContext", e.testCancelled},
	}
	for _, tt := range tests {
		t.Run(tt.name, tt.run)
	}
}

type exportSuite struct{ kvSuite }

func (e exportSuite) open(t testing.TB) (KeyValueExporter, *clock) {
	t.Helper()
	b, clk := e.kvSuite.open(t)
	x, ok := b.(KeyValueExporter)
	if !ok {
		t.Fatalf("backend %T does not implement backendtest.KeyValueExporter", b)
	}
	return x, clk
}

// after returns the smallest id greater than id: the next page's from.
func after(id []byte) []byte { return append(slices.Clone(id), 0) }

func export(t testing.TB, b KeyValueExporter, from []byte, limit int, now time.Time) []*prismv1.GetResponse {
	t.Helper()
	recs, err := b.ExportRecords(context.Background(), from, limit, now)
	if err != nil {
		t.Fatalf("ExportRecords(from %x, limit %d): %v", from, limit, err)
	}
	return recs
}

// exportAll pages through every record with pages of limit records and
// checks the page contract on the way: full pages until the last, then
// nothing more.
func exportAll(t testing.TB, b KeyValueExporter, limit int, now time.Time) []*prismv1.GetResponse {
	t.Helper()
	var all []*prismv1.GetResponse
	var from []byte
	for pages := 0; ; pages++ {
		if pages > maxPages {
			t.Fatal("export does not end")
		}
		recs := export(t, b, from, limit, now)
		if len(recs) > limit {
			t.Fatalf("page of %d records, limit %d", len(recs), limit)
		}
		all = append(all, recs...)
		if len(recs) < limit {
			if len(recs) > 0 {
				if more := export(t, b, after(recs[len(recs)-1].GetId()), limit, now); len(more) > 0 {
					t.Fatalf("a page of %d < %d records was followed by %d more", len(recs), limit, len(more))
				}
			}
			return all
		}
		from = after(recs[len(recs)-1].GetId())
	}
}

func recordIDs(recs []*prismv1.GetResponse) [][]byte {
	out := make([][]byte, len(recs))
	for i, r := range recs {
		out[i] = r.GetId()
	}
	return out
}

func equalIDs(a, b [][]byte) bool { return slices.EqualFunc(a, b, bytes.Equal) }

// Records come in byte order of id whatever order they were written in,
// binary ids and prefixes of each other included, and every page size
// gives the same sequence.
func (e exportSuite) testOrder(t *testing.T) {
	b, _ := e.open(t)
	want := [][]byte{{}, {0x00}, {0x00, 0x00}, {0x00, 0x01}, []byte("a"), []byte("a\x00"), []byte("ab"),
		[]byte("b"), {0x7f}, {0x80}, {0xff}, {0xff, 0xff}}
	shuffled := slices.Clone(want)
	rand.New(rand.NewPCG(1, 2)).Shuffle(len(shuffled), func(i, j int) { shuffled[i], shuffled[j] = shuffled[j], shuffled[i] })
	var changes []*prismv1.KeyValueChange
	for i, id := range shuffled {
		changes = append(changes, putBytes(uint64(i+1), id, item("k", fmt.Sprint(i))))
	}
	apply(t, b, uint64(len(changes)), changes...)

	for _, limit := range []int{1, 2, 5, len(want), len(want) + 1, 1000} {
		if got := recordIDs(exportAll(t, b, limit, t0)); !equalIDs(got, want) {
			t.Errorf("limit %d: ids = %x, want %x", limit, got, want)
		}
	}
	if scanned, _ := scanAll(t, b, 0); !equalIDs(scanned, want) {
		t.Errorf("ScanIDs = %x, want %x", scanned, want)
	}
	// from need not be an id: the page starts at the first id at or after it.
	if got := recordIDs(export(t, b, []byte("a\x00\x00"), 2, t0)); !equalIDs(got, [][]byte{[]byte("ab"), []byte("b")}) {
		t.Errorf("from a\\0\\0: ids = %q, want [ab b]", got)
	}
	if got := export(t, b, []byte{0xff, 0xff, 0x00}, 10, t0); len(got) != 0 {
		t.Errorf("from past the end: %d records, want none", len(got))
	}
}

// The empty id is a record like any other: it comes first from a nil or
// empty from, and the page after it does not repeat it.
func (e exportSuite) testEmptyID(t *testing.T) {
	b, _ := e.open(t)
	apply(t, b, 3, putBytes(1, []byte{}, item("k", "empty")), putBytes(2, []byte{0}, item("k", "zero")),
		put(3, "a", item("k", "a")))
	for _, from := range [][]byte{nil, {}} {
		recs := export(t, b, from, 1, t0)
		if len(recs) != 1 || recs[0].GetId() == nil || len(recs[0].GetId()) != 0 || recs[0].GetRevision() != 1 ||
			!slices.Equal(kvs(recs[0].GetItems()), []kv{{"k", "empty"}}) {
			t.Fatalf("first page from %#v = %v, want the empty id (non-nil) at revision 1", from, recs)
		}
	}
	if got := recordIDs(export(t, b, after([]byte{}), 5, t0)); !equalIDs(got, [][]byte{{0}, []byte("a")}) {
		t.Errorf("after the empty id: ids = %x, want [00 61]", got)
	}
}

// Records with more items than a GetItems page are exported whole, and
// pages split between records, never inside one.
func (e exportSuite) testManyItems(t *testing.T) {
	b, _ := e.open(t)
	counts := []int{1, 1500, 3, 2500, 2}
	var changes []*prismv1.KeyValueChange
	for i, n := range counts {
		items := make([]*prismv1.Item, n)
		for j := range n {
			items[j] = item(fmt.Sprintf("k%05d", n-j), fmt.Sprintf("v%d-%d", i, j)) // written out of order
		}
		changes = append(changes, put(uint64(i+1), fmt.Sprintf("r%d", i), items...))
	}
	apply(t, b, uint64(len(counts)), changes...)
	for _, limit := range []int{1, 2, 3} {
		recs := exportAll(t, b, limit, t0)
		if len(recs) != len(counts) {
			t.Fatalf("limit %d: %d records, want %d", limit, len(recs), len(counts))
		}
		for i, r := range recs {
			want, _ := getAll(t, b, &prismv1.GetRequest{Id: []byte(fmt.Sprintf("r%d", i))})
			if !equalItems(r.GetItems(), want) || r.GetRevision() != uint64(i+1) {
				t.Errorf("limit %d: record r%d has %d items at revision %d, want the %d items of GetItems at %d",
					limit, i, len(r.GetItems()), r.GetRevision(), len(want), i+1)
			}
		}
	}
}

func equalItems(a, b []*prismv1.Item) bool {
	return slices.EqualFunc(a, b, func(x, y *prismv1.Item) bool { return proto.Equal(x, y) })
}

// now decides which items are live, not the backend's clock; a record's
// revision counts its expired items' writes, and a record with no live
// item is left out (and not counted against limit).
func (e exportSuite) testExpiry(t *testing.T) {
	b, clk := e.open(t)
	soon, later := t0.Add(time.Second), t0.Add(time.Hour)
	apply(t, b, 5,
		put(1, "a-mixed", item("forever", "1"), itemExpiring("soon", "2", soon)),
		put(2, "a-mixed", itemExpiring("later", "3", later)),
		put(3, "b-gone", itemExpiring("x", "4", soon)),
		put(4, "c-late", itemExpiring("y", "5", later)),
		put(5, "a-mixed", itemExpiring("soon2", "6", soon)), // the record's revision is on an item that expires
	)
	type want struct {
		id    string
		keys  []string
		revis uint64
	}
	check := func(t *testing.T, now time.Time, wants []want) {
		t.Helper()
		recs := exportAll(t, b, 1, now)
		if len(recs) != len(wants) {
			t.Fatalf("at %v: %d records (%q), want %d", now, len(recs), recordIDs(recs), len(wants))
		}
		for i, w := range wants {
			var keys []string
			for _, it := range recs[i].GetItems() {
				keys = append(keys, string(it.GetKey()))
			}
			if string(recs[i].GetId()) != w.id || !slices.Equal(keys, w.keys) || recs[i].GetRevision() != w.revis {
				t.Errorf("at %v: record %d = %q %q rev %d, want %q %q rev %d",
					now, i, recs[i].GetId(), keys, recs[i].GetRevision(), w.id, w.keys, w.revis)
			}
		}
	}
	t.Run("before", func(t *testing.T) {
		check(t, t0, []want{{"a-mixed", []string{"forever", "later", "soon", "soon2"}, 5},
			{"b-gone", []string{"x"}, 3}, {"c-late", []string{"y"}, 4}})
		recs := export(t, b, []byte("c"), 1, t0)
		if len(recs) != 1 || !recs[0].GetItems()[0].GetExpireTime().AsTime().Equal(later) {
			t.Errorf("expire_time does not round-trip: %v", recs)
		}
	})
	t.Run("after, backend clock unmoved", func(t *testing.T) {
		check(t, soon, []want{{"a-mixed", []string{"forever", "later"}, 5}, {"c-late", []string{"y"}, 4}})
		// The page of one record skips b-gone, which has no live item.
		if got := recordIDs(export(t, b, []byte("b"), 1, soon)); !equalIDs(got, [][]byte{[]byte("c-late")}) {
			t.Errorf("from b at %v: ids = %q, want [c-late]", soon, got)
		}
	})
	t.Run("after a sweep", func(t *testing.T) {
		clk.Set(soon)
		if _, err := b.SweepExpired(context.Background()); err != nil {
			t.Fatalf("SweepExpired: %v", err)
		}
		check(t, soon, []want{{"a-mixed", []string{"forever", "later"}, 5}, {"c-late", []string{"y"}, 4}})
		check(t, later, []want{{"a-mixed", []string{"forever"}, 5}})
	})
}

// Deleted records are absent; a partial delete and an empty put set the
// revision of what is left.
func (e exportSuite) testDeletes(t *testing.T) {
	b, _ := e.open(t)
	apply(t, b, 9,
		put(1, "whole", item("a", "1")),
		put(2, "part", item("a", "1"), item("b", "2"), item("c", "3")),
		put(3, "keys", item("a", "1"), item("b", "2")),
		put(4, "touched", item("a", "1")),
		put(5, "readded", item("a", "1")),
		del(6, "whole"),
		del(7, "part", "b"),
		del(8, "keys", "a", "b"),
		put(9, "touched"),
	)
	apply(t, b, 11, del(10, "readded"), put(11, "readded", item("z", "new")))
	recs := exportAll(t, b, 2, t0)
	got := make(map[string]string)
	for _, r := range recs {
		got[string(r.GetId())] = fmt.Sprint(kvs(r.GetItems()), r.GetRevision())
	}
	want := map[string]string{
		"part":    fmt.Sprint([]kv{{"a", "1"}, {"c", "3"}}, 7),
		"readded": fmt.Sprint([]kv{{"z", "new"}}, 11),
		"touched": fmt.Sprint([]kv{{"a", "1"}}, 9),
	}
	if fmt.Sprint(got) != fmt.Sprint(want) {
		t.Errorf("records = %v, want %v", got, want)
	}
}

// After a random history of puts, deletes and expiring items, every
// exported record is what GetItems and ScanIDs say, at several clocks.
func (e exportSuite) testMatchesGet(t *testing.T) {
	b, clk := e.open(t)
	rng := rand.New(rand.NewPCG(6, 7))
	var seq uint64
	for range 20 {
		var changes []*prismv1.KeyValueChange
		for range 25 {
			seq++
			id := fmt.Sprintf("id%02d", rng.IntN(40))
			switch n := rng.IntN(10); {
			case n == 0:
				changes = append(changes, del(seq, id))
			case n <= 2:
				changes = append(changes, del(seq, id, fmt.Sprint(rng.IntN(6)), fmt.Sprint(rng.IntN(6))))
			default:
				var items []*prismv1.Item
				for range rng.IntN(4) {
					key, value := fmt.Sprint(rng.IntN(6)), fmt.Sprint(seq)
					if rng.IntN(3) == 0 {
						items = append(items, itemExpiring(key, value, t0.Add(time.Duration(rng.IntN(100))*time.Second)))
					} else {
						items = append(items, item(key, value))
					}
				}
				changes = append(changes, put(seq, id, items...))
			}
		}
		apply(t, b, seq, changes...)
	}
	for _, at := range []time.Duration{0, 30 * time.Second, 99 * time.Second} {
		now := t0.Add(at)
		clk.Set(now)
		recs := exportAll(t, b, 7, now)
		if scanned, _ := scanAll(t, b, 0); !equalIDs(recordIDs(recs), scanned) {
			t.Errorf("at +%v: exported ids %q, ScanIDs %q", at, recordIDs(recs), scanned)
		}
		for _, r := range recs {
			want := get(t, b, &prismv1.GetRequest{Id: r.GetId(), PageSize: 1000})
			if !equalItems(r.GetItems(), want.GetItems()) || r.GetRevision() != want.GetRevision() {
				t.Errorf("at +%v: record %q = %v rev %d, GetItems %v rev %d",
					at, r.GetId(), kvs(r.GetItems()), r.GetRevision(), kvs(want.GetItems()), want.GetRevision())
			}
		}
	}
}

func (e exportSuite) testInvalidLimit(t *testing.T) {
	b, _ := e.open(t)
	apply(t, b, 1, put(1, "a", item("k", "v")))
	for _, limit := range []int{0, -1} {
		if _, err := b.ExportRecords(context.Background(), nil, limit, t0); !errors.Is(err, e.cfg.Errors.InvalidRequest) {
			t.Errorf("limit %d: err = %v, want %v", limit, err, e.cfg.Errors.InvalidRequest)
		}
	}
}

func (e exportSuite) testClosed(t *testing.T) {
	b, _ := e.open(t)
	apply(t, b, 1, put(1, "a", item("k", "v")))
	if err := b.Close(); err != nil {
		t.Fatalf("Close: %v", err)
	}
	if _, err := b.ExportRecords(context.Background(), nil, 10, t0); !errors.Is(err, e.cfg.Errors.Closed) {
		t.Errorf("after Close: err = %v, want %v", err, e.cfg.Errors.Closed)
	}
}

func (e exportSuite) testCancelled(t *testing.T) {
	b, _ := e.open(t)
	apply(t, b, 1, put(1, "a", item("k", "v")))
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	if _, err := b.ExportRecords(ctx, nil, 10, t0); !errors.Is(err, context.Canceled) {
		t.Errorf("err = %v, want %v", err, context.Canceled)
	}
}
