package itest

import (
	"context"
	"fmt"
	"slices"
	"testing"

	"github.com/prism-data/prism/backends/postgres"
	"github.com/prism-data/prism/backends/postgres/pgtest"
	prismv1 "github.com/prism-data/prism/proto/prism/v1"
	"github.com/prism-data/prism/replay"
)

// TestReplayGraphNamespaceIntoPostgres is the migration by replay of a
// graph namespace: prism serve projects it into SQLite, `prism replay
// --backend postgres` rebuilds it in PostgreSQL from the stream, and the
// rebuilt target answers every vertex and neighbours read as the served
// one does.
func TestReplayGraphNamespaceIntoPostgres(t *testing.T) {
	dsn := pgtest.DSN(t)
	ns := pgtest.Namespace(t, "itest_gr_")
	dir := t.TempDir()
	p := startPrism(t, dir, 0, "--config", configDir(t, fmt.Sprintf("name: %s\nabstraction: graph\nbackend: sqlite\nconsistency: strong\n", ns)))
	_, c := p.connect(t)
	g := c.Graph(ns)
	ctx := testCtx(t)
	id := func(i int) string { return fmt.Sprintf("v%02d", i%30) }
	for i := range 300 {
		var err error
		switch {
		case i%23 == 22:
			_, err = g.DeleteVertex(ctx, id(i))
		case i%13 == 12:
			_, err = g.DeleteEdge(ctx, id(i), "l", id(i*7))
		case i%4 == 0:
			_, err = g.UpsertVertex(ctx, id(i), "n", map[string]string{"i": fmt.Sprint(i)})
		default:
			_, err = g.UpsertEdge(ctx, id(i), []string{"l", "m"}[i%2], id(i*7), map[string]string{"i": fmt.Sprint(i)})
		}
		if err != nil {
			t.Fatalf("write %d: %v", i, err)
		}
	}
	p.mustCLI(t, "replay", ns, "--target", "pg", "--backend", "postgres", "--postgres-dsn", dsn, "--data-dir", dir)

	schema, err := replay.PostgresTargetSchema(ns, "pg")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = postgres.DropSchema(context.Background(), dsn, ns, postgres.WithSchema(schema)) })
	pg, err := postgres.Open(ctx, dsn, ns, postgres.WithSchema(schema))
	if err != nil {
		t.Fatal(err)
	}
	defer pg.Close()
	edges := 0
	for i := range 30 {
		served, serr := g.Vertex(ctx, id(i))
		rebuilt, err := pg.GetVertex(ctx, id(i))
		if err != nil {
			t.Fatal(err)
		}
		if (serr != nil) != (rebuilt == nil) || rebuilt != nil && (rebuilt.GetRevision() != served.GetRevision() || fmt.Sprint(rebuilt.GetProperties()) != fmt.Sprint(served.GetProperties())) {
			t.Errorf("vertex %s: served %v (%v), rebuilt %v", id(i), served, serr, rebuilt)
		}
		want, _, err := g.Neighbours(ctx, id(i), prismv1.Direction_DIRECTION_BOTH, nil)
		if err != nil {
			t.Fatal(err)
		}
		got, err := pg.Neighbours(ctx, &prismv1.NeighboursRequest{Id: id(i), Direction: prismv1.Direction_DIRECTION_BOTH})
		if err != nil {
			t.Fatal(err)
		}
		str := func(ns []*prismv1.Neighbour) []string {
			var out []string
			for _, n := range ns {
				out = append(out, fmt.Sprintf("%s %s %s@%d", n.GetDirection(), n.GetEdge().GetLabel(), n.GetId(), n.GetEdge().GetRevision()))
			}
			return out
		}
		if !slices.Equal(str(want), str(got.GetNeighbours())) {
			t.Errorf("neighbours of %s: served %v, rebuilt %v", id(i), str(want), str(got.GetNeighbours()))
		}
		edges += len(want)
	}
	if edges == 0 {
		t.Fatal("the served graph has no edges; the test compared nothing")
	}
}
