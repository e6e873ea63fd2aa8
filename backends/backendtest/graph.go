package backendtest

import (
	"context"
	"errors"
	"fmt"
	"maps"
	"slices"
	"strings"
	"testing"

	prismv1 "github.com/prism-data/prism/proto/prism/v1"
)

// FeatureGraph is the Graph abstraction: GraphBackend.
const FeatureGraph Feature = "graph"

// GraphBackend is the contract of a Graph projection target: the
// projectors.GraphTarget and gateway.GraphReader methods, plus Close. Its
// methods are safe for concurrent use.
//
// ApplyGraph applies vertex and edge upserts and deletes in order and
// sets the checkpoint to through in one atomic step; changes at or below
// the stored checkpoint are skipped, a call with through at or below it
// changes nothing. An upsert replaces the label (vertex) and all the
// properties, revision = the change's seq; a vertex delete removes the
// vertex and every edge into or out of it present at that point; an edge
// may name vertices that do not exist. An invalid change fails the batch
// with Errors.InvalidChange before anything is written.
//
// The reads are those of gateway.GraphReader: GetVertex and GetEdge (nil
// when absent), Neighbours (out by (label, to) then in by (label, from),
// paginated, a token it did not make refused with
// Errors.InvalidPageToken), Traverse (each vertex once at its smallest
// depth, (depth, id) order, more than MaxResults refused with
// Errors.InvalidRequest) and ShortestPath (fewest edges, the tie rule of
// prismv1.PathResponse).
type GraphBackend interface {
	Checkpoint(ctx context.Context) (uint64, error)
	ApplyGraph(ctx context.Context, changes []*prismv1.GraphChange, through uint64) error
	GetVertex(ctx context.Context, id string) (*prismv1.Vertex, error)
	GetEdge(ctx context.Context, from, label, to string) (*prismv1.Edge, error)
	Neighbours(ctx context.Context, req *prismv1.NeighboursRequest) (*prismv1.NeighboursResponse, error)
	Traverse(ctx context.Context, req *prismv1.TraverseRequest) (*prismv1.TraverseResponse, error)
	ShortestPath(ctx context.Context, req *prismv1.ShortestPathRequest) (*prismv1.PathResponse, error)
	Close() error
}

func init() {
	known = append(known, feature{
		name:       FeatureGraph,
		implements: func(b any) bool { _, ok := b.(GraphBackend); return ok },
		check:      checkGraphConfig,
		run:        runGraph,
	})
}

func checkGraphConfig(t testing.TB, cfg Config) {
	t.Helper()
	if cfg.Errors.InvalidChange == nil || cfg.Errors.InvalidPageToken == nil || cfg.Errors.InvalidBatch == nil || cfg.Errors.InvalidRequest == nil {
		t.Fatal("backendtest: feature graph needs Errors.InvalidChange, InvalidPageToken, InvalidBatch and InvalidRequest")
	}
}

// props builds a property map from "k=v" pairs.
func props(kv ...string) map[string]string {
	if len(kv) == 0 {
		return nil
	}
	m := map[string]string{}
	for _, s := range kv {
		k, v, _ := strings.Cut(s, "=")
		m[k] = v
	}
	return m
}

func gVertex(seq uint64, id, label string, kv ...string) *prismv1.GraphChange {
	return &prismv1.GraphChange{Seq: seq, Event: &prismv1.GraphEvent{Element: &prismv1.GraphEvent_Vertex{Vertex: &prismv1.Vertex{Id: id, Label: label, Properties: props(kv...)}}}}
}

func gDelVertex(seq uint64, id string) *prismv1.GraphChange {
	return &prismv1.GraphChange{Seq: seq, Event: &prismv1.GraphEvent{Element: &prismv1.GraphEvent_Vertex{Vertex: &prismv1.Vertex{Id: id}}, Delete: true}}
}

func gEdge(seq uint64, from, label, to string, kv ...string) *prismv1.GraphChange {
	return &prismv1.GraphChange{Seq: seq, Event: &prismv1.GraphEvent{Element: &prismv1.GraphEvent_Edge{Edge: &prismv1.Edge{From: from, Label: label, To: to, Properties: props(kv...)}}}}
}

