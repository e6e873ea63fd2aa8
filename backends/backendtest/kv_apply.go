package backendtest

import (
	"context"
	"errors"
	"slices"
	"testing"
	"time"

	"google.golang.org/protobuf/types/known/timestamppb"

	prismv1 "github.com/prism-data/prism/proto/prism/v1"
)

// permanent is the projectors' PermanentError, which backends cannot import.
type permanent interface{ Permanent() bool }

func isPermanent(err error) bool {
	var pe permanent
	return errors.As(err, &pe) && pe.Permanent()
}

func (k kvSuite) testApplySemantics(t *testing.T) {
	type want struct {
		id       string
		items    []kv // nil: the record must not exist
		revision uint64
	}
	tests := []struct {
		name    string
		batches [][]*prismv1.KeyValueChange // batch i is applied through its last seq
		want    []want
		ids     []string // ScanIDs result
	}{
		{
			name:    "put then get",
			batches: [][]*prismv1.KeyValueChange{{put(1, "r", item("k", "v"))}},
			want:    []want{{"r", []kv{{"k", "v"}}, 1}},
			ids:     []string{"r"},
		},
		{
			name:    "items sorted by key",
			batches: [][]*prismv1.KeyValueChange{{put(1, "r", item("c", "3"), item("a", "1"), item("b", "2"))}},
			want:    []want{{"r", []kv{{"a", "1"}, {"b", "2"}, {"c", "3"}}, 1}},
			ids:     []string{"r"},
		},
		{
			name: "items sorted by bytes, not by collation",
			batches: [][]*prismv1.KeyValueChange{{put(1, "r",
				item("b", "1"), item("B", "2"), item("a", "3"), item("é", "4"), item("Z", "5"), item("10", "6"), item("9", "7"))}},
			want: []want{{"r", []kv{{"10", "6"}, {"9", "7"}, {"B", "2"}, {"Z", "5"}, {"a", "3"}, {"b", "1"}, {"é", "4"}}, 1}},
			ids:  []string{"r"},
		},
		{
			name: "ids sorted by bytes",
			batches: [][]*prismv1.KeyValueChange{{
				put(1, "b", item("k", "v")), put(2, "B", item("k", "v")), put(3, "a", item("k", "v")), put(4, "é", item("k", "v")),
			}},
			want: []want{{"b", []kv{{"k", "v"}}, 1}, {"B", []kv{{"k", "v"}}, 2}},
			ids:  []string{"B", "a", "b", "é"},
		},
		{
			name: "put overwrites and merges",
			batches: [][]*prismv1.KeyValueChange{
				{put(1, "r", item("a", "1"), item("b", "2"))},
				{put(5, "r", item("b", "22"), item("c", "3"))},
			},
			want: []want{{"r", []kv{{"a", "1"}, {"b", "22"}, {"c", "3"}}, 5}},
			ids:  []string{"r"},
		},
		{
			name: "same key twice in one batch: last wins",
			batches: [][]*prismv1.KeyValueChange{
				{put(1, "r", item("a", "1")), put(2, "r", item("a", "2")), put(3, "s", item("x", "y"))},
			},
			want: []want{{"r", []kv{{"a", "2"}}, 2}, {"s", []kv{{"x", "y"}}, 3}},
			ids:  []string{"r", "s"},
		},
		{
			name: "delete some items updates revision",
			batches: [][]*prismv1.KeyValueChange{
				{put(1, "r", item("a", "1"), item("b", "2"), item("c", "3"))},
				{del(7, "r", "a", "c", "missing")},
			},
			want: []want{{"r", []kv{{"b", "2"}}, 7}},
			ids:  []string{"r"},
		},
		{
			name: "delete the last items removes the record",
			batches: [][]*prismv1.KeyValueChange{
				{put(1, "r", item("a", "1"), item("b", "2")), put(2, "s", item("a", "1"))},
				{del(3, "r", "a", "b")},
			},
			want: []want{{"r", nil, 0}, {"s", []kv{{"a", "1"}}, 2}},
			ids:  []string{"s"},
		},
		{
			name: "delete whole record",
			batches: [][]*prismv1.KeyValueChange{
				{put(1, "r", item("a", "1"), item("b", "2")), put(2, "s", item("a", "1"))},
				{del(3, "r")},
			},
			want: []want{{"r", nil, 0}, {"s", []kv{{"a", "1"}}, 2}},
			ids:  []string{"s"},
		},
		{
			name: "put after delete in one batch recreates the record",
			batches: [][]*prismv1.KeyValueChange{
				{put(1, "r", item("a", "1"), item("b", "2")), del(2, "r"), put(3, "r", item("c", "3"))},
			},
			want: []want{{"r", []kv{{"c", "3"}}, 3}},
			ids:  []string{"r"},
		},
		{
			name: "put after delete in later batches starts a new record",
			batches: [][]*prismv1.KeyValueChange{
				{put(1, "r", item("a", "1"), item("b", "2"))},
				{del(2, "r")},
				{put(3, "r", item("c", "3"))},
			},
			want: []want{{"r", []kv{{"c", "3"}}, 3}},
			ids:  []string{"r"},
		},
		{
			name: "delete then put of the same key in one batch",
			batches: [][]*prismv1.KeyValueChange{
				{put(1, "r", item("a", "1")), del(2, "r", "a"), put(3, "r", item("a", "new"))},
			},
			want: []want{{"r", []kv{{"a", "new"}}, 3}},
			ids:  []string{"r"},
		},
		{
			name:    "delete of a missing record does not create it",
			batches: [][]*prismv1.KeyValueChange{{del(1, "r", "a"), del(2, "s")}},
			want:    []want{{"r", nil, 0}, {"s", nil, 0}},
		},
		{
			name: "empty put moves the revision of an existing record only",
			batches: [][]*prismv1.KeyValueChange{
				{put(1, "r", item("a", "1")), put(2, "r"), put(3, "s")},
			},
			want: []want{{"r", []kv{{"a", "1"}}, 2}, {"s", nil, 0}},
			ids:  []string{"r"},
		},
		{
			name: "replace sets exactly its items and its seq as revision",
			batches: [][]*prismv1.KeyValueChange{
				{put(1, "r", item("a", "1"), item("b", "2"), item("c", "3")), put(2, "s", item("a", "1"))},
				{put(3, "r", item("d", "4")), replace(4, "r", item("b", "22"), item("e", "5"))},
			},
			want: []want{{"r", []kv{{"b", "22"}, {"e", "5"}}, 4}, {"s", []kv{{"a", "1"}}, 2}},
			ids:  []string{"r", "s"},
		},
		{
			name: "replace without items deletes the record",
			batches: [][]*prismv1.KeyValueChange{
				{put(1, "r", item("a", "1"), item("b", "2")), put(2, "s", item("a", "1"))},
				{replace(3, "r"), replace(4, "ghost")},
			},
			want: []want{{"r", nil, 0}, {"ghost", nil, 0}, {"s", []kv{{"a", "1"}}, 2}},
			ids:  []string{"s"},
		},
		{
			name: "replace of a missing record creates it",
			batches: [][]*prismv1.KeyValueChange{
				{replace(5, "r", item("a", "1"))},
			},
			want: []want{{"r", []kv{{"a", "1"}}, 5}},
			ids:  []string{"r"},
		},
		{
			name: "replace then put and item delete in one batch",
			batches: [][]*prismv1.KeyValueChange{
				{put(1, "r", item("a", "1"), item("b", "2"))},
				{replace(2, "r", item("c", "3"), item("d", "4")), put(3, "r", item("a", "new"), item("c", "33")), del(4, "r", "d")},
			},
			want: []want{{"r", []kv{{"a", "new"}, {"c", "33"}}, 4}},
			ids:  []string{"r"},
		},
		{
			name: "put after an empty replace in one batch starts a new record",
			batches: [][]*prismv1.KeyValueChange{
				{put(1, "r", item("a", "1"), item("b", "2")), replace(2, "r"), put(3, "r", item("c", "3"))},
			},
			want: []want{{"r", []kv{{"c", "3"}}, 3}},
			ids:  []string{"r"},
		},
		{
			name: "changes to other records leave the revision alone",
			batches: [][]*prismv1.KeyValueChange{
				{put(1, "r", item("a", "1")), put(2, "s", item("a", "1"))},
				{put(3, "s", item("b", "2")), del(4, "s", "a"), del(5, "t")},
			},
			want: []want{{"r", []kv{{"a", "1"}}, 1}, {"s", []kv{{"b", "2"}}, 4}},
			ids:  []string{"r", "s"},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			b, _ := k.open(t)
			for _, batch := range tt.batches {
				apply(t, b, batch[len(batch)-1].GetSeq(), batch...)
			}
			for _, w := range tt.want {
				resp := getID(t, b, w.id)
				if w.items == nil {
					if len(resp.GetItems()) != 0 || resp.GetRevision() != 0 || resp.GetNextPageToken() != "" {
						t.Errorf("record %q = %v, want empty response", w.id, resp)
					}
					continue
				}
				if got := kvs(resp.GetItems()); !slices.Equal(got, w.items) {
					t.Errorf("record %q items = %v, want %v", w.id, got, w.items)
				}
				if resp.GetRevision() != w.revision {
					t.Errorf("record %q revision = %d, want %d", w.id, resp.GetRevision(), w.revision)
				}
				if string(resp.GetId()) != w.id {
					t.Errorf("record %q response id = %q", w.id, resp.GetId())
				}
				if resp.GetNextPageToken() != "" {
					t.Errorf("record %q: a single page has next page token %q", w.id, resp.GetNextPageToken())
				}
			}
			if ids := scanStrings(t, b); !slices.Equal(ids, tt.ids) {
				t.Errorf("ScanIDs = %q, want %q", ids, tt.ids)
			}
			last := tt.batches[len(tt.batches)-1]
			if cp := checkpoint(t, b); cp != last[len(last)-1].GetSeq() {
				t.Errorf("checkpoint = %d, want %d", cp, last[len(last)-1].GetSeq())
			}
		})
	}
}

