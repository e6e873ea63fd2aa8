package node

import (
	"os"
	"runtime/debug"
)

// DefaultGCPercent is the garbage collector's target a Prism process runs
// with unless GOGC is set: the heap may grow to three times what is live
// between collections, against Go's default of two. Measured with prism
// bench (64 writers, two cores), it costs about 8 % less CPU per
// acknowledged put than 100 (docs/performance.md). GOMEMLIMIT, when set,
// still caps the heap.
const DefaultGCPercent = 200

// TuneGC sets the process's GC percent to DefaultGCPercent unless the
// environment sets GOGC, and returns the percent in effect. prism calls it
// once at start; a program embedding a Node decides for itself.
func TuneGC() int {
	if v, ok := os.LookupEnv("GOGC"); ok && v != "" {
		p := debug.SetGCPercent(-1)
		debug.SetGCPercent(p)
		return p
	}
	debug.SetGCPercent(DefaultGCPercent)
	return DefaultGCPercent
}
