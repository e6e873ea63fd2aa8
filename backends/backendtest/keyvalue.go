package backendtest

import (
	"context"
	"testing"

	prismv1 "github.com/prism-data/prism/proto/prism/v1"
)

// KeyValueBackend is the contract of a KeyValue projection target (the
// method set of sqlite.Store). Its methods are safe for concurrent use.
//
// ApplyKeyValue applies changes in order and sets the checkpoint to through
// in one atomic transaction. Changes with Seq at or below the stored
// checkpoint are skipped, so a redelivered batch has no further effect; a
// call with through at or below the checkpoint changes nothing; an empty
// batch only advances the checkpoint. A put sets its items and the record's
// revision to the change's Seq (an empty put only moves the revision of an
// existing record); a delete with keys removes those items, one without keys
// the whole record, and sets the revision of a record that still has items;
// a replace makes the record hold exactly its items, with the change's Seq as
// revision (without items it deletes the record); a record left without items
// disappears. An invalid change fails the whole
// batch with Errors.InvalidChange before anything is written.
//
// GetItems reads one page of a record's live items in byte order of key: all
// of them, those in Keys, or those in Range [start, end) (an empty end is
// unbounded), with the record's revision from the same snapshot; a record
// without live items gives an empty response. ScanIDs lists the ids of
// records with a live item in byte order. For both, PageSize 0 means 100 and
// sizes above 1000 mean 1000; NextPageToken is empty on the last page.
//
// SweepExpired deletes the items whose expire_time is at or before the
// backend's clock, drops records left empty and returns how many items it
// deleted; it changes no revision and not the checkpoint.
//
// Close is idempotent; afterwards every method returns Errors.Closed.
type KeyValueBackend interface {
	Checkpoint(ctx context.Context) (uint64, error)
	ApplyKeyValue(ctx context.Context, changes []*prismv1.KeyValueChange, through uint64) error
	GetItems(ctx context.Context, req *prismv1.GetRequest) (*prismv1.GetResponse, error)
	ScanIDs(ctx context.Context, req *prismv1.ScanRequest) (*prismv1.ScanResponse, error)
	SweepExpired(ctx context.Context) (int64, error)
	Close() error
}

func checkKeyValueConfig(t testing.TB, cfg Config) {
	t.Helper()
	for name, err := range map[string]error{
		"InvalidChange":    cfg.Errors.InvalidChange,
		"InvalidPageToken": cfg.Errors.InvalidPageToken,
		"Closed":           cfg.Errors.Closed,
	} {
		if err == nil {
			t.Fatalf("backendtest: feature %q needs Config.Errors.%s", FeatureKeyValue, name)
		}
	}
}

// runKeyValue is the KeyValue sub-suite.
func runKeyValue(t *testing.T, cfg Config) {
	k := kvSuite{cfg: cfg}
	tests := []struct {
		name string
		run  func(t *testing.T)
	}{
		// Writes and checkpoints.
		{"ApplySemantics", k.testApplySemantics},
		{"RedeliveryIsExactlyOnce", k.testRedelivery},
		{"Replace", k.testReplace},
		{"ThroughNotAboveCheckpointIsNoOp", k.testThroughNotAboveCheckpoint},
		{"EmptyBatchAdvancesCheckpoint", k.testEmptyBatch},
		{"InvalidChangeAppliesNothing", k.testInvalidChange},
		{"InvalidBatch", k.testInvalidBatch},
		{"FailedCheckpointWriteAppliesNothing", k.testFailedCheckpointWrite},
		// Reads.
		{"GetKeys", k.testGetKeys},
		{"GetManyKeys", k.testGetManyKeys},
		{"GetRange", k.testGetRange},
		{"GetPagination", k.testGetPagination},
		{"ScanPagination", k.testScanPagination},
		{"BinaryIDsKeysAndValues", k.testBinary},
		{"InvalidPageToken", k.testInvalidPageToken},
		{"InvalidRequest", k.testInvalidRequest},
		// Expiry.
		{"TTL", k.testTTL},
		{"SweepMany", k.testSweepMany},
		{"SweepKeepsRevision", k.testSweepKeepsRevision},
		// Lifecycle and concurrency.
		{"PersistsAcrossReopen", k.testReopen},
		{"ConcurrentReadersDuringWrites", k.testConcurrentReaders},
		{"ConcurrentApply", k.testConcurrentApply},
		{"CloseIsIdempotentAndFinal", k.testClose},
		{"CloseDuringReads", k.testCloseDuringReads},
		{"CancelledContext", k.testCancelledContext},
	}
	for _, tt := range tests {
		t.Run(tt.name, tt.run)
	}
}

// kvSuite holds the configuration the KeyValue tests open backends with.
type kvSuite struct {
	cfg Config
}

// open opens a new, empty backend with a clock at t0 that the test can move.
func (k kvSuite) open(t testing.TB) (KeyValueBackend, *clock) {
	t.Helper()
	b, clk, _ := k.openReopen(t)
	return b, clk
}

// openReopen is open that also returns the factory's reopen (nil if it has
// none).
func (k kvSuite) openReopen(t testing.TB) (KeyValueBackend, *clock, func() KeyValueBackend) {
	t.Helper()
	clk := newClock(t0)
	b, reopen := openReopen(t, k.cfg, clk.Now)
	kv := asKV(t, b)
	if reopen == nil {
		return kv, clk, nil
	}
	return kv, clk, func() KeyValueBackend {
		t.Helper()
		return asKV(t, reopen())
	}
}

func asKV(t testing.TB, b any) KeyValueBackend {
	t.Helper()
	kv, ok := b.(KeyValueBackend)
	if !ok {
		t.Fatalf("backend %T does not implement backendtest.KeyValueBackend", b)
	}
	return kv
}