func (k kvSuite) testRedelivery(t *testing.T) {
	b, _ := k.open(t)
	if cp := checkpoint(t, b); cp != 0 {
		t.Fatalf("new backend checkpoint = %d, want 0", cp)
	}
	batch := []*prismv1.KeyValueChange{
		put(10, "r", item("a", "1"), item("b", "2")),
		del(11, "r", "a"),
		put(12, "s", item("x", "1")),
	}
	apply(t, b, 12, batch...)
	apply(t, b, 14, put(13, "r", item("a", "again")), del(14, "s"))

	// The whole first batch again, and a batch that overlaps the checkpoint:
	// only seq 15 is new.
	apply(t, b, 12, batch...)
	apply(t, b, 15, put(13, "r", item("a", "stale")), del(14, "s"), put(15, "t", item("k", "v")))

	r := getID(t, b, "r")
	if got := kvs(r.GetItems()); !slices.Equal(got, []kv{{"a", "again"}, {"b", "2"}}) || r.GetRevision() != 13 {
		t.Errorf("record r = %v rev %d, want a=again b=2 rev 13", got, r.GetRevision())
	}
	if s := getID(t, b, "s"); len(s.GetItems()) != 0 || s.GetRevision() != 0 {
		t.Errorf("record s came back: %v", s)
	}
	tr := getID(t, b, "t")
	if got := kvs(tr.GetItems()); !slices.Equal(got, []kv{{"k", "v"}}) || tr.GetRevision() != 15 {
		t.Errorf("record t = %v rev %d, want k=v rev 15", got, tr.GetRevision())
	}
	if ids := scanStrings(t, b); !slices.Equal(ids, []string{"r", "t"}) {
		t.Errorf("ScanIDs = %q, want [r t]", ids)
	}
	if cp := checkpoint(t, b); cp != 15 {
		t.Errorf("checkpoint = %d, want 15", cp)
	}
}

