package neptunetest

import (
	"encoding/json"
	"fmt"
	"slices"
	"strconv"
	"strings"
)

// The query shapes the stand-in runs: its own copy of backends/neptune's
// texts, compared with whitespace collapsed. A batch is the guard, any of
// the four parts in this order, then the checkpoint.
const (
	guard = `MERGE (c:PrismCheckpoint {prism_ns: $ns}) WITH c WHERE coalesce(c.prism_seq, 0) = $expected`

	partDeleteVertices = `UNWIND $vdel AS did OPTIONAL MATCH (d:PrismVertex {prism_ns: $ns, prism_id: did}) DETACH DELETE d WITH DISTINCT c`
	partPutVertices    = `UNWIND $vput AS vp MERGE (v:PrismVertex {prism_ns: $ns, prism_id: vp.id}) SET v.prism_label = vp.label, v.prism_props = vp.props, v.prism_rev = vp.rev WITH DISTINCT c`
	partDeleteEdges    = `UNWIND $edel AS ed OPTIONAL MATCH (:PrismVertex {prism_ns: $ns, prism_id: ed.from})-[r:PRISM_EDGE {prism_label: ed.label}]->(:PrismVertex {prism_ns: $ns, prism_id: ed.to}) DELETE r WITH DISTINCT c`
	partPutEdges       = `UNWIND $eput AS ep MERGE (a:PrismVertex {prism_ns: $ns, prism_id: ep.from}) MERGE (b:PrismVertex {prism_ns: $ns, prism_id: ep.to}) MERGE (a)-[r:PRISM_EDGE {prism_label: ep.label}]->(b) SET r.prism_props = ep.props, r.prism_rev = ep.rev WITH DISTINCT c`
	setCheckpoint      = `SET c.prism_seq = $through RETURN c.prism_seq AS seq`

	readCheckpoint    = `MATCH (c:PrismCheckpoint {prism_ns: $ns}) RETURN c.prism_seq AS seq`
	readVertex        = `MATCH (v:PrismVertex {prism_ns: $ns, prism_id: $id}) WHERE v.prism_rev IS NOT NULL RETURN v.prism_label AS label, v.prism_props AS props, v.prism_rev AS rev`
	readEdge          = `MATCH (:PrismVertex {prism_ns: $ns, prism_id: $from})-[r:PRISM_EDGE {prism_label: $label}]->(:PrismVertex {prism_ns: $ns, prism_id: $to}) RETURN r.prism_props AS props, r.prism_rev AS rev`
	neighboursFilter  = `WHERE (size($labels) = 0 OR r.prism_label IN $labels) AND (r.prism_label > $afterLabel OR (r.prism_label = $afterLabel AND o.prism_id > $afterID)) RETURN r.prism_label AS label, o.prism_id AS other, r.prism_props AS props, r.prism_rev AS rev ORDER BY label, other LIMIT `
	readNeighboursOut = `MATCH (:PrismVertex {prism_ns: $ns, prism_id: $id})-[r:PRISM_EDGE]->(o:PrismVertex) ` + neighboursFilter
	readNeighboursIn  = `MATCH (o:PrismVertex)-[r:PRISM_EDGE]->(:PrismVertex {prism_ns: $ns, prism_id: $id}) ` + neighboursFilter
	dropVertices      = `MATCH (v:PrismVertex {prism_ns: $ns}) WITH v LIMIT 1000 DETACH DELETE v RETURN count(*) AS deleted`
	dropCheckpoint    = `MATCH (c:PrismCheckpoint {prism_ns: $ns}) DELETE c RETURN count(*) AS deleted`
	levelFilter       = ` WHERE size($labels) = 0 OR r.prism_label IN $labels RETURN sid AS self, r.prism_label AS label, o.prism_id AS other`
	readLevelOut      = `UNWIND $ids AS sid MATCH (:PrismVertex {prism_ns: $ns, prism_id: sid})-[r:PRISM_EDGE]->(o:PrismVertex)` + levelFilter
	readLevelIn       = `UNWIND $ids AS sid MATCH (o:PrismVertex)-[r:PRISM_EDGE]->(:PrismVertex {prism_ns: $ns, prism_id: sid})` + levelFilter
	exportEdges       = `MATCH (a:PrismVertex {prism_ns: $ns})-[r:PRISM_EDGE]->(b:PrismVertex {prism_ns: $ns}) WHERE a.prism_id > $from OR (a.prism_id = $from AND (r.prism_label > $label OR (r.prism_label = $label AND b.prism_id >= $to))) RETURN a.prism_id AS src, r.prism_label AS label, b.prism_id AS dst, r.prism_props AS props, r.prism_rev AS rev ORDER BY src, label, dst LIMIT `
	exportVertices    = `MATCH (v:PrismVertex {prism_ns: $ns}) WHERE v.prism_rev IS NOT NULL AND v.prism_id >= $id RETURN v.prism_id AS id, v.prism_label AS label, v.prism_props AS props, v.prism_rev AS rev ORDER BY id LIMIT `
)

