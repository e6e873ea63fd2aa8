package sqlite_test

import (
	"bytes"
	"context"
	"fmt"
	"slices"
	"testing"
	"time"

	"github.com/prism-data/prism/backends/sqlite"
	prismv1 "github.com/prism-data/prism/proto/prism/v1"
)

func TestTTL(t *testing.T) {
	ctx := context.Background()
	t0 := time.Date(2030, 1, 2, 3, 4, 5, 600, time.UTC)
	clk := &clock{now: t0}
	s, path := openStore(t, sqlite.WithClock(clk.Now))
	far := time.Date(9999, 12, 31, 23, 59, 59, 999999999, time.UTC) // beyond int64 nanoseconds
	apply(t, s, 3,
		put(1, "mixed", itemExpiring("a", "1", t0.Add(time.Minute)), item("b", "forever"), itemExpiring("c", "3", far)),
		put(2, "short", itemExpiring("x", "1", t0.Add(time.Second)), itemExpiring("y", "2", t0.Add(time.Minute))),
		put(3, "gone", itemExpiring("z", "1", t0.Add(-time.Nanosecond))), // expired on arrival
	)

	type want struct {
		id    string
		items []kv
	}
	check := func(t *testing.T, wants []want, ids []string) {
		t.Helper()
		for _, w := range wants {
			resp := get(t, s, &prismv1.GetRequest{Id: []byte(w.id)})
			if got := kvs(resp.GetItems()); !slices.Equal(got, w.items) {
				t.Errorf("record %q items = %v, want %v", w.id, got, w.items)
			}
			if len(w.items) == 0 && resp.GetRevision() != 0 {
				t.Errorf("record %q without live items has revision %d", w.id, resp.GetRevision())
			}
		}
		var got []string
		for _, id := range scanAll(t, s, 0) {
			got = append(got, string(id))
		}
		if !slices.Equal(got, ids) {
			t.Errorf("ScanIDs = %q, want %q", got, ids)
		}
	}

	t.Run("before expiry", func(t *testing.T) {
		check(t, []want{
			{"mixed", []kv{{"a", "1"}, {"b", "forever"}, {"c", "3"}}},
			{"short", []kv{{"x", "1"}, {"y", "2"}}},
			{"gone", nil},
		}, []string{"mixed", "short"})
		resp := get(t, s, &prismv1.GetRequest{Id: []byte("mixed"), Keys: [][]byte{[]byte("a"), []byte("c")}})
		if len(resp.GetItems()) != 2 ||
			!resp.GetItems()[0].GetExpireTime().AsTime().Equal(t0.Add(time.Minute)) ||
			!resp.GetItems()[1].GetExpireTime().AsTime().Equal(far) {
			t.Errorf("expire times do not round-trip: %v", resp.GetItems())
		}
		if resp := get(t, s, &prismv1.GetRequest{Id: []byte("mixed"), Keys: [][]byte{[]byte("b")}}); resp.GetItems()[0].GetExpireTime() != nil {
			t.Errorf("item without expiry got expire_time %v", resp.GetItems()[0].GetExpireTime())
		}
	})

	t.Run("at expiry", func(t *testing.T) {
		clk.Set(t0.Add(time.Second)) // expire_time <= now is expired
		check(t, []want{
			{"mixed", []kv{{"a", "1"}, {"b", "forever"}, {"c", "3"}}},
			{"short", []kv{{"y", "2"}}},
		}, []string{"mixed", "short"})
	})

	t.Run("after expiry", func(t *testing.T) {
		clk.Set(t0.Add(time.Hour))
		check(t, []want{
			{"mixed", []kv{{"b", "forever"}, {"c", "3"}}},
			{"short", nil},
			{"gone", nil},
		}, []string{"mixed"})
		// Expired rows stay until swept.
		if n := count(t, rawDB(t, path), "items"); n != 6 {
			t.Errorf("items rows before sweep = %d, want 6", n)
		}
	})

	t.Run("sweep", func(t *testing.T) {
		n, err := s.SweepExpired(ctx)
		if err != nil {
			t.Fatal(err)
		}
		if n != 4 { // a, x, y, z
			t.Errorf("SweepExpired = %d, want 4", n)
		}
		db := rawDB(t, path)
		if got := count(t, db, "items"); got != 2 {
			t.Errorf("items rows after sweep = %d, want 2", got)
		}
		if got := count(t, db, "records"); got != 1 {
			t.Errorf("records rows after sweep = %d, want 1 (mixed)", got)
		}
		if resp := get(t, s, &prismv1.GetRequest{Id: []byte("mixed")}); resp.GetRevision() != 1 {
			t.Errorf("sweep changed the revision: %d", resp.GetRevision())
		}
		if cp := checkpoint(t, s); cp != 3 {
			t.Errorf("sweep changed the checkpoint: %d", cp)
		}
		if n, err := s.SweepExpired(ctx); err != nil || n != 0 {
			t.Errorf("second SweepExpired = %d, %v; want 0, nil", n, err)
		}
	})

	t.Run("put refreshes an expired item", func(t *testing.T) {
		apply(t, s, 4, put(4, "mixed", itemExpiring("a", "new", t0.Add(2*time.Hour))))
		resp := get(t, s, &prismv1.GetRequest{Id: []byte("mixed"), Keys: [][]byte{[]byte("a")}})
		if got := kvs(resp.GetItems()); !slices.Equal(got, []kv{{"a", "new"}}) || resp.GetRevision() != 4 {
			t.Errorf("refreshed item = %v rev %d", got, resp.GetRevision())
		}
		// Overwriting with no expire_time makes it permanent.
		apply(t, s, 5, put(5, "mixed", item("a", "permanent")))
		clk.Set(t0.Add(3 * time.Hour))
		if got := kvs(get(t, s, &prismv1.GetRequest{Id: []byte("mixed"), Keys: [][]byte{[]byte("a")}}).GetItems()); !slices.Equal(got, []kv{{"a", "permanent"}}) {
			t.Errorf("item a = %v, want permanent", got)
		}
	})
}

// A sweep larger than one chunk deletes everything in several transactions.
func TestSweepExpiredManyChunks(t *testing.T) {
	t0 := time.Date(2030, 1, 1, 0, 0, 0, 0, time.UTC)
	clk := &clock{now: t0}
	s, path := openStore(t, sqlite.WithClock(clk.Now))
	const records, perRecord = 250, 10 // 2500 items: 3 chunks
	var changes []*prismv1.KeyValueChange
	for i := range records {
		var items []*prismv1.Item
		for j := range perRecord {
			items = append(items, itemExpiring(fmt.Sprint(j), "v", t0.Add(time.Duration(i+1)*time.Second)))
		}
		if i%50 == 0 {
			items = append(items, item("keep", "v"))
		}
		changes = append(changes, put(uint64(i+1), fmt.Sprintf("r%03d", i), items...))
	}
	apply(t, s, records, changes...)
	clk.Set(t0.Add(time.Hour))
	n, err := s.SweepExpired(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	if n != records*perRecord {
		t.Errorf("SweepExpired = %d, want %d", n, records*perRecord)
	}
	db := rawDB(t, path)
	if got := count(t, db, "records"); got != records/50 {
		t.Errorf("records left = %d, want %d", got, records/50)
	}
	ids := scanAll(t, s, 0)
	if len(ids) != records/50 || !bytes.Equal(ids[0], []byte("r000")) {
		t.Errorf("ScanIDs after sweep = %q", ids)
	}
}