// A replace (what compaction writes, ADR 012) is redelivered like any
// change: applying its batch again, or a batch overlapping the checkpoint,
// has no further effect; its items expire like a put's.
func (k kvSuite) testReplace(t *testing.T) {
	b, clk := k.open(t)
	check := func(id string, want []kv, rev uint64) {
		t.Helper()
		resp := getID(t, b, id)
		if got := kvs(resp.GetItems()); !slices.Equal(got, want) || resp.GetRevision() != rev {
			t.Fatalf("record %q = %v rev %d, want %v rev %d", id, got, resp.GetRevision(), want, rev)
		}
	}
	apply(t, b, 3, put(1, "r", item("a", "1"), item("b", "2")), put(2, "s", item("x", "1")), del(3, "s", "missing"))
	batch := []*prismv1.KeyValueChange{
		replace(4, "r", itemExpiring("a", "new", t0.Add(time.Hour)), item("c", "3")),
		replace(5, "s"),
		put(6, "r", item("d", "4")),
	}
	apply(t, b, 6, batch...)
	check("r", []kv{{"a", "new"}, {"c", "3"}, {"d", "4"}}, 6)
	check("s", nil, 0)

	apply(t, b, 6, batch...)
	apply(t, b, 7, replace(5, "s", item("z", "z")), put(6, "r", item("stale", "x")), replace(7, "r", item("a", "7"), item("c", "3")))
	check("r", []kv{{"a", "7"}, {"c", "3"}}, 7)
	check("s", nil, 0)
	if ids := scanStrings(t, b); !slices.Equal(ids, []string{"r"}) {
		t.Fatalf("ScanIDs = %q, want [r]", ids)
	}
	if cp := checkpoint(t, b); cp != 7 {
		t.Fatalf("checkpoint = %d, want 7", cp)
	}

	apply(t, b, 8, replace(8, "t", itemExpiring("gone", "1", t0.Add(time.Minute)), item("kept", "2")))
	clk.Set(t0.Add(2 * time.Minute))
	check("t", []kv{{"kept", "2"}}, 8)
}

