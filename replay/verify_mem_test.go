package replay_test

import (
	"bytes"
	"context"
	"fmt"
	"runtime"
	"sort"
	"sync"
	"testing"
	"time"

	prismv1 "github.com/prism-data/prism/proto/prism/v1"
	"github.com/prism-data/prism/replay"
)

// synthetic is a Source of n records made up as they are read, each with
// one item of valueSize fresh bytes, so that only what Verify keeps stays
// in memory.
type synthetic struct {
	n, valueSize int
}

func synthID(i int) []byte { return fmt.Appendf(nil, "id-%08d", i) }

func (s synthetic) Checkpoint(context.Context) (uint64, error) { return 1, nil }

func (s synthetic) ExportRecords(_ context.Context, from []byte, limit int, _ time.Time) ([]*prismv1.GetResponse, error) {
	i := sort.Search(s.n, func(i int) bool { return bytes.Compare(synthID(i), from) >= 0 })
	var recs []*prismv1.GetResponse
	for ; i < s.n && len(recs) < limit; i++ {
		value := bytes.Repeat([]byte{byte(i)}, s.valueSize)
		recs = append(recs, &prismv1.GetResponse{Id: synthID(i), Revision: 1,
			Items: []*prismv1.Item{{Key: []byte("k"), Value: value}}})
	}
	return recs, nil
}

// heapPeak samples HeapInuse every interval until stop is called, which
// returns the largest sample.
func heapPeak(interval time.Duration) (stop func() uint64) {
	var (
		wg   sync.WaitGroup
		peak uint64
	)
	done := make(chan struct{})
	wg.Add(1)
	go func() {
		defer wg.Done()
		var ms runtime.MemStats
		t := time.NewTicker(interval)
		defer t.Stop()
		for {
			runtime.ReadMemStats(&ms)
			peak = max(peak, ms.HeapInuse)
			select {
			case <-done:
				return
			case <-t.C:
			}
		}
	}()
	return func() uint64 {
		close(done)
		wg.Wait()
		return peak
	}
}

// Verify streams: comparing two sources of 200k records of 1 KiB each
// (400 MiB read in all) keeps the heap to a few pages.
func TestVerifyMemoryIsFlat(t *testing.T) {
	if testing.Short() {
		t.Skip("reads 400 MiB")
	}
	const n, size = 200_000, 1024
	runtime.GC()
	var ms runtime.MemStats
	runtime.ReadMemStats(&ms)
	base := ms.HeapInuse
	stop := heapPeak(2 * time.Millisecond)
	r, err := replay.Verify(context.Background(), synthetic{n, size}, synthetic{n, size})
	peak := stop()
	if err != nil {
		t.Fatal(err)
	}
	if !r.Passed() || r.Compared != n {
		t.Fatalf("want all %d matched, got\n%s", n, table(r))
	}
	grew := int64(peak) - int64(base)
	t.Logf("heap in use: %.1f MiB before, peak %.1f MiB (%d records, %d MiB read)",
		float64(base)/(1<<20), float64(peak)/(1<<20), n, 2*n*size>>20)
	// Two pages of 1000 records per side in flight are about 4 MiB; the
	// garbage collector lets the heap grow to twice what is live.
	const bound = 32 << 20
	if grew > bound {
		t.Errorf("heap grew by %d MiB, want at most %d", grew>>20, bound>>20)
	}
}
