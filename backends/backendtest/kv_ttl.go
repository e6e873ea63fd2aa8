package backendtest

import (
	"bytes"
	"context"
	"fmt"
	"slices"
	"testing"
	"time"

	prismv1 "github.com/prism-data/prism/proto/prism/v1"
)

func (k kvSuite) testTTL(t *testing.T) {
	ctx := context.Background()
	b, clk := k.open(t)
	far := time.Date(9999, 12, 31, 23, 59, 59, 999999999, time.UTC) // beyond int64 nanoseconds
	apply(t, b, 3,
		put(1, "mixed", itemExpiring("a", "1", t0.Add(time.Minute)), item("b", "forever"), itemExpiring("c", "3", far)),
		put(2, "short", itemExpiring("x", "1", t0.Add(time.Second)), itemExpiring("y", "2", t0.Add(time.Minute))),
		put(3, "gone", itemExpiring("z", "1", t0.Add(-time.Nanosecond))), // expired on arrival
	)

	type want struct {
		id       string
		items    []kv
		revision uint64
	}
	check := func(t *testing.T, wants []want, ids []string) {
		t.Helper()
		for _, w := range wants {
			resp := getID(t, b, w.id)
			if got := kvs(resp.GetItems()); !slices.Equal(got, w.items) {
				t.Errorf("record %q items = %v, want %v", w.id, got, w.items)
			}
			if resp.GetRevision() != w.revision {
				t.Errorf("record %q revision = %d, want %d", w.id, resp.GetRevision(), w.revision)
			}
		}
		if got := scanStrings(t, b); !slices.Equal(got, ids) {
			t.Errorf("ScanIDs = %q, want %q", got, ids)
		}
	}

	t.Run("before expiry", func(t *testing.T) {
		check(t, []want{
			{"mixed", []kv{{"a", "1"}, {"b", "forever"}, {"c", "3"}}, 1},
			{"short", []kv{{"x", "1"}, {"y", "2"}}, 2},
			{"gone", nil, 0},
		}, []string{"mixed", "short"})
		resp := get(t, b, &prismv1.GetRequest{Id: []byte("mixed"), Keys: [][]byte{[]byte("a"), []byte("c")}})
		if len(resp.GetItems()) != 2 ||
			!resp.GetItems()[0].GetExpireTime().AsTime().Equal(t0.Add(time.Minute)) ||
			!resp.GetItems()[1].GetExpireTime().AsTime().Equal(far) {
			t.Errorf("expire times do not round-trip: %v", resp.GetItems())
		}
		if resp := get(t, b, &prismv1.GetRequest{Id: []byte("mixed"), Keys: [][]byte{[]byte("b")}}); len(resp.GetItems()) != 1 || resp.GetItems()[0].GetExpireTime() != nil {
			t.Errorf("item without expiry = %v, want no expire_time", resp.GetItems())
		}
	})

	t.Run("at expiry", func(t *testing.T) {
		clk.Set(t0.Add(time.Second)) // expire_time <= now is expired
		check(t, []want{
			{"mixed", []kv{{"a", "1"}, {"b", "forever"}, {"c", "3"}}, 1},
			{"short", []kv{{"y", "2"}}, 2},
		}, []string{"mixed", "short"})
		// Expired items are left out of key lists and ranges too.
		resp := get(t, b, &prismv1.GetRequest{Id: []byte("short"), Keys: [][]byte{[]byte("x"), []byte("y")}})
		if got := kvs(resp.GetItems()); !slices.Equal(got, []kv{{"y", "2"}}) {
			t.Errorf("short by keys = %v, want y=2", got)
		}
		resp = get(t, b, &prismv1.GetRequest{Id: []byte("short"), Range: &prismv1.KeyRange{Start: []byte("x")}})
		if got := kvs(resp.GetItems()); !slices.Equal(got, []kv{{"y", "2"}}) {
			t.Errorf("short by range = %v, want y=2", got)
		}
	})

	t.Run("after expiry", func(t *testing.T) {
		clk.Set(t0.Add(time.Hour))
		check(t, []want{
			{"mixed", []kv{{"b", "forever"}, {"c", "3"}}, 1},
			{"short", nil, 0},
			{"gone", nil, 0},
		}, []string{"mixed"})
	})

	t.Run("sweep", func(t *testing.T) {
		n, err := b.SweepExpired(ctx)
		if err != nil {
			t.Fatal(err)
		}
		if n != 4 { // a, x, y, z
			t.Errorf("SweepExpired = %d, want 4", n)
		}
		check(t, []want{
			{"mixed", []kv{{"b", "forever"}, {"c", "3"}}, 1}, // sweeping is not a write
			{"short", nil, 0},
			{"gone", nil, 0},
		}, []string{"mixed"})
		if cp := checkpoint(t, b); cp != 3 {
			t.Errorf("sweep changed the checkpoint: %d", cp)
		}
		if n, err := b.SweepExpired(ctx); err != nil || n != 0 {
			t.Errorf("second SweepExpired = %d, %v; want 0, nil", n, err)
		}
		// Going back in time shows no swept item again.
		clk.Set(t0)
		check(t, []want{{"mixed", []kv{{"b", "forever"}, {"c", "3"}}, 1}, {"short", nil, 0}}, []string{"mixed"})
		clk.Set(t0.Add(time.Hour))
	})

	t.Run("put refreshes an expired item", func(t *testing.T) {
		apply(t, b, 4, put(4, "mixed", itemExpiring("a", "new", t0.Add(2*time.Hour))))
		resp := get(t, b, &prismv1.GetRequest{Id: []byte("mixed"), Keys: [][]byte{[]byte("a")}})
		if got := kvs(resp.GetItems()); !slices.Equal(got, []kv{{"a", "new"}}) || resp.GetRevision() != 4 {
			t.Errorf("refreshed item = %v rev %d", got, resp.GetRevision())
		}
		// Overwriting with no expire_time makes it permanent.
		apply(t, b, 5, put(5, "mixed", item("a", "permanent")))
		clk.Set(t0.Add(3 * time.Hour))
		if got := kvs(get(t, b, &prismv1.GetRequest{Id: []byte("mixed"), Keys: [][]byte{[]byte("a")}}).GetItems()); !slices.Equal(got, []kv{{"a", "permanent"}}) {
			t.Errorf("item a = %v, want permanent", got)
		}
		// A put of an expired item into a swept record recreates it only
		// while the item lives.
		apply(t, b, 6, put(6, "short", itemExpiring("x", "again", t0.Add(4*time.Hour))))
		check(t, []want{{"short", []kv{{"x", "again"}}, 6}}, []string{"mixed", "short"})
	})
}

