package postgres_test

import (
	"context"
	"sync/atomic"
	"testing"
	"time"

	"github.com/prism-data/prism/backends/postgres"
)

// Expiry is not a write: a record whose newest row expires keeps the
// revision that row gave it, also once the sweep removed the row; a delete
// of some keys moves the revision onto the rows left.
func TestRevisionAcrossSweepAndDelete(t *testing.T) {
	t0 := time.Date(2030, 1, 2, 3, 4, 5, 0, time.UTC)
	var now atomic.Int64
	now.Store(t0.UnixNano())
	s := openStore(t, newNamespace(t), postgres.WithClock(func() time.Time { return time.Unix(0, now.Load()) }))
	apply(t, s, 9,
		put(3, "r", item("b", "forever"), item("c", "too")),
		put(9, "r", itemExpiring("a", "short", t0.Add(time.Second))),
	)
	now.Store(t0.Add(time.Hour).UnixNano())
	if n, err := s.SweepExpired(context.Background()); err != nil || n != 1 {
		t.Fatalf("SweepExpired = %d, %v; want 1", n, err)
	}
	if got := getOne(t, s, "r"); got.GetRevision() != 9 || len(got.GetItems()) != 2 {
		t.Fatalf("after the sweep: %v; want revision 9, 2 items", got)
	}
	apply(t, s, 12, del(12, "r", "b"))
	if got := getOne(t, s, "r"); got.GetRevision() != 12 || len(got.GetItems()) != 1 {
		t.Fatalf("after deleting b: %v; want revision 12, 1 item", got)
	}
}
