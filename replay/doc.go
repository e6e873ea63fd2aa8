// Package replay moves a namespace's state between projection targets:
// backfilling a new target from the namespace's stream (Job: a replay is a
// projection started from an earlier point, used by prism replay and by a
// migration's backfill), compacting what a backfill has
// to read so that it costs in proportion to the live data, throttling a
// backfill so that it does not hurt live traffic, and verifying that two
// targets projecting the same stream hold the same records (Verify).
//
// It builds on the projectors' public API and the backends' methods through
// small interfaces declared here; it imports neither gateway/ nor cmd/.
package replay