// normalize collapses whitespace runs to one space.
func normalize(q string) string { return strings.Join(strings.Fields(q), " ") }

type row = map[string]any

// exec runs query with params on g and returns the rows and the shape's
// name.
func (g *graph) exec(query string, params map[string]any) ([]row, string, *neptuneError) {
	q := normalize(query)
	p := &args{m: params, used: map[string]bool{}}
	var rows []row
	var shape string
	var err *neptuneError
	switch {
	case strings.HasPrefix(q, guard+" "):
		shape = "batch"
		rows, err = g.batch(strings.TrimPrefix(q, guard), p)
	case q == readCheckpoint:
		shape = "checkpoint"
		rows, err = g.checkpoint(p)
	case q == readVertex:
		shape = "get vertex"
		rows, err = g.vertex(p)
	case q == readEdge:
		shape = "get edge"
		rows, err = g.edge(p)
	case strings.HasPrefix(q, readNeighboursOut), strings.HasPrefix(q, readNeighboursIn):
		shape = "neighbours"
		var limit int
		if limit, err = literalLimit(q, readNeighboursOut, readNeighboursIn); err == nil {
			rows, err = g.neighbours(p, strings.HasPrefix(q, readNeighboursIn), limit)
		}
	case strings.HasPrefix(q, exportEdges), strings.HasPrefix(q, exportVertices):
		shape = "export"
		var limit int
		if limit, err = literalLimit(q, exportEdges, exportVertices); err != nil {
			break
		}
		if strings.HasPrefix(q, exportVertices) {
			rows, err = g.exportVertices(p, limit)
		} else {
			rows, err = g.exportEdges(p, limit)
		}
	case q == readLevelOut, q == readLevelIn:
		shape = "level"
		rows, err = g.level(p, q == readLevelIn)
	case q == dropVertices:
		shape = "drop"
		rows, err = g.dropVertices(p, 1000)
	case q == dropCheckpoint:
		shape = "drop"
		rows, err = g.dropCheckpoint(p)
	default:
		return nil, "", malformed("the stand-in does not know this query shape: " + q)
	}
	if err == nil {
		err = p.allUsed()
	}
	return rows, shape, err
}

// literalLimit is the LIMIT that ends q, a query of one of two shapes
// that differ only before it.
func literalLimit(q, a, b string) (int, *neptuneError) {
	limit, err := strconv.Atoi(strings.TrimPrefix(strings.TrimPrefix(q, a), b))
	if err != nil || limit < 1 {
		return 0, malformed("LIMIT must be a positive integer literal")
	}
	return limit, nil
}

// batch runs the parts of a batch after the guard.
func (g *graph) batch(rest string, p *args) ([]row, *neptuneError) {
	ns := p.str("ns")
	expected := p.int("expected")
	if p.err != nil {
		return nil, p.err
	}
	if g.checkpoints[ns] == nil {
		g.putCheckpoint(ns, map[string]any{"prism_ns": ns})
	}
	cur, _ := g.checkpoints[ns]["prism_seq"].(int64)
	pass := cur == expected
	parts := []struct {
		text string
		run  func(*args, string) *neptuneError
	}{
		{partDeleteVertices, g.deleteVertices},
		{partPutVertices, g.putVertices},
		{partDeleteEdges, g.deleteEdges},
		{partPutEdges, g.putEdges},
	}
	for _, part := range parts {
		r, ok := strings.CutPrefix(rest, " "+part.text)
		if !ok {
			continue
		}
		rest = r
		if !pass { // no row reaches the part; its parameter is still read
			p.used[paramOf(part.text)] = true
			continue
		}
		if err := part.run(p, ns); err != nil {
			return nil, err
		}
	}
	if rest != " "+setCheckpoint {
		return nil, malformed("the stand-in does not know this batch shape (parts out of order or unknown):" + rest)
	}
	through := p.int("through")
	if p.err != nil || !pass {
		return []row{}, p.err
	}
	g.putCheckpoint(ns, with(g.checkpoints[ns], []any{"prism_seq", through}))
	return []row{{"seq": through}}, nil
}

// paramOf is the list parameter a part unwinds.
func paramOf(part string) string {
	name, _, _ := strings.Cut(strings.TrimPrefix(part, "UNWIND $"), " ")
	return name
}

