package natskv_test

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"sync"
	"testing"

	"github.com/prism-data/prism/backends/natskv"
	"github.com/prism-data/prism/itest/natstest"
	prismv1 "github.com/prism-data/prism/proto/prism/v1"
)

func isPermanent(err error) bool {
	var pe interface{ Permanent() bool }
	return errors.As(err, &pe) && pe.Permanent()
}

// Two stores on one bucket (two projectors, or a replay racing the live
// one) apply the same batch: the one that read the checkpoint before the
// other committed is refused with a transient ErrConflict, and the data is
// the batch's, applied once.
func TestTwoWritersExactlyOneCommits(t *testing.T) {
	srv := natstest.Server(t)
	js := natstest.JetStream(t, natstest.Connect(t, srv))
	ns := newNamespace()
	a := open(t, js, ns)
	// The other writer has a connection of its own, like another process.
	other := open(t, natstest.JetStream(t, natstest.Connect(t, srv)), ns)
	ctx := context.Background()
	apply := func(s *natskv.Store, seq uint64) error {
		return s.ApplyKeyValue(ctx, []*prismv1.KeyValueChange{
			put(seq, "r", item("k", fmt.Sprint("v", seq))), del(seq+1, "gone"), put(seq+2, "s", item("x", "y")),
		}, seq+2)
	}

	// a reads the checkpoint, then other commits the same batch before a
	// publishes.
	var otherErr error
	a.SetBeforeCommit(func() {
		a.SetBeforeCommit(nil)
		otherErr = apply(other, 1)
	})
	before := checkpoint(t, a)
	err := apply(a, 1)
	if otherErr != nil {
		t.Fatalf("the first writer to commit failed: %v", otherErr)
	}
	if !errors.Is(err, natskv.ErrConflict) {
		t.Fatalf("the second writer: err = %v, want ErrConflict", err)
	}
	if isPermanent(err) || errors.Is(err, natskv.ErrInvalidChange) {
		t.Fatalf("conflict %v is permanent: the projector would dead-letter good events", err)
	}
	if before != 0 || checkpoint(t, a) != 3 {
		t.Fatalf("checkpoint %d -> %d, want 0 -> 3", before, checkpoint(t, a))
	}
	seqBefore := lastSeq(t, js, a)
	// The retry finds the batch applied and writes nothing.
	if err := apply(a, 1); err != nil {
		t.Fatalf("retry: %v", err)
	}
	if got := lastSeq(t, js, a); got != seqBefore {
		t.Errorf("the retry wrote %d messages", got-seqBefore)
	}
	items, rev := getAll(t, a, "r")
	if len(items) != 1 || string(items[0].GetValue()) != "v1" || rev != 1 {
		t.Errorf("record r = %v rev %d, want k=v1 rev 1", items, rev)
	}

	// Many rounds of both writers at once: every call commits, finds the
	// batch applied, or is refused; the result is each batch once.
	for round := uint64(1); round <= 30; round++ {
		seq := 3*round + 1
		var wg sync.WaitGroup
		errs := make([]error, 2)
		for i, s := range []*natskv.Store{a, other} {
			wg.Go(func() { errs[i] = apply(s, seq) })
		}
		wg.Wait()
		for _, err := range errs {
			if err != nil && !errors.Is(err, natskv.ErrConflict) {
				t.Fatalf("round %d: %v", round, err)
			}
		}
		if errs[0] != nil && errs[1] != nil {
			t.Fatalf("round %d: both writers refused: %v, %v", round, errs[0], errs[1])
		}
		if cp := checkpoint(t, a); cp != seq+2 {
			t.Fatalf("round %d: checkpoint = %d, want %d", round, cp, seq+2)
		}
		items, rev := getAll(t, other, "r")
		if len(items) != 1 || string(items[0].GetValue()) != fmt.Sprint("v", seq) || rev != seq {
			t.Fatalf("round %d: record r = %v rev %d", round, items, rev)
		}
	}
}

