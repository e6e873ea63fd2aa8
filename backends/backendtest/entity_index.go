package backendtest

import (
	"context"
	"errors"
	"slices"
	"strings"
	"testing"

	"github.com/prism-data/prism/backends/internal/kit"
	prismv1 "github.com/prism-data/prism/proto/prism/v1"
)

// FeatureEntityIndexBuild is the live build of a new secondary index from
// the stored records: EntityIndexBuilder. It needs FeatureEntity.
const FeatureEntityIndexBuild Feature = "entity-index-build"

// EntityIndexBuilder is the contract of a backend that fills a new index
// of an entity namespace from its stored records (docs/entity.md, "Schema
// evolution"). SyncEntityIndexes makes a list of names the indexes: an
// unknown one starts building (ready at once without records), others'
// rows are dropped. BuildEntityIndex fills a building index in steps, in
// two passes (all records; those changed since the build started), and
// ends ready, or failed for a unique index whose records share a key (its
// rows removed). ScanEntities of an index that is not ready fails with a
// *kit.IndexNotReadyError.
type EntityIndexBuilder interface {
	EntityBackend
	SyncEntityIndexes(ctx context.Context, names []string) ([]*prismv1.EntityIndexState, error)
	BuildEntityIndex(ctx context.Context, b kit.IndexBuild) (*prismv1.EntityIndexState, error)
	EntityIndexStates(ctx context.Context) ([]*prismv1.EntityIndexState, error)
}

func init() {
	known = append(known, feature{
		name:       FeatureEntityIndexBuild,
		implements: func(b any) bool { _, ok := b.(EntityIndexBuilder); return ok },
		check:      checkEntityConfig,
		run:        runEntityIndexBuild,
	})
}

// lenKey indexes a record by its length; records starting with "-" have
// no entry.
func lenKey(rec []byte) ([]byte, bool, error) {
	if strings.HasPrefix(string(rec), "-") {
		return nil, false, nil
	}
	return []byte{byte(len(rec))}, true, nil
}

// sameKey indexes a record by its bytes.
func sameKey(rec []byte) ([]byte, bool, error) { return rec, true, nil }

