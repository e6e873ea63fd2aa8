package node_test

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"strings"
	"testing"

	"github.com/jackc/pgx/v5"

	"github.com/prism-data/prism/backends/neptune/neptunetest"
	"github.com/prism-data/prism/backends/postgres"
	"github.com/prism-data/prism/backends/postgres/pgtest"
	"github.com/prism-data/prism/client"
	"github.com/prism-data/prism/namespaces"
	"github.com/prism-data/prism/node"
	"github.com/prism-data/prism/node/nodetest"
	prismv1 "github.com/prism-data/prism/proto/prism/v1"
	"github.com/prism-data/prism/replay"
)

// graphModel is what a test wrote to a graph namespace: vertex id ->
// label, and the edges "from label to".
type graphModel struct {
	vertices map[string]string
	edges    map[string]bool
}

// graphWriter writes through g and keeps m up to date.
type graphWriter struct {
	t *testing.T
	g *client.Graph
	m graphModel
}

func (w *graphWriter) vertex(id, label string) {
	w.t.Helper()
	if _, err := w.g.UpsertVertex(context.Background(), id, label, map[string]string{"id": id}); err != nil {
		w.t.Fatal(err)
	}
	w.m.vertices[id] = label
}

func (w *graphWriter) edge(from, label, to string) {
	w.t.Helper()
	if _, err := w.g.UpsertEdge(context.Background(), from, label, to, map[string]string{"l": label}); err != nil {
		w.t.Fatal(err)
	}
	w.m.edges[from+" "+label+" "+to] = true
}

func (w *graphWriter) deleteVertex(id string) {
	w.t.Helper()
	if _, err := w.g.DeleteVertex(context.Background(), id); err != nil {
		w.t.Fatal(err)
	}
	delete(w.m.vertices, id)
	for e := range w.m.edges {
		if f := strings.Fields(e); f[0] == id || f[2] == id {
			delete(w.m.edges, e)
		}
	}
}

func (w *graphWriter) deleteEdge(from, label, to string) {
	w.t.Helper()
	if _, err := w.g.DeleteEdge(context.Background(), from, label, to); err != nil {
		w.t.Fatal(err)
	}
	delete(w.m.edges, from+" "+label+" "+to)
}

// size is the number of records verify compares: vertices and edges.
func (m graphModel) size() int64 { return int64(len(m.vertices) + len(m.edges)) }

// outEdges are the (label, to) of m's edges out of id, in the order
// Neighbours returns them.
func (m graphModel) outEdges(id string) []string {
	var out []string
	for e := range m.edges {
		if f := strings.Fields(e); f[0] == id {
			out = append(out, f[1]+" "+f[2])
		}
	}
	slices.Sort(out)
	return out
}

// graphMigration is one run of migrateGraph: a node config and the new
// target, with how to change a vertex's label behind the new target's
// projector (nil where the test cannot reach the store).
type graphMigration struct {
	cfg       node.Config
	name      string
	to        namespaces.Target
	setLabel  func(t *testing.T, id, label string)
	newTarget string
}

// migrateGraph migrates a SQLite graph namespace to c.to through a
// node: writes before the start and while shadowing, verify (a vertex
// changed in the new target is reported as differing, and the verify
// passes once it is put back), cutover, reads from the new target,
// finalize.
func migrateGraph(t *testing.T, c graphMigration) {
	ctx := context.Background()
	_, admin, cl := nodetest.Start(t, c.cfg)
	ns := namespaces.Namespace{Name: c.name, Abstraction: namespaces.AbstractionGraph, Backend: "sqlite", Consistency: namespaces.Strong}
	applyServed(t, admin, ns, 0)
	w := &graphWriter{t: t, g: cl.Graph(c.name, client.ReadYourWrites()), m: graphModel{vertices: map[string]string{}, edges: map[string]bool{}}}
	for i := range 20 {
		w.vertex(fmt.Sprintf("p%02d", i), "person")
	}
	for i := range 20 {
		w.edge(fmt.Sprintf("p%02d", i), "follows", fmt.Sprintf("p%02d", (i+1)%20))
		if i%2 == 0 {
			w.edge(fmt.Sprintf("p%02d", i), "knows", fmt.Sprintf("p%02d", i*3%20))
		}
	}
	w.edge("p03", "follows", "ghost") // an end that is no vertex
	w.deleteVertex("p07")
	w.deleteEdge("p10", "follows", "p11")

	if _, err := admin.StartMigration(ctx, c.name, c.to, namespaces.MigrationOptions{}, "test"); err != nil {
		t.Fatal(err)
	}
	waitMigration(t, admin, c.name, namespaces.MigrationShadowing)
	// Live writes reach both targets.
	w.vertex("p30", "robot")
	w.edge("p30", "follows", "p00")
	w.deleteEdge("p00", "knows", "p00")
	w.vertex("p01", "admin")

	if c.setLabel != nil {
		rep := verifyNow(t, admin, c.name)
		if !rep.Report.Passed() || rep.Report.Compared != w.m.size() {
			t.Fatalf("verify: %+v, want %d elements matching", rep, w.m.size())
		}
		c.setLabel(t, "p02", "robot")
		rep = verifyNow(t, admin, c.name)
		if rep.Report.Passed() || rep.Report.Differing != 1 || !slices.Equal(rep.Report.DifferingIDs, []string{replay.FormatID([]byte("v\x00p02"))}) || rep.State != namespaces.MigrationShadowing {
			t.Fatalf("verify of a tampered vertex: %+v", rep)
		}
		c.setLabel(t, "p02", "person")
	}
	rep := verifyNow(t, admin, c.name)
	if !rep.Report.Passed() || rep.Report.Compared != w.m.size() || rep.State != namespaces.MigrationVerified {
		t.Fatalf("verify: %+v, want the %d elements matching and the migration verified", rep, w.m.size())
	}

	if _, err := admin.Migrate(ctx, namespaces.AdminMigrateCutover, c.name, "test"); err != nil {
		t.Fatal(err)
	}
	waitRoles(t, admin, c.name, map[string]string{"sqlite": "shadow", c.newTarget: "primary"})
	if c.setLabel != nil {
		// Changed in the new target alone: a read that sees it was served
		// by the new target.
		c.setLabel(t, "p05", "served-by-new")
		if v, err := w.g.Vertex(ctx, "p05"); err != nil || v.GetLabel() != "served-by-new" {
			t.Fatalf("Vertex(p05) after the cutover = %v, %v, want the new target's label", v, err)
		}
		c.setLabel(t, "p05", "person")
	}
	checkGraphReads(t, w)
	w.vertex("p31", "robot")
	w.edge("p31", "follows", "p30")
	checkGraphReads(t, w)

	if _, err := admin.Migrate(ctx, namespaces.AdminMigrateFinalize, c.name, "test"); err != nil {
		t.Fatal(err)
	}
	waitRoles(t, admin, c.name, map[string]string{c.newTarget: "primary"})
	checkGraphReads(t, w)
}

