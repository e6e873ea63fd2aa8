package replay

import (
	"fmt"
	"testing"
)

// graphBounds turns any from of Verify's pages and rechecks into the
// bounds of ExportGraph: a record id itself, the one after a record
// (id NUL), and froms between or beyond the two kinds of records.
func TestGraphBounds(t *testing.T) {
	for _, c := range []struct {
		name, from string
		want       string
	}{
		{"start", "", "edges from (, , ), vertices from \"\""},
		{"before the edges", "a", "edges from (, , ), vertices from \"\""},
		{"an edge", "e\x00a\x00l\x00b", "edges from (a, l, b), vertices from \"\""},
		{"after an edge", "e\x00a\x00l\x00b\x00", "edges from (a, l, b\x01), vertices from \"\""},
		{"a from only", "e\x00a", "edges from (a, , ), vertices from \"\""},
		{"a from and a label", "e\x00a\x00l", "edges from (a, l, ), vertices from \"\""},
		{"after the edges", "e\x01", "no edges, vertices from \"\""},
		{"a vertex", "v\x00p1", "no edges, vertices from \"p1\""},
		{"after a vertex", "v\x00p1\x00", "no edges, vertices from \"p1\\x01\""},
		{"after the vertices", "v\x01", "nothing"},
	} {
		t.Run(c.name, func(t *testing.T) {
			e, v, ok := graphBounds([]byte(c.from))
			got := "nothing"
			switch {
			case ok && e != nil:
				got = fmt.Sprintf("edges from (%s, %s, %s), vertices from %q", e.GetFrom(), e.GetLabel(), e.GetTo(), v)
			case ok:
				got = fmt.Sprintf("no edges, vertices from %q", v)
			}
			if got != c.want {
				t.Errorf("graphBounds(%q) = %s, want %s", c.from, got, c.want)
			}
		})
	}
}