func (k kvSuite) testThroughNotAboveCheckpoint(t *testing.T) {
	b, _ := k.open(t)
	apply(t, b, 20, put(20, "r", item("a", "1")))
	for _, through := range []uint64{20, 19} {
		// Neither an empty call nor one with changes may move anything.
		apply(t, b, through)
		if cp := checkpoint(t, b); cp != 20 {
			t.Fatalf("through %d: checkpoint = %d, want 20", through, cp)
		}
	}
	apply(t, b, 20, put(20, "r", item("a", "changed")))
	apply(t, b, 19, put(19, "other", item("a", "1")))
	if got := kvs(getID(t, b, "r").GetItems()); !slices.Equal(got, []kv{{"a", "1"}}) {
		t.Fatalf("items = %v, want a=1", got)
	}
	if ids := scanStrings(t, b); !slices.Equal(ids, []string{"r"}) {
		t.Fatalf("ScanIDs = %q, want [r]", ids)
	}
	if cp := checkpoint(t, b); cp != 20 {
		t.Fatalf("checkpoint = %d, want 20", cp)
	}
}

func (k kvSuite) testEmptyBatch(t *testing.T) {
	b, _ := k.open(t)
	apply(t, b, 5, put(3, "r", item("a", "1"))) // through above the last seq
	if cp := checkpoint(t, b); cp != 5 {
		t.Fatalf("checkpoint = %d, want 5", cp)
	}
	apply(t, b, 9) // markers or dead letters only
	if cp := checkpoint(t, b); cp != 9 {
		t.Fatalf("checkpoint = %d, want 9", cp)
	}
	apply(t, b, 9, nil...)
	if cp := checkpoint(t, b); cp != 9 {
		t.Fatalf("checkpoint = %d, want 9", cp)
	}
	r := getID(t, b, "r")
	if got := kvs(r.GetItems()); !slices.Equal(got, []kv{{"a", "1"}}) || r.GetRevision() != 3 {
		t.Fatalf("record r = %v rev %d, want a=1 rev 3", got, r.GetRevision())
	}
}