func gDelEdge(seq uint64, from, label, to string) *prismv1.GraphChange {
	return &prismv1.GraphChange{Seq: seq, Event: &prismv1.GraphEvent{Element: &prismv1.GraphEvent_Edge{Edge: &prismv1.Edge{From: from, Label: label, To: to}}, Delete: true}}
}

// gEdges returns edge upserts numbered from seq first, of edges given as
// "from-label->to".
func gEdges(first uint64, specs ...string) []*prismv1.GraphChange {
	out := make([]*prismv1.GraphChange, len(specs))
	for i, s := range specs {
		from, rest, _ := strings.Cut(s, "-")
		label, to, _ := strings.Cut(rest, "->")
		out[i] = gEdge(first+uint64(i), from, label, to)
	}
	return out
}

func grBackend(t testing.TB, cfg Config) GraphBackend {
	t.Helper()
	return open(t, cfg, newClock(t0).Now).(GraphBackend)
}

func grApply(t testing.TB, b GraphBackend, through uint64, changes ...*prismv1.GraphChange) {
	t.Helper()
	if err := b.ApplyGraph(context.Background(), changes, through); err != nil {
		t.Fatalf("ApplyGraph(through %d): %v", through, err)
	}
}

// fmtProps renders properties in key order: "a=1,b=2".
func fmtProps(m map[string]string) string {
	var parts []string
	for _, k := range slices.Sorted(maps.Keys(m)) {
		parts = append(parts, k+"="+m[k])
	}
	return strings.Join(parts, ",")
}

// grVertex returns "label{props}@rev" of id, "" when there is none.
func grVertex(t testing.TB, b GraphBackend, id string) string {
	t.Helper()
	v, err := b.GetVertex(context.Background(), id)
	if err != nil {
		t.Fatalf("GetVertex(%s): %v", id, err)
	}
	if v == nil {
		return ""
	}
	if v.GetId() != id {
		t.Errorf("GetVertex(%s) returned id %q", id, v.GetId())
	}
	return fmt.Sprintf("%s{%s}@%d", v.GetLabel(), fmtProps(v.GetProperties()), v.GetRevision())
}

// grEdge returns "{props}@rev" of an edge, "" when there is none.
func grEdge(t testing.TB, b GraphBackend, from, label, to string) string {
	t.Helper()
	e, err := b.GetEdge(context.Background(), from, label, to)
	if err != nil {
		t.Fatalf("GetEdge(%s %s %s): %v", from, label, to, err)
	}
	if e == nil {
		return ""
	}
	if e.GetFrom() != from || e.GetLabel() != label || e.GetTo() != to {
		t.Errorf("GetEdge(%s %s %s) returned %s %s %s", from, label, to, e.GetFrom(), e.GetLabel(), e.GetTo())
	}
	return fmt.Sprintf("{%s}@%d", fmtProps(e.GetProperties()), e.GetRevision())
}

// fmtNeighbour renders a neighbour as "out:label:id" or "in:label:id".
func fmtNeighbour(t testing.TB, n *prismv1.Neighbour) string {
	t.Helper()
	e := n.GetEdge()
	dir, other := "out", e.GetTo()
	if n.GetDirection() == prismv1.Direction_DIRECTION_IN {
		dir, other = "in", e.GetFrom()
	}
	if n.GetId() != other {
		t.Errorf("neighbour %v: id %q is not the edge's other end %q", n, n.GetId(), other)
	}
	return dir + ":" + e.GetLabel() + ":" + other
}

