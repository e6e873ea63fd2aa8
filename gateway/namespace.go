package gateway

import (
	"fmt"
	"sync"
	"sync/atomic"

	"github.com/prism-data/prism/namespaces"
)

// namespaceEntry is a registered namespace with what serves it: reader for
// a keyvalue namespace, tsReader for a timeseries one, logReader for a log
// one.
type namespaceEntry struct {
	namespaces.Namespace
	reader    KeyValueReader
	tsReader  TimeSeriesReader
	logReader LogReader
	enReader  EntityReader
	grReader  GraphReader
	// entity is the message type of an entity namespace; nil for others.
	entity  *entityType
	applied AppliedWaiter
	cache   *cacheSlot
	// target names the target reads come from; "" until SetRouting.
	target string
	// shadow is the target sampled gets are compared against; nil none.
	shadow *shadowTarget
	// fence, when set, is a second projection strong writes wait for.
	fence AppliedWaiter
	// readsElsewhere: another process projects the namespace and serves
	// its reads (SetReadsElsewhere); this gateway serves its writes.
	readsElsewhere bool
	// lim is the namespace's admission state (limits.go), shared by the
	// entries an update swaps in.
	lim *limiter
}

// namespaceTable maps namespace names to their entries. It is safe for
// concurrent use. Entries are never changed in place: an update swaps the
// entry, so a request keeps the settings it started with.
type namespaceTable struct {
	mu sync.RWMutex
	m  map[string]*namespaceEntry
	// unserved are registered namespaces this process cannot serve now.
	unserved map[string]bool
	// n is len(m), read by admission without the lock.
	n atomic.Int64
	// changed, if set, is called with a namespace's name after its entry
	// was added, swapped or removed, without the lock.
	changed func(name string)
}

func (r *namespaceTable) notify(name string) {
	if r.changed != nil {
		r.changed(name)
	}
}

// names returns the registered namespaces' names.
func (r *namespaceTable) names() []string {
	r.mu.RLock()
	defer r.mu.RUnlock()
	names := make([]string, 0, len(r.m))
	for name := range r.m {
		names = append(names, name)
	}
	return names
}

func (r *namespaceTable) get(name string) (*namespaceEntry, bool) {
	r.mu.RLock()
	defer r.mu.RUnlock()
	e, ok := r.m[name]
	return e, ok
}

func (r *namespaceTable) add(e *namespaceEntry) error {
	if err := r.addEntry(e); err != nil {
		return err
	}
	r.notify(e.Name)
	return nil
}

func (r *namespaceTable) addEntry(e *namespaceEntry) error {
	r.mu.Lock()
	defer r.mu.Unlock()
	delete(r.unserved, e.Name)
	if _, dup := r.m[e.Name]; dup {
		return fmt.Errorf("gateway: namespace %s is already registered", e.Name)
	}
	if r.m == nil {
		r.m = make(map[string]*namespaceEntry)
	}
	e.lim = newLimiter(e.Namespace)
	r.m[e.Name] = e
	r.n.Store(int64(len(r.m)))
	return nil
}

// update swaps the entry of ns.Name for one with ns, keeping what serves it.
func (r *namespaceTable) update(ns namespaces.Namespace) error {
	r.mu.Lock()
	defer r.mu.Unlock()
	old, ok := r.m[ns.Name]
	if !ok {
		return fmt.Errorf("gateway: namespace %s is not registered", ns.Name)
	}
	if old.Abstraction != ns.Abstraction {
		return fmt.Errorf("gateway: namespace %s is a %s namespace; it cannot become %s", ns.Name, old.Abstraction, ns.Abstraction)
	}
	e := *old
	e.Namespace = ns.WithDefaults()
	if old.entity != nil {
		t, err := newEntityType(ns)
		if err != nil {
			return fmt.Errorf("gateway: %w", err)
		}
		e.entity, e.Namespace = t, t.withPII(e.Namespace)
	}
	e.lim.set(e.Namespace) // ADR 023: limits change live
	r.m[ns.Name] = &e
	return nil
}

func (r *namespaceTable) remove(name string) bool {
	r.mu.Lock()
	delete(r.unserved, name)
	_, ok := r.m[name]
	delete(r.m, name)
	r.n.Store(int64(len(r.m)))
	r.mu.Unlock()
	r.notify(name)
	return ok
}

// UpdateNamespace changes the declaration of the registered namespace
// ns.Name to ns (consistency, retention, metadata), keeping the reader and
// applied waiter it was added with. Requests that started before it
// returns finish with the old declaration; later ones see ns. It returns an
// error if ns is invalid, not registered, or of another abstraction.
func (g *Gateway) UpdateNamespace(ns namespaces.Namespace) error {
	if err := ns.Validate(); err != nil {
		return fmt.Errorf("gateway: %w", err)
	}
	return g.namespaces.update(ns)
}

