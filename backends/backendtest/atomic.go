package backendtest

import (
	"context"
	"slices"
	"testing"

	prismv1 "github.com/prism-data/prism/proto/prism/v1"
)

// failCheckpointWrites makes b's checkpoint writes fail until the end of the
// test or restore, or skips the test when the backend gives no way to.
func failCheckpointWrites(t *testing.T, cfg Config, b any) (restore func()) {
	t.Helper()
	if cfg.FailCheckpointWrites == nil {
		t.Skip("Config.FailCheckpointWrites is not set: set it to make the backend's checkpoint writes fail to run this test")
	}
	restore = cfg.FailCheckpointWrites(t, b)
	if restore == nil {
		t.Fatal("backendtest: Config.FailCheckpointWrites returned a nil restore")
	}
	return restore
}

// A batch whose checkpoint write fails leaves no trace: its puts, deletes
// and replaces are not visible, the checkpoint stays, and the same batch
// applies in full once the checkpoint can be written. A backend that
// commits the data before (or apart from) the checkpoint fails this test
// every time, not only when a crash falls between the two. A batch of puts
// only is checked too: a backend may have a faster path for it.
func (k kvSuite) testFailedCheckpointWrite(t *testing.T) {
	type rec struct {
		id    string
		items []kv
		rev   uint64
	}
	before := []rec{{"r", []kv{{"a", "1"}, {"b", "1"}}, 1}, {"s", []kv{{"x", "1"}}, 2}}
	tests := []struct {
		name  string
		batch []*prismv1.KeyValueChange
		after []rec
	}{
		{
			name: "puts, deletes and a replace",
			batch: []*prismv1.KeyValueChange{
				put(3, "r", item("a", "3"), item("c", "3")),
				del(4, "s"),
				put(5, "t", item("k", "v")),
				del(6, "r", "b"),
				replace(7, "u", item("z", "z")),
			},
			after: []rec{{"r", []kv{{"a", "3"}, {"c", "3"}}, 6}, {"s", nil, 0}, {"t", []kv{{"k", "v"}}, 5}, {"u", []kv{{"z", "z"}}, 7}},
		},
		{
			name:  "puts only",
			batch: []*prismv1.KeyValueChange{put(3, "r", item("a", "3")), put(4, "t", item("k", "v"))},
			after: []rec{{"r", []kv{{"a", "3"}, {"b", "1"}}, 3}, {"s", []kv{{"x", "1"}}, 2}, {"t", []kv{{"k", "v"}}, 4}},
		},
	}
	// After the failure the checkpoint can be written again, and either the
	// same batch is applied again (a retry) or a later one: neither may
	// bring back what the failed batch left behind (a backend whose reads
	// stop at the last checkpoint would show it only then).
	thens := []string{"then the same batch", "then a later batch"}
	for _, tt := range tests {
		for _, then := range thens {
			t.Run(tt.name+"/"+then, func(t *testing.T) {
				b, _ := k.open(t)
				apply(t, b, 2, put(1, "r", item("a", "1"), item("b", "1")), put(2, "s", item("x", "1")))
				restore := failCheckpointWrites(t, k.cfg, b)
				check := func(when string, want []rec) {
					t.Helper()
					var ids []string
					for _, w := range want {
						resp := getID(t, b, w.id)
						if got := kvs(resp.GetItems()); !slices.Equal(got, w.items) || resp.GetRevision() != w.rev {
							t.Errorf("%s: record %q = %v rev %d, want %v rev %d", when, w.id, got, resp.GetRevision(), w.items, w.rev)
						}
						if w.items != nil {
							ids = append(ids, w.id)
						}
					}
					slices.Sort(ids)
					if got := scanStrings(t, b); !slices.Equal(got, ids) {
						t.Errorf("%s: ScanIDs = %q, want %q", when, got, ids)
					}
				}

				through := tt.batch[len(tt.batch)-1].GetSeq()
				err := b.ApplyKeyValue(context.Background(), tt.batch, through)
				if err == nil {
					t.Fatal("ApplyKeyValue succeeded although the checkpoint could not be written")
				}
				if isPermanent(err) {
					t.Errorf("err = %v is permanent: the projector would dead-letter good events for a database failure", err)
				}
				check("after the failed batch", before)
				if cp := checkpoint(t, b); cp != 2 {
					t.Errorf("checkpoint after the failed batch = %d, want 2", cp)
				}

				restore()
				if then == thens[0] {
					apply(t, b, through, tt.batch...)
					check("after the batch applied", tt.after)
				} else {
					through++
					apply(t, b, through, put(through, "later", item("k", "v")))
					want := append(slices.Clone(before), rec{"later", []kv{{"k", "v"}}, through})
					for _, c := range tt.batch {
						if id := string(c.GetEvent().GetId()); !slices.ContainsFunc(want, func(r rec) bool { return r.id == id }) {
							want = append(want, rec{id, nil, 0})
						}
					}
					check("after a later batch", want)
				}
				if cp := checkpoint(t, b); cp != through {
					t.Errorf("checkpoint = %d, want %d", cp, through)
				}
			})
		}
	}
}

// The TimeSeries side of testFailedCheckpointWrite: appends of a batch whose
// checkpoint write fails are not visible, nor are their tags.
func (s tsSuite) testFailedCheckpointWrite(t *testing.T) {
	b := s.open(t)
	first := event(at(1, 0), "e1", "p1", "k", "v")
	tsApply(t, b, 1, appendTo(1, "s", first))
	restore := failCheckpointWrites(t, s.cfg, b)

	batch := []*prismv1.TimeSeriesChange{
		appendTo(2, "s", event(at(2, 0), "e2", "p2", "k", "v")),
		appendTo(3, "other", event(at(3, 0), "e3", "p3", "k", "v")),
	}
	err := b.ApplyTimeSeries(context.Background(), batch, 3)
	if err == nil {
		t.Fatal("ApplyTimeSeries succeeded although the checkpoint could not be written")
	}
	if isPermanent(err) {
		t.Errorf("err = %v is permanent: the projector would dead-letter good events for a database failure", err)
	}
	want := []row{rowOf("s", first)}
	got, _ := readAll(t, b, &prismv1.ReadRangeRequest{SeriesId: []byte("s")})
	equalRows(t, "series s after the failed batch", got, want)
	got, _ = readAll(t, b, &prismv1.ReadRangeRequest{SeriesId: []byte("other")})
	equalRows(t, "series other after the failed batch", got, nil)
	got, _ = searchAll(t, b, &prismv1.SearchRequest{Tags: map[string]string{"k": "v"}})
	equalRows(t, "search k=v after the failed batch", got, want)
	if cp := checkpoint(t, b); cp != 1 {
		t.Errorf("checkpoint after the failed batch = %d, want 1", cp)
	}

	restore()
	tsApply(t, b, 3, batch...)
	got, _ = searchAll(t, b, &prismv1.SearchRequest{Tags: map[string]string{"k": "v"}})
	equalRows(t, "search k=v", got, []row{rowOf("s", first), rowOf("s", batch[0].GetAppend().GetEvents()[0]), rowOf("other", batch[1].GetAppend().GetEvents()[0])})
	if cp := checkpoint(t, b); cp != 3 {
		t.Errorf("checkpoint = %d, want 3", cp)
	}
}
