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
// Oldest first out; at most valueCacheBytes. Safe for concurrent use.
type valueCache struct {
	mu    sync.Mutex
	m     map[valueKey][]byte
	order []valueKey
	bytes int
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
