package sqlite_test

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"testing"

	"github.com/prism-data/prism/backends/sqlite"
	prismv1 "github.com/prism-data/prism/proto/prism/v1"
)

// Readers running during writes see whole batches: every batch writes the
// same value to all items of a record, so a read that mixes two batches
// would show different values in one page.
func TestConcurrentReadersDuringWrites(t *testing.T) {
	s, _ := openStore(t, sqlite.WithReadConns(3))
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	const batches, keys = 60, 50

	var wg sync.WaitGroup
	errs := make(chan error, 8)
	for r := range 4 {
		wg.Go(func() {
			for ctx.Err() == nil {
				resp, err := s.GetItems(ctx, &prismv1.GetRequest{Id: []byte("r"), PageSize: keys})
				if err != nil {
					if !errors.Is(err, context.Canceled) {
						errs <- fmt.Errorf("reader %d: %w", r, err)
					}
					return
				}
				items := resp.GetItems()
				if len(items) == 0 {
					continue // before the first batch
				}
				if len(items) != keys {
					errs <- fmt.Errorf("reader %d: %d items, want %d", r, len(items), keys)
					return
				}
				for _, it := range items {
					if string(it.GetValue()) != string(items[0].GetValue()) {
						errs <- fmt.Errorf("reader %d: torn read: %q and %q", r, items[0].GetValue(), it.GetValue())
						return
					}
				}
				if want := fmt.Sprint(resp.GetRevision()); string(items[0].GetValue()) != want {
					errs <- fmt.Errorf("reader %d: value %q with revision %s", r, items[0].GetValue(), want)
					return
				}
				if _, err := s.ScanIDs(ctx, &prismv1.ScanRequest{}); err != nil && !errors.Is(err, context.Canceled) {
					errs <- fmt.Errorf("reader %d scan: %w", r, err)
					return
				}
			}
		})
	}

	for b := 1; b <= batches; b++ {
		seq := uint64(b)
		var items []*prismv1.Item
		for k := range keys {
			items = append(items, item(fmt.Sprintf("k%02d", k), fmt.Sprint(seq)))
		}
		apply(t, s, seq, put(seq, "r", items...))
		if b%10 == 0 {
			if _, err := s.SweepExpired(ctx); err != nil {
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
	if cp := checkpoint(t, s); cp != batches {
		t.Errorf("checkpoint = %d, want %d", cp, batches)
	}
}

// Concurrent batches are serialized: each redelivery is skipped exactly once.
func TestConcurrentApply(t *testing.T) {
	s, _ := openStore(t)
	var wg sync.WaitGroup
	for w := range 4 {
		wg.Go(func() {
			for seq := uint64(1); seq <= 30; seq++ {
				if err := s.ApplyKeyValue(context.Background(),
					[]*prismv1.KeyValueChange{put(seq, fmt.Sprint("id", seq%5), item(fmt.Sprint(seq), fmt.Sprint(w)))}, seq); err != nil {
					t.Error(err)
					return
				}
			}
		})
	}
	wg.Wait()
	if cp := checkpoint(t, s); cp != 30 {
		t.Fatalf("checkpoint = %d, want 30", cp)
	}
	total := 0
	for _, id := range scanAll(t, s, 0) {
		items, _ := getAll(t, s, &prismv1.GetRequest{Id: id})
		total += len(items)
	}
	if total != 30 {
		t.Fatalf("items = %d, want 30", total)
	}
}

// Close waits for operations in flight and later calls fail with ErrClosed.
func TestCloseDuringReads(t *testing.T) {
	s, _ := openStore(t)
	apply(t, s, 1, put(1, "r", item("a", "1")))
	var wg sync.WaitGroup
	for range 4 {
		wg.Go(func() {
			for {
				_, err := s.GetItems(context.Background(), &prismv1.GetRequest{Id: []byte("r")})
				if errors.Is(err, sqlite.ErrClosed) {
					return
				}
				if err != nil {
					t.Errorf("GetItems: %v", err)
					return
				}
			}
		})
	}
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}
	wg.Wait()
}
