package kit

import "sync"

// Gate is the open or closed state of a store: every operation holds it for
// reading and Close for writing, so Close waits for the operations in flight
// and none starts after it. The zero value is open.
type Gate struct {
	mu     sync.RWMutex
	closed bool
}

// Enter lets one operation in and returns nil, or returns closed once the
// gate is closed. The caller must call Leave when Enter returns nil.
func (g *Gate) Enter(closed error) error {
	g.mu.RLock()
	if g.closed {
		g.mu.RUnlock()
		return closed
	}
	return nil
}

// Leave ends an operation that Enter let in.
func (g *Gate) Leave() { g.mu.RUnlock() }

// Close waits for the operations in flight, closes the gate and returns
// release's error; release runs once, on the first call (nil: nothing to
// release). Later calls return nil.
func (g *Gate) Close(release func() error) error {
	g.mu.Lock()
	defer g.mu.Unlock()
	if g.closed {
		return nil
	}
	g.closed = true
	if release == nil {
		return nil
	}
	return release()
}