// grNeighbours follows every page of req and returns the neighbours and
// the number of pages. Every page but the last must be full.
func grNeighbours(t testing.TB, b GraphBackend, req *prismv1.NeighboursRequest) ([]string, int) {
	t.Helper()
	var out []string
	for pages := 1; ; pages++ {
		resp, err := b.Neighbours(context.Background(), req)
		if err != nil {
			t.Fatalf("Neighbours(%v): %v", req, err)
		}
		for _, n := range resp.GetNeighbours() {
			out = append(out, fmtNeighbour(t, n))
		}
		if resp.GetNextPageToken() == "" {
			return out, pages
		}
		if size := effectivePageSize(req.GetPageSize()); len(resp.GetNeighbours()) != size {
			t.Fatalf("page %d has %d neighbours, not the page size %d, but a next page", pages, len(resp.GetNeighbours()), size)
		}
		if pages > 1000 {
			t.Fatal("more than 1000 pages")
		}
		req = &prismv1.NeighboursRequest{Id: req.GetId(), Direction: req.GetDirection(), Labels: req.GetLabels(), PageSize: req.GetPageSize(), PageToken: resp.GetNextPageToken()}
	}
}

// grTraverse returns the traversal as "id:depth" strings.
func grTraverse(t testing.TB, b GraphBackend, req *prismv1.TraverseRequest) []string {
	t.Helper()
	resp, err := b.Traverse(context.Background(), req)
	if err != nil {
		t.Fatalf("Traverse(%v): %v", req, err)
	}
	var out []string
	for _, v := range resp.GetVertices() {
		out = append(out, fmt.Sprintf("%s:%d", v.GetId(), v.GetDepth()))
	}
	return out
}

// grPath returns the path as "a -l-> b <-m- c", "" when none is found.
func grPath(t testing.TB, b GraphBackend, req *prismv1.ShortestPathRequest) string {
	t.Helper()
	resp, err := b.ShortestPath(context.Background(), req)
	if err != nil {
		t.Fatalf("ShortestPath(%v): %v", req, err)
	}
	if !resp.GetFound() {
		if len(resp.GetVertices())+len(resp.GetEdges()) > 0 {
			t.Errorf("a path not found has vertices %v and edges %v", resp.GetVertices(), resp.GetEdges())
		}
		return ""
	}
	vs, es := resp.GetVertices(), resp.GetEdges()
	if len(vs) != len(es)+1 || vs[0] != req.GetFrom() || vs[len(vs)-1] != req.GetTo() {
		t.Fatalf("path %v / %v does not run from %s to %s", vs, es, req.GetFrom(), req.GetTo())
	}
	s := vs[0]
	for i, e := range es {
		switch {
		case e.GetFrom() == vs[i] && e.GetTo() == vs[i+1]:
			s += " -" + e.GetLabel() + "-> " + vs[i+1]
		case e.GetTo() == vs[i] && e.GetFrom() == vs[i+1]:
			s += " <-" + e.GetLabel() + "- " + vs[i+1]
		default:
			t.Fatalf("edge %d %v does not join %s and %s", i, e, vs[i], vs[i+1])
		}
	}
	return s
}

func runGraph(t *testing.T, cfg Config) {
	t.Run("upsert get replace", func(t *testing.T) { runGraphUpsert(t, cfg) })
	t.Run("redelivery and checkpoint", func(t *testing.T) { runGraphRedelivery(t, cfg) })
	t.Run("deletes", func(t *testing.T) { runGraphDeletes(t, cfg) })
	t.Run("edges to missing vertices", func(t *testing.T) { runGraphDangling(t, cfg) })
	t.Run("neighbours", func(t *testing.T) { runGraphNeighbours(t, cfg) })
	t.Run("traverse", func(t *testing.T) { runGraphTraverse(t, cfg) })
	t.Run("shortest path", func(t *testing.T) { runGraphPath(t, cfg) })
	t.Run("invalid change writes nothing", func(t *testing.T) { runGraphInvalid(t, cfg) })
	if cfg.FailCheckpointWrites != nil {
		t.Run("atomic with the checkpoint", func(t *testing.T) {
			b := grBackend(t, cfg)
			restore := cfg.FailCheckpointWrites(t, b)
			if err := b.ApplyGraph(context.Background(), []*prismv1.GraphChange{gVertex(1, "a", "person"), gEdge(2, "a", "knows", "b")}, 2); err == nil {
				t.Fatal("ApplyGraph succeeded though the checkpoint write fails")
			}
			restore()
			if got := grVertex(t, b, "a"); got != "" {
				t.Errorf("the failed batch stored vertex a: %q", got)
			}
			if got := grEdge(t, b, "a", "knows", "b"); got != "" {
				t.Errorf("the failed batch stored an edge: %q", got)
			}
		})
	}
}

