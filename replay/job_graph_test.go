package replay_test

import (
	"context"
	"fmt"
	"slices"
	"strings"
	"testing"

	"github.com/jackc/pgx/v5"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/prism-data/prism/backends/neptune"
	"github.com/prism-data/prism/backends/neptune/neptunetest"
	"github.com/prism-data/prism/backends/postgres"
	"github.com/prism-data/prism/backends/postgres/pgtest"
	prismv1 "github.com/prism-data/prism/proto/prism/v1"
	"github.com/prism-data/prism/replay"
	"github.com/prism-data/prism/subjects"
)

// graphVertex is the id of the i-th vertex of publishGraphStream's stream.
func graphVertex(i int) string { return fmt.Sprintf("v%02d", i%20) }

// publishGraphStream publishes 120 vertex and edge upserts and deletes of
// 20 vertices into graph namespace ns, and returns the state the stream
// describes, kept by hand ("v:<id>" or "e:<from> <label> <to>" ->
// properties), and the last sequence.
func publishGraphStream(t *testing.T, js jetstream.JetStream, ns string) (model map[string]string, last uint64) {
	t.Helper()
	model = map[string]string{}
	for i := range 120 {
		var ev *prismv1.GraphEvent
		switch {
		case i%17 == 16:
			ev = &prismv1.GraphEvent{Element: &prismv1.GraphEvent_Vertex{Vertex: &prismv1.Vertex{Id: graphVertex(i)}}, Delete: true}
		case i%11 == 10:
			ev = &prismv1.GraphEvent{Element: &prismv1.GraphEvent_Edge{Edge: &prismv1.Edge{From: graphVertex(i), Label: "l", To: graphVertex(i * 7)}}, Delete: true}
		case i%3 == 0:
			ev = &prismv1.GraphEvent{Element: &prismv1.GraphEvent_Vertex{Vertex: &prismv1.Vertex{Id: graphVertex(i), Label: "n", Properties: map[string]string{"i": fmt.Sprint(i)}}}}
		default:
			ev = &prismv1.GraphEvent{Element: &prismv1.GraphEvent_Edge{Edge: &prismv1.Edge{From: graphVertex(i), Label: []string{"l", "m"}[i%2], To: graphVertex(i * 7), Properties: map[string]string{"i": fmt.Sprint(i)}}}}
		}
		switch v, e := ev.GetVertex(), ev.GetEdge(); {
		case v != nil && ev.GetDelete():
			delete(model, "v:"+v.GetId())
			for k := range model {
				var from, label, to string
				if n, _ := fmt.Sscanf(k, "e:%s %s %s", &from, &label, &to); n == 3 && (from == v.GetId() || to == v.GetId()) {
					delete(model, k)
				}
			}
		case v != nil:
			model["v:"+v.GetId()] = fmt.Sprint(v.GetProperties())
		case ev.GetDelete():
			delete(model, "e:"+e.GetFrom()+" "+e.GetLabel()+" "+e.GetTo())
		default:
			model["e:"+e.GetFrom()+" "+e.GetLabel()+" "+e.GetTo()] = fmt.Sprint(e.GetProperties())
		}
		msg, err := subjects.NewGraphEvent(subjects.EventMeta{Namespace: ns}, ev)
		if err != nil {
			t.Fatal(err)
		}
		last = publishMsg(t, js, msg)
	}
	return model, last
}

type graphReader interface {
	GetVertex(ctx context.Context, id string) (*prismv1.Vertex, error)
	Neighbours(ctx context.Context, req *prismv1.NeighboursRequest) (*prismv1.NeighboursResponse, error)
}

// dumpGraph renders the vertices of publishGraphStream and their
// neighbours (both ways, in order) with revisions, and counts the edges.
func dumpGraph(t *testing.T, st replay.Store) (string, int) {
	t.Helper()
	ctx := context.Background()
	r := st.(graphReader)
	out, edges := "", 0
	for i := range 20 {
		v, err := r.GetVertex(ctx, graphVertex(i))
		if err != nil {
			t.Fatal(err)
		}
		out += fmt.Sprintf("%s:%s%v@%d [", graphVertex(i), v.GetLabel(), v.GetProperties(), v.GetRevision())
		page, err := r.Neighbours(ctx, &prismv1.NeighboursRequest{Id: graphVertex(i), Direction: prismv1.Direction_DIRECTION_BOTH, PageSize: 1000})
		if err != nil {
			t.Fatal(err)
		}
		for _, n := range page.GetNeighbours() {
			e := n.GetEdge()
			out += fmt.Sprintf("%s %s-%s->%s%v@%d, ", n.GetDirection(), e.GetFrom(), e.GetLabel(), e.GetTo(), e.GetProperties(), e.GetRevision())
			edges++
		}
		out += "]\n"
	}
	return out, edges
}

