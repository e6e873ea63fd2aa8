package replay_test

import (
	"context"
	"fmt"
	"testing"

	"github.com/prism-data/prism/backends/postgres"
	"github.com/prism-data/prism/backends/postgres/pgtest"
	prismv1 "github.com/prism-data/prism/proto/prism/v1"
	"github.com/prism-data/prism/replay"
	"github.com/prism-data/prism/subjects"
)

// A graph namespace's stream replays into PostgreSQL (the migration by
// replay of a SQLite namespace): the same vertices, edges, revisions and
// neighbour order as the SQLite projection of the same stream, vertex
// deletes having taken their edges at their point of the stream.
func TestJobReplaysAGraphNamespaceIntoPostgres(t *testing.T) {
	dsn := pgtest.DSN(t)
	ctx := context.Background()
	js := startJetStream(t)
	ns := namespace(t, js, pgtest.Namespace(t, "gr-replay-"))
	vertex := func(i int) string { return fmt.Sprintf("v%02d", i%20) }
	// model is the state the stream describes, kept by hand.
	model := map[string]string{} // "v:<id>" or "e:<from> <label> <to>" -> properties
	var last uint64
	for i := range 120 {
		var ev *prismv1.GraphEvent
		switch {
		case i%17 == 16:
			ev = &prismv1.GraphEvent{Element: &prismv1.GraphEvent_Vertex{Vertex: &prismv1.Vertex{Id: vertex(i)}}, Delete: true}
		case i%11 == 10:
			ev = &prismv1.GraphEvent{Element: &prismv1.GraphEvent_Edge{Edge: &prismv1.Edge{From: vertex(i), Label: "l", To: vertex(i * 7)}}, Delete: true}
		case i%3 == 0:
			ev = &prismv1.GraphEvent{Element: &prismv1.GraphEvent_Vertex{Vertex: &prismv1.Vertex{Id: vertex(i), Label: "n", Properties: map[string]string{"i": fmt.Sprint(i)}}}}
		default:
			ev = &prismv1.GraphEvent{Element: &prismv1.GraphEvent_Edge{Edge: &prismv1.Edge{From: vertex(i), Label: []string{"l", "m"}[i%2], To: vertex(i * 7), Properties: map[string]string{"i": fmt.Sprint(i)}}}}
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
	run := func(target string, storage replay.Target) replay.Store {
		t.Helper()
		return replayInto(t, js, ns, subjects.AbstractionGraph, target, storage, last)
	}
	schema, err := replay.PostgresTargetSchema(ns, "postgres")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = postgres.DropSchema(context.Background(), dsn, ns, postgres.WithSchema(schema)) })
	lite := run("sqlite", replay.SQLiteTarget{Path: t.TempDir() + "/gr.db"})
	pg := run("postgres", replay.PostgresTarget{DSN: dsn, Namespace: ns, Schema: schema})

	type reader interface {
		GetVertex(ctx context.Context, id string) (*prismv1.Vertex, error)
		Neighbours(ctx context.Context, req *prismv1.NeighboursRequest) (*prismv1.NeighboursResponse, error)
	}
	dump := func(st replay.Store) (string, int) {
		r := st.(reader)
		out, edges := "", 0
		for i := range 20 {
			v, err := r.GetVertex(ctx, vertex(i))
			if err != nil {
				t.Fatal(err)
			}
			out += fmt.Sprintf("%s:%s%v@%d [", vertex(i), v.GetLabel(), v.GetProperties(), v.GetRevision())
			page, err := r.Neighbours(ctx, &prismv1.NeighboursRequest{Id: vertex(i), Direction: prismv1.Direction_DIRECTION_BOTH, PageSize: 1000})
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
	a, edges := dump(lite)
	b, _ := dump(pg)
	if a != b {
		t.Errorf("sqlite and postgres differ:\n%s\n%s", a, b)
	}
	if edges == 0 {
		t.Fatal("the replay stored no edges")
	}
	// Both hold exactly the model's vertices and edges.
	got := map[string]string{}
	for i := range 20 {
		v, err := lite.(reader).GetVertex(ctx, vertex(i))
		if err != nil {
			t.Fatal(err)
		}
		if v != nil {
			got["v:"+v.GetId()] = fmt.Sprint(v.GetProperties())
		}
		page, err := lite.(reader).Neighbours(ctx, &prismv1.NeighboursRequest{Id: vertex(i), PageSize: 1000})
		if err != nil {
			t.Fatal(err)
		}
		for _, n := range page.GetNeighbours() {
			e := n.GetEdge()
			got["e:"+e.GetFrom()+" "+e.GetLabel()+" "+e.GetTo()] = fmt.Sprint(e.GetProperties())
		}
	}
	if fmt.Sprint(got) != fmt.Sprint(model) {
		t.Errorf("the replay holds\n%v\nthe stream says\n%v", got, model)
	}
}