func states(t testing.TB, b EntityIndexBuilder) string {
	t.Helper()
	all, err := b.EntityIndexStates(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	var out []string
	for _, st := range all {
		out = append(out, st.GetIndex()+"="+st.GetState())
	}
	return strings.Join(out, " ")
}

func notReady(t testing.TB, b EntityIndexBuilder, index, state string) {
	t.Helper()
	_, err := b.ScanEntities(context.Background(), &prismv1.EntityScanRequest{Index: index})
	var nr *kit.IndexNotReadyError
	if !errors.As(err, &nr) || nr.State.GetState() != state {
		t.Fatalf("scan of index %s = %v, want an IndexNotReadyError (%s)", index, err, state)
	}
}

func runEntityIndexBuild(t *testing.T, cfg Config) {
	ctx := context.Background()
	open := func(t *testing.T) EntityIndexBuilder { return enBackend(t, cfg).(EntityIndexBuilder) }
	sync := func(t *testing.T, b EntityIndexBuilder, names ...string) []*prismv1.EntityIndexState {
		t.Helper()
		st, err := b.SyncEntityIndexes(ctx, names)
		if err != nil {
			t.Fatal(err)
		}
		return st
	}

	t.Run("a new index is filled from the stored records", func(t *testing.T) {
		b := open(t)
		if st := sync(t, b, "n"); st[0].GetState() != kit.IndexReady {
			t.Fatalf("the first index of an empty store is %s, want ready", st[0].GetState())
		}
		enApply(t, b, 3, enPut(1, "a", "xxx", entry("n", u64(3))), enPut(2, "b", "x", entry("n", u64(1))), enPut(3, "c", "-no", entry("n", u64(9))))
		st := sync(t, b, "n", "len")
		if st[0].GetState() != kit.IndexReady || st[1].GetState() != kit.IndexBuilding || st[1].GetTotal() != 3 {
			t.Fatalf("after adding len: %v", st)
		}
		notReady(t, b, "len", kit.IndexBuilding)
		// A put while it builds, from a gateway that did not know len yet:
		// the second pass indexes it.
		enApply(t, b, 4, enPut(4, "d", "xx", entry("n", u64(2))))
		var steps int
		end, err := b.BuildEntityIndex(ctx, kit.IndexBuild{Index: "len", Key: lenKey, Batch: 2, Progress: func(*prismv1.EntityIndexState) { steps++ }})
		if err != nil {
			t.Fatal(err)
		}
		if end.GetState() != kit.IndexReady || end.GetDone() != 4 || steps < 3 {
			t.Fatalf("build ended %v after %d steps, want ready with 4 records read in 3 or more", end, steps)
		}
		if ids, _ := enScanAll(t, b, &prismv1.EntityScanRequest{Index: "len"}); !slices.Equal(ids, []string{"b", "d", "a"}) {
			t.Errorf("len index = %q, want b d a (c has no entry)", ids)
		}
		if ids, _ := enScanAll(t, b, &prismv1.EntityScanRequest{Index: "n"}); !slices.Equal(ids, []string{"b", "d", "a", "c"}) {
			t.Errorf("n index = %q, untouched by the build", ids)
		}
		// A later put carries its len entry as usual.
		enApply(t, b, 5, enPut(5, "b", "xxxx", entry("n", u64(4)), entry("len", []byte{4})))
		if ids, _ := enScanAll(t, b, &prismv1.EntityScanRequest{Index: "len"}); !slices.Equal(ids, []string{"d", "a", "b"}) {
			t.Errorf("len index after a put = %q, want d a b", ids)
		}

		// Removing an index drops its rows.
		sync(t, b, "len")
		if got := states(t, b); got != "len=ready" {
			t.Errorf("states after removing n = %q", got)
		}
		if ids, _ := enScanAll(t, b, &prismv1.EntityScanRequest{Index: "n"}); len(ids) != 0 {
			t.Errorf("removed index n still holds %q", ids)
		}
	})

	t.Run("a build resumes where it stopped", func(t *testing.T) {
		b := open(t)
		sync(t, b)
		enApply(t, b, 3, enPut(1, "a", "x"), enPut(2, "b", "xx"), enPut(3, "c", "xxx"))
		sync(t, b, "len")
		stop, cancel := context.WithCancel(ctx)
		_, err := b.BuildEntityIndex(stop, kit.IndexBuild{Index: "len", Key: lenKey, Batch: 2, Progress: func(*prismv1.EntityIndexState) { cancel() }})
		if !errors.Is(err, context.Canceled) {
			t.Fatalf("canceled build = %v, want context.Canceled", err)
		}
		all, err := b.EntityIndexStates(ctx)
		if err != nil || len(all) != 1 || all[0].GetState() != kit.IndexBuilding || all[0].GetDone() != 2 || all[0].GetTotal() != 3 {
			t.Fatalf("states after a canceled build = %v, %v; want len building, 2 of 3 read", all, err)
		}
		notReady(t, b, "len", kit.IndexBuilding)
		if st, err := b.BuildEntityIndex(ctx, kit.IndexBuild{Index: "len", Key: lenKey, Batch: 2}); err != nil || st.GetState() != kit.IndexReady || st.GetDone() != 3 {
			t.Fatalf("resumed build = %v, %v; want ready with 3 read", st, err)
		}
		if ids, _ := enScanAll(t, b, &prismv1.EntityScanRequest{Index: "len"}); !slices.Equal(ids, []string{"a", "b", "c"}) {
			t.Errorf("len index = %q", ids)
		}
	})

	t.Run("an index without a key function keeps the entries the events wrote", func(t *testing.T) {
		b := open(t)
		sync(t, b)
		enApply(t, b, 2, enPut(1, "a", "x", entry("blind", []byte("h1"))), enPut(2, "b", "y", entry("blind", []byte("h2"))))
		sync(t, b, "blind")
		notReady(t, b, "blind", kit.IndexBuilding)
		if st, err := b.BuildEntityIndex(ctx, kit.IndexBuild{Index: "blind"}); err != nil || st.GetState() != kit.IndexReady {
			t.Fatalf("build without a key function = %v, %v; want ready", st, err)
		}
		if ids, _ := enScanAll(t, b, &prismv1.EntityScanRequest{Index: "blind"}); !slices.Equal(ids, []string{"a", "b"}) {
			t.Errorf("blind index = %q, want the entries of the events", ids)
		}
	})

	t.Run("a unique index over duplicates fails and holds nothing", func(t *testing.T) {
		b := open(t)
		sync(t, b)
		enApply(t, b, 4, enPut(1, "a", "v1"), enPut(2, "b", "v2"), enPut(3, "c", "v3"), enPut(4, "d", "v1"))
		sync(t, b, "u")
		st, err := b.BuildEntityIndex(ctx, kit.IndexBuild{Index: "u", Unique: true, Key: sameKey, Batch: 2})
		if err != nil {
			t.Fatal(err)
		}
		if st.GetState() != kit.IndexFailed || !strings.Contains(st.GetDetail(), `records "a" and "d"`) {
			t.Fatalf("build over a duplicate = %v, want failed naming a and d", st)
		}
		notReady(t, b, "u", kit.IndexFailed)
		// Nothing of it is left: after the duplicate is fixed, a sync starts
		// it again and it builds.
		enApply(t, b, 5, enPut(5, "d", "v4"))
		if st := sync(t, b, "u"); st[0].GetState() != kit.IndexBuilding || st[0].GetDone() != 0 {
			t.Fatalf("sync of a failed index = %v, want building from the start", st)
		}
		notReady(t, b, "u", kit.IndexBuilding)
		if st, err = b.BuildEntityIndex(ctx, kit.IndexBuild{Index: "u", Unique: true, Key: sameKey, Batch: 2}); err != nil || st.GetState() != kit.IndexReady {
			t.Fatalf("build after the fix = %v, %v", st, err)
		}
		if ids, _ := enScanAll(t, b, &prismv1.EntityScanRequest{Index: "u"}); !slices.Equal(ids, []string{"a", "b", "c", "d"}) {
			t.Errorf("u index = %q", ids)
		}
	})
}
