package node_test

import (
	"runtime/debug"
	"testing"

	"github.com/prism-data/prism/node"
)

// Without GOGC the process runs at DefaultGCPercent; GOGC, as the Go
// runtime read it at start, wins over the default.
func TestTuneGC(t *testing.T) {
	was := debug.SetGCPercent(100)
	t.Cleanup(func() { debug.SetGCPercent(was) })

	t.Setenv("GOGC", "")
	if got := node.TuneGC(); got != node.DefaultGCPercent {
		t.Errorf("TuneGC() without GOGC = %d, want %d", got, node.DefaultGCPercent)
	}
	if p := debug.SetGCPercent(100); p != node.DefaultGCPercent {
		t.Errorf("GC percent %d after TuneGC, want %d", p, node.DefaultGCPercent)
	}
	t.Setenv("GOGC", "150") // what the runtime applied at start is kept
	debug.SetGCPercent(150)
	if got := node.TuneGC(); got != 150 {
		t.Errorf("TuneGC() with GOGC=150 = %d, want 150", got)
	}
	if p := debug.SetGCPercent(100); p != 150 {
		t.Errorf("GC percent %d after TuneGC with GOGC set, want 150", p)
	}
}