// graphState is the state st holds, in publishGraphStream's model form.
func graphState(t *testing.T, st replay.Store) map[string]string {
	t.Helper()
	ctx := context.Background()
	got := map[string]string{}
	for i := range 20 {
		v, err := st.(graphReader).GetVertex(ctx, graphVertex(i))
		if err != nil {
			t.Fatal(err)
		}
		if v != nil {
			got["v:"+v.GetId()] = fmt.Sprint(v.GetProperties())
		}
		page, err := st.(graphReader).Neighbours(ctx, &prismv1.NeighboursRequest{Id: graphVertex(i), PageSize: 1000})
		if err != nil {
			t.Fatal(err)
		}
		for _, n := range page.GetNeighbours() {
			e := n.GetEdge()
			got["e:"+e.GetFrom()+" "+e.GetLabel()+" "+e.GetTo()] = fmt.Sprint(e.GetProperties())
		}
	}
	return got
}

// checkGraphReplay checks that other holds what lite (the SQLite replay)
// holds, with the same revisions and neighbour order, and that lite holds
// exactly model.
func checkGraphReplay(t *testing.T, model map[string]string, lite, other replay.Store, name string) {
	t.Helper()
	a, edges := dumpGraph(t, lite)
	b, _ := dumpGraph(t, other)
	if a != b {
		t.Errorf("sqlite and %s differ:\n%s\n%s", name, a, b)
	}
	if edges == 0 {
		t.Fatal("the replay stored no edges")
	}
	if got := graphState(t, lite); fmt.Sprint(got) != fmt.Sprint(model) {
		t.Errorf("the replay holds\n%v\nthe stream says\n%v", got, model)
	}
}

// A graph namespace's stream replays into PostgreSQL (the migration by
// replay of a SQLite namespace): the same vertices, edges, revisions and
// neighbour order as the SQLite projection of the same stream, vertex
// deletes having taken their edges at their point of the stream.
func TestJobReplaysAGraphNamespaceIntoPostgres(t *testing.T) {
	ctx := context.Background()
	dsn := pgtest.DSN(t)
	js := startJetStream(t)
	ns := namespace(t, js, pgtest.Namespace(t, "gr-replay-"))
	model, last := publishGraphStream(t, js, ns)
	schema, err := replay.PostgresTargetSchema(ns, "postgres")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = postgres.DropSchema(context.Background(), dsn, ns, postgres.WithSchema(schema)) })
	lite := replayInto(t, js, ns, subjects.AbstractionGraph, "sqlite", replay.SQLiteTarget{Path: t.TempDir() + "/gr.db"}, last)
	pg := replayInto(t, js, ns, subjects.AbstractionGraph, "postgres", replay.PostgresTarget{DSN: dsn, Namespace: ns, Schema: schema}, last)
	checkGraphReplay(t, model, lite, pg, "postgres")

	// Verify compares every vertex and edge with its label, properties
	// and revision: the two targets match, and rows changed behind the
	// projector's back in the target are reported.
	if rep := verifyGraph(t, lite, pg); !rep.Passed() || rep.Compared != int64(len(model)) || rep.NewRecords != int64(len(model)) {
		t.Fatalf("verify of the replayed target = %+v, want the %d elements of the stream, all matching", rep, len(model))
	}
	conn, err := pgx.Connect(ctx, dsn)
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close(ctx)
	tamper := func(q string, args ...any) {
		t.Helper()
		if tag, err := conn.Exec(ctx, strings.ReplaceAll(q, "{s}", pgx.Identifier{schema}.Sanitize()), args...); err != nil || tag.RowsAffected() != 1 {
			t.Fatalf("%s: %v, %d rows", q, err, tag.RowsAffected())
		}
	}
	e, v := graphElements(model)
	tamper(`UPDATE {s}.g_edges SET props = '\x'::bytea WHERE (src, label, dst) = ($1, $2, $3)`, e[0][0], e[0][1], e[0][2])
	tamper(`DELETE FROM {s}.g_edges WHERE (src, label, dst) = ($1, $2, $3)`, e[1][0], e[1][1], e[1][2])
	tamper(`UPDATE {s}.g_vertices SET label = 'x' WHERE id = $1`, v[0])
	tamper(`DELETE FROM {s}.g_vertices WHERE id = $1`, v[1])
	rep := verifyGraph(t, lite, pg)
	wantDiff := []string{edgeRecord(e[0]), vertexRecord(v[0])}
	wantMissing := []string{edgeRecord(e[1]), vertexRecord(v[1])}
	if rep.Passed() || rep.Differing != 2 || rep.Missing != 2 || rep.Extra != 0 || !slices.Equal(rep.DifferingIDs, wantDiff) || !slices.Equal(rep.MissingIDs, wantMissing) {
		t.Errorf("verify of a tampered target = %+v, want %q differing and %q missing", rep, wantDiff, wantMissing)
	}
}

// diverge applies events to st alone as one batch, at sequences seq,
// seq+1, …: what a target that went wrong would hold.
func diverge(t *testing.T, st replay.Store, seq uint64, events ...*prismv1.GraphEvent) {
	t.Helper()
	changes := make([]*prismv1.GraphChange, len(events))
	for i, ev := range events {
		changes[i] = &prismv1.GraphChange{Seq: seq + uint64(i), Event: ev}
	}
	type applier interface {
		ApplyGraph(ctx context.Context, changes []*prismv1.GraphChange, through uint64) error
	}
	if err := st.(applier).ApplyGraph(context.Background(), changes, seq+uint64(len(changes))-1); err != nil {
		t.Fatal(err)
	}
}