// A batch larger than one atomic batch is split into sub-batches, each
// committed with the checkpoint of its last change; a change too large for
// one batch is split too, and the data ends up whole.
func TestLargeBatchesSplit(t *testing.T) {
	s, js, _ := openStore(t)
	ctx := context.Background()
	var seen []uint64 // the checkpoint before each commit
	s.SetBeforeCommit(func() {
		cp, err := s.Checkpoint(ctx)
		if err != nil {
			t.Error(err)
		}
		seen = append(seen, cp)
	})

	// 2500 records of one item each: 5000 messages.
	const records = 2500
	var changes []*prismv1.KeyValueChange
	for i := range records {
		changes = append(changes, put(uint64(i+1), fmt.Sprintf("r%04d", i), item("k", fmt.Sprint(i))))
	}
	start := lastSeq(t, js, s)
	if err := s.ApplyKeyValue(ctx, changes, records+5); err != nil {
		t.Fatal(err)
	}
	msgs := lastSeq(t, js, s) - start
	if len(seen) < 2*records/natskv.MaxBatchMsgs+1 {
		t.Fatalf("%d commits for %d messages, want at least %d", len(seen), msgs, 2*records/natskv.MaxBatchMsgs+1)
	}
	if msgs != 2*records+uint64(len(seen)) {
		t.Errorf("stream got %d messages, want %d items and records and %d checkpoints", msgs, 2*records, len(seen))
	}
	// Every commit after the first started from the checkpoint of a whole
	// previous sub-batch.
	if seen[0] != 0 || !slices.IsSorted(seen) || seen[len(seen)-1] >= records {
		t.Errorf("checkpoints before each commit = %v", seen)
	}
	if cp := checkpoint(t, s); cp != records+5 {
		t.Errorf("checkpoint = %d, want %d", cp, records+5)
	}
	for _, i := range []int{0, 999, 1000, 2499} {
		items, rev := getAll(t, s, fmt.Sprintf("r%04d", i))
		if len(items) != 1 || string(items[0].GetValue()) != fmt.Sprint(i) || rev != uint64(i+1) {
			t.Errorf("record r%04d = %v rev %d", i, items, rev)
		}
	}
	ids, err := s.ScanIDs(ctx, &prismv1.ScanRequest{PageSize: 1000})
	if err != nil || len(ids.GetIds()) != 1000 || ids.GetNextPageToken() == "" {
		t.Errorf("ScanIDs = %d ids, %v", len(ids.GetIds()), err)
	}

	// One put of 2500 items into one record, then its deletion.
	seen = nil
	var items []*prismv1.Item
	for i := range 2500 {
		items = append(items, item(fmt.Sprintf("k%04d", i), fmt.Sprint(i)))
	}
	if err := s.ApplyKeyValue(ctx, []*prismv1.KeyValueChange{put(records+6, "big", items...)}, records+6); err != nil {
		t.Fatal(err)
	}
	if len(seen) != 3 || seen[0] != records+5 || seen[1] != records+5 || seen[2] != records+5 {
		t.Errorf("checkpoints before the commits of a large put = %v, want 3 at %d", seen, records+5)
	}
	got, rev := getAll(t, s, "big")
	if len(got) != 2500 || rev != records+6 || string(got[2499].GetValue()) != "2499" {
		t.Fatalf("record big = %d items rev %d", len(got), rev)
	}

	// A replace of 2500 items, 1000 of them kept (new values), 1500 new:
	// the 1500 others go.
	seen = nil
	items = items[:0]
	for i := 1500; i < 4000; i++ {
		items = append(items, item(fmt.Sprintf("k%04d", i), fmt.Sprint("r", i)))
	}
	if err := s.ApplyKeyValue(ctx, []*prismv1.KeyValueChange{replace(records+7, "big", items...)}, records+7); err != nil {
		t.Fatal(err)
	}
	if len(seen) < 5 || seen[0] != records+6 || seen[2] != records+6 || seen[len(seen)-1] != records+7 {
		t.Errorf("checkpoints before the commits of a large replace = %v, want 3 at %d, then the deletes", seen, records+6)
	}
	got, rev = getAll(t, s, "big")
	if len(got) != 2500 || rev != records+7 || string(got[0].GetKey()) != "k1500" || string(got[0].GetValue()) != "r1500" ||
		string(got[2499].GetKey()) != "k3999" {
		t.Fatalf("replaced record big = %d items rev %d, first %v", len(got), rev, got[0])
	}

	seen = nil
	if err := s.ApplyKeyValue(ctx, []*prismv1.KeyValueChange{del(records+8, "big")}, records+8); err != nil {
		t.Fatal(err)
	}
	if len(seen) != 3 {
		t.Errorf("%d commits for deleting 2500 items, want 3", len(seen))
	}
	if got, rev := getAll(t, s, "big"); len(got) != 0 || rev != 0 {
		t.Errorf("deleted record big = %d items rev %d", len(got), rev)
	}
	if cp := checkpoint(t, s); cp != records+8 {
		t.Errorf("checkpoint = %d, want %d", cp, records+8)
	}
}