func (k kvSuite) testInvalidChange(t *testing.T) {
	good := put(11, "good", item("a", "1"))
	tests := []struct {
		name    string
		bad     *prismv1.KeyValueChange
		wantErr error
	}{
		{"nil change", nil, k.cfg.Errors.InvalidChange},
		{"nil event", &prismv1.KeyValueChange{Seq: 12}, k.cfg.Errors.InvalidChange},
		{"neither put nor delete", &prismv1.KeyValueChange{Seq: 12, Event: &prismv1.KeyValueEvent{Id: []byte("x")}}, k.cfg.Errors.InvalidChange},
		{"nil put", &prismv1.KeyValueChange{Seq: 12, Event: &prismv1.KeyValueEvent{Id: []byte("x"), Change: &prismv1.KeyValueEvent_Put{}}}, k.cfg.Errors.InvalidChange},
		{"nil delete", &prismv1.KeyValueChange{Seq: 12, Event: &prismv1.KeyValueEvent{Id: []byte("x"), Change: &prismv1.KeyValueEvent_Delete{}}}, k.cfg.Errors.InvalidChange},
		{"nil replace", &prismv1.KeyValueChange{Seq: 12, Event: &prismv1.KeyValueEvent{Id: []byte("x"), Change: &prismv1.KeyValueEvent_Replace{}}}, k.cfg.Errors.InvalidChange},
		{"nil replace item", replace(12, "x", item("a", "1"), nil), k.cfg.Errors.InvalidChange},
		{"invalid replace expire_time", replace(12, "x", &prismv1.Item{Key: []byte("a"), ExpireTime: &timestamppb.Timestamp{Seconds: -1, Nanos: -1}}), k.cfg.Errors.InvalidChange},
		{"nil item", put(12, "x", item("a", "1"), nil), k.cfg.Errors.InvalidChange},
		{"invalid expire_time", put(12, "x", &prismv1.Item{Key: []byte("a"), ExpireTime: &timestamppb.Timestamp{Nanos: 2e9}}), k.cfg.Errors.InvalidChange},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			b, _ := k.open(t)
			apply(t, b, 10, put(10, "before", item("k", "v")))
			err := b.ApplyKeyValue(context.Background(), []*prismv1.KeyValueChange{good, tt.bad, put(13, "after", item("k", "v"))}, 13)
			if !errors.Is(err, tt.wantErr) {
				t.Fatalf("err = %v, want %v", err, tt.wantErr)
			}
			if !isPermanent(err) {
				t.Errorf("err = %v does not implement Permanent() bool returning true: the projector would retry it forever", err)
			}
			if cp := checkpoint(t, b); cp != 10 {
				t.Errorf("checkpoint = %d, want 10 (unchanged)", cp)
			}
			for _, id := range []string{"good", "x", "after"} {
				if resp := getID(t, b, id); len(resp.GetItems()) != 0 || resp.GetRevision() != 0 {
					t.Errorf("record %q of the failed batch was applied: %v", id, resp)
				}
			}
			if ids := scanStrings(t, b); !slices.Equal(ids, []string{"before"}) {
				t.Errorf("ScanIDs = %q, want [before]", ids)
			}
			// The backend is still usable and the batch applies without the
			// bad change.
			apply(t, b, 13, good, put(13, "after", item("k", "v")))
			if ids := scanStrings(t, b); !slices.Equal(ids, []string{"after", "before", "good"}) {
				t.Errorf("ScanIDs after the good batch = %q", ids)
			}
		})
	}
}

func (k kvSuite) testInvalidBatch(t *testing.T) {
	if k.cfg.Errors.InvalidBatch == nil {
		t.Skip("Config.Errors.InvalidBatch is not set: set it to the backend's malformed-batch sentinel to run this test")
	}
	tests := []struct {
		name    string
		changes []*prismv1.KeyValueChange
		through uint64
		wantErr error
	}{
		{"seq above through", []*prismv1.KeyValueChange{put(5, "a", item("k", "v"))}, 4, k.cfg.Errors.InvalidBatch},
		{"seq zero", []*prismv1.KeyValueChange{put(0, "a", item("k", "v"))}, 4, k.cfg.Errors.InvalidBatch},
		{"seqs not increasing", []*prismv1.KeyValueChange{put(3, "a", item("k", "v")), put(3, "b", item("k", "v"))}, 4, k.cfg.Errors.InvalidBatch},
		{"seqs decreasing", []*prismv1.KeyValueChange{put(3, "a", item("k", "v")), put(2, "b", item("k", "v"))}, 4, k.cfg.Errors.InvalidBatch},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			b, _ := k.open(t)
			err := b.ApplyKeyValue(context.Background(), tt.changes, tt.through)
			if !errors.Is(err, tt.wantErr) {
				t.Fatalf("err = %v, want %v", err, tt.wantErr)
			}
			if errors.Is(err, k.cfg.Errors.InvalidChange) || isPermanent(err) {
				t.Fatalf("err = %v is blamed on the changes: the projector would dead-letter good events", err)
			}
			if cp := checkpoint(t, b); cp != 0 {
				t.Errorf("checkpoint = %d, want 0", cp)
			}
			if ids := scanStrings(t, b); len(ids) != 0 {
				t.Errorf("ScanIDs = %q, want none", ids)
			}
		})
	}
}