func (g *graph) deleteVertices(p *args, ns string) *neptuneError {
	for _, id := range p.strs("vdel") {
		g.detachDeleteNode(nodeKey{ns, id})
	}
	return p.err
}

func (g *graph) putVertices(p *args, ns string) *neptuneError {
	for _, m := range p.maps("vput", "id", "label", "props", "rev") {
		k := g.mergeNode(ns, m.str("id"))
		g.setNode(k, "prism_label", m.str("label"), "prism_props", m.str("props"), "prism_rev", m.int("rev"))
		if m.err != nil {
			return m.err
		}
	}
	return p.err
}

func (g *graph) deleteEdges(p *args, ns string) *neptuneError {
	for _, m := range p.maps("edel", "from", "label", "to") {
		g.deleteRel(relKey{ns, m.str("from"), m.str("label"), m.str("to")})
		if m.err != nil {
			return m.err
		}
	}
	return p.err
}

func (g *graph) putEdges(p *args, ns string) *neptuneError {
	for _, m := range p.maps("eput", "from", "label", "to", "props", "rev") {
		from, to := m.str("from"), m.str("to")
		g.mergeNode(ns, from)
		g.mergeNode(ns, to)
		k := relKey{ns, from, m.str("label"), to}
		g.putRel(k, with(g.rels[k], []any{"prism_label", k.label, "prism_props", m.str("props"), "prism_rev", m.int("rev")}))
		if m.err != nil {
			return m.err
		}
	}
	return p.err
}

func (g *graph) checkpoint(p *args) ([]row, *neptuneError) {
	ns := p.str("ns")
	c, ok := g.checkpoints[ns]
	if p.err != nil || !ok {
		return []row{}, p.err
	}
	return []row{{"seq": c["prism_seq"]}}, nil
}

func (g *graph) vertex(p *args) ([]row, *neptuneError) {
	n, ok := g.nodes[nodeKey{p.str("ns"), p.str("id")}]
	if p.err != nil || !ok || n["prism_rev"] == nil {
		return []row{}, p.err
	}
	return []row{{"label": n["prism_label"], "props": n["prism_props"], "rev": n["prism_rev"]}}, nil
}

func (g *graph) edge(p *args) ([]row, *neptuneError) {
	r, ok := g.rels[relKey{p.str("ns"), p.str("from"), p.str("label"), p.str("to")}]
	if p.err != nil || !ok {
		return []row{}, p.err
	}
	return []row{{"props": r["prism_props"], "rev": r["prism_rev"]}}, nil
}

func other(k relKey, in bool) string {
	if in {
		return k.from
	}
	return k.to
}

func (g *graph) neighbours(p *args, in bool, limit int) ([]row, *neptuneError) {
	ns, id, labels := p.str("ns"), p.str("id"), p.strs("labels")
	afterLabel, afterID := p.str("afterLabel"), p.str("afterID")
	if p.err != nil {
		return nil, p.err
	}
	var keys []relKey
	for _, k := range g.edgesOf(ns, id, in, labels) {
		if o := other(k, in); k.label > afterLabel || k.label == afterLabel && o > afterID {
			keys = append(keys, k)
		}
	}
	slices.SortFunc(keys, func(a, b relKey) int {
		if c := strings.Compare(a.label, b.label); c != 0 {
			return c
		}
		return strings.Compare(other(a, in), other(b, in))
	})
	rows := []row{}
	for _, k := range keys[:min(limit, len(keys))] {
		r := g.rels[k]
		rows = append(rows, row{"label": k.label, "other": other(k, in), "props": r["prism_props"], "rev": r["prism_rev"]})
	}
	return rows, nil
}

// exportEdges runs exportEdges: the relationships of namespace ns at or
// after ($from, $label, $to), in that order.
func (g *graph) exportEdges(p *args, limit int) ([]row, *neptuneError) {
	ns, from, label, to := p.str("ns"), p.str("from"), p.str("label"), p.str("to")
	if p.err != nil {
		return nil, p.err
	}
	var keys []relKey
	for k := range g.rels {
		if k.ns == ns && compareRel(k, relKey{ns, from, label, to}) >= 0 {
			keys = append(keys, k)
		}
	}
	slices.SortFunc(keys, compareRel)
	rows := []row{}
	for _, k := range keys[:min(limit, len(keys))] {
		r := g.rels[k]
		rows = append(rows, row{"src": k.from, "label": k.label, "dst": k.to, "props": r["prism_props"], "rev": r["prism_rev"]})
	}
	return rows, nil
}

func compareRel(a, b relKey) int {
	if c := strings.Compare(a.from, b.from); c != 0 {
		return c
	}
	if c := strings.Compare(a.label, b.label); c != 0 {
		return c
	}
	return strings.Compare(a.to, b.to)
}

