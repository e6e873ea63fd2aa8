package neptunetest

import (
	"maps"
	"slices"
)

// nodeKey and relKey identify a PrismVertex node (prism_ns, prism_id) and
// a PRISM_EDGE relationship (its ends and prism_label).
type nodeKey struct{ ns, id string }

type relKey struct{ ns, from, label, to string }

func (k relKey) fromKey() nodeKey { return nodeKey{k.ns, k.from} }
func (k relKey) toKey() nodeKey   { return nodeKey{k.ns, k.to} }

// graph is the in-memory property graph: node and relationship
// properties by identity, each node's relationships (both ways), and the
// checkpoint nodes by namespace. Every change goes through put and
// delete methods that log how to undo it, so a request that fails part
// way is rolled back whole (rollback) and one that succeeds is kept
// (commit): one request, one transaction, as on Neptune. Property maps
// are never changed in place: a change puts a new map.
type graph struct {
	nodes       map[nodeKey]map[string]any
	rels        map[relKey]map[string]any
	adj         map[nodeKey]map[relKey]struct{}
	checkpoints map[string]map[string]any
	undo        []func()
}

func newGraph() *graph {
	return &graph{nodes: map[nodeKey]map[string]any{}, rels: map[relKey]map[string]any{},
		adj: map[nodeKey]map[relKey]struct{}{}, checkpoints: map[string]map[string]any{}}
}

// commit keeps the changes since the last commit or rollback.
func (g *graph) commit() { g.undo = g.undo[:0] }

// rollback undoes the changes since the last commit, newest first.
func (g *graph) rollback() {
	for _, u := range slices.Backward(g.undo) {
		u()
	}
	g.undo = g.undo[:0]
}

// put sets m[k] to props, or deletes it for nil, and logs the undo.
func put[K comparable](g *graph, m map[K]map[string]any, k K, props map[string]any) {
	old, had := m[k]
	if props == nil {
		delete(m, k)
	} else {
		m[k] = props
	}
	g.undo = append(g.undo, func() {
		if had {
			m[k] = old
		} else {
			delete(m, k)
		}
	})
}

// putNode sets node k's properties to props.
func (g *graph) putNode(k nodeKey, props map[string]any) { put(g, g.nodes, k, props) }

// mergeNode creates node (ns, id) unless it exists, and returns its key.
func (g *graph) mergeNode(ns, id string) nodeKey {
	k := nodeKey{ns, id}
	if _, ok := g.nodes[k]; !ok {
		g.putNode(k, map[string]any{"prism_ns": ns, "prism_id": id})
	}
	return k
}

// setNode sets properties of node k (which exists) from kv pairs.
func (g *graph) setNode(k nodeKey, kv ...any) {
	g.putNode(k, with(g.nodes[k], kv))
}

// detachDeleteNode deletes node k and its relationships, if it exists.
func (g *graph) detachDeleteNode(k nodeKey) {
	if _, ok := g.nodes[k]; !ok {
		return
	}
	for _, rk := range slices.Collect(maps.Keys(g.adj[k])) {
		g.deleteRel(rk)
	}
	put(g, g.nodes, k, nil)
}

// putRel sets relationship k's properties to props; its nodes exist.
func (g *graph) putRel(k relKey, props map[string]any) {
	old, had := g.rels[k]
	g.rels[k] = props
	g.link(k)
	g.undo = append(g.undo, func() {
		if had {
			g.rels[k] = old
			return
		}
		delete(g.rels, k)
		g.unlink(k)
	})
}

// deleteRel deletes relationship k, if it exists.
func (g *graph) deleteRel(k relKey) {
	old, ok := g.rels[k]
	if !ok {
		return
	}
	delete(g.rels, k)
	g.unlink(k)
	g.undo = append(g.undo, func() {
		g.rels[k] = old
		g.link(k)
	})
}

func (g *graph) link(k relKey) {
	for _, n := range []nodeKey{k.fromKey(), k.toKey()} {
		if g.adj[n] == nil {
			g.adj[n] = map[relKey]struct{}{}
		}
		g.adj[n][k] = struct{}{}
	}
}

func (g *graph) unlink(k relKey) {
	for _, n := range []nodeKey{k.fromKey(), k.toKey()} {
		delete(g.adj[n], k)
		if len(g.adj[n]) == 0 {
			delete(g.adj, n)
		}
	}
}

// putCheckpoint sets the properties of namespace ns's checkpoint node;
// nil deletes it.
func (g *graph) putCheckpoint(ns string, props map[string]any) { put(g, g.checkpoints, ns, props) }

// with returns a copy of m with the kv pairs (name, value, ...) set.
func with(m map[string]any, kv []any) map[string]any {
	out := maps.Clone(m)
	if out == nil {
		out = map[string]any{}
	}
	for i := 0; i+1 < len(kv); i += 2 {
		out[kv[i].(string)] = kv[i+1]
	}
	return out
}

// edgesOf returns the relationships of vertex id of namespace ns, out of
// it or into it, whose label is in labels (all when empty).
func (g *graph) edgesOf(ns, id string, in bool, labels []string) []relKey {
	var out []relKey
	for k := range g.adj[nodeKey{ns, id}] {
		self := k.from
		if in {
			self = k.to
		}
		if self == id && (len(labels) == 0 || slices.Contains(labels, k.label)) {
			out = append(out, k)
		}
	}
	return out
}
