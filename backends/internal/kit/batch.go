package kit

import (
	"fmt"
	"math"

	prismv1 "github.com/prism-data/prism/proto/prism/v1"
)

// Fault is what is wrong with a batch given to ApplyKeyValue or
// ApplyTimeSeries. Backends turn it into their own errors: an
// *InvalidChangeError if Change, else their ErrInvalidBatch.
type Fault struct {
	// Change is true if one change is at fault (the caller dead-letters
	// it), false if the batch is (a bug in the caller).
	Change bool
	// Index and Seq locate the invalid change (Seq is 0 for a nil change);
	// both are 0 for a fault of the batch.
	Index int
	Seq   uint64
	// Reason says what is wrong, e.g. "nil event" or "change 2 has seq 0".
	Reason string
}

// CheckKeyValueBatch checks changes and through before anything is written:
// every change must be non-nil with a put, a delete or a replace whose
// items are non-nil with valid expire_times (else a Change fault), and the sequences
// must be non-zero, strictly increasing, at most through, and through at
// most math.MaxInt64 (else a batch fault). It returns nil for a valid
// batch.
func CheckKeyValueBatch(changes []*prismv1.KeyValueChange, through uint64) *Fault {
	return checkBatch(changes, through, func(c *prismv1.KeyValueChange) string { return checkKeyValueEvent(c.GetEvent()) })
}

// CheckTimeSeriesBatch is CheckKeyValueBatch for TimeSeries: every change
// must be non-nil with an append of a non-empty series_id whose events are
// non-nil, with a valid event_time and an event_id of 1 to MaxEventIDLen
// bytes.
func CheckTimeSeriesBatch(changes []*prismv1.TimeSeriesChange, through uint64) *Fault {
	return checkBatch(changes, through, func(c *prismv1.TimeSeriesChange) string { return checkAppend(c.GetAppend()) })
}

// checkBatch checks the sequences of changes; check returns why a non-nil
// change cannot be applied, or "".
func checkBatch[C interface {
	comparable
	GetSeq() uint64
}](changes []C, through uint64, check func(C) string) *Fault {
	if through > math.MaxInt64 {
		return &Fault{Reason: fmt.Sprintf("through %d above %d", through, uint64(math.MaxInt64))}
	}
	var prev uint64
	var null C
	for i, c := range changes {
		if c == null {
			return &Fault{Change: true, Index: i, Reason: "nil change"}
		}
		if reason := check(c); reason != "" {
			return &Fault{Change: true, Index: i, Seq: c.GetSeq(), Reason: reason}
		}
		switch seq := c.GetSeq(); {
		case seq == 0:
			return &Fault{Reason: fmt.Sprintf("change %d has seq 0", i)}
		case seq <= prev:
			return &Fault{Reason: fmt.Sprintf("change %d has seq %d after seq %d", i, seq, prev)}
		case seq > through:
			return &Fault{Reason: fmt.Sprintf("change %d has seq %d above through %d", i, seq, through)}
		default:
			prev = seq
		}
	}
	return nil
}

// checkKeyValueEvent returns why ev cannot be applied, or "" if it can.
func checkKeyValueEvent(ev *prismv1.KeyValueEvent) string {
	if ev == nil {
		return "nil event"
	}
	switch ch := ev.GetChange().(type) {
	case *prismv1.KeyValueEvent_Put:
		if ch.Put == nil {
			return "nil put"
		}
		return checkItems("put", ch.Put.GetItems())
	case *prismv1.KeyValueEvent_Delete:
		if ch.Delete == nil {
			return "nil delete"
		}
	case *prismv1.KeyValueEvent_Replace:
		if ch.Replace == nil {
			return "nil replace"
		}
		return checkItems("replace", ch.Replace.GetItems())
	default:
		return "neither put, delete nor replace"
	}
	return ""
}

// checkItems returns why the items of a put or replace (what) cannot be
// applied, or "" if they can.
func checkItems(what string, items []*prismv1.Item) string {
	for j, it := range items {
		if it == nil {
			return fmt.Sprintf("%s item %d is nil", what, j)
		}
		if et := it.GetExpireTime(); et != nil {
			if err := et.CheckValid(); err != nil {
				return fmt.Sprintf("%s item %d: expire_time: %v", what, j, err)
			}
		}
	}
	return ""
}

// checkAppend returns why a cannot be applied, or "" if it can.
func checkAppend(a *prismv1.TimeSeriesAppend) string {
	if a == nil {
		return "nil append"
	}
	if len(a.GetSeriesId()) == 0 {
		return "empty series_id"
	}
	for j, ev := range a.GetEvents() {
		if ev == nil {
			return fmt.Sprintf("event %d is nil", j)
		}
		if ev.GetEventTime() == nil {
			return fmt.Sprintf("event %d has no event_time", j)
		}
		if err := ev.GetEventTime().CheckValid(); err != nil {
			return fmt.Sprintf("event %d: event_time: %v", j, err)
		}
		if n := len(ev.GetEventId()); n == 0 || n > MaxEventIDLen {
			return fmt.Sprintf("event %d: event_id is %d bytes, want 1 to %d", j, n, MaxEventIDLen)
		}
	}
	return ""
}
