package backendtest

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"sync"
	"testing"
	"time"

	"google.golang.org/protobuf/types/known/timestamppb"

	prismv1 "github.com/prism-data/prism/proto/prism/v1"
)

// Retention: SweepOlderThan deletes exactly the events before the cutoff
// (at nanosecond precision, before and after 1970), with their tags, counts
// them and leaves the checkpoint alone.
func (s tsSuite) testSweep(t *testing.T) {
	b := s.open(t)
	ctx := context.Background()
	moon := time.Date(1969, 7, 20, 20, 17, 40, 123456789, time.UTC)
	tsApply(t, b, 2,
		appendTo(1, "s", event(timestamppb.New(moon), "moon", "", "k", "v")),
		appendTo(2, "s", event(at(10, 0), "keep-exact", "", "k", "v"), event(at(9, 999_999_999), "drop-last", "", "k", "v", "k2", "v2")),
	)
	// 2500 old events in another series: a sweep of many.
	old := fill(t, b, "old", 2500, 3)
	tsApply(t, b, 3000, appendTo(3000, "new", event(at(5000, 0), "n", "", "k", "v")))
	if last := old[len(old)-1]; last.sec >= at(4000, 0).GetSeconds() {
		t.Fatalf("test data: old events reach %d", last.sec)
	}
	cutoff := at(10, 0)
	var oldGone int // "old" starts at tsBase+1s: its events of the first 9 seconds go.
	for oldGone < len(old) && compareTimes(old[oldGone].timeOf(), cutoff) < 0 {
		oldGone++
	}
	if oldGone == 0 || oldGone == len(old) {
		t.Fatalf("test data: %d of %d old events before the cutoff", oldGone, len(old))
	}
	keepExact := row{series: "s", sec: cutoff.GetSeconds(), id: "keep-exact", tags: "k=v"}
	newRow := row{series: "new", sec: at(5000, 0).GetSeconds(), id: "n", tags: "k=v"}

	steps := []struct {
		name      string
		cutoff    time.Time
		wantSwept int64
		wantS     []row // series s after the sweep
		wantOld   []row // series old after the sweep
		wantKV    []row // search k=v after the sweep
	}{
		{"cutoff at the oldest event", moon, 0, nil, old, nil},
		{"one nanosecond after it, before 1970", moon.Add(time.Nanosecond), 1, nil, old, nil},
		{"cutoff at an event keeps it", cutoff.AsTime(), int64(1 + oldGone), []row{keepExact}, old[oldGone:], []row{keepExact, newRow}},
		{"again: nothing left to sweep", cutoff.AsTime(), 0, []row{keepExact}, old[oldGone:], []row{keepExact, newRow}},
		{"all but the newest", at(4000, 0).AsTime(), int64(len(old) - oldGone + 1), []row{}, []row{}, []row{newRow}},
		{"and again", at(4000, 0).AsTime(), 0, []row{}, []row{}, []row{newRow}},
	}
	for _, st := range steps {
		t.Run(st.name, func(t *testing.T) {
			n, err := b.SweepOlderThan(ctx, st.cutoff)
			if err != nil {
				t.Fatalf("SweepOlderThan(%v): %v", st.cutoff, err)
			}
			if n != st.wantSwept {
				t.Errorf("SweepOlderThan(%v) = %d, want %d", st.cutoff, n, st.wantSwept)
			}
			wantS := st.wantS
			if wantS == nil { // the moon has not been swept yet
				wantS = []row{{series: "s", sec: moon.Unix(), nanos: int32(moon.Nanosecond()), id: "moon", tags: "k=v"},
					{series: "s", sec: at(9, 0).GetSeconds(), nanos: 999_999_999, id: "drop-last", tags: "k=v,k2=v2"}, keepExact}
				if st.wantSwept == 1 {
					wantS = wantS[1:]
				}
			}
			got, _ := readAll(t, b, &prismv1.ReadRangeRequest{SeriesId: []byte("s")})
			equalRows(t, "series s", got, rowsOrNil(wantS))
			got, _ = readAll(t, b, &prismv1.ReadRangeRequest{SeriesId: []byte("old"), PageSize: 1000})
			equalRows(t, "series old", got, rowsOrNil(st.wantOld))
			got, _ = searchAll(t, b, &prismv1.SearchRequest{PageSize: 1000})
			equalRows(t, "every event", got, sortRows(slices.Concat(wantS, st.wantOld, []row{newRow}), false))
			if st.wantKV != nil {
				got, _ = searchAll(t, b, &prismv1.SearchRequest{Tags: map[string]string{"k": "v"}})
				equalRows(t, "search k=v", got, st.wantKV)
				got, _ = searchAll(t, b, &prismv1.SearchRequest{Tags: map[string]string{"k2": "v2"}})
				equalRows(t, "search of a swept tag", got, nil)
				var parity []row
				for _, x := range st.wantOld {
					if x.hasTag("parity", "1") {
						parity = append(parity, x)
					}
				}
				got, _ = searchAll(t, b, &prismv1.SearchRequest{Tags: map[string]string{"parity": "1"}, PageSize: 1000})
				equalRows(t, "search parity=1", got, parity)
			}
			if cp := checkpoint(t, b); cp != 3000 {
				t.Errorf("checkpoint %d after a sweep, want 3000", cp)
			}
		})
	}
}