func runGraphUpsert(t *testing.T, cfg Config) {
	b, reopen := openReopen(t, cfg, newClock(t0).Now)
	g := b.(GraphBackend)
	grApply(t, g, 3, gVertex(1, "alice", "person", "name=Alice", "age=30"), gVertex(2, "bob", "person"), gEdge(3, "alice", "knows", "bob", "since=2020"))
	if got := grVertex(t, g, "alice"); got != "person{age=30,name=Alice}@1" {
		t.Errorf("alice = %q", got)
	}
	if got := grVertex(t, g, "bob"); got != "person{}@2" {
		t.Errorf("bob without properties = %q", got)
	}
	if got := grEdge(t, g, "alice", "knows", "bob"); got != "{since=2020}@3" {
		t.Errorf("edge = %q", got)
	}
	if got := grEdge(t, g, "bob", "knows", "alice"); got != "" {
		t.Errorf("the reverse edge exists: %q (edges are directed)", got)
	}
	if got := grEdge(t, g, "alice", "likes", "bob"); got != "" {
		t.Errorf("an edge of another label exists: %q", got)
	}
	// An upsert replaces label and every property: age is gone.
	grApply(t, g, 5, gVertex(4, "alice", "admin", "name=Alice A."), gEdge(5, "alice", "knows", "bob"))
	if got := grVertex(t, g, "alice"); got != "admin{name=Alice A.}@4" {
		t.Errorf("alice after the second upsert = %q, want the new label and only the new properties", got)
	}
	if got := grEdge(t, g, "alice", "knows", "bob"); got != "{}@5" {
		t.Errorf("edge after an upsert without properties = %q", got)
	}
	// Two labels between the same vertices are two edges.
	grApply(t, g, 6, gEdge(6, "alice", "likes", "bob", "w=1"))
	// Several upserts of one vertex or edge in a batch: the last wins.
	grApply(t, g, 10, gVertex(7, "carol", "a", "n=1"), gEdge(8, "carol", "l", "bob", "n=1"), gVertex(9, "carol", "b"), gEdge(10, "carol", "l", "bob", "n=2"))
	if got := grVertex(t, g, "carol"); got != "b{}@9" {
		t.Errorf("carol after two upserts in a batch = %q", got)
	}
	if got := grEdge(t, g, "carol", "l", "bob"); got != "{n=2}@10" {
		t.Errorf("edge after two upserts in a batch = %q", got)
	}
	if got := grEdge(t, g, "alice", "knows", "bob"); got != "{}@5" {
		t.Errorf("knows after a likes upsert = %q", got)
	}
	if got := grVertex(t, g, "nobody"); got != "" {
		t.Errorf("missing vertex = %q", got)
	}
	if reopen != nil {
		g = reopen().(GraphBackend)
		if got := grVertex(t, g, "alice"); got != "admin{name=Alice A.}@4" {
			t.Errorf("alice after reopening = %q", got)
		}
		if cp, err := g.Checkpoint(context.Background()); err != nil || cp != 10 {
			t.Errorf("Checkpoint after reopening = %d, %v; want 10", cp, err)
		}
	}
}