// SetReadCache gives the keyvalue namespace name a read cache of the first
// page of up to entries records (an entity namespace: of up to entries
// records; 0 removes it), the plan's read_cache
// setting. The cache is kept exact by RecordsApplied, which the
// namespace's projector must call for every batch it commits (see
// projectors.WithAppliedHook); without that, do not set one. A cache of a
// new size starts empty. It returns an error if name is not a registered
// keyvalue or entity namespace.
func (g *Gateway) SetReadCache(name string, entries int) error {
	e, ok := g.namespaces.get(name)
	if !ok || e.cache == nil {
		return fmt.Errorf("gateway: %s is not a registered keyvalue or entity namespace", name)
	}
	e.cache.set(entries, g.opts.clock)
	return nil
}

// RecordsApplied tells the gateway that the primary projection of
// namespace ns committed changes to the records ids, through stream
// sequence through; call it before the projection reports through as
// applied. A read cache drops those records, and the large-value cache
// their values. Unknown namespaces are ignored.
func (g *Gateway) RecordsApplied(ns string, ids [][]byte, through uint64) {
	if e, ok := g.namespaces.get(ns); ok && e.cache != nil {
		e.cache.applied(ids, through)
	}
	g.values.drop(ns, ids)
}

// SetReadsElsewhere says whether the reads of the registered namespace
// name are served by another process, the one that projects it into a
// backend this process has its own copy of (a standby, ADR 022): its read
// requests are then forwarded to a gateway that serves them (forward.go)
// like those of an unserved namespace, while its writes, which need only
// the stream, are served here. It returns an error if name is not registered.
func (g *Gateway) SetReadsElsewhere(name string, elsewhere bool) error {
	return g.namespaces.swap(name, func(e *namespaceEntry) { e.readsElsewhere = elsewhere })
}

// MarkUnserved records that namespace name is registered but this process
// cannot serve it now (its backend failed to open, or another process
// projects it): its requests get UNAVAILABLE, which clients retry, rather
// than NAMESPACE_NOT_FOUND. AddNamespace and RemoveNamespace clear it. It
// does nothing for a namespace being served.
func (g *Gateway) MarkUnserved(name string) {
	t := &g.namespaces
	t.mu.Lock()
	defer t.mu.Unlock()
	if _, served := t.m[name]; served {
		return
	}
	if t.unserved == nil {
		t.unserved = make(map[string]bool)
	}
	t.unserved[name] = true
}

func (r *namespaceTable) isUnserved(name string) bool {
	r.mu.RLock()
	defer r.mu.RUnlock()
	return r.unserved[name]
}

// RemoveNamespace stops serving namespace name: later requests get
// NAMESPACE_NOT_FOUND; requests in flight finish. It reports whether name
// was registered.
func (g *Gateway) RemoveNamespace(name string) bool { return g.namespaces.remove(name) }

// AddNamespace registers the keyvalue namespace ns, served by reader r with
// projection progress w. It is safe to call while the gateway runs; requests
// for ns are served from the moment it returns. It returns an error if ns is
// invalid or not a keyvalue namespace (use AddTimeSeriesNamespace for a
// timeseries one), r or w is nil, or a namespace of that name is already
// registered.
func (g *Gateway) AddNamespace(ns namespaces.Namespace, r KeyValueReader, w AppliedWaiter) error {
	if err := checkAdd(ns, namespaces.AbstractionKeyValue, r == nil || w == nil); err != nil {
		return err
	}
	return g.namespaces.add(&namespaceEntry{Namespace: ns.WithDefaults(), reader: r, applied: w, cache: &cacheSlot{}})
}

// AddTimeSeriesNamespace registers the timeseries namespace ns, served by
// reader r with projection progress w, like AddNamespace. It returns an
// error if ns is invalid or not a timeseries namespace, r or w is nil, or a
// namespace of that name is already registered.
func (g *Gateway) AddTimeSeriesNamespace(ns namespaces.Namespace, r TimeSeriesReader, w AppliedWaiter) error {
	if err := checkAdd(ns, namespaces.AbstractionTimeSeries, r == nil || w == nil); err != nil {
		return err
	}
	return g.namespaces.add(&namespaceEntry{Namespace: ns.WithDefaults(), tsReader: r, applied: w})
}

// adders names the method that registers a namespace of each abstraction.
var adders = map[string]string{
	namespaces.AbstractionKeyValue:   "AddNamespace",
	namespaces.AbstractionTimeSeries: "AddTimeSeriesNamespace",
	namespaces.AbstractionLog:        "AddLogNamespace",
	namespaces.AbstractionEntity:     "AddEntityNamespace",
	namespaces.AbstractionGraph:      "AddGraphNamespace",
}

// checkAdd validates ns and checks that it has abstraction want and that
// what serves it is not missing (a nil reader or waiter).
func checkAdd(ns namespaces.Namespace, want string, missing bool) error {
	if err := ns.Validate(); err != nil {
		return fmt.Errorf("gateway: %w", err)
	}
	if ns.Abstraction != want {
		return fmt.Errorf("gateway: namespace %s is a %s namespace, not %s; register it with %s", ns.Name, ns.Abstraction, want, adders[ns.Abstraction])
	}
	if missing {
		return fmt.Errorf("gateway: namespace %s needs a reader and an applied waiter", ns.Name)
	}
	return nil
}