// exportVertices runs exportVertices: the nodes of namespace ns with a
// prism_rev (stubs aside) at or after $id, in id order.
func (g *graph) exportVertices(p *args, limit int) ([]row, *neptuneError) {
	ns, from := p.str("ns"), p.str("id")
	if p.err != nil {
		return nil, p.err
	}
	var ids []string
	for k, n := range g.nodes {
		if k.ns == ns && k.id >= from && n["prism_rev"] != nil {
			ids = append(ids, k.id)
		}
	}
	slices.Sort(ids)
	rows := []row{}
	for _, id := range ids[:min(limit, len(ids))] {
		n := g.nodes[nodeKey{ns, id}]
		rows = append(rows, row{"id": id, "label": n["prism_label"], "props": n["prism_props"], "rev": n["prism_rev"]})
	}
	return rows, nil
}

func (g *graph) level(p *args, in bool) ([]row, *neptuneError) {
	ns, ids, labels := p.str("ns"), p.strs("ids"), p.strs("labels")
	if p.err != nil {
		return nil, p.err
	}
	rows := []row{}
	for _, id := range ids {
		if _, ok := g.nodes[nodeKey{ns, id}]; !ok {
			continue
		}
		for _, k := range g.edgesOf(ns, id, in, labels) {
			rows = append(rows, row{"self": id, "label": k.label, "other": other(k, in)})
		}
	}
	return rows, nil
}

// args reads typed parameters, remembering the first error and which
// parameters were read: one the query does not name is refused.
type args struct {
	m    map[string]any
	used map[string]bool
	err  *neptuneError
}

func (a *args) fail(format string, v ...any) {
	if a.err == nil {
		a.err = &neptuneError{400, "InvalidParameterException", fmt.Sprintf(format, v...)}
	}
}

func (a *args) get(name string) (any, bool) {
	a.used[name] = true
	v, ok := a.m[name]
	if !ok {
		a.fail("missing parameter $%s", name)
	}
	return v, ok
}

func (a *args) str(name string) string {
	v, ok := a.get(name)
	s, isStr := v.(string)
	if ok && !isStr {
		a.fail("parameter $%s is %T, want a string", name, v)
	}
	return s
}

func (a *args) int(name string) int64 {
	v, ok := a.get(name)
	n, isNum := v.(json.Number)
	i, err := n.Int64()
	if ok && (!isNum || err != nil) {
		a.fail("parameter $%s is %v, want an integer", name, v)
	}
	return i
}

func (a *args) list(name string) []any {
	v, ok := a.get(name)
	l, isList := v.([]any)
	if ok && !isList {
		a.fail("parameter $%s is %T, want a list", name, v)
	}
	return l
}

func (a *args) strs(name string) []string {
	var out []string
	for i, v := range a.list(name) {
		s, ok := v.(string)
		if !ok {
			a.fail("parameter $%s[%d] is %T, want a string", name, i, v)
		}
		out = append(out, s)
	}
	return out
}

// maps reads a list of maps with exactly keys.
func (a *args) maps(name string, keys ...string) []*args {
	var out []*args
	for i, v := range a.list(name) {
		m, ok := v.(map[string]any)
		if !ok || len(m) != len(keys) {
			a.fail("parameter $%s[%d] must be a map of %v", name, i, keys)
			return nil
		}
		out = append(out, &args{m: m, used: map[string]bool{}})
	}
	return out
}

// allUsed refuses parameters the query does not name.
func (a *args) allUsed() *neptuneError {
	for name := range a.m {
		if !a.used[name] {
			return &neptuneError{400, "InvalidParameterException", "parameter $" + name + " is not used by the query"}
		}
	}
	return nil
}

// dropVertices deletes up to limit vertices of a namespace (in no
// particular order, as Neptune) with their relationships.
func (g *graph) dropVertices(p *args, limit int64) ([]row, *neptuneError) {
	ns := p.str("ns")
	if p.err != nil {
		return nil, p.err
	}
	var n int64
	for k := range g.nodes {
		if k.ns != ns || n == limit {
			continue
		}
		n++
		g.detachDeleteNode(k)
	}
	return []row{{"deleted": n}}, nil
}

func (g *graph) dropCheckpoint(p *args) ([]row, *neptuneError) {
	ns := p.str("ns")
	if p.err != nil {
		return nil, p.err
	}
	_, ok := g.checkpoints[ns]
	if ok {
		g.putCheckpoint(ns, nil)
	}
	if ok {
		return []row{{"deleted": int64(1)}}, nil
	}
	return []row{{"deleted": int64(0)}}, nil
}