// verifyGraph verifies graph target new against old, with small pages and
// ranges so that pages cross from the edges to the vertices.
func verifyGraph(t *testing.T, old, new replay.Store) replay.Report {
	t.Helper()
	rep, err := replay.Verify(context.Background(), replay.GraphVerifySource(old.(replay.GraphSource)), replay.GraphVerifySource(new.(replay.GraphSource)),
		replay.WithRangeSize(4), replay.WithPageSize(7))
	if err != nil {
		t.Fatal(err)
	}
	return rep
}

// graphElements are the edges (from, label, to) and vertex ids of a
// publishGraphStream model, each sorted.
func graphElements(model map[string]string) (edges [][3]string, vertices []string) {
	for k := range model {
		if id, ok := strings.CutPrefix(k, "v:"); ok {
			vertices = append(vertices, id)
			continue
		}
		f := strings.Fields(strings.TrimPrefix(k, "e:"))
		edges = append(edges, [3]string{f[0], f[1], f[2]})
	}
	slices.SortFunc(edges, func(a, b [3]string) int { return slices.Compare(a[:], b[:]) })
	slices.Sort(vertices)
	return edges, vertices
}

// edgeRecord and vertexRecord are the ids a report gives an edge and a
// vertex (GraphVerifySource).
func edgeRecord(e [3]string) string {
	return replay.FormatID([]byte("e\x00" + e[0] + "\x00" + e[1] + "\x00" + e[2]))
}

func vertexRecord(id string) string { return replay.FormatID([]byte("v\x00" + id)) }

// The same stream replays into Neptune (the stand-in): the migration by
// replay of a SQLite graph namespace to Neptune, with the same result as
// SQLite's, and a Drop that empties the graph.
func TestJobReplaysAGraphNamespaceIntoNeptune(t *testing.T) {
	js := startJetStream(t)
	ns := namespace(t, js, "gr-neptune")
	model, last := publishGraphStream(t, js, ns)
	srv := neptunetest.New(t, "")
	target := replay.NeptuneTarget{Endpoint: srv.URL, Graph: neptune.GraphName(ns, "np"), Options: []neptune.Option{
		neptune.WithHTTPClient(srv.HTTPClient()), neptune.WithCredentials(srv.CredentialsProvider(), srv.Region)}}
	lite := replayInto(t, js, ns, subjects.AbstractionGraph, "sqlite", replay.SQLiteTarget{Path: t.TempDir() + "/gr.db"}, last)
	np := replayInto(t, js, ns, subjects.AbstractionGraph, "np", target, last)
	checkGraphReplay(t, model, lite, np, "neptune")
	// Verify compares the Neptune graph with the SQLite one: they match
	// (the stub nodes of edges to vertices that do not exist are not
	// vertices). Then one more batch, different on each side, at the same
	// sequence: what differs is reported, the stub of ghost still not.
	if rep := verifyGraph(t, lite, np); !rep.Passed() || rep.Compared != int64(len(model)) || rep.NewRecords != int64(len(model)) {
		t.Fatalf("verify of the replayed Neptune target = %+v, want the %d elements of the stream, all matching", rep, len(model))
	}
	vertex := func(id, label string) *prismv1.GraphEvent {
		return &prismv1.GraphEvent{Element: &prismv1.GraphEvent_Vertex{Vertex: &prismv1.Vertex{Id: id, Label: label}}}
	}
	edge := func(from, label, to string) *prismv1.GraphEvent {
		return &prismv1.GraphEvent{Element: &prismv1.GraphEvent_Edge{Edge: &prismv1.Edge{From: from, Label: label, To: to}}}
	}
	diverge(t, lite, last+1, vertex("zz", "a"), edge("v01", "l", "zz"), edge("v01", "m", "ghost"))
	diverge(t, np, last+1, vertex("zz", "b"), vertex("extra", "a"), edge("v01", "m", "ghost"))
	rep := verifyGraph(t, lite, np)
	if rep.Passed() || rep.Differing != 1 || rep.Missing != 1 || rep.Extra != 1 || !slices.Equal(rep.DifferingIDs, []string{vertexRecord("zz")}) ||
		!slices.Equal(rep.MissingIDs, []string{edgeRecord([3]string{"v01", "l", "zz"})}) || !slices.Equal(rep.ExtraIDs, []string{vertexRecord("extra")}) {
		t.Errorf("verify of diverged targets = %+v, want zz differing, edge v01 l zz missing, extra extra", rep)
	}
	if err := target.Drop(context.Background()); err != nil {
		t.Fatal(err)
	}
	if got := graphState(t, np); len(got) != 0 {
		t.Errorf("the graph after Drop holds %v", got)
	}
}
