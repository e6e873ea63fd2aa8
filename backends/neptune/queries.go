package neptune

import (
	"strconv"
	"strings"
)

// The openCypher the store sends: these texts and nothing else (the
// stand-in in neptunetest executes exactly these shapes and refuses any
// other). Names on the Neptune side:
//
//   - a Prism vertex is a node labelled PrismVertex with prism_ns (the
//     namespace), prism_id, prism_label, prism_props (the properties as
//     one JSON object) and prism_rev; a node without prism_rev is a stub
//     an edge needed for a missing end, and reads report it absent;
//   - a Prism edge is a relationship of the one type PRISM_EDGE between
//     two PrismVertex nodes of the namespace, with prism_label,
//     prism_props and prism_rev;
//   - the checkpoint is the prism_seq of the node PrismCheckpoint
//     {prism_ns}.
//
// Prism labels and property names are any UTF-8 (NUL aside), which
// Neptune's labels, types and property names are not: kept as values,
// they round-trip exactly and never reach the query text.

// The batch: one request, the guard first, the parts that have rows in
// order, the checkpoint last. Neptune runs a request as one transaction;
// the guard makes a request whose checkpoint moved write nothing (no
// row back).
const (
	qGuard = `MERGE (c:PrismCheckpoint {prism_ns: $ns})
WITH c WHERE coalesce(c.prism_seq, 0) = $expected`
	qDeleteVertices = `UNWIND $vdel AS did
OPTIONAL MATCH (d:PrismVertex {prism_ns: $ns, prism_id: did})
DETACH DELETE d
WITH DISTINCT c`
	qPutVertices = `UNWIND $vput AS vp
MERGE (v:PrismVertex {prism_ns: $ns, prism_id: vp.id})
SET v.prism_label = vp.label, v.prism_props = vp.props, v.prism_rev = vp.rev
WITH DISTINCT c`
	qDeleteEdges = `UNWIND $edel AS ed
OPTIONAL MATCH (:PrismVertex {prism_ns: $ns, prism_id: ed.from})-[r:PRISM_EDGE {prism_label: ed.label}]->(:PrismVertex {prism_ns: $ns, prism_id: ed.to})
DELETE r
WITH DISTINCT c`
	qPutEdges = `UNWIND $eput AS ep
MERGE (a:PrismVertex {prism_ns: $ns, prism_id: ep.from})
MERGE (b:PrismVertex {prism_ns: $ns, prism_id: ep.to})
MERGE (a)-[r:PRISM_EDGE {prism_label: ep.label}]->(b)
SET r.prism_props = ep.props, r.prism_rev = ep.rev
WITH DISTINCT c`
	qSetCheckpoint = `SET c.prism_seq = $through
RETURN c.prism_seq AS seq`
)

// The reads.
const (
	qCheckpoint = `MATCH (c:PrismCheckpoint {prism_ns: $ns})
RETURN c.prism_seq AS seq`
	qGetVertex = `MATCH (v:PrismVertex {prism_ns: $ns, prism_id: $id})
WHERE v.prism_rev IS NOT NULL
RETURN v.prism_label AS label, v.prism_props AS props, v.prism_rev AS rev`
	qGetEdge = `MATCH (:PrismVertex {prism_ns: $ns, prism_id: $from})-[r:PRISM_EDGE {prism_label: $label}]->(:PrismVertex {prism_ns: $ns, prism_id: $to})
RETURN r.prism_props AS props, r.prism_rev AS rev`
	// Neighbours, one direction: edges after ($afterLabel, $afterID) in
	// (label, other id) order; labels are never empty, so "" is before
	// every edge. The limit is a literal: Neptune refuses a LIMIT that is
	// not static.
	qNeighboursOut = `MATCH (:PrismVertex {prism_ns: $ns, prism_id: $id})-[r:PRISM_EDGE]->(o:PrismVertex)
WHERE (size($labels) = 0 OR r.prism_label IN $labels) AND (r.prism_label > $afterLabel OR (r.prism_label = $afterLabel AND o.prism_id > $afterID))
RETURN r.prism_label AS label, o.prism_id AS other, r.prism_props AS props, r.prism_rev AS rev
ORDER BY label, other LIMIT `
	qNeighboursIn = `MATCH (o:PrismVertex)-[r:PRISM_EDGE]->(:PrismVertex {prism_ns: $ns, prism_id: $id})
WHERE (size($labels) = 0 OR r.prism_label IN $labels) AND (r.prism_label > $afterLabel OR (r.prism_label = $afterLabel AND o.prism_id > $afterID))
RETURN r.prism_label AS label, o.prism_id AS other, r.prism_props AS props, r.prism_rev AS rev
ORDER BY label, other LIMIT `
	// One level of a breadth-first search, one direction: the edges of
	// the frontier $ids.
	qLevelOut = `UNWIND $ids AS sid
MATCH (:PrismVertex {prism_ns: $ns, prism_id: sid})-[r:PRISM_EDGE]->(o:PrismVertex)
WHERE size($labels) = 0 OR r.prism_label IN $labels
RETURN sid AS self, r.prism_label AS label, o.prism_id AS other`
	qLevelIn = `UNWIND $ids AS sid
MATCH (o:PrismVertex)-[r:PRISM_EDGE]->(:PrismVertex {prism_ns: $ns, prism_id: sid})
WHERE size($labels) = 0 OR r.prism_label IN $labels
RETURN sid AS self, r.prism_label AS label, o.prism_id AS other`
	// The export of verify: edges at or after ($from, $label, $to) in
	// (from, label, to) order, then vertices (stubs aside) at or after
	// $id in id order; limits are literals, as for neighbours.
	qExportEdges = `MATCH (a:PrismVertex {prism_ns: $ns})-[r:PRISM_EDGE]->(b:PrismVertex {prism_ns: $ns})
WHERE a.prism_id > $from OR (a.prism_id = $from AND (r.prism_label > $label OR (r.prism_label = $label AND b.prism_id >= $to)))
RETURN a.prism_id AS src, r.prism_label AS label, b.prism_id AS dst, r.prism_props AS props, r.prism_rev AS rev
ORDER BY src, label, dst LIMIT `
	qExportVertices = `MATCH (v:PrismVertex {prism_ns: $ns})
WHERE v.prism_rev IS NOT NULL AND v.prism_id >= $id
RETURN v.prism_id AS id, v.prism_label AS label, v.prism_props AS props, v.prism_rev AS rev
ORDER BY id LIMIT `
)

// batchQuery is the text of a batch with the parts that have rows.
func batchQuery(p *plan) string {
	parts := []string{qGuard}
	for _, part := range []struct {
		q string
		n int
	}{{qDeleteVertices, len(p.vdel)}, {qPutVertices, len(p.vput)}, {qDeleteEdges, len(p.edel)}, {qPutEdges, len(p.eput)}} {
		if part.n > 0 {
			parts = append(parts, part.q)
		}
	}
	return strings.Join(append(parts, qSetCheckpoint), "\n")
}

func neighboursQuery(in bool, limit int) string {
	if in {
		return qNeighboursIn + strconv.Itoa(limit)
	}
	return qNeighboursOut + strconv.Itoa(limit)
}