// rowsOrNil is rows, or nil if it is empty (what readAll returns for no
// events).
func rowsOrNil(rows []row) []row {
	if len(rows) == 0 {
		return nil
	}
	return rows
}

// Events, tags and the checkpoint survive a restart; redelivered changes
// and duplicate events are still skipped after it.
func (s tsSuite) testReopen(t *testing.T) {
	b, reopen := s.openReopen(t)
	if reopen == nil {
		t.Skip("the factory returns no reopen: persistence is not checked")
	}
	far := &timestamppb.Timestamp{Seconds: 253402300799, Nanos: 999_999_999}
	pre1970 := &timestamppb.Timestamp{Seconds: -1, Nanos: 1}
	tsApply(t, b, 42,
		appendTo(40, "a", event(at(1, 0), "e1", "p1", "k", "v")),
		appendTo(41, "b", event(far, "e2", "p2", "k", "v", "x", "y"), event(pre1970, "e3", "p3")),
	)
	want := []row{
		rowOf("b", event(pre1970, "e3", "p3")),
		rowOf("a", event(at(1, 0), "e1", "p1", "k", "v")),
		rowOf("b", event(far, "e2", "p2", "k", "v", "x", "y")),
	}
	if err := b.Close(); err != nil {
		t.Fatalf("Close: %v", err)
	}

	b = reopen()
	if cp := checkpoint(t, b); cp != 42 {
		t.Fatalf("checkpoint after reopen = %d, want 42", cp)
	}
	got, _ := searchAll(t, b, &prismv1.SearchRequest{})
	equalRows(t, "every event after reopen", got, want)
	got, _ = readAll(t, b, &prismv1.ReadRangeRequest{SeriesId: []byte("b"), Descending: true})
	equalRows(t, "series b after reopen", got, []row{want[2], want[0]})
	got, _ = searchAll(t, b, &prismv1.SearchRequest{Tags: map[string]string{"k": "v"}})
	equalRows(t, "search k=v after reopen", got, want[1:])

	tsApply(t, b, 43, appendTo(41, "b", event(at(5, 0), "stale", "")), appendTo(43, "c", event(at(1, 0), "new", "")))
	tsApply(t, b, 44, appendTo(44, "a", event(at(1, 0), "e1", "changed", "k", "w")))
	got, _ = searchAll(t, b, &prismv1.SearchRequest{})
	equalRows(t, "every event after more batches", got, sortRows(append(slices.Clone(want), row{series: "c", sec: at(1, 0).GetSeconds(), id: "new"}), false))
	if got, _ := searchAll(t, b, &prismv1.SearchRequest{Tags: map[string]string{"k": "w"}}); len(got) != 0 {
		t.Errorf("the tag of a duplicate written after reopen is indexed: %v", got)
	}
	if cp := checkpoint(t, b); cp != 44 {
		t.Errorf("checkpoint = %d, want 44", cp)
	}
}

