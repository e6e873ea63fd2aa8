package neptune_test

import (
	"context"
	"fmt"
	"math/rand/v2"
	"path/filepath"
	"strings"
	"testing"

	"github.com/prism-data/prism/backends/neptune/neptunetest"
	"github.com/prism-data/prism/backends/sqlite"
	prismv1 "github.com/prism-data/prism/proto/prism/v1"
)

// graphReader is what dumpGraph reads.
type graphReader interface {
	GetVertex(ctx context.Context, id string) (*prismv1.Vertex, error)
	Neighbours(ctx context.Context, req *prismv1.NeighboursRequest) (*prismv1.NeighboursResponse, error)
	Checkpoint(ctx context.Context) (uint64, error)
}

// dumpGraph renders every vertex of ids and its neighbours both ways, in
// order, with properties and revisions, and the checkpoint.
func dumpGraph(t *testing.T, g graphReader, ids []string) string {
	t.Helper()
	ctx := context.Background()
	var b strings.Builder
	cp, err := g.Checkpoint(ctx)
	if err != nil {
		t.Fatal(err)
	}
	fmt.Fprintf(&b, "checkpoint %d\n", cp)
	for _, id := range ids {
		v, err := g.GetVertex(ctx, id)
		if err != nil {
			t.Fatal(err)
		}
		if v != nil {
			fmt.Fprintf(&b, "%s %s %v @%d:", id, v.GetLabel(), v.GetProperties(), v.GetRevision())
		} else {
			fmt.Fprintf(&b, "%s absent:", id)
		}
		resp, err := g.Neighbours(ctx, &prismv1.NeighboursRequest{Id: id, Direction: prismv1.Direction_DIRECTION_BOTH, PageSize: 1000})
		if err != nil {
			t.Fatal(err)
		}
		for _, n := range resp.GetNeighbours() {
			e := n.GetEdge()
			fmt.Fprintf(&b, " %s %s-%s->%s %v @%d", n.GetDirection(), e.GetFrom(), e.GetLabel(), e.GetTo(), e.GetProperties(), e.GetRevision())
		}
		b.WriteString("\n")
	}
	return b.String()
}

// dumpExport renders what ExportGraph returns.
func dumpExport(t *testing.T, g interface {
	ExportGraph(ctx context.Context, edgeFrom *prismv1.Edge, vertexFrom string, limit int) ([]*prismv1.Edge, []*prismv1.Vertex, error)
}, edgeFrom *prismv1.Edge, vertexFrom string, limit int) string {
	t.Helper()
	edges, vertices, err := g.ExportGraph(context.Background(), edgeFrom, vertexFrom, limit)
	if err != nil {
		t.Fatal(err)
	}
	var b strings.Builder
	for _, e := range edges {
		fmt.Fprintf(&b, "%s-%s->%s %v @%d\n", e.GetFrom(), e.GetLabel(), e.GetTo(), e.GetProperties(), e.GetRevision())
	}
	for _, v := range vertices {
		fmt.Fprintf(&b, "%s %s %v @%d\n", v.GetId(), v.GetLabel(), v.GetProperties(), v.GetRevision())
	}
	return b.String()
}

// TestSameAsSQLite applies the same random streams of vertex and edge
// upserts and deletes, cut into random batches (with redeliveries), to
// the Neptune store and to SQLite, the reference, and compares the whole
// graphs after each batch: the collapse of a batch into one request must
// have the effect of applying its changes one by one. The exports verify
// reads (ExportGraph, whole and from random bounds) must agree as well:
// the same elements in the same order, stub nodes not vertices.
func TestSameAsSQLite(t *testing.T) {
	ctx := context.Background()
	ids := []string{"a", "b", "c", "d", "e"}
	labels := []string{"x", "y"}
	for round := range 20 {
		rng := rand.New(rand.NewPCG(uint64(round), 17))
		srv := neptunetest.New(t, "")
		np := openStore(t, srv, "diff")
		lite, err := sqlite.Open(ctx, filepath.Join(t.TempDir(), "ref.db"))
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { _ = lite.Close() })
		var stream []*prismv1.GraphChange
		for seq := uint64(1); seq <= 200; seq++ {
			id := ids[rng.IntN(len(ids))]
			props := map[string]string{"s": fmt.Sprint(seq)}
			var c *prismv1.GraphChange
			switch r := rng.IntN(10); {
			case r < 3:
				c = vertex(seq, id, labels[rng.IntN(2)], props)
			case r < 4:
				c = delVertex(seq, id)
			case r < 8:
				c = edge(seq, id, labels[rng.IntN(2)], ids[rng.IntN(len(ids))])
				c.GetEvent().GetEdge().Properties = props
			default:
				c = edge(seq, id, labels[rng.IntN(2)], ids[rng.IntN(len(ids))])
				c.GetEvent().Delete = true
			}
			stream = append(stream, c)
		}
		for from := 0; from < len(stream); {
			n := 1 + rng.IntN(30)
			to := min(from+n, len(stream))
			// A redelivery: the batch starts a few changes back.
			start := max(0, from-rng.IntN(4))
			batch, through := stream[start:to], stream[to-1].GetSeq()
			if err := np.ApplyGraph(ctx, batch, through); err != nil {
				t.Fatalf("round %d: neptune ApplyGraph: %v", round, err)
			}
			if err := lite.ApplyGraph(ctx, batch, through); err != nil {
				t.Fatalf("round %d: sqlite ApplyGraph: %v", round, err)
			}
			if a, b := dumpGraph(t, lite, ids), dumpGraph(t, np, ids); a != b {
				t.Fatalf("round %d, after seq %d: sqlite and neptune differ:\n%s\n%s", round, through, a, b)
			}
			// The exports of verify agree too, whole and from a bound.
			bound := &prismv1.Edge{From: ids[rng.IntN(len(ids))], Label: labels[rng.IntN(2)], To: ids[rng.IntN(len(ids))]}
			for _, q := range []struct {
				edgeFrom   *prismv1.Edge
				vertexFrom string
				limit      int
			}{{&prismv1.Edge{}, "", 1000}, {bound, "", 3}, {bound, "c", 1 + rng.IntN(8)}, {nil, ids[rng.IntN(len(ids))], 2}} {
				if a, b := dumpExport(t, lite, q.edgeFrom, q.vertexFrom, q.limit), dumpExport(t, np, q.edgeFrom, q.vertexFrom, q.limit); a != b {
					t.Fatalf("round %d, after seq %d: ExportGraph(%v, %q, %d) of sqlite and neptune differ:\n%s\n%s", round, through, q.edgeFrom, q.vertexFrom, q.limit, a, b)
				}
			}
			from = to
		}
	}
}
