package backendtest

import (
	"context"
	"testing"

	prismv1 "github.com/prism-data/prism/proto/prism/v1"
)

// LogBackend is the contract of a Log projection target (kafka.Store's Log
// methods, plus Checkpoint and Close). Its methods are safe for concurrent
// use.
//
// ApplyLog appends one record per change, in order, keyed by the event's
// key: every record of a key lands in the same partition, in stream order,
// with the event's value, its headers, the change's seq and its CloudEvent
// id (cloud_event["ce-id"]) and time (cloud_event["ce-time"]). Then it sets
// the checkpoint to through. Changes with Seq at or below the checkpoint
// are skipped, so a redelivered batch adds no record; a call with through
// at or below the checkpoint changes nothing; an empty batch only advances
// the checkpoint. An invalid change (nil, no key, no ce-id, an empty or
// reserved header name) fails the whole batch with Errors.InvalidChange
// before anything is appended. The records and the checkpoint need not
// commit atomically (Kafka's do not): a backend may append a batch again
// after a failure before its checkpoint, but never skips a record, and
// the copies carry the same id.
//
// Fetch reads one partition (or the partition of a key) from an offset, in
// offset order, at most max_records (0: 100; above 1000: 1000), below
// end_offset when set; next_offset is one past the last record returned
// (the request's offset when none), high_watermark one past the
// partition's last record, partitions the partition count. Reading at the
// end is an empty page. Offsets of a partition are consecutive from 0
// for records the backend appended. Keys, values and headers round-trip
// byte for byte.
//
// Close is idempotent; afterwards every method returns Errors.Closed.
type LogBackend interface {
	Checkpoint(ctx context.Context) (uint64, error)
	ApplyLog(ctx context.Context, changes []*prismv1.LogChange, through uint64) error
	Fetch(ctx context.Context, req *prismv1.LogFetchRequest) (*prismv1.LogFetchResponse, error)
	Close() error
}

func checkLogConfig(t testing.TB, cfg Config) {
	t.Helper()
	for _, e := range []struct {
		name string
		err  error
	}{
		{"InvalidChange", cfg.Errors.InvalidChange},
		{"InvalidRequest", cfg.Errors.InvalidRequest},
		{"InvalidBatch", cfg.Errors.InvalidBatch},
		{"Closed", cfg.Errors.Closed},
	} {
		if e.err == nil {
			t.Fatalf("backendtest: feature %q needs Config.Errors.%s", FeatureLog, e.name)
		}
	}
}

// runLog is the Log sub-suite.
func runLog(t *testing.T, cfg Config) {
	s := logSuite{cfg: cfg}
	tests := []struct {
		name string
		run  func(t *testing.T)
	}{
		{"CheckpointSemantics", s.testCheckpoint},
		{"PerKeyOrderAndFields", s.testPerKeyOrder},
		{"ReplayAddsNothing", s.testReplay},
		{"InvalidChangeAppendsNothing", s.testInvalidChange},
		{"InvalidBatch", s.testInvalidBatch},
		{"OffsetRangeAndPaging", s.testOffsetRange},
		{"FetchAtAndPastTheEnd", s.testFetchEnd},
		{"InvalidRequest", s.testInvalidRequest},
		{"BinaryKeysAndValues", s.testBinary},
		{"PersistsAcrossReopen", s.testReopen},
		{"CloseIsIdempotentAndFinal", s.testClose},
	}
	for _, tt := range tests {
		t.Run(tt.name, tt.run)
	}
}

// logSuite holds the configuration the Log tests open backends with.
type logSuite struct {
	cfg Config
}

func (s logSuite) open(t testing.TB) LogBackend {
	t.Helper()
	b, _ := s.openReopen(t)
	return b
}

func (s logSuite) openReopen(t testing.TB) (LogBackend, func() LogBackend) {
	t.Helper()
	b, reopen := openReopen(t, s.cfg, newClock(t0).Now)
	l := asLog(t, b)
	if reopen == nil {
		return l, nil
	}
	return l, func() LogBackend {
		t.Helper()
		return asLog(t, reopen())
	}
}

func asLog(t testing.TB, b any) LogBackend {
	t.Helper()
	l, ok := b.(LogBackend)
	if !ok {
		t.Fatalf("backend %T does not implement backendtest.LogBackend", b)
	}
	return l
}