// Readers running during appends (and a sweep) see whole batches and the
// checkpoint never ahead of the data; they fail only with context.Canceled
// when their context ends mid-read. Batch n appends perBatch events at time
// n to series r (seq 2n) and one to series s (seq 2n+1), all tagged
// batch=n.
func (s tsSuite) testConcurrentReaders(t *testing.T) {
	b := s.open(t)
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	const batches, perBatch, oldEvents = 40, 20, 50
	// Seq 1: events before time 0 in a series the readers do not read,
	// swept while they read.
	var olds []*prismv1.TimeSeriesEvent
	for i := range oldEvents {
		olds = append(olds, event(at(-1, int64(i)), fmt.Sprint("old", i), ""))
	}
	tsApply(t, b, 1, appendTo(1, "old", olds...))
	var wg sync.WaitGroup
	errs := make(chan error, 8)
	report := func(err error) {
		select {
		case errs <- err:
		default:
		}
	}
	canceled := func(r int, what string, err error) bool {
		if err == nil {
			return false
		}
		if !errors.Is(err, context.Canceled) {
			report(fmt.Errorf("reader %d: %s: %w", r, what, err))
		}
		return true
	}
	for r := range 4 {
		wg.Go(func() {
			var last int64
			for ctx.Err() == nil {
				cp, err := b.Checkpoint(ctx)
				if canceled(r, "Checkpoint", err) {
					return
				}
				resp, err := b.ReadRange(ctx, &prismv1.ReadRangeRequest{SeriesId: []byte("r"), Descending: true, PageSize: perBatch})
				if canceled(r, "ReadRange", err) {
					return
				}
				evs := resp.GetEvents()
				if len(evs) == 0 {
					if cp > 1 {
						report(fmt.Errorf("reader %d: no events at checkpoint %d", r, cp))
						return
					}
					continue // before the first batch
				}
				if len(evs) != perBatch {
					report(fmt.Errorf("reader %d: %d events, want %d", r, len(evs), perBatch))
					return
				}
				when := evs[0].GetEvent().GetEventTime()
				n := when.GetSeconds() - tsBase.Unix()
				for i, e := range evs {
					if compareTimes(e.GetEvent().GetEventTime(), when) != 0 || string(e.GetEvent().GetEventId()) != fmt.Sprintf("e%02d", perBatch-1-i) {
						report(fmt.Errorf("reader %d: torn batch: event %d is %v, want e%02d of batch %d", r, i, e.GetEvent(), perBatch-1-i, n))
						return
					}
				}
				if n < last {
					report(fmt.Errorf("reader %d: latest batch went back from %d to %d", r, last, n))
					return
				}
				if uint64(2*n+1) < cp {
					report(fmt.Errorf("reader %d: checkpoint %d, but the latest batch is %d (through %d)", r, cp, n, 2*n+1))
					return
				}
				last = n
				found, err := b.Search(ctx, &prismv1.SearchRequest{Tags: map[string]string{"batch": fmt.Sprint(n)}, PageSize: 1000})
				if canceled(r, "Search", err) {
					return
				}
				if got := len(found.GetEvents()); got != perBatch+1 {
					report(fmt.Errorf("reader %d: search of batch %d found %d events, want %d", r, n, got, perBatch+1))
					return
				}
			}
		})
	}

	for n := int64(1); n <= batches; n++ {
		var evs []*prismv1.TimeSeriesEvent
		for i := range perBatch {
			evs = append(evs, event(at(n, 0), fmt.Sprintf("e%02d", i), "", "batch", fmt.Sprint(n)))
		}
		seq := uint64(2 * n)
		tsApply(t, b, seq+1, appendTo(seq, "r", evs...), appendTo(seq+1, "s", event(at(n, 0), "s", "", "batch", fmt.Sprint(n))))
		if n == batches/2 {
			if swept, err := b.SweepOlderThan(ctx, at(0, 0).AsTime()); err != nil || swept != oldEvents {
				t.Errorf("SweepOlderThan during reads = %d, %v; want %d", swept, err, oldEvents)
			}
		}
	}
	cancel()
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Error(err)
	}
	if cp := checkpoint(t, b); cp != 2*batches+1 {
		t.Errorf("checkpoint = %d, want %d", cp, 2*batches+1)
	}
	if got, _ := readAll(t, b, &prismv1.ReadRangeRequest{SeriesId: []byte("r"), PageSize: 1000}); len(got) != batches*perBatch {
		t.Errorf("series r at the end: %d events, want %d", len(got), batches*perBatch)
	}
	if got, _ := readAll(t, b, &prismv1.ReadRangeRequest{SeriesId: []byte("old")}); len(got) != 0 {
		t.Errorf("series old at the end: %d events, want 0", len(got))
	}
}

