package backendtest_test

import (
	"context"
	"errors"
	"os"
	"os/exec"
	"strings"
	"testing"
	"time"

	"github.com/prism-data/prism/backends/backendtest"
	prismv1 "github.com/prism-data/prism/proto/prism/v1"
)

// closeOnly implements no feature.
type closeOnly struct{}

func (closeOnly) Close() error { return nil }

// kvStub has the KeyValue method set and stores nothing.
type kvStub struct{ closeOnly }

func (kvStub) Checkpoint(context.Context) (uint64, error) { return 0, nil }
func (kvStub) ApplyKeyValue(context.Context, []*prismv1.KeyValueChange, uint64) error {
	return nil
}
func (kvStub) GetItems(context.Context, *prismv1.GetRequest) (*prismv1.GetResponse, error) {
	return &prismv1.GetResponse{}, nil
}
func (kvStub) ScanIDs(context.Context, *prismv1.ScanRequest) (*prismv1.ScanResponse, error) {
	return &prismv1.ScanResponse{}, nil
}
func (kvStub) SweepExpired(context.Context) (int64, error) { return 0, nil }

// exportStub has the KeyValue and the export method sets and stores
// nothing.
type exportStub struct{ kvStub }

func (exportStub) ExportRecords(context.Context, []byte, int, time.Time) ([]*prismv1.GetResponse, error) {
	return nil, nil
}

// tsStub has the TimeSeries method set and stores nothing.
type tsStub struct{ closeOnly }

func (tsStub) Checkpoint(context.Context) (uint64, error) { return 0, nil }
func (tsStub) ApplyTimeSeries(context.Context, []*prismv1.TimeSeriesChange, uint64) error {
	return nil
}
func (tsStub) ReadRange(context.Context, *prismv1.ReadRangeRequest) (*prismv1.EventsResponse, error) {
	return &prismv1.EventsResponse{}, nil
}
func (tsStub) Search(context.Context, *prismv1.SearchRequest) (*prismv1.EventsResponse, error) {
	return &prismv1.EventsResponse{}, nil
}
func (tsStub) SweepOlderThan(context.Context, time.Time) (int64, error) { return 0, nil }

// bothStub has the KeyValue and the TimeSeries method sets.
type bothStub struct{ kvStub }

func (bothStub) ApplyTimeSeries(context.Context, []*prismv1.TimeSeriesChange, uint64) error {
	return nil
}
func (bothStub) ReadRange(context.Context, *prismv1.ReadRangeRequest) (*prismv1.EventsResponse, error) {
	return &prismv1.EventsResponse{}, nil
}
func (bothStub) Search(context.Context, *prismv1.SearchRequest) (*prismv1.EventsResponse, error) {
	return &prismv1.EventsResponse{}, nil
}
func (bothStub) SweepOlderThan(context.Context, time.Time) (int64, error) { return 0, nil }

var errStub = errors.New("stub")

func factory(b any) backendtest.Factory {
	return func(testing.TB, func() time.Time) (any, func() any) { return b, nil }
}

var kvErrors = backendtest.Errors{InvalidChange: errStub, InvalidPageToken: errStub, Closed: errStub}

var exportErrors = backendtest.Errors{InvalidChange: errStub, InvalidPageToken: errStub, Closed: errStub, InvalidRequest: errStub}

// configs are run by TestChild in a child process, so their failures can be
// observed.
var configs = map[string]backendtest.Config{
	"no features, implements none":     {New: factory(closeOnly{})},
	"no features, implements keyvalue": {New: factory(kvStub{}), Errors: kvErrors},
	"declares keyvalue, implements none": {
		Features: []backendtest.Feature{backendtest.FeatureKeyValue}, Errors: kvErrors, New: factory(closeOnly{})},
	"declares keyvalue, stores nothing": {
		Features: []backendtest.Feature{backendtest.FeatureKeyValue}, Errors: kvErrors, New: factory(kvStub{})},
	"unknown feature": {Features: []backendtest.Feature{"graph-db"}, New: factory(closeOnly{})},
	"feature twice": {
		Features: []backendtest.Feature{backendtest.FeatureKeyValue, backendtest.FeatureKeyValue}, Errors: kvErrors, New: factory(kvStub{})},
	"keyvalue without errors": {Features: []backendtest.Feature{backendtest.FeatureKeyValue}, New: factory(kvStub{})},
	"no factory":              {},

	"no features, implements timeseries": {New: factory(tsStub{}), Errors: kvErrors},
	"declares timeseries, implements none": {
		Features: []backendtest.Feature{backendtest.FeatureTimeSeries}, Errors: kvErrors, New: factory(closeOnly{})},
	"declares timeseries, implements keyvalue": {
		Features: []backendtest.Feature{backendtest.FeatureTimeSeries}, Errors: kvErrors, New: factory(kvStub{})},
	"declares timeseries, stores nothing": {
		Features: []backendtest.Feature{backendtest.FeatureTimeSeries}, Errors: kvErrors, New: factory(tsStub{})},
	"declares keyvalue, implements both": {
		Features: []backendtest.Feature{backendtest.FeatureKeyValue}, Errors: kvErrors, New: factory(bothStub{})},
	"declares both, implements timeseries": {
		Features: []backendtest.Feature{backendtest.FeatureKeyValue, backendtest.FeatureTimeSeries}, Errors: kvErrors, New: factory(tsStub{})},
	"timeseries without errors": {Features: []backendtest.Feature{backendtest.FeatureTimeSeries}, New: factory(tsStub{})},
	"timeseries twice": {
		Features: []backendtest.Feature{backendtest.FeatureTimeSeries, backendtest.FeatureTimeSeries}, Errors: kvErrors, New: factory(tsStub{})},

	"declares keyvalue, implements export": {
		Features: []backendtest.Feature{backendtest.FeatureKeyValue}, Errors: kvErrors, New: factory(exportStub{})},
	"declares export, implements keyvalue": {
		Features: []backendtest.Feature{backendtest.FeatureKeyValue, backendtest.FeatureKeyValueExport}, Errors: exportErrors, New: factory(kvStub{})},
	"declares export without keyvalue": {
		Features: []backendtest.Feature{backendtest.FeatureKeyValueExport}, Errors: exportErrors, New: factory(exportStub{})},
	"export without InvalidRequest": {
		Features: []backendtest.Feature{backendtest.FeatureKeyValue, backendtest.FeatureKeyValueExport}, Errors: kvErrors, New: factory(exportStub{})},
	"declares export, stores nothing": {
		Features: []backendtest.Feature{backendtest.FeatureKeyValue, backendtest.FeatureKeyValueExport}, Errors: exportErrors, New: factory(exportStub{})},

	"no features, implements log": {New: factory(logStub{}), Errors: logErrors},
	"declares log, implements none": {
		Features: []backendtest.Feature{backendtest.FeatureLog}, Errors: logErrors, New: factory(closeOnly{})},
	"declares log, stores nothing": {
		Features: []backendtest.Feature{backendtest.FeatureLog}, Errors: logErrors, New: factory(logStub{})},
	"log without errors": {Features: []backendtest.Feature{backendtest.FeatureLog}, Errors: kvErrors, New: factory(logStub{})},
}

