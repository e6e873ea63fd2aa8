package projectors

import (
	"fmt"
	"testing"

	prismv1 "github.com/prism-data/prism/proto/prism/v1"
)

// Every applier reports the ids its changes changed, in order, for the
// applied hook.
func TestApplierIDs(t *testing.T) {
	tests := []struct {
		name    string
		a       applier
		changes []change
	}{
		{"keyvalue", keyValue{}, []change{
			&prismv1.KeyValueChange{Seq: 1, Event: &prismv1.KeyValueEvent{Id: []byte("a")}},
			&prismv1.KeyValueChange{Seq: 2, Event: &prismv1.KeyValueEvent{Id: []byte("b")}},
		}},
		{"timeseries", timeSeries{}, []change{
			&prismv1.TimeSeriesChange{Seq: 1, Append: &prismv1.TimeSeriesAppend{SeriesId: []byte("a")}},
			&prismv1.TimeSeriesChange{Seq: 2, Append: &prismv1.TimeSeriesAppend{SeriesId: []byte("b")}},
		}},
		{"log", logApplier{}, []change{
			&prismv1.LogChange{Seq: 1, Event: &prismv1.LogEvent{Key: []byte("a")}},
			&prismv1.LogChange{Seq: 2, Event: &prismv1.LogEvent{Key: []byte("b")}},
		}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := fmt.Sprintf("%s", tt.a.ids(tt.changes)); got != "[a b]" {
				t.Errorf("ids = %s, want [a b]", got)
			}
		})
	}
}