func (s tsSuite) testClose(t *testing.T) {
	ctx := context.Background()
	b := s.open(t)
	tsApply(t, b, 1, appendTo(1, "s", event(at(0, 0), "a", "")))
	if err := b.Close(); err != nil {
		t.Fatalf("first Close: %v", err)
	}
	if err := b.Close(); err != nil {
		t.Fatalf("second Close: %v", err)
	}
	calls := []struct {
		name string
		call func() error
	}{
		{"Checkpoint", func() error { _, err := b.Checkpoint(ctx); return err }},
		{"ApplyTimeSeries", func() error {
			return b.ApplyTimeSeries(ctx, []*prismv1.TimeSeriesChange{appendTo(2, "s", event(at(1, 0), "b", ""))}, 2)
		}},
		{"ApplyTimeSeries empty", func() error { return b.ApplyTimeSeries(ctx, nil, 3) }},
		{"ReadRange", func() error { _, err := b.ReadRange(ctx, &prismv1.ReadRangeRequest{SeriesId: []byte("s")}); return err }},
		{"ReadRange empty range", func() error {
			_, err := b.ReadRange(ctx, &prismv1.ReadRangeRequest{SeriesId: []byte("s"), Range: &prismv1.TimeRange{Start: at(1, 0), End: at(1, 0)}})
			return err
		}},
		{"Search", func() error { _, err := b.Search(ctx, &prismv1.SearchRequest{}); return err }},
		{"Search by tag", func() error {
			_, err := b.Search(ctx, &prismv1.SearchRequest{Tags: map[string]string{"k": "v"}})
			return err
		}},
		{"SweepOlderThan", func() error { _, err := b.SweepOlderThan(ctx, time.Now()); return err }},
	}
	for _, c := range calls {
		if err := c.call(); !errors.Is(err, s.cfg.Errors.Closed) {
			t.Errorf("%s after Close: err = %v, want %v", c.name, err, s.cfg.Errors.Closed)
		}
	}
}

// A call with a cancelled context fails with an error that matches
// context.Canceled and changes nothing.
func (s tsSuite) testCancelledContext(t *testing.T) {
	b := s.open(t)
	tsApply(t, b, 1, appendTo(1, "s", event(at(0, 0), "a", "A", "k", "v"), event(at(1, 0), "b", "B", "k", "v")))
	before, _ := searchAll(t, b, &prismv1.SearchRequest{})
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	calls := []struct {
		name string
		call func() error
	}{
		{"Checkpoint", func() error { _, err := b.Checkpoint(ctx); return err }},
		{"ApplyTimeSeries", func() error {
			return b.ApplyTimeSeries(ctx, []*prismv1.TimeSeriesChange{appendTo(2, "s", event(at(2, 0), "c", "")), appendTo(3, "t", event(at(2, 0), "c", ""))}, 3)
		}},
		{"ApplyTimeSeries empty", func() error { return b.ApplyTimeSeries(ctx, nil, 4) }},
		{"ReadRange", func() error { _, err := b.ReadRange(ctx, &prismv1.ReadRangeRequest{SeriesId: []byte("s")}); return err }},
		{"Search", func() error { _, err := b.Search(ctx, &prismv1.SearchRequest{}); return err }},
		{"Search by tag", func() error {
			_, err := b.Search(ctx, &prismv1.SearchRequest{Tags: map[string]string{"k": "v"}})
			return err
		}},
		{"SweepOlderThan", func() error { _, err := b.SweepOlderThan(ctx, at(1, 0).AsTime()); return err }},
	}
	for _, c := range calls {
		t.Run(c.name, func(t *testing.T) {
			if err := c.call(); !errors.Is(err, context.Canceled) {
				t.Errorf("err = %v, want %v", err, context.Canceled)
			}
		})
	}
	if cp := checkpoint(t, b); cp != 1 {
		t.Errorf("checkpoint = %d, want 1", cp)
	}
	got, _ := searchAll(t, b, &prismv1.SearchRequest{})
	equalRows(t, "events", got, before)
}
