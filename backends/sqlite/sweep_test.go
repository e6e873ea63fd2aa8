package sqlite_test

import (
	"bytes"
	"context"
	"fmt"
	"testing"
	"time"

	"github.com/prism-data/prism/backends/sqlite"
	prismv1 "github.com/prism-data/prism/proto/prism/v1"
)

// Expiry as readers see it is checked by the conformance suite; here, that
// expired rows stay in the file until swept and that a sweep deletes the
// rows and the records left empty.
func TestExpiredRowsStayUntilSwept(t *testing.T) {
	t0 := time.Date(2030, 1, 2, 3, 4, 5, 600, time.UTC)
	clk := &clock{now: t0}
	s, path := openStore(t, sqlite.WithClock(clk.Now))
	far := time.Date(9999, 12, 31, 23, 59, 59, 999999999, time.UTC)
	apply(t, s, 3,
		put(1, "mixed", itemExpiring("a", "1", t0.Add(time.Minute)), item("b", "forever"), itemExpiring("c", "3", far)),
		put(2, "short", itemExpiring("x", "1", t0.Add(time.Second)), itemExpiring("y", "2", t0.Add(time.Minute))),
		put(3, "gone", itemExpiring("z", "1", t0.Add(-time.Nanosecond))), // expired on arrival
	)
	clk.Set(t0.Add(time.Hour))
	db := rawDB(t, path)
	if n := count(t, db, "items"); n != 6 {
		t.Errorf("items rows before sweep = %d, want 6", n)
	}
	if n := count(t, db, "(SELECT DISTINCT id FROM items)"); n != 3 {
		t.Errorf("records before sweep = %d, want 3", n)
	}
	n, err := s.SweepExpired(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	if n != 4 { // a, x, y, z
		t.Errorf("SweepExpired = %d, want 4", n)
	}
	if got := count(t, db, "items"); got != 2 {
		t.Errorf("items rows after sweep = %d, want 2", got)
	}
	if got := count(t, db, "(SELECT DISTINCT id FROM items)"); got != 1 {
		t.Errorf("records after sweep = %d, want 1 (mixed)", got)
	}
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
	if got := count(t, db, "(SELECT DISTINCT id FROM items)"); got != records/50 {
		t.Errorf("records left = %d, want %d", got, records/50)
	}
	ids := scanAll(t, s, 0)
	if len(ids) != records/50 || !bytes.Equal(ids[0], []byte("r000")) {
		t.Errorf("ScanIDs after sweep = %q", ids)
	}
}
