// Package replay fills and checks projection targets from a namespace's
// stream: backfill of a new or rebuilt target (a projection started from an
// earlier point, paced by a Throttle so live traffic keeps its share),
// compaction, and verification of one target against another. It builds on
// the projectors' public API and imports no gateway or command code.
package replay