const childEnv = "BACKENDTEST_CHILD"

func TestChild(t *testing.T) {
	name := os.Getenv(childEnv)
	if name == "" {
		t.Skip("run by TestRun in a child process")
	}
	backendtest.Run(t, configs[name])
}

func TestRun(t *testing.T) {
	tests := []struct {
		name     string
		wantFail bool
		wantOut  string // in the output of the failing test
	}{
		{name: "no features, implements none"},
		{name: "no features, implements keyvalue", wantFail: true, wantOut: `implements the interface of feature "keyvalue" but does not declare it`},
		{name: "declares keyvalue, implements none", wantFail: true, wantOut: `declares feature "keyvalue" but does not implement its interface`},
		{name: "declares keyvalue, stores nothing", wantFail: true, wantOut: "--- FAIL: TestChild/keyvalue/ApplySemantics"},
		{name: "unknown feature", wantFail: true, wantOut: `unknown feature "graph-db"`},
		{name: "feature twice", wantFail: true, wantOut: `feature "keyvalue" declared twice`},
		{name: "keyvalue without errors", wantFail: true, wantOut: "needs Config.Errors."},
		{name: "no factory", wantFail: true, wantOut: "Config.New is nil"},

		{name: "no features, implements timeseries", wantFail: true, wantOut: `implements the interface of feature "timeseries" but does not declare it`},
		{name: "declares timeseries, implements none", wantFail: true, wantOut: `declares feature "timeseries" but does not implement its interface`},
		{name: "declares timeseries, implements keyvalue", wantFail: true, wantOut: `implements the interface of feature "keyvalue" but does not declare it`},
		{name: "declares timeseries, stores nothing", wantFail: true, wantOut: "--- FAIL: TestChild/timeseries/IdempotentAppend"},
		{name: "declares keyvalue, implements both", wantFail: true, wantOut: `implements the interface of feature "timeseries" but does not declare it`},
		{name: "declares both, implements timeseries", wantFail: true, wantOut: `declares feature "keyvalue" but does not implement its interface`},
		{name: "timeseries without errors", wantFail: true, wantOut: `feature "timeseries" needs Config.Errors.InvalidChange`},
		{name: "timeseries twice", wantFail: true, wantOut: `feature "timeseries" declared twice`},

		{name: "declares keyvalue, implements export", wantFail: true, wantOut: `implements the interface of feature "keyvalue-export" but does not declare it`},
		{name: "declares export, implements keyvalue", wantFail: true, wantOut: `declares feature "keyvalue-export" but does not implement its interface`},
		{name: "declares export without keyvalue", wantFail: true, wantOut: `feature "keyvalue-export" needs feature "keyvalue"`},
		{name: "export without InvalidRequest", wantFail: true, wantOut: `feature "keyvalue-export" needs Config.Errors.InvalidRequest`},
		{name: "declares export, stores nothing", wantFail: true, wantOut: "--- FAIL: TestChild/keyvalue-export/Order"},

		{name: "no features, implements log", wantFail: true, wantOut: `implements the interface of feature "log" but does not declare it`},
		{name: "declares log, implements none", wantFail: true, wantOut: `declares feature "log" but does not implement its interface`},
		{name: "declares log, stores nothing", wantFail: true, wantOut: "--- FAIL: TestChild/log/CheckpointSemantics"},
		{name: "log without errors", wantFail: true, wantOut: `feature "log" needs Config.Errors.InvalidRequest`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			cmd := exec.Command(os.Args[0], "-test.run=^TestChild$", "-test.v", "-test.count=1")
			cmd.Env = append(os.Environ(), childEnv+"="+tt.name)
			out, err := cmd.CombinedOutput()
			var exit *exec.ExitError
			if err != nil && !errors.As(err, &exit) {
				t.Fatalf("run child: %v", err)
			}
			if failed := err != nil; failed != tt.wantFail {
				t.Fatalf("child failed = %v, want %v; output:\n%s", failed, tt.wantFail, out)
			}
			if !strings.Contains(string(out), tt.wantOut) {
				t.Fatalf("child output does not contain %q:\n%s", tt.wantOut, out)
			}
		})
	}
}
