package gateway

import (
	"container/list"
	"sync"
	"time"

	prismv1 "github.com/prism-data/prism/proto/prism/v1"
)

// readCache holds the first page of recently read records of one keyvalue
// namespace, or the recently read records of an entity namespace, as the
// primary projection answered it (ADR 008, "Read cache"). It is never stale: the projector tells the gateway which records
// each committed batch changed (RecordsApplied) before its checkpoint
// moves, and those are dropped.
//
// A read races a commit when it starts before a batch that changes its
// record commits and stores what it read after. To refuse such an insert,
// a read notes the projection's checkpoint before it queries (readFrom);
// the cache remembers, per changed record, the sequence through which it
// changed (changed); an insert whose readFrom is below it is refused.
// changed is bounded: when it is full it is emptied and floor takes the
// highest sequence it held, refusing every insert read before that.
type readCache struct {
	mu      sync.Mutex
	max     int
	ll      *list.List // of *cacheEntry, most recently used first
	entries map[string]*list.Element
	changed map[string]uint64
	floor   uint64
	now     func() time.Time
}

type cacheEntry struct {
	id string
	// resp is a *prismv1.GetResponse (keyvalue) or *prismv1.EntityRecord.
	resp any
	// expires is when the first of its items expires; zero for never.
	expires time.Time
}

// newReadCache returns a cache of at most entries records that refuses
// inserts read before floor (the last sequence the namespace's projector
// reported when the cache was made).
func newReadCache(entries int, floor uint64, now func() time.Time) *readCache {
	return &readCache{max: entries, ll: list.New(), entries: make(map[string]*list.Element, entries), changed: make(map[string]uint64), floor: floor, now: now}
}

// cacheable reports whether req reads what the cache holds: a record's
// first page of the backend's default size, all items.
func cacheable(req *prismv1.GetRequest) bool {
	return len(req.GetKeys()) == 0 && req.GetRange() == nil && req.GetPageToken() == "" && req.GetPageSize() == 0
}

// cacheSlot is a namespace's read cache and what its projector reported,
// shared by every version of the namespace's entry.
type cacheSlot struct {
	mu    sync.Mutex
	cache *readCache // nil: no cache
	// last is the highest sequence RecordsApplied reported.
	last uint64
}

func (s *cacheSlot) get() *readCache {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.cache
}

// set replaces the cache with one of entries records, none for 0. A new
// cache refuses what was read before the last reported commit.
func (s *cacheSlot) set(entries int, now func() time.Time) {
	s.mu.Lock()
	defer s.mu.Unlock()
	switch {
	case entries <= 0:
		s.cache = nil
	case s.cache == nil || s.cache.max != entries:
		s.cache = newReadCache(entries, s.last, now)
	}
}

// reset empties the cache, keeping its size: what it holds came from
// another target.
func (s *cacheSlot) reset(now func() time.Time) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.cache != nil {
		s.cache = newReadCache(s.cache.max, s.last, now)
	}
}

func (s *cacheSlot) applied(ids [][]byte, through uint64) {
	s.mu.Lock()
	s.last = max(s.last, through)
	c := s.cache
	s.mu.Unlock()
	if c != nil {
		c.invalidate(ids, through)
	}
}

// get returns the cached first page of record id, or nil.
func (c *readCache) get(id []byte) *prismv1.GetResponse {
	resp, _ := c.lookup(id).(*prismv1.GetResponse)
	return resp
}

// getEntity returns the cached entity record id, or nil.
func (c *readCache) getEntity(id []byte) *prismv1.EntityRecord {
	rec, _ := c.lookup(id).(*prismv1.EntityRecord)
	return rec
}

func (c *readCache) lookup(id []byte) any {
	c.mu.Lock()
	defer c.mu.Unlock()
	el, ok := c.entries[string(id)]
	if !ok {
		return nil
	}
	e := el.Value.(*cacheEntry)
	if !e.expires.IsZero() && !c.now().Before(e.expires) {
		c.remove(el)
		return nil
	}
	c.ll.MoveToFront(el)
	return e.resp
}

// put caches resp, the first page of record id read from the projection
// at checkpoint readFrom or later, unless the record changed since
// readFrom.
func (c *readCache) put(id []byte, resp *prismv1.GetResponse, readFrom uint64) {
	var expires time.Time
	for _, it := range resp.GetItems() {
		if t := it.GetExpireTime(); t != nil {
			if at := t.AsTime(); expires.IsZero() || at.Before(expires) {
				expires = at
			}
		}
	}
	c.store(&cacheEntry{id: string(id), resp: resp, expires: expires}, readFrom)
}

// putEntity caches rec, entity record id read at checkpoint readFrom or
// later, as put does.
func (c *readCache) putEntity(id []byte, rec *prismv1.EntityRecord, readFrom uint64) {
	c.store(&cacheEntry{id: string(id), resp: rec}, readFrom)
}

func (c *readCache) store(e *cacheEntry, readFrom uint64) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if readFrom < c.floor || readFrom < c.changed[e.id] {
		return
	}
	if el, ok := c.entries[e.id]; ok {
		el.Value = e
		c.ll.MoveToFront(el)
		return
	}
	c.entries[e.id] = c.ll.PushFront(e)
	for c.ll.Len() > c.max {
		c.remove(c.ll.Back())
	}
}

// invalidate drops the records ids, changed by a batch committed through
// seq.
func (c *readCache) invalidate(ids [][]byte, through uint64) {
	c.mu.Lock()
	defer c.mu.Unlock()
	for _, id := range ids {
		if el, ok := c.entries[string(id)]; ok {
			c.remove(el)
		}
		if len(c.changed) >= c.max {
			// Forget the records, keep the bound: every read from before
			// now is refused.
			clear(c.changed)
			c.floor = max(c.floor, through)
		}
		// Two projections report (a migration's targets): a lagging one
		// must not lower the bound the one ahead set.
		c.changed[string(id)] = max(c.changed[string(id)], through)
	}
}

func (c *readCache) remove(el *list.Element) {
	delete(c.entries, el.Value.(*cacheEntry).id)
	c.ll.Remove(el)
}

// len returns the number of cached records.
func (c *readCache) len() int {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.ll.Len()
}
