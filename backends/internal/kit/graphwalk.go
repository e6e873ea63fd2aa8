package kit

import "fmt"

// The Graph pieces a store that is not SQL (Neptune) shares with GraphSQL,
// so that every store pages neighbours with the same tokens and breaks
// shortest-path ties by the same rule.

// NeighbourPos is where a page of neighbours ended: In for the in edges
// (out edges come first), then the edge label and the other end's id.
type NeighbourPos struct {
	In           bool
	Label, Other string
}

// NeighbourToken is the page token of a Neighbours page that ended at p.
func NeighbourToken(p NeighbourPos) string {
	return encodeNeighbourToken(neighbourPos{in: p.In, label: p.Label, other: p.Other})
}

// ParseNeighbourToken reverses NeighbourToken; nil for "" (the first
// page). Errors: a *RequestError (Token) for a token it did not make.
func ParseNeighbourToken(token string) (*NeighbourPos, error) {
	p, err := decodeNeighbourToken(token)
	if p == nil || err != nil {
		return nil, err
	}
	return &NeighbourPos{In: p.in, Label: p.label, Other: p.other}, nil
}

// Hop is how a breadth-first search reached a vertex: from vertex Prev
// along an edge of Label, out (Prev -> vertex) or In.
type Hop struct {
	Prev, Label string
	In          bool
}

// Better reports whether h beats o under PathResponse's tie rule: the
// smaller previous vertex, then an out edge, then the smaller label.
func (h Hop) Better(o Hop) bool {
	return parent{prev: h.Prev, label: h.Label, in: h.In}.better(parent{prev: o.Prev, label: o.Label, in: o.In})
}

// TooManyReached is the *RequestError of a traversal from a start that
// reaches more than max vertices within depth.
func TooManyReached(max, depth uint32) error {
	return &RequestError{Detail: fmt.Sprintf("the traversal reaches more than %d vertices (max_results) within depth %d; lower the depth, filter by labels or raise graph.max_results", max, depth)}
}
