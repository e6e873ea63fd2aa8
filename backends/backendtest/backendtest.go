// Package backendtest is the conformance suite every Prism backend runs: one
// set of tests per data abstraction (feature), exercised through the
// abstraction's interface only, so SQLite, PostgreSQL and every later
// adapter are held to the same contract.
//
// An adapter calls Run from its own tests with the features it declares, the
// sentinel errors it returns and a Factory that opens a new, empty backend:
//
//	func TestConformance(t *testing.T) {
//		backendtest.Run(t, backendtest.Config{
//			Features: []backendtest.Feature{backendtest.FeatureKeyValue, backendtest.FeatureTimeSeries},
//			Errors:   backendtest.Errors{InvalidChange: ErrInvalidChange, ...},
//			New:      func(t testing.TB, now func() time.Time) (any, func() any) { ... },
//		})
//	}
//
// The features are checked both ways, as dapr components-contrib does: a
// declared feature's sub-suite must pass, and a backend that does not
// declare a feature must not implement its interface either (a method set
// that is there but untested is a contract nobody checks).
package backendtest

import (
	"context"
	"slices"
	"testing"
	"time"
)

// Feature names a data abstraction a backend serves.
type Feature string

const (
	// FeatureKeyValue is the KeyValue abstraction: the backend implements
	// KeyValueBackend.
	FeatureKeyValue Feature = "keyvalue"
	// FeatureTimeSeries is the TimeSeries abstraction: the backend
	// implements TimeSeriesBackend. A backend that declares it with
	// FeatureKeyValue keeps one checkpoint for both.
	FeatureTimeSeries Feature = "timeseries"
	// FeatureLog is the Log abstraction: the backend implements
	// LogBackend.
	FeatureLog Feature = "log"
	// FeatureKeyValueExport is the bulk read of KeyValue records in id
	// order, for verification and copies: the backend implements
	// KeyValueExporter. It needs FeatureKeyValue and Errors.InvalidRequest.
	FeatureKeyValueExport Feature = "keyvalue-export"
)

// Errors are the backend's sentinel errors; the suite checks the errors the
// backend returns with errors.Is against them. InvalidChange, InvalidPageToken
// and Closed are required by FeatureKeyValue and FeatureTimeSeries;
// InvalidChange, InvalidBatch, InvalidRequest and Closed by FeatureLog.
// Otherwise InvalidBatch and InvalidRequest are optional: when nil, the
// checks that need them are skipped with a message saying so.
type Errors struct {
	// InvalidChange is returned by ApplyKeyValue, ApplyTimeSeries and
	// ApplyLog for a change that can never be applied (KeyValue: nil change
	// or event, neither put, delete nor replace, nil item, invalid expire_time; Log:
	// nil change or event, empty key, no ce-id, an empty or reserved header
	// name; TimeSeries:
	// nil change or append, empty series_id, nil event, missing or invalid
	// event_time, event_id empty or longer than 256 bytes). The error must
	// also implement interface{ Permanent() bool } returning true, so the
	// projector dead-letters the change instead of retrying it.
	InvalidChange error
	// InvalidPageToken is returned by GetItems, ScanIDs, ReadRange and
	// Search for a page token they did not make.
	InvalidPageToken error
	// Closed is returned by every method after Close.
	Closed error
	// InvalidBatch (optional; required by FeatureLog) is returned by
	// ApplyKeyValue, ApplyTimeSeries and ApplyLog for a malformed batch: sequences that are 0, not
	// strictly increasing or above through. It must not match
	// InvalidChange nor be permanent: the batch is the caller's bug, its
	// events must not be dead-lettered.
	InvalidBatch error
	// InvalidRequest (optional; required by FeatureLog and
	// FeatureKeyValueExport) is returned by ExportRecords for a limit below
	// 1, by Fetch for a nil request, a partition out of range, a key and a
	// partition both set, a negative offset or an end_offset not above
	// offset; and by GetItems and ScanIDs for a
	// nil request and by GetItems for one that sets both keys and range;
	// by ReadRange for a nil request, an empty series_id or an invalid
	// range timestamp; by Search for a nil request or an invalid range
	// timestamp.
	InvalidRequest error
}

// Factory opens a new, empty backend whose clock (deciding which items have
// expired) is now. The suite closes the backend it gets; Close must be
// idempotent, so the factory may close it again in its own t.Cleanup. The
// factory reports its failures with t.Fatal.
//
// reopen, which may be nil when the backend has no storage that outlives it,
// opens the same storage again (with the same clock) after the suite closed
// the first backend, to check that data and checkpoint persist. The suite
// closes what reopen returns.
type Factory func(t testing.TB, now func() time.Time) (b any, reopen func() any)

