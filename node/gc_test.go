package node_test

import (
	"context"
	"runtime/debug"
	"runtime/metrics"
	"testing"
	"time"

	"github.com/prism-data/prism/node"
)

// gcPercent is the GC percent in effect, read without changing it.
func gcPercent(t *testing.T) int {
	t.Helper()
	s := []metrics.Sample{{Name: "/gc/gogc:percent"}}
	metrics.Read(s)
	if s[0].Value.Kind() != metrics.KindUint64 {
		t.Fatal("runtime/metrics has no /gc/gogc:percent")
	}
	return int(s[0].Value.Uint64())
}

// Without GOGC the process runs at DefaultGCPercent or above (the heap
// floor raises it while little is live); GOGC, as the Go runtime read it
// at start, wins over both.
func TestTuneGC(t *testing.T) {
	was := debug.SetGCPercent(100)
	t.Cleanup(func() { debug.SetGCPercent(was) })

	t.Setenv("GOGC", "")
	got, stop := node.TuneGC()
	if got != node.DefaultGCPercent {
		t.Errorf("TuneGC() without GOGC = %d, want %d", got, node.DefaultGCPercent)
	}
	// This test binary keeps far less than the floor live.
	deadline := time.Now().Add(5 * time.Second)
	for gcPercent(t) <= node.DefaultGCPercent && time.Now().Before(deadline) {
		time.Sleep(10 * time.Millisecond)
	}
	stop()
	if p := gcPercent(t); p <= node.DefaultGCPercent {
		t.Errorf("GC percent %d while the heap floor is held, want above %d", p, node.DefaultGCPercent)
	}
	t.Setenv("GOGC", "150") // what the runtime applied at start is kept
	debug.SetGCPercent(150)
	got, stop = node.TuneGC()
	stop()
	if got != 150 {
		t.Errorf("TuneGC() with GOGC=150 = %d, want 150", got)
	}
	if p := gcPercent(t); p != 150 {
		t.Errorf("GC percent %d after TuneGC with GOGC set, want 150", p)
	}
}

func TestGCPercentFor(t *testing.T) {
	const mib = 1 << 20
	for _, tt := range []struct {
		live, floor uint64
		base, want  int
	}{
		{live: 0, floor: 64 * mib, base: 200, want: 200},        // nothing measured yet
		{live: 16 * mib, floor: 64 * mib, base: 200, want: 400}, // 16 + 64 MiB
		{live: 15 * mib, floor: 64 * mib, base: 200, want: 427}, // rounded up
		{live: 64 * mib, floor: 64 * mib, base: 200, want: 200}, // the base grows it more
		{live: 1 << 30, floor: 64 * mib, base: 200, want: 200},  // a large heap: the base
		{live: 1024, floor: 64 * mib, base: 200, want: 10000},   // bounded
		{live: 16 * mib, floor: 0, base: 100, want: 100},        // no floor
	} {
		if got := node.GCPercentFor(tt.live, tt.floor, tt.base); got != tt.want {
			t.Errorf("GCPercentFor(%d, %d, %d) = %d, want %d", tt.live, tt.floor, tt.base, got, tt.want)
		}
	}
}

// HoldGCHeapFloor follows the live heap and returns when its context
// ends, leaving the percent it set.
func TestHoldGCHeapFloor(t *testing.T) {
	was := debug.SetGCPercent(100)
	t.Cleanup(func() { debug.SetGCPercent(was) })
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() {
		defer close(done)
		node.HoldGCHeapFloor(ctx, 1<<40, 100, time.Millisecond) // a floor no heap here reaches
	}()
	deadline := time.Now().Add(5 * time.Second)
	for gcPercent(t) != 10000 && time.Now().Before(deadline) {
		time.Sleep(time.Millisecond)
	}
	cancel()
	select {
	case <-done:
	case <-time.After(5 * time.Second):
		t.Fatal("HoldGCHeapFloor did not return after its context ended")
	}
	if p := gcPercent(t); p != 10000 {
		t.Fatalf("GC percent %d under a 1 TiB floor, want the bound 10000", p)
	}
}
