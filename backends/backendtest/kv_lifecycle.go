package backendtest

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"sync"
	"testing"
	"time"

	prismv1 "github.com/prism-data/prism/proto/prism/v1"
)

// Data, expire times and the checkpoint survive a restart, and a batch
// redelivered after it is still skipped.
func (k kvSuite) testReopen(t *testing.T) {
	b, _, reopen := k.openReopen(t)
	if reopen == nil {
		t.Skip("the factory returns no reopen: persistence is not checked")
	}
	far := time.Date(9999, 12, 31, 23, 59, 59, 999999999, time.UTC)
	apply(t, b, 42, put(40, "a", item("k", "v")), put(41, "b", item("k", "w"), itemExpiring("t", "ttl", far)))
	if err := b.Close(); err != nil {
		t.Fatalf("Close: %v", err)
	}

	b = reopen()
	if cp := checkpoint(t, b); cp != 42 {
		t.Fatalf("checkpoint after reopen = %d, want 42", cp)
	}
	resp := getID(t, b, "b")
	if resp.GetRevision() != 41 || !slices.Equal(kvs(resp.GetItems()), []kv{{"k", "w"}, {"t", "ttl"}}) {
		t.Fatalf("record b after reopen = %v", resp)
	}
	if et := resp.GetItems()[1].GetExpireTime(); et == nil || !et.AsTime().Equal(far) {
		t.Errorf("expire_time after reopen = %v, want %v", et, far)
	}
	if ids := scanStrings(t, b); !slices.Equal(ids, []string{"a", "b"}) {
		t.Fatalf("ScanIDs after reopen = %q, want [a b]", ids)
	}

	apply(t, b, 43, put(41, "b", item("k", "stale")), put(43, "c", item("k", "new")))
	if got := kvs(getID(t, b, "b").GetItems()); !slices.Equal(got, []kv{{"k", "w"}, {"t", "ttl"}}) {
		t.Errorf("redelivered seq 41 was applied again after reopen: b = %v", got)
	}
	if resp := getID(t, b, "c"); resp.GetRevision() != 43 {
		t.Errorf("record c = %v, want rev 43", resp)
	}
	if cp := checkpoint(t, b); cp != 43 {
		t.Errorf("checkpoint = %d, want 43", cp)
	}
}

// Readers running during writes see whole batches, and fail only with
// context.Canceled when their context ends mid-read: every batch writes the
// same value, its seq, to all items of a record, so a read that mixes two
// batches would show different values in one page, or a value that is not
// the revision. Revisions seen by one reader never go back.
func (k kvSuite) testConcurrentReaders(t *testing.T) {
	b, _ := k.open(t)
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	const batches, keys = 60, 50

	var wg sync.WaitGroup
	errs := make(chan error, 8)
	report := func(err error) {
		select {
		case errs <- err:
		default:
		}
	}
	for r := range 4 {
		wg.Go(func() {
			var last uint64
			for ctx.Err() == nil {
				resp, err := b.GetItems(ctx, &prismv1.GetRequest{Id: []byte("r"), PageSize: keys})
				if err != nil {
					if !errors.Is(err, context.Canceled) {
						report(fmt.Errorf("reader %d: %w", r, err))
					}
					return
				}
				items := resp.GetItems()
				if resp.GetRevision() < last {
					report(fmt.Errorf("reader %d: revision went back from %d to %d", r, last, resp.GetRevision()))
					return
				}
				last = resp.GetRevision()
				if len(items) == 0 {
					if last != 0 {
						report(fmt.Errorf("reader %d: no items with revision %d", r, last))
						return
					}
					continue // before the first batch
				}
				if len(items) != keys {
					report(fmt.Errorf("reader %d: %d items, want %d", r, len(items), keys))
					return
				}
				for _, it := range items {
					if string(it.GetValue()) != string(items[0].GetValue()) {
						report(fmt.Errorf("reader %d: torn read: %q and %q", r, items[0].GetValue(), it.GetValue()))
						return
					}
				}
				if want := fmt.Sprint(resp.GetRevision()); string(items[0].GetValue()) != want {
					report(fmt.Errorf("reader %d: value %q with revision %s", r, items[0].GetValue(), want))
					return
				}
				scan, err := b.ScanIDs(ctx, &prismv1.ScanRequest{})
				if err != nil {
					if !errors.Is(err, context.Canceled) {
						report(fmt.Errorf("reader %d scan: %w", r, err))
					}
					return
				}
				// r exists from the first batch on; s comes and goes.
				if ids := scan.GetIds(); len(ids) == 0 || string(ids[0]) != "r" || len(ids) > 2 || (len(ids) == 2 && string(ids[1]) != "s") {
					report(fmt.Errorf("reader %d: ScanIDs = %q, want [r] or [r s]", r, ids))
					return
				}
			}
		})
	}

	for n := 1; n <= batches; n++ {
		// Batch n is seq 2n-1, a put of every item of r, and seq 2n, which
		// creates or deletes s; r's revision is 2n-1.
		seqR, seqS := uint64(2*n-1), uint64(2*n)
		var items []*prismv1.Item
		for key := range keys {
			items = append(items, item(fmt.Sprintf("k%02d", key), fmt.Sprint(seqR)))
		}
		other := del(seqS, "s")
		if n%2 == 0 {
			other = put(seqS, "s", item("k", "v"))
		}
		apply(t, b, seqS, put(seqR, "r", items...), other)
		if n%10 == 0 {
			if _, err := b.SweepExpired(ctx); err != nil {
				t.Fatal(err)
			}
		}
	}
	cancel()
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Error(err)
	}
	if cp := checkpoint(t, b); cp != 2*batches {
		t.Errorf("checkpoint = %d, want %d", cp, 2*batches)
	}
	if resp := getID(t, b, "r"); resp.GetRevision() != 2*batches-1 || len(resp.GetItems()) != keys {
		t.Errorf("record r at the end: %d items rev %d, want %d rev %d", len(resp.GetItems()), resp.GetRevision(), keys, 2*batches-1)
	}
}