// checkGraphReads checks the vertices and out edges of w's model, and a
// traversal, through w's client.
func checkGraphReads(t *testing.T, w *graphWriter) {
	t.Helper()
	ctx := context.Background()
	for _, id := range []string{"p00", "p01", "p03", "p06", "p07", "p10", "p30", "p31"} {
		v, err := w.g.Vertex(ctx, id)
		if err != nil && !errors.Is(err, client.ErrNotFound) {
			t.Fatal(err)
		}
		if want, ok := w.m.vertices[id]; v.GetLabel() != want || (err == nil) != ok {
			t.Errorf("Vertex(%s) = %v, %v, want label %q (exists %v)", id, v, err, want, ok)
		}
		got, _, err := w.g.Neighbours(ctx, id, prismv1.Direction_DIRECTION_OUT, nil)
		if err != nil {
			t.Fatal(err)
		}
		var edges []string
		for _, n := range got {
			edges = append(edges, n.GetEdge().GetLabel()+" "+n.GetId())
		}
		if want := w.m.outEdges(id); !slices.Equal(edges, want) {
			t.Errorf("Neighbours(%s, out) = %v, want %v", id, edges, want)
		}
	}
	reached, err := w.g.Traverse(ctx, &prismv1.TraverseRequest{Start: "p08", Depth: 2, Labels: []string{"follows"}, Direction: prismv1.Direction_DIRECTION_OUT, MaxResults: 10})
	if err != nil || fmt.Sprint(reached) != fmt.Sprint([]*prismv1.Reached{{Id: "p09", Depth: 1}, {Id: "p10", Depth: 2}}) {
		t.Errorf("Traverse(p08, 2 follows) = %v, %v, want p09 then p10", reached, err)
	}
}

// A graph namespace migrates from SQLite to PostgreSQL through a node:
// backfill, shadow, verify (which finds a vertex row changed in the new
// target), cutover (reads come from PostgreSQL), finalize.
func TestGraphMigrationToPostgres(t *testing.T) {
	dsn, name := pgtest.DSN(t), pgtest.Namespace(t, "grmig")
	conn, err := pgx.Connect(context.Background(), dsn)
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close(context.Background())
	schema, err := postgres.TargetSchemaName(name, "postgres")
	if err != nil {
		t.Fatal(err)
	}
	migrateGraph(t, graphMigration{cfg: node.Config{DataDir: t.TempDir(), PostgresDSN: dsn}, name: name, to: namespaces.Target{Backend: "postgres"}, newTarget: "postgres",
		setLabel: func(t *testing.T, id, label string) {
			t.Helper()
			tag, err := conn.Exec(context.Background(), "UPDATE "+pgx.Identifier{schema, "g_vertices"}.Sanitize()+" SET label = $1 WHERE id = $2", label, id)
			if err != nil || tag.RowsAffected() != 1 {
				t.Fatalf("set the label of %s: %v, %v", id, tag, err)
			}
		}})
}

// A graph namespace migrates from SQLite to Neptune (the stand-in)
// through a node: the verify compares the Neptune graph, its stub node
// for the edge to ghost not a vertex, and after the cutover the reads
// go to Neptune.
func TestGraphMigrationToNeptune(t *testing.T) {
	srv := neptunetest.New(t, "eu-west-1")
	srv.Env(t)
	migrateGraph(t, graphMigration{cfg: node.Config{DataDir: t.TempDir(), NeptuneEndpoint: srv.URL}, name: "social", to: namespaces.Target{Backend: "neptune"}, newTarget: "neptune"})
	var shapes []string
	for _, r := range srv.Requests() {
		shapes = append(shapes, r.Shape)
	}
	if !slices.Contains(shapes, "export") || !slices.Contains(shapes, "get vertex") || !slices.Contains(shapes, "level") {
		t.Errorf("the stand-in saw %v, want exports (verify) and reads (after the cutover)", shapes)
	}
}
