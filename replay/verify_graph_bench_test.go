package replay_test

import (
	"context"
	"flag"
	"fmt"
	"testing"

	"github.com/prism-data/prism/backends/neptune"
	"github.com/prism-data/prism/backends/postgres"
	"github.com/prism-data/prism/backends/sqlite"
	prismv1 "github.com/prism-data/prism/proto/prism/v1"
	"github.com/prism-data/prism/replay"
)

var (
	_ replay.GraphSource = (*sqlite.Store)(nil)
	_ replay.GraphSource = (*postgres.Store)(nil)
	_ replay.GraphSource = (*neptune.Store)(nil)
)

var benchVertices = flag.Int("verify.vertices", 20_000, "vertices in each target of BenchmarkVerifyGraph (with 5 edges each)")

// fillGraph applies n vertices with 5 out edges each to st, in batches
// of 1,000 changes.
func fillGraph(b *testing.B, st any, n int) {
	b.Helper()
	ag := st.(interface {
		ApplyGraph(ctx context.Context, changes []*prismv1.GraphChange, through uint64) error
	})
	var batch []*prismv1.GraphChange
	seq := uint64(0)
	add := func(ev *prismv1.GraphEvent) {
		seq++
		batch = append(batch, &prismv1.GraphChange{Seq: seq, Event: ev})
		if len(batch) == 1000 {
			if err := ag.ApplyGraph(context.Background(), batch, seq); err != nil {
				b.Fatal(err)
			}
			batch = batch[:0]
		}
	}
	id := func(i int) string { return fmt.Sprintf("%08x", uint32(i%n)*2654435761) }
	for i := range n {
		add(&prismv1.GraphEvent{Element: &prismv1.GraphEvent_Vertex{Vertex: &prismv1.Vertex{Id: id(i), Label: "person", Properties: map[string]string{"name": fmt.Sprintf("user %d", i)}}}})
		for k := 1; k <= 5; k++ {
			add(&prismv1.GraphEvent{Element: &prismv1.GraphEvent_Edge{Edge: &prismv1.Edge{From: id(i), Label: "follows", To: id(i + k*7919), Properties: map[string]string{"w": fmt.Sprint(k)}}}})
		}
	}
	if len(batch) > 0 {
		if err := ag.ApplyGraph(context.Background(), batch, seq); err != nil {
			b.Fatal(err)
		}
	}
}

// BenchmarkVerifyGraph measures Verify of two equal graph targets of
// -verify.vertices vertices and five times as many edges: elements
// (vertices and edges) compared per second. The targets are filled
// once, outside the timer.
func BenchmarkVerifyGraph(b *testing.B) {
	n := *benchVertices
	filled := map[string]*target{}
	get := func(k kind, name string) *target {
		if tg, ok := filled[name]; ok {
			return tg
		}
		tg := k.open(b)
		fillGraph(b, tg.store, n)
		filled[name] = tg
		return tg
	}
	for _, bc := range []struct {
		name     string
		old, new kind
	}{
		{"sqlite-sqlite", sqliteKind, sqliteKind},
		{"sqlite-postgres", sqliteKind, postgresKind},
	} {
		b.Run(bc.name, func(sb *testing.B) {
			old := replay.GraphVerifySource(get(bc.old, bc.old.name+"-1").store.(replay.GraphSource))
			new := replay.GraphVerifySource(get(bc.new, bc.new.name+"-2").store.(replay.GraphSource))
			sb.ResetTimer()
			var compared int64
			for range sb.N {
				r, err := replay.Verify(context.Background(), old, new)
				if err != nil {
					sb.Fatal(err)
				}
				if !r.Passed() || r.Compared != int64(6*n) {
					sb.Fatalf("want %d elements matched, got\n%s", 6*n, table(r))
				}
				compared += r.Compared
			}
			sb.ReportMetric(float64(compared)/sb.Elapsed().Seconds(), "elements/s")
		})
	}
}