func runGraphRedelivery(t *testing.T, cfg Config) {
	ctx := context.Background()
	g := grBackend(t, cfg)
	batch := []*prismv1.GraphChange{gVertex(1, "a", "x", "v=1"), gEdge(2, "a", "l", "b"), gVertex(3, "a", "x", "v=3")}
	grApply(t, g, 3, batch...)
	grApply(t, g, 3, batch...) // the same batch again: skipped
	if got := grVertex(t, g, "a"); got != "x{v=3}@3" {
		t.Errorf("a after applying a batch twice = %q", got)
	}
	// A redelivery of old seqs with a new one: only the new one applies.
	grApply(t, g, 4, gVertex(1, "a", "old"), gDelEdge(2, "a", "l", "b"), gVertex(4, "c", "y"))
	if got := grVertex(t, g, "a"); got != "x{v=3}@3" {
		t.Errorf("a after a redelivered change = %q", got)
	}
	if got := grEdge(t, g, "a", "l", "b"); got != "{}@2" {
		t.Errorf("a redelivered delete removed the edge: %q", got)
	}
	// through at the checkpoint changes nothing.
	grApply(t, g, 4, gDelVertex(4, "c"))
	if got := grVertex(t, g, "c"); got != "y{}@4" {
		t.Errorf("a batch at the checkpoint deleted c: %q", got)
	}
	// Markers only: the checkpoint moves, nothing else.
	grApply(t, g, 9)
	if cp, err := g.Checkpoint(ctx); err != nil || cp != 9 {
		t.Errorf("Checkpoint = %d, %v; want 9", cp, err)
	}
	grApply(t, g, 9) // the projector's probe
}

func runGraphDeletes(t *testing.T, cfg Config) {
	g := grBackend(t, cfg)
	changes := []*prismv1.GraphChange{gVertex(1, "a", "n"), gVertex(2, "b", "n"), gVertex(3, "c", "n")}
	changes = append(changes, gEdges(4, "a-l->b", "b-l->c", "c-l->a", "b-m->b", "c-l->c")...)
	grApply(t, g, 8, changes...)
	grApply(t, g, 9, gDelEdge(9, "c", "l", "c"))
	if got := grEdge(t, g, "c", "l", "c"); got != "" {
		t.Errorf("deleted edge = %q", got)
	}
	// Deleting b deletes a->b, b->c and b->b; then an edge to b in the
	// same batch, after the delete, stays.
	grApply(t, g, 11, gDelVertex(10, "b"), gEdge(11, "c", "late", "b"))
	if got := grVertex(t, g, "b"); got != "" {
		t.Errorf("deleted vertex b = %q", got)
	}
	for _, e := range [][3]string{{"a", "l", "b"}, {"b", "l", "c"}, {"b", "m", "b"}} {
		if got := grEdge(t, g, e[0], e[1], e[2]); got != "" {
			t.Errorf("edge %v of the deleted vertex b is still there: %q", e, got)
		}
	}
	if got := grEdge(t, g, "c", "l", "a"); got != "{}@6" {
		t.Errorf("edge c->a, not b's, = %q", got)
	}
	if got := grEdge(t, g, "c", "late", "b"); got != "{}@11" {
		t.Errorf("an edge written after the delete = %q, want it kept", got)
	}
	got, _ := grNeighbours(t, g, &prismv1.NeighboursRequest{Id: "a", Direction: prismv1.Direction_DIRECTION_BOTH})
	if want := []string{"in:l:c"}; !slices.Equal(got, want) {
		t.Errorf("neighbours of a after deleting b = %v, want %v", got, want)
	}
	// Deleting what is not there changes nothing.
	grApply(t, g, 13, gDelVertex(12, "nobody"), gDelEdge(13, "a", "x", "c"))
	if got := grVertex(t, g, "a"); got != "n{}@1" {
		t.Errorf("a after deleting absent things = %q", got)
	}
	// A vertex upsert after its delete brings back the vertex, not its edges.
	grApply(t, g, 14, gVertex(14, "b", "n"))
	if got := grEdge(t, g, "a", "l", "b"); got != "" {
		t.Errorf("re-creating b brought back a->b: %q", got)
	}
}

func runGraphDangling(t *testing.T, cfg Config) {
	g := grBackend(t, cfg)
	grApply(t, g, 2, gEdge(1, "ghost", "l", "x"), gEdge(2, "x", "l", "y"))
	if got := grEdge(t, g, "ghost", "l", "x"); got != "{}@1" {
		t.Errorf("an edge between missing vertices = %q, want it stored", got)
	}
	if got := grVertex(t, g, "ghost"); got != "" {
		t.Errorf("the edge created vertex ghost: %q", got)
	}
	if got := grTraverse(t, g, &prismv1.TraverseRequest{Start: "ghost", Depth: 3, MaxResults: 10}); !slices.Equal(got, []string{"x:1", "y:2"}) {
		t.Errorf("traversal through missing vertices = %v", got)
	}
}

