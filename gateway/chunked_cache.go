package gateway

import (
	"sync"
)

// valueCacheBytes bounds the memory the large-value cache holds.
const valueCacheBytes = 256 << 20

// valueKey names one stored value: the item key of a record at a revision.
type valueKey struct {
	ns, id, key string
	revision    uint64
}

// valueCache keeps the last large values a get returned as references, as
// the backend stored them (sealed, for a PII field), so that the slices a
// client then reads with OpGetValue cost one backend read, not one each.
// Oldest first out; at most valueCacheBytes. The values of a record the
// projection changed are dropped (RecordsApplied), so a slice at an old
// revision is then CONFLICT rather than a value the record no longer
// has. Safe for concurrent use.
type valueCache struct {
	mu    sync.Mutex
	m     map[valueKey][]byte
	order []valueKey
	bytes int
}

// drop removes the values of the records ids of namespace ns.
func (c *valueCache) drop(ns string, ids [][]byte) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if len(c.m) == 0 {
		return
	}
	changed := make(map[string]bool, len(ids))
	for _, id := range ids {
		changed[string(id)] = true
	}
	kept := c.order[:0]
	for _, k := range c.order {
		if k.ns == ns && changed[k.id] {
			c.bytes -= len(c.m[k])
			delete(c.m, k)
			continue
		}
		kept = append(kept, k)
	}
	c.order = kept
}

func (c *valueCache) get(k valueKey) ([]byte, bool) {
	c.mu.Lock()
	defer c.mu.Unlock()
	v, ok := c.m[k]
	return v, ok
}

func (c *valueCache) put(k valueKey, v []byte) {
	if len(v) > valueCacheBytes/4 {
		return
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.m == nil {
		c.m = map[valueKey][]byte{}
	}
	if _, ok := c.m[k]; ok {
		return
	}
	for c.bytes+len(v) > valueCacheBytes && len(c.order) > 0 {
		old := c.order[0]
		c.order = c.order[1:]
		c.bytes -= len(c.m[old])
		delete(c.m, old)
	}
	c.m[k], c.order, c.bytes = v, append(c.order, k), c.bytes+len(v)
}
