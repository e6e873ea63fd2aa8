package node

import (
	"context"
	"os"
	"runtime/debug"
	"runtime/metrics"
	"time"
)

// DefaultGCPercent is the garbage collector's target a Prism process runs
// with unless GOGC is set: the heap may grow to three times what is live
// between collections, against Go's default of two. Measured with prism
// bench (64 writers, two cores), it costs about 8 % less CPU per
// acknowledged put than 100 (docs/performance.md). GOMEMLIMIT, when set,
// still caps the heap.
const DefaultGCPercent = 200

// DefaultGCHeapFloor is how much a Prism process's heap may grow between
// collections at least, however little is live (ADR 028): with the ~15 MiB
// a serving process keeps live, DefaultGCPercent alone collected about
// once a second at 1,000 puts/s, and every request running during a
// collection's ~15 ms was slowed, which set the p99 of every namespace.
const DefaultGCHeapFloor = 64 << 20

// gcTuneInterval is how often HoldGCHeapFloor reads the live heap. A
// collection is rarely more often than this, and between two reads the
// process allocates a few MiB at most.
const gcTuneInterval = 100 * time.Millisecond

// maxGCPercent bounds what HoldGCHeapFloor sets: only a nearly empty heap
// reaches it.
const maxGCPercent = 10000

// TuneGC sets the process's GC percent to DefaultGCPercent and holds the
// heap floor of DefaultGCHeapFloor until stop is called, unless the
// environment sets GOGC; it returns the percent in effect at once. stop
// returns once the floor is no longer held (the percent it last set
// stays). prism calls it once at start and never stops it; a program
// embedding a Node decides for itself (HoldGCHeapFloor).
func TuneGC() (percent int, stop func()) {
	if v, ok := os.LookupEnv("GOGC"); ok && v != "" {
		p := debug.SetGCPercent(-1)
		debug.SetGCPercent(p)
		return p, func() {}
	}
	debug.SetGCPercent(DefaultGCPercent)
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() {
		defer close(done)
		HoldGCHeapFloor(ctx, DefaultGCHeapFloor, DefaultGCPercent, gcTuneInterval)
	}()
	return DefaultGCPercent, func() { cancel(); <-done }
}

// HoldGCHeapFloor sets the GC percent, every interval until ctx ends, to
// what lets the heap grow by at least floor bytes beyond what the last
// collection found live, and never below base (GCPercentFor). GOMEMLIMIT
// still makes the collector run sooner near the limit. It returns when
// ctx ends, leaving the last percent it set.
func HoldGCHeapFloor(ctx context.Context, floor uint64, base int, interval time.Duration) {
	live := []metrics.Sample{{Name: "/gc/heap/live:bytes"}}
	tick := time.NewTicker(interval)
	defer tick.Stop()
	set := base
	for {
		metrics.Read(live)
		if live[0].Value.Kind() != metrics.KindUint64 { // not this runtime's metric
			return
		}
		// Changed only when it moves by more than a tenth: the live
		// heap differs a little after every collection.
		if p := GCPercentFor(live[0].Value.Uint64(), floor, base); p > set+set/10 || p < set-set/10 {
			debug.SetGCPercent(p)
			set = p
		}
		select {
		case <-ctx.Done():
			return
		case <-tick.C:
		}
	}
}

// GCPercentFor is the GC percent that lets a heap of live bytes grow by
// floor before the next collection, at least base and at most
// maxGCPercent; base when nothing was measured live yet.
func GCPercentFor(live, floor uint64, base int) int {
	if live == 0 {
		return base
	}
	p := (floor*100 + live - 1) / live
	return max(base, int(min(p, maxGCPercent)))
}