func runGraphNeighbours(t *testing.T, cfg Config) {
	ctx := context.Background()
	g := grBackend(t, cfg)
	// v has out edges of labels a and b to several vertices, in edges,
	// and a self loop.
	changes := gEdges(1,
		"v-b->x2", "v-a->x3", "v-a->x1", "v-b->x1", "v-c->x9", "v-a->x2",
		"y1-a->v", "y3-a->v", "y2-b->v", "y0-c->v",
		"v-s->v", "other-a->x1")
	grApply(t, g, uint64(len(changes)), changes...)
	out := []string{"out:a:x1", "out:a:x2", "out:a:x3", "out:b:x1", "out:b:x2", "out:c:x9", "out:s:v"}
	in := []string{"in:a:y1", "in:a:y3", "in:b:y2", "in:c:y0", "in:s:v"}
	for _, c := range []struct {
		name   string
		dir    prismv1.Direction
		labels []string
		want   []string
	}{
		{"out", prismv1.Direction_DIRECTION_OUT, nil, out},
		{"in", prismv1.Direction_DIRECTION_IN, nil, in},
		{"both", prismv1.Direction_DIRECTION_BOTH, nil, append(slices.Clone(out), in...)},
		{"out a", prismv1.Direction_DIRECTION_OUT, []string{"a"}, out[:3]},
		{"both b c", prismv1.Direction_DIRECTION_BOTH, []string{"c", "b"}, []string{"out:b:x1", "out:b:x2", "out:c:x9", "in:b:y2", "in:c:y0"}},
		{"unknown label", prismv1.Direction_DIRECTION_BOTH, []string{"zz"}, nil},
	} {
		for _, size := range []uint32{0, 1, 2, 3, 7, 12} {
			got, pages := grNeighbours(t, g, &prismv1.NeighboursRequest{Id: "v", Direction: c.dir, Labels: c.labels, PageSize: size})
			if !slices.Equal(got, c.want) {
				t.Errorf("%s size %d: %v, want %v", c.name, size, got, c.want)
			}
			if n := effectivePageSize(size); len(c.want) > 0 && pages != (len(c.want)+n-1)/n && pages != (len(c.want)+n-1)/n+1 {
				t.Errorf("%s size %d: %d pages for %d neighbours", c.name, size, pages, len(c.want))
			}
		}
	}
	resp, err := g.Neighbours(ctx, &prismv1.NeighboursRequest{Id: "v", PageSize: 1})
	if err != nil || len(resp.GetNeighbours()) != 1 {
		t.Fatalf("first page = %v, %v", resp, err)
	}
	if e := resp.GetNeighbours()[0].GetEdge(); e.GetRevision() != 3 || e.GetFrom() != "v" || e.GetTo() != "x1" {
		t.Errorf("neighbour edge = %v, want v -a-> x1 at revision 3", e)
	}
	if got, _ := grNeighbours(t, g, &prismv1.NeighboursRequest{Id: "lonely"}); len(got) != 0 {
		t.Errorf("a vertex without edges has neighbours %v", got)
	}
	if _, err := g.Neighbours(ctx, &prismv1.NeighboursRequest{Id: "v", PageToken: "not a token!"}); !errors.Is(err, cfg.Errors.InvalidPageToken) {
		t.Errorf("bad page token: %v, want InvalidPageToken", err)
	}
}

