package replay

import (
	"fmt"
	"io"
	"time"

	"github.com/prism-data/prism/subjects"
)

// CompactReport is one compaction pass over a namespace's stream, as
// prism compact prints it: as JSON, or as text with WriteText.
type CompactReport struct {
	Namespace   string  `json:"namespace"`
	Stream      string  `json:"stream"`
	TookSeconds float64 `json:"took_seconds"`
	CompactStats
	took time.Duration
}

// NewCompactReport is the report of a pass over namespace ns that took
// took and counted s.
func NewCompactReport(ns string, took time.Duration, s CompactStats) CompactReport {
	return CompactReport{Namespace: ns, Stream: subjects.Stream(ns), TookSeconds: took.Seconds(), CompactStats: s, took: took}
}

// WriteText writes the report for people: the stream's size before and
// after, and what was rolled up, removed, purged and skipped.
func (r CompactReport) WriteText(w io.Writer) error {
	s := r.CompactStats
	_, err := fmt.Fprintf(w, "compacted namespace %s (stream %s) in %v\n"+
		"  messages    %d -> %d\n"+
		"  records     %d, %d rolled up into one event each\n"+
		"  removed     %d messages\n"+
		"  tombstones  %d purged\n"+
		"  skipped     %d written during the pass, %d within the idempotency window, %d too large for one message\n",
		r.Namespace, r.Stream, r.took.Round(time.Millisecond), s.MsgsBefore, s.MsgsAfter, s.Subjects, s.RolledUp,
		s.MessagesRemoved, s.TombstonesPurged, s.SkippedWritten, s.SkippedRecent, s.SkippedTooLarge)
	return err
}