// A sweep of many items in many records deletes them all, counts them and
// drops exactly the records left without items.
func (k kvSuite) testSweepMany(t *testing.T) {
	b, clk := k.open(t)
	const records, perRecord, keepEvery = 100, 10, 25
	var changes []*prismv1.KeyValueChange
	for i := range records {
		var items []*prismv1.Item
		for j := range perRecord {
			items = append(items, itemExpiring(fmt.Sprint(j), "v", t0.Add(time.Duration(i+1)*time.Second)))
		}
		if i%keepEvery == 0 {
			items = append(items, item("keep", "v"))
		}
		changes = append(changes, put(uint64(i+1), fmt.Sprintf("r%03d", i), items...))
	}
	apply(t, b, records, changes...)
	// Half of the records expired.
	clk.Set(t0.Add(records / 2 * time.Second))
	n, err := b.SweepExpired(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	if n != records/2*perRecord {
		t.Errorf("first SweepExpired = %d, want %d", n, records/2*perRecord)
	}
	clk.Set(t0.Add(time.Hour))
	n, err = b.SweepExpired(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	if n != records/2*perRecord {
		t.Errorf("second SweepExpired = %d, want %d", n, records/2*perRecord)
	}
	ids, _ := scanAll(t, b, 0)
	var want [][]byte
	for i := 0; i < records; i += keepEvery {
		want = append(want, fmt.Appendf(nil, "r%03d", i))
	}
	if !slices.EqualFunc(ids, want, bytes.Equal) {
		t.Errorf("ScanIDs after sweep = %q, want %q", ids, want)
	}
	if resp := getID(t, b, "r025"); !slices.Equal(kvs(resp.GetItems()), []kv{{"keep", "v"}}) || resp.GetRevision() != 26 {
		t.Errorf("record r025 after sweep = %v", resp)
	}
}

// Expiry is not a write: a record whose newest row (the one that gave it its
// revision) expires keeps that revision, also once a sweep removed the row,
// and keeps its other items; a later delete of some keys still raises it.
func (k kvSuite) testSweepKeepsRevision(t *testing.T) {
	b, clk := k.open(t)
	apply(t, b, 9,
		put(3, "r", item("b", "forever"), item("c", "too")),
		put(5, "other", item("x", "1")),
		put(9, "r", itemExpiring("a", "short", t0.Add(time.Second))),
	)
	clk.Set(t0.Add(time.Hour))
	check := func(t *testing.T, step string, items []kv, revision uint64) {
		t.Helper()
		resp := getID(t, b, "r")
		if got := kvs(resp.GetItems()); !slices.Equal(got, items) || resp.GetRevision() != revision {
			t.Errorf("%s: record r = %v revision %d, want %v revision %d", step, got, resp.GetRevision(), items, revision)
		}
	}
	check(t, "before the sweep", []kv{{"b", "forever"}, {"c", "too"}}, 9)
	if n, err := b.SweepExpired(context.Background()); err != nil || n != 1 {
		t.Fatalf("SweepExpired = %d, %v; want 1, nil", n, err)
	}
	check(t, "after the sweep", []kv{{"b", "forever"}, {"c", "too"}}, 9)
	if resp := getID(t, b, "other"); !slices.Equal(kvs(resp.GetItems()), []kv{{"x", "1"}}) || resp.GetRevision() != 5 {
		t.Errorf("record other after the sweep = %v revision %d, want x=1 revision 5", kvs(resp.GetItems()), resp.GetRevision())
	}
	apply(t, b, 12, del(12, "r", "b"))
	check(t, "after deleting b", []kv{{"c", "too"}}, 12)
}
