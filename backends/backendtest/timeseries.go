package backendtest

import (
	"context"
	"slices"
	"testing"
	"time"

	prismv1 "github.com/prism-data/prism/proto/prism/v1"
)

// TimeSeriesBackend is the contract of a TimeSeries projection target (the
// TimeSeries methods of sqlite.Store, plus Checkpoint and Close). Its
// methods are safe for concurrent use.
//
// ApplyTimeSeries stores the events of changes in order and sets the
// checkpoint to through in one atomic transaction. Changes with Seq at or
// below the stored checkpoint are skipped, so a redelivered batch has no
// further effect; a call with through at or below the checkpoint changes
// nothing; an empty batch only advances the checkpoint. An event is
// identified by (series_id, event_time, event_id): storing it again, in the
// same batch or a later one, changes nothing (the first write wins, its
// payload and tags stay, the tags of the duplicate are not indexed). An
// invalid change fails the whole batch with Errors.InvalidChange before
// anything is written. A backend that also serves KeyValue keeps one
// checkpoint for both abstractions.
//
// ReadRange reads one page of a series' events whose event_time is in the
// range [start, end) (an unset start is the beginning of time, an unset end
// is unbounded), ordered by (event_time, event_id bytes), descending if
// asked. Search reads one page of the events whose tags include every given
// tag (no tags match every event) in a time range, in one series or in all,
// ordered by (event_time, series_id bytes, event_id bytes). For both,
// PageSize 0 means 100 and sizes above 1000 mean 1000; a page that is not
// the last is full; NextPageToken is empty on the last page. Event times
// from year 1 to 9999 round-trip to the nanosecond; ids, tags and payloads
// round-trip byte for byte.
//
// SweepOlderThan deletes the events whose event_time is before cutoff
// (retention by age), with their tags, and returns how many it deleted; it
// does not change the checkpoint.
//
// Close is idempotent; afterwards every method returns Errors.Closed.
type TimeSeriesBackend interface {
	Checkpoint(ctx context.Context) (uint64, error)
	ApplyTimeSeries(ctx context.Context, changes []*prismv1.TimeSeriesChange, through uint64) error
	ReadRange(ctx context.Context, req *prismv1.ReadRangeRequest) (*prismv1.EventsResponse, error)
	Search(ctx context.Context, req *prismv1.SearchRequest) (*prismv1.EventsResponse, error)
	SweepOlderThan(ctx context.Context, cutoff time.Time) (int64, error)
	Close() error
}

func checkTimeSeriesConfig(t testing.TB, cfg Config) {
	t.Helper()
	for _, e := range []struct {
		name string
		err  error
	}{
		{"InvalidChange", cfg.Errors.InvalidChange},
		{"InvalidPageToken", cfg.Errors.InvalidPageToken},
		{"Closed", cfg.Errors.Closed},
	} {
		if e.err == nil {
			t.Fatalf("backendtest: feature %q needs Config.Errors.%s", FeatureTimeSeries, e.name)
		}
	}
}

// runTimeSeries is the TimeSeries sub-suite.
func runTimeSeries(t *testing.T, cfg Config) {
	s := tsSuite{cfg: cfg}
	tests := []struct {
		name string
		run  func(t *testing.T)
	}{
		// Writes and checkpoints.
		{"CheckpointSemantics", s.testCheckpoint},
		{"IdempotentAppend", s.testIdempotent},
		{"ReplayIsNoOp", s.testReplay},
		{"InvalidChangeAppliesNothing", s.testInvalidChange},
		{"InvalidBatch", s.testInvalidBatch},
		{"FailedCheckpointWriteAppliesNothing", s.testFailedCheckpointWrite},
		{"SharesCheckpointWithKeyValue", s.testSharedCheckpoint},
		// Reads.
		{"RangeEdges", s.testRangeEdges},
		{"EqualTimesOrderedByEventID", s.testEqualTimes},
		{"Pagination", s.testPagination},
		{"Search", s.testSearch},
		{"InvalidPageToken", s.testInvalidPageToken},
		{"InvalidRequest", s.testInvalidRequest},
		{"TimesRoundTrip", s.testTimesRoundTrip},
		{"BinaryAndUnicodeIDs", s.testBinaryIDs},
		{"LargePayloadsAndTags", s.testLarge},
		// Retention.
		{"RetentionSweep", s.testSweep},
		// Lifecycle and concurrency.
		{"PersistsAcrossReopen", s.testReopen},
		{"ConcurrentReadersDuringAppends", s.testConcurrentReaders},
		{"CloseIsIdempotentAndFinal", s.testClose},
		{"CancelledContext", s.testCancelledContext},
	}
	for _, tt := range tests {
		t.Run(tt.name, tt.run)
	}
}

// tsSuite holds the configuration the TimeSeries tests open backends with.
type tsSuite struct {
	cfg Config
}

// declares reports whether the backend under test declares f.
func (s tsSuite) declares(f Feature) bool { return slices.Contains(s.cfg.Features, f) }

// open opens a new, empty backend. TimeSeries has no clock-driven behaviour:
// the clock stays at t0.
func (s tsSuite) open(t testing.TB) TimeSeriesBackend {
	t.Helper()
	b, _ := s.openReopen(t)
	return b
}

// openReopen is open that also returns the factory's reopen (nil if it has
// none).
func (s tsSuite) openReopen(t testing.TB) (TimeSeriesBackend, func() TimeSeriesBackend) {
	t.Helper()
	b, reopen := openReopen(t, s.cfg, newClock(t0).Now)
	ts := asTS(t, b)
	if reopen == nil {
		return ts, nil
	}
	return ts, func() TimeSeriesBackend {
		t.Helper()
		return asTS(t, reopen())
	}
}

func asTS(t testing.TB, b any) TimeSeriesBackend {
	t.Helper()
	ts, ok := b.(TimeSeriesBackend)
	if !ok {
		t.Fatalf("backend %T does not implement backendtest.TimeSeriesBackend", b)
	}
	return ts
}