func runGraphTraverse(t *testing.T, cfg Config) {
	ctx := context.Background()
	g := grBackend(t, cfg)
	// s -> a -> c -> e, s -> b -> c (c at depth 2 both ways), d -> s,
	// a cycle e -> s, and f reached only by label m.
	changes := gEdges(1, "s-l->a", "s-l->b", "a-l->c", "b-l->c", "c-l->e", "e-l->s", "d-l->s", "b-m->f")
	grApply(t, g, uint64(len(changes)), changes...)
	out := prismv1.Direction_DIRECTION_OUT
	for _, c := range []struct {
		name   string
		req    *prismv1.TraverseRequest
		want   []string
		tooMny bool
	}{
		{"depth 1", &prismv1.TraverseRequest{Start: "s", Depth: 1, MaxResults: 10}, []string{"a:1", "b:1"}, false},
		{"depth 2", &prismv1.TraverseRequest{Start: "s", Depth: 2, MaxResults: 10}, []string{"a:1", "b:1", "c:2", "f:2"}, false},
		{"depth 5, cycle back to the start", &prismv1.TraverseRequest{Start: "s", Depth: 5, MaxResults: 10}, []string{"a:1", "b:1", "c:2", "f:2", "e:3"}, false},
		{"label l", &prismv1.TraverseRequest{Start: "s", Depth: 5, Labels: []string{"l"}, MaxResults: 10}, []string{"a:1", "b:1", "c:2", "e:3"}, false},
		{"labels l m", &prismv1.TraverseRequest{Start: "s", Depth: 2, Labels: []string{"m", "l"}, MaxResults: 10}, []string{"a:1", "b:1", "c:2", "f:2"}, false},
		{"in", &prismv1.TraverseRequest{Start: "s", Depth: 2, Direction: prismv1.Direction_DIRECTION_IN, MaxResults: 10}, []string{"d:1", "e:1", "c:2"}, false},
		{"both", &prismv1.TraverseRequest{Start: "c", Depth: 1, Direction: prismv1.Direction_DIRECTION_BOTH, MaxResults: 10}, []string{"a:1", "b:1", "e:1"}, false},
		{"no edges", &prismv1.TraverseRequest{Start: "f", Depth: 3, Direction: out, MaxResults: 10}, nil, false},
		{"exactly max_results", &prismv1.TraverseRequest{Start: "s", Depth: 2, MaxResults: 4}, []string{"a:1", "b:1", "c:2", "f:2"}, false},
		{"past max_results", &prismv1.TraverseRequest{Start: "s", Depth: 2, MaxResults: 3}, nil, true},
	} {
		if c.tooMny {
			_, err := g.Traverse(ctx, c.req)
			if !errors.Is(err, cfg.Errors.InvalidRequest) {
				t.Errorf("%s: %v, want InvalidRequest", c.name, err)
			}
			continue
		}
		if got := grTraverse(t, g, c.req); !slices.Equal(got, c.want) {
			t.Errorf("%s: %v, want %v", c.name, got, c.want)
		}
	}
	for _, req := range []*prismv1.TraverseRequest{{Depth: 1, MaxResults: 1}, {Start: "s", MaxResults: 1}, {Start: "s", Depth: 1}} {
		if _, err := g.Traverse(ctx, req); !errors.Is(err, cfg.Errors.InvalidRequest) {
			t.Errorf("Traverse(%v) = %v, want InvalidRequest", req, err)
		}
	}
}