// Concurrent batches are serialized: every redelivery is skipped, none is
// applied after a later batch.
func (k kvSuite) testConcurrentApply(t *testing.T) {
	b, _ := k.open(t)
	const workers, seqs = 4, 30
	var wg sync.WaitGroup
	for w := range workers {
		wg.Go(func() {
			for seq := uint64(1); seq <= seqs; seq++ {
				err := b.ApplyKeyValue(context.Background(), []*prismv1.KeyValueChange{
					put(seq, fmt.Sprint("id", seq%5), item(fmt.Sprint(seq), fmt.Sprint(w))),
				}, seq)
				if err != nil {
					t.Error(err)
					return
				}
				// The same seq again, now that it is at or below the
				// checkpoint: it must not overwrite a later change.
				err = b.ApplyKeyValue(context.Background(), []*prismv1.KeyValueChange{
					put(seq, "last", item("seq", fmt.Sprint(seq))),
				}, seq)
				if err != nil {
					t.Error(err)
					return
				}
			}
		})
	}
	wg.Wait()
	if cp := checkpoint(t, b); cp != seqs {
		t.Fatalf("checkpoint = %d, want %d", cp, seqs)
	}
	total := 0
	for _, id := range scanStrings(t, b) {
		items, _ := getAll(t, b, &prismv1.GetRequest{Id: []byte(id)})
		total += len(items)
	}
	if total != seqs {
		t.Fatalf("items = %d, want %d", total, seqs)
	}
	if resp := getID(t, b, "last"); len(resp.GetItems()) != 0 {
		t.Errorf("a change at or below the checkpoint was applied: %v", resp)
	}
	// Record id0 holds the seqs that are multiples of 5; 30 is the last.
	if resp := getID(t, b, "id0"); resp.GetRevision() != seqs || len(resp.GetItems()) != seqs/5 {
		t.Errorf("record id0 = %d items rev %d, want %d rev %d", len(resp.GetItems()), resp.GetRevision(), seqs/5, seqs)
	}
}