// Config describes the backend under test.
type Config struct {
	// Features are the abstractions the backend declares. Each must be
	// known to this package. A backend that serves none of them yet (say,
	// a Log backend before FeatureLog exists) declares none and is checked
	// for not implementing any.
	Features []Feature
	// Errors are the backend's sentinel errors.
	Errors Errors
	// New opens a new, empty backend for one test.
	New Factory
	// FailCheckpointWrites (optional) makes every later write of b's
	// checkpoint fail, as the database would for a full disk or a broken
	// constraint (SQLite and PostgreSQL: a trigger on the checkpoint table
	// that raises), until restore is called. The suite uses it to check
	// that a batch's data and its checkpoint commit in one transaction: a
	// batch whose checkpoint write fails must leave none of its data
	// visible. When nil, those tests are skipped with a message saying so.
	FailCheckpointWrites func(t testing.TB, b any) (restore func())
}

// feature is one abstraction the suite knows: how to tell that a backend
// implements it and its sub-suite.
type feature struct {
	name       Feature
	implements func(b any) bool
	// check validates the parts of cfg the sub-suite needs.
	check func(t testing.TB, cfg Config)
	run   func(t *testing.T, cfg Config)
}

// known lists every feature in the order their sub-suites run.
var known = []feature{
	{
		name:       FeatureKeyValue,
		implements: func(b any) bool { _, ok := b.(KeyValueBackend); return ok },
		check:      checkKeyValueConfig,
		run:        runKeyValue,
	},
	{
		name:       FeatureTimeSeries,
		implements: func(b any) bool { _, ok := b.(TimeSeriesBackend); return ok },
		check:      checkTimeSeriesConfig,
		run:        runTimeSeries,
	},
	{
		name:       FeatureKeyValueExport,
		implements: func(b any) bool { _, ok := b.(KeyValueExporter); return ok },
		check:      checkExportConfig,
		run:        runExport,
	},
	{
		name:       FeatureLog,
		implements: func(b any) bool { _, ok := b.(LogBackend); return ok },
		check:      checkLogConfig,
		run:        runLog,
	},
}

// Run runs the conformance suite against the backend cfg describes: for each
// known feature, its sub-suite (t.Run with the feature's name) if cfg
// declares it, or else a check that the backend does not implement the
// feature's interface. A config that declares an unknown or repeated
// feature, lacks an error a declared feature needs, or has no factory fails
// the test at once.
func Run(t *testing.T, cfg Config) {
	t.Helper()
	if cfg.New == nil {
		t.Fatal("backendtest: Config.New is nil")
	}
	for i, f := range cfg.Features {
		if !slices.ContainsFunc(known, func(k feature) bool { return k.name == f }) {
			t.Fatalf("backendtest: unknown feature %q (known: %v)", f, knownNames())
		}
		if slices.Contains(cfg.Features[:i], f) {
			t.Fatalf("backendtest: feature %q declared twice", f)
		}
	}
	for _, f := range known {
		if slices.Contains(cfg.Features, f.name) {
			f.check(t, cfg)
		}
	}

	t.Run("features", func(t *testing.T) {
		b := open(t, cfg, newClock(t0).Now)
		for _, f := range known {
			declared, implements := slices.Contains(cfg.Features, f.name), f.implements(b)
			switch {
			case declared && !implements:
				t.Errorf("backend %T declares feature %q but does not implement its interface", b, f.name)
			case !declared && implements:
				t.Errorf("backend %T implements the interface of feature %q but does not declare it: "+
					"declare it and pass its suite, or remove the methods", b, f.name)
			}
		}
	})
	for _, f := range known {
		if slices.Contains(cfg.Features, f.name) {
			t.Run(string(f.name), func(t *testing.T) { f.run(t, cfg) })
		}
	}
}

func knownNames() []Feature {
	names := make([]Feature, len(known))
	for i, f := range known {
		names[i] = f.name
	}
	return names
}

// closer is what every backend implements.
type closer interface{ Close() error }

// checkpointer is what every feature's backend implements: the sequence of
// the last applied batch.
type checkpointer interface {
	Checkpoint(ctx context.Context) (uint64, error)
}

// open calls the factory and closes the backend at the end of the test. It
// fails the test if the backend cannot be closed.
func open(t testing.TB, cfg Config, now func() time.Time) any {
	t.Helper()
	b, _ := openReopen(t, cfg, now)
	return b
}

// openReopen is open that also returns the factory's reopen, wrapped so the
// backend it returns is closed at the end of the test too (nil if the
// factory has none).
func openReopen(t testing.TB, cfg Config, now func() time.Time) (any, func() any) {
	t.Helper()
	b, reopen := cfg.New(t, now)
	closeAtEnd(t, b)
	if reopen == nil {
		return b, nil
	}
	return b, func() any {
		t.Helper()
		b := reopen()
		closeAtEnd(t, b)
		return b
	}
}

func closeAtEnd(t testing.TB, b any) {
	t.Helper()
	if b == nil {
		t.Fatal("backendtest: the factory returned a nil backend")
	}
	c, ok := b.(closer)
	if !ok {
		t.Fatalf("backendtest: backend %T has no Close() error method", b)
	}
	t.Cleanup(func() {
		if err := c.Close(); err != nil {
			t.Errorf("Close: %v", err)
		}
	})
}

// t0 is the time the clock of every backend starts at.
var t0 = time.Date(2030, 1, 2, 3, 4, 5, 600, time.UTC)