func runGraphPath(t *testing.T, cfg Config) {
	ctx := context.Background()
	g := grBackend(t, cfg)
	// Two shortest paths s..t of 3 edges (via a and via b; b's are
	// smaller read back from t: p2 < r1, though a < b), one longer via z,
	// and a label that makes a shortcut.
	changes := gEdges(1,
		"s-l->a", "a-l->r1", "r1-l->t",
		"s-l->b", "b-l->p2", "p2-l->t",
		"s-l->z1", "z1-l->z2", "z2-l->z3", "z3-l->t",
		"s-k->t2", "t2-k->t", "t2-j->t",
		"u-l->s")
	changes = append(changes, gEdge(uint64(len(changes)+1), "p2", "l", "q", "w=7"))
	grApply(t, g, uint64(len(changes)), changes...)
	req := func(from, to string, depth uint32, dir prismv1.Direction, labels ...string) *prismv1.ShortestPathRequest {
		return &prismv1.ShortestPathRequest{From: from, To: to, MaxDepth: depth, Direction: dir, Labels: labels}
	}
	out, in, both := prismv1.Direction_DIRECTION_OUT, prismv1.Direction_DIRECTION_IN, prismv1.Direction_DIRECTION_BOTH
	for _, c := range []struct {
		name string
		req  *prismv1.ShortestPathRequest
		want string
	}{
		{"label l, ties broken by ids read back from to", req("s", "t", 4, out, "l"), "s -l-> b -l-> p2 -l-> t"},
		{"any label: the shortcut, smallest label", req("s", "t", 4, out), "s -k-> t2 -j-> t"},
		{"labels j k", req("s", "t", 4, out, "k", "j"), "s -k-> t2 -j-> t"},
		{"beyond max_depth", req("s", "t", 2, out, "l"), ""},
		{"exactly max_depth", req("s", "t", 3, out, "l"), "s -l-> b -l-> p2 -l-> t"},
		{"a label no edge has", req("s", "t", 4, out, "nope"), ""},
		{"in", req("t", "u", 5, in, "l"), "t <-l- r1 <-l- a <-l- s <-l- u"},
		{"both, ties by ids", req("q", "a", 4, both, "l"), "q <-l- p2 -l-> t <-l- r1 <-l- a"},
		{"unreachable", req("t", "s", 4, out), ""},
		{"to itself", req("s", "s", 1, out), "s"},
		{"missing vertices", req("nobody", "t", 3, out), ""},
	} {
		if got := grPath(t, g, c.req); got != c.want {
			t.Errorf("%s: %q, want %q", c.name, got, c.want)
		}
	}
	resp, err := g.ShortestPath(ctx, req("p2", "q", 1, out))
	if err != nil || len(resp.GetEdges()) != 1 || resp.GetEdges()[0].GetProperties()["w"] != "7" || resp.GetEdges()[0].GetRevision() != uint64(len(changes)) {
		t.Errorf("path edge = %v, %v; want p2 -l-> q with its properties and revision", resp, err)
	}
	for _, r := range []*prismv1.ShortestPathRequest{{To: "t", MaxDepth: 1}, {From: "s", MaxDepth: 1}, {From: "s", To: "t"}} {
		if _, err := g.ShortestPath(ctx, r); !errors.Is(err, cfg.Errors.InvalidRequest) {
			t.Errorf("ShortestPath(%v) = %v, want InvalidRequest", r, err)
		}
	}
}

func runGraphInvalid(t *testing.T, cfg Config) {
	ctx := context.Background()
	g := grBackend(t, cfg)
	for _, c := range []*prismv1.GraphChange{
		{Seq: 2},
		{Seq: 2, Event: &prismv1.GraphEvent{}},
		gVertex(2, "", "n"),
		gVertex(2, "v", ""),
		gEdge(2, "a", "", "b"),
		gEdge(2, "a", "l", "b\x00c"),
		{Seq: 2, Event: &prismv1.GraphEvent{Element: &prismv1.GraphEvent_Vertex{Vertex: &prismv1.Vertex{Id: "v", Label: "n"}}, Delete: true}},
	} {
		err := g.ApplyGraph(ctx, []*prismv1.GraphChange{gVertex(1, "ok", "n"), c}, 2)
		if !errors.Is(err, cfg.Errors.InvalidChange) {
			t.Errorf("ApplyGraph(%v) = %v, want InvalidChange", c, err)
		}
	}
	if got := grVertex(t, g, "ok"); got != "" {
		t.Errorf("a refused batch stored %q", got)
	}
	if err := g.ApplyGraph(ctx, []*prismv1.GraphChange{gVertex(3, "a", "n")}, 2); !errors.Is(err, cfg.Errors.InvalidBatch) {
		t.Errorf("seq above through: %v, want InvalidBatch", err)
	}
	if err := g.ApplyGraph(ctx, []*prismv1.GraphChange{gVertex(2, "a", "n"), gVertex(2, "b", "n")}, 2); !errors.Is(err, cfg.Errors.InvalidBatch) {
		t.Errorf("repeated seq: %v, want InvalidBatch", err)
	}
}
