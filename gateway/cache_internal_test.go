package gateway

import (
	"fmt"
	"testing"
	"time"

	"google.golang.org/protobuf/types/known/timestamppb"

	prismv1 "github.com/prism-data/prism/proto/prism/v1"
)

func page(id string, rev uint64, value string) *prismv1.GetResponse {
	return &prismv1.GetResponse{Id: []byte(id), Revision: rev, Items: []*prismv1.Item{{Key: []byte("k"), Value: []byte(value)}}}
}

func TestReadCache(t *testing.T) {
	now := time.Date(2030, 1, 1, 0, 0, 0, 0, time.UTC)
	clock := func() time.Time { return now }
	id := []byte("a")

	t.Run("hit after put, miss after invalidate", func(t *testing.T) {
		c := newReadCache(10, 0, clock)
		c.put(id, page("a", 3, "v3"), 3)
		if got := c.get(id); got == nil || got.GetRevision() != 3 {
			t.Fatalf("get = %v", got)
		}
		c.invalidate([][]byte{id}, 4)
		if got := c.get(id); got != nil {
			t.Fatalf("get after invalidate = %v", got)
		}
	})
	t.Run("a read from before a commit is not cached", func(t *testing.T) {
		c := newReadCache(10, 0, clock)
		c.invalidate([][]byte{id}, 7)       // the batch through 7 changed a
		c.put(id, page("a", 3, "stale"), 6) // read when the checkpoint was 6
		if got := c.get(id); got != nil {
			t.Fatalf("stale read cached: %v", got)
		}
		c.put(id, page("a", 7, "fresh"), 7)
		if got := c.get(id); got == nil || string(got.GetItems()[0].GetValue()) != "fresh" {
			t.Fatalf("fresh read not cached: %v", got)
		}
	})
	t.Run("a lagging second projection does not lower the bound", func(t *testing.T) {
		// During a migration both targets report: the primary committed
		// a change of a through 100, the backfilling target reports the
		// same record through 5 afterwards.
		c := newReadCache(2, 0, clock)
		c.invalidate([][]byte{id}, 100)
		c.invalidate([][]byte{id}, 5)
		c.put(id, page("a", 50, "stale"), 60) // read before the primary's commit
		if got := c.get(id); got != nil {
			t.Fatalf("stale read cached after a lagging report: %v", got)
		}
		c.invalidate([][]byte{[]byte("x"), []byte("y"), []byte("z")}, 200)
		c.invalidate([][]byte{[]byte("p"), []byte("q"), []byte("r")}, 7)
		c.put(id, page("a", 150, "stale"), 150)
		if got := c.get(id); got != nil {
			t.Fatalf("read from below the floor cached after a lagging report: %v", got)
		}
	})
	t.Run("other records are not refused", func(t *testing.T) {
		c := newReadCache(10, 0, clock)
		c.invalidate([][]byte{[]byte("b")}, 9)
		c.put(id, page("a", 3, "v"), 5)
		if c.get(id) == nil {
			t.Fatal("a read of a record no batch changed was refused")
		}
	})
	t.Run("a full change log raises the floor", func(t *testing.T) {
		c := newReadCache(2, 0, clock)
		c.invalidate([][]byte{[]byte("x"), []byte("y"), []byte("z")}, 20)
		c.put(id, page("a", 3, "v"), 19)
		if c.get(id) != nil {
			t.Fatal("a read from before the floor was cached")
		}
		c.put(id, page("a", 3, "v"), 20)
		if c.get(id) == nil {
			t.Fatal("a read at the floor was refused")
		}
	})
	t.Run("a new cache refuses reads from before its floor", func(t *testing.T) {
		c := newReadCache(10, 30, clock)
		c.put(id, page("a", 3, "v"), 29)
		if c.get(id) != nil {
			t.Fatal("cached a read from before the floor")
		}
	})
	t.Run("expired items end the entry", func(t *testing.T) {
		c := newReadCache(10, 0, clock)
		p := page("a", 3, "v")
		p.Items = append(p.Items, &prismv1.Item{Key: []byte("t"), Value: []byte("x"), ExpireTime: timestamppb.New(now.Add(time.Second))})
		c.put(id, p, 3)
		if c.get(id) == nil {
			t.Fatal("miss before expiry")
		}
		now = now.Add(time.Second)
		if c.get(id) != nil || c.len() != 0 {
			t.Fatal("hit at expiry")
		}
	})
	t.Run("least recently used goes first", func(t *testing.T) {
		c := newReadCache(3, 0, clock)
		for i := range 3 {
			c.put(fmt.Appendf(nil, "r%d", i), page("r", 1, "v"), 1)
		}
		c.get([]byte("r0")) // r1 is now the least recently used
		c.put([]byte("r3"), page("r3", 1, "v"), 1)
		if c.len() != 3 || c.get([]byte("r1")) != nil || c.get([]byte("r0")) == nil || c.get([]byte("r3")) == nil {
			t.Fatalf("after eviction: len %d, r0 %v, r1 %v, r3 %v", c.len(), c.get([]byte("r0")) != nil, c.get([]byte("r1")) != nil, c.get([]byte("r3")) != nil)
		}
	})
}

func TestCacheable(t *testing.T) {
	for _, tc := range []struct {
		req  *prismv1.GetRequest
		want bool
	}{
		{&prismv1.GetRequest{Id: []byte("a")}, true},
		{&prismv1.GetRequest{Id: []byte("a"), MinSeq: 9}, true},
		{&prismv1.GetRequest{Id: []byte("a"), PageSize: 10}, false},
		{&prismv1.GetRequest{Id: []byte("a"), PageToken: "x"}, false},
		{&prismv1.GetRequest{Id: []byte("a"), Keys: [][]byte{[]byte("k")}}, false},
		{&prismv1.GetRequest{Id: []byte("a"), Range: &prismv1.KeyRange{}}, false},
	} {
		if got := cacheable(tc.req); got != tc.want {
			t.Errorf("cacheable(%v) = %v, want %v", tc.req, got, tc.want)
		}
	}
}