func (k kvSuite) testClose(t *testing.T) {
	ctx := context.Background()
	b, _ := k.open(t)
	apply(t, b, 1, put(1, "a", item("k", "v")))
	if err := b.Close(); err != nil {
		t.Fatalf("first Close: %v", err)
	}
	if err := b.Close(); err != nil {
		t.Fatalf("second Close: %v", err)
	}
	calls := []struct {
		name string
		call func() error
	}{
		{"Checkpoint", func() error { _, err := b.Checkpoint(ctx); return err }},
		{"ApplyKeyValue", func() error {
			return b.ApplyKeyValue(ctx, []*prismv1.KeyValueChange{put(2, "a", item("k", "v"))}, 2)
		}},
		{"ApplyKeyValue empty", func() error { return b.ApplyKeyValue(ctx, nil, 3) }},
		{"GetItems", func() error { _, err := b.GetItems(ctx, &prismv1.GetRequest{Id: []byte("a")}); return err }},
		{"ScanIDs", func() error { _, err := b.ScanIDs(ctx, &prismv1.ScanRequest{}); return err }},
		{"SweepExpired", func() error { _, err := b.SweepExpired(ctx); return err }},
	}
	for _, c := range calls {
		if err := c.call(); !errors.Is(err, k.cfg.Errors.Closed) {
			t.Errorf("%s after Close: err = %v, want %v", c.name, err, k.cfg.Errors.Closed)
		}
	}
}

// Close waits for operations in flight; the calls after it fail with
// Errors.Closed and with nothing else.
func (k kvSuite) testCloseDuringReads(t *testing.T) {
	b, _ := k.open(t)
	apply(t, b, 1, put(1, "r", item("a", "1")))
	var wg sync.WaitGroup
	started := make(chan struct{}, 4)
	for range 4 {
		wg.Go(func() {
			for i := 0; ; i++ {
				resp, err := b.GetItems(context.Background(), &prismv1.GetRequest{Id: []byte("r")})
				if i == 0 {
					started <- struct{}{}
				}
				if errors.Is(err, k.cfg.Errors.Closed) {
					return
				}
				if err != nil {
					t.Errorf("GetItems: %v", err)
					return
				}
				if got := kvs(resp.GetItems()); !slices.Equal(got, []kv{{"a", "1"}}) {
					t.Errorf("GetItems during Close = %v, want a=1", got)
					return
				}
			}
		})
	}
	for range 4 {
		<-started
	}
	if err := b.Close(); err != nil {
		t.Fatal(err)
	}
	wg.Wait()
}

// A call with a cancelled context fails with an error that matches
// context.Canceled and changes nothing.
func (k kvSuite) testCancelledContext(t *testing.T) {
	b := k.fiveItems(t)
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	calls := []struct {
		name    string
		call    func() error
		wantErr error
	}{
		{"Checkpoint", func() error { _, err := b.Checkpoint(ctx); return err }, context.Canceled},
		{"ApplyKeyValue", func() error {
			return b.ApplyKeyValue(ctx, []*prismv1.KeyValueChange{put(2, "r", item("a", "changed")), put(3, "s", item("k", "v"))}, 3)
		}, context.Canceled},
		{"ApplyKeyValue empty", func() error { return b.ApplyKeyValue(ctx, nil, 4) }, context.Canceled},
		{"GetItems", func() error { _, err := b.GetItems(ctx, &prismv1.GetRequest{Id: []byte("r")}); return err }, context.Canceled},
		{"ScanIDs", func() error { _, err := b.ScanIDs(ctx, &prismv1.ScanRequest{}); return err }, context.Canceled},
		{"SweepExpired", func() error { _, err := b.SweepExpired(ctx); return err }, context.Canceled},
	}
	for _, c := range calls {
		t.Run(c.name, func(t *testing.T) {
			if err := c.call(); !errors.Is(err, c.wantErr) {
				t.Errorf("err = %v, want %v", err, c.wantErr)
			}
		})
	}
	if cp := checkpoint(t, b); cp != 1 {
		t.Errorf("checkpoint = %d, want 1", cp)
	}
	if ids := scanStrings(t, b); !slices.Equal(ids, []string{"r"}) {
		t.Errorf("ScanIDs = %q, want [r]", ids)
	}
	if got := kvs(getID(t, b, "r").GetItems()); len(got) != 5 || got[0] != (kv{"a", "A"}) {
		t.Errorf("record r = %v, want a..e unchanged", got)
	}
}
