package sqlite_test

import (
	"context"
	"errors"
	"slices"
	"testing"

	"google.golang.org/protobuf/types/known/timestamppb"

	"github.com/prism-data/prism/backends/sqlite"
	prismv1 "github.com/prism-data/prism/proto/prism/v1"
)

func TestApplyKeyValueSemantics(t *testing.T) {
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
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			s, _ := openStore(t)
			for _, b := range tt.batches {
				apply(t, s, b[len(b)-1].GetSeq(), b...)
			}
			for _, w := range tt.want {
				resp := get(t, s, &prismv1.GetRequest{Id: []byte(w.id)})
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
			}
			var ids []string
			for _, id := range scanAll(t, s, 0) {
				ids = append(ids, string(id))
			}
			if !slices.Equal(ids, tt.ids) {
				t.Errorf("ScanIDs = %q, want %q", ids, tt.ids)
			}
			last := tt.batches[len(tt.batches)-1]
			if cp := checkpoint(t, s); cp != last[len(last)-1].GetSeq() {
				t.Errorf("checkpoint = %d, want %d", cp, last[len(last)-1].GetSeq())
			}
		})
	}
}

func TestApplyKeyValueRedeliveryIsExactlyOnce(t *testing.T) {
	s, _ := openStore(t)
	batch := []*prismv1.KeyValueChange{
		put(10, "r", item("a", "1"), item("b", "2")),
		del(11, "r", "a"),
		put(12, "s", item("x", "1")),
	}
	apply(t, s, 12, batch...)
	apply(t, s, 14, put(13, "r", item("a", "again")), del(14, "s"))

	// The whole first batch again, and a batch that overlaps the checkpoint:
	// only seq 15 is new.
	apply(t, s, 12, batch...)
	apply(t, s, 15, put(13, "r", item("a", "stale")), del(14, "s"), put(15, "t", item("k", "v")))

	r := get(t, s, &prismv1.GetRequest{Id: []byte("r")})
	if got := kvs(r.GetItems()); !slices.Equal(got, []kv{{"a", "again"}, {"b", "2"}}) || r.GetRevision() != 13 {
		t.Errorf("record r = %v rev %d, want a=again b=2 rev 13", got, r.GetRevision())
	}
	if sresp := get(t, s, &prismv1.GetRequest{Id: []byte("s")}); len(sresp.GetItems()) != 0 {
		t.Errorf("record s came back: %v", sresp)
	}
	if tresp := get(t, s, &prismv1.GetRequest{Id: []byte("t")}); tresp.GetRevision() != 15 {
		t.Errorf("record t = %v, want rev 15", tresp)
	}
	if cp := checkpoint(t, s); cp != 15 {
		t.Errorf("checkpoint = %d, want 15", cp)
	}
}

func TestApplyKeyValueThroughNotAboveCheckpointIsNoOp(t *testing.T) {
	s, _ := openStore(t)
	apply(t, s, 20, put(20, "r", item("a", "1")))
	for _, through := range []uint64{20, 19} {
		// Seqs above the checkpoint but a through that is not: nothing moves.
		apply(t, s, through)
		if cp := checkpoint(t, s); cp != 20 {
			t.Fatalf("through %d: checkpoint = %d, want 20", through, cp)
		}
	}
	apply(t, s, 20, put(20, "r", item("a", "changed")))
	if got := kvs(get(t, s, &prismv1.GetRequest{Id: []byte("r")}).GetItems()); !slices.Equal(got, []kv{{"a", "1"}}) {
		t.Fatalf("items = %v, want a=1", got)
	}
}

func TestApplyKeyValueEmptyBatchAdvancesCheckpoint(t *testing.T) {
	s, _ := openStore(t)
	apply(t, s, 5, put(3, "r", item("a", "1")))
	apply(t, s, 9) // markers or dead letters only
	if cp := checkpoint(t, s); cp != 9 {
		t.Fatalf("checkpoint = %d, want 9", cp)
	}
	apply(t, s, 9, nil...)
	if cp := checkpoint(t, s); cp != 9 {
		t.Fatalf("checkpoint = %d, want 9", cp)
	}
}

func TestApplyKeyValueInvalidChangeAppliesNothing(t *testing.T) {
	good := put(11, "good", item("a", "1"))
	tests := []struct {
		name   string
		bad    *prismv1.KeyValueChange
		wantIx int
	}{
		{"nil change", nil, 1},
		{"nil event", &prismv1.KeyValueChange{Seq: 12}, 1},
		{"neither put nor delete", &prismv1.KeyValueChange{Seq: 12, Event: &prismv1.KeyValueEvent{Id: []byte("x")}}, 1},
		{"nil put", &prismv1.KeyValueChange{Seq: 12, Event: &prismv1.KeyValueEvent{Id: []byte("x"), Change: &prismv1.KeyValueEvent_Put{}}}, 1},
		{"nil delete", &prismv1.KeyValueChange{Seq: 12, Event: &prismv1.KeyValueEvent{Id: []byte("x"), Change: &prismv1.KeyValueEvent_Delete{}}}, 1},
		{"nil item", put(12, "x", item("a", "1"), nil), 1},
		{"invalid expire_time", put(12, "x", &prismv1.Item{Key: []byte("a"), ExpireTime: &timestamppb.Timestamp{Nanos: 2e9}}), 1},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			s, _ := openStore(t)
			apply(t, s, 10, put(10, "before", item("k", "v")))
			err := s.ApplyKeyValue(context.Background(), []*prismv1.KeyValueChange{good, tt.bad, put(13, "after", item("k", "v"))}, 13)
			if !errors.Is(err, sqlite.ErrInvalidChange) {
				t.Fatalf("err = %v, want ErrInvalidChange", err)
			}
			var ice *sqlite.InvalidChangeError
			if !errors.As(err, &ice) || ice.Index != tt.wantIx {
				t.Fatalf("err = %#v, want *InvalidChangeError at index %d", err, tt.wantIx)
			}
			if cp := checkpoint(t, s); cp != 10 {
				t.Errorf("checkpoint = %d, want 10 (unchanged)", cp)
			}
			for _, id := range []string{"good", "after"} {
				if resp := get(t, s, &prismv1.GetRequest{Id: []byte(id)}); len(resp.GetItems()) != 0 {
					t.Errorf("record %q of the failed batch was applied: %v", id, resp)
				}
			}
		})
	}
}

func TestApplyKeyValueInvalidBatch(t *testing.T) {
	tests := []struct {
		name    string
		changes []*prismv1.KeyValueChange
		through uint64
	}{
		{"seq above through", []*prismv1.KeyValueChange{put(5, "a", item("k", "v"))}, 4},
		{"seq zero", []*prismv1.KeyValueChange{put(0, "a", item("k", "v"))}, 4},
		{"seqs not increasing", []*prismv1.KeyValueChange{put(3, "a", item("k", "v")), put(3, "b", item("k", "v"))}, 4},
		{"through beyond int64", nil, 1 << 63},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			s, _ := openStore(t)
			err := s.ApplyKeyValue(context.Background(), tt.changes, tt.through)
			if !errors.Is(err, sqlite.ErrInvalidBatch) {
				t.Fatalf("err = %v, want ErrInvalidBatch", err)
			}
			if errors.Is(err, sqlite.ErrInvalidChange) {
				t.Fatalf("err = %v also matches ErrInvalidChange: the caller would dead-letter good events", err)
			}
			if cp := checkpoint(t, s); cp != 0 {
				t.Errorf("checkpoint = %d, want 0", cp)
			}
		})
	}
}
