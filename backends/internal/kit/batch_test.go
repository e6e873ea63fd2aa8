package kit

import (
	"math"
	"strings"
	"testing"

	"google.golang.org/protobuf/types/known/timestamppb"

	prismv1 "github.com/prism-data/prism/proto/prism/v1"
)

func kvPut(seq uint64, items ...*prismv1.Item) *prismv1.KeyValueChange {
	return &prismv1.KeyValueChange{Seq: seq, Event: &prismv1.KeyValueEvent{
		Change: &prismv1.KeyValueEvent_Put{Put: &prismv1.KeyValuePut{Items: items}}}}
}

func kvReplace(seq uint64, items ...*prismv1.Item) *prismv1.KeyValueChange {
	return &prismv1.KeyValueChange{Seq: seq, Event: &prismv1.KeyValueEvent{
		Change: &prismv1.KeyValueEvent_Replace{Replace: &prismv1.KeyValueReplace{Items: items}}}}
}

func kvDelete(seq uint64) *prismv1.KeyValueChange {
	return &prismv1.KeyValueChange{Seq: seq, Event: &prismv1.KeyValueEvent{
		Change: &prismv1.KeyValueEvent_Delete{Delete: &prismv1.KeyValueDelete{}}}}
}

func tsAppend(seq uint64, series string, events ...*prismv1.TimeSeriesEvent) *prismv1.TimeSeriesChange {
	return &prismv1.TimeSeriesChange{Seq: seq, Append: &prismv1.TimeSeriesAppend{SeriesId: []byte(series), Events: events}}
}

func tsEvent(id string) *prismv1.TimeSeriesEvent {
	return &prismv1.TimeSeriesEvent{EventId: []byte(id), EventTime: &timestamppb.Timestamp{Seconds: 1}}
}

// checkFault compares f with want (nil for a valid batch); a want Reason
// ending in "…" is a prefix.
func checkFault(t *testing.T, f, want *Fault) {
	t.Helper()
	switch {
	case want == nil && f == nil:
		return
	case want == nil || f == nil:
		t.Fatalf("fault = %+v, want %+v", f, want)
	}
	reasonOK := f.Reason == want.Reason
	if p, ok := strings.CutSuffix(want.Reason, "…"); ok {
		reasonOK = strings.HasPrefix(f.Reason, p)
	}
	if f.Change != want.Change || f.Index != want.Index || f.Seq != want.Seq || !reasonOK {
		t.Errorf("fault = %+v, want %+v", f, want)
	}
}

func TestCheckKeyValueBatch(t *testing.T) {
	badExpire := &prismv1.Item{Key: []byte("k"), ExpireTime: &timestamppb.Timestamp{Nanos: -1}}
	for _, tt := range []struct {
		name    string
		changes []*prismv1.KeyValueChange
		through uint64
		want    *Fault
	}{
		{"valid", []*prismv1.KeyValueChange{kvPut(1, &prismv1.Item{}), kvDelete(3)}, 3, nil},
		{"empty", nil, 7, nil},
		{"through too large", nil, math.MaxInt64 + 1, &Fault{Reason: "through 9223372036854775808 above 9223372036854775807"}},
		{"nil change", []*prismv1.KeyValueChange{kvDelete(1), nil}, 2, &Fault{Change: true, Index: 1, Reason: "nil change"}},
		{"nil event", []*prismv1.KeyValueChange{{Seq: 4}}, 4, &Fault{Change: true, Seq: 4, Reason: "nil event"}},
		{"neither", []*prismv1.KeyValueChange{{Seq: 1, Event: &prismv1.KeyValueEvent{}}}, 1, &Fault{Change: true, Seq: 1, Reason: "neither put, delete nor replace"}},
		{"nil put", []*prismv1.KeyValueChange{{Seq: 1, Event: &prismv1.KeyValueEvent{Change: &prismv1.KeyValueEvent_Put{}}}}, 1, &Fault{Change: true, Seq: 1, Reason: "nil put"}},
		{"nil delete", []*prismv1.KeyValueChange{{Seq: 1, Event: &prismv1.KeyValueEvent{Change: &prismv1.KeyValueEvent_Delete{}}}}, 1, &Fault{Change: true, Seq: 1, Reason: "nil delete"}},
		{"nil item", []*prismv1.KeyValueChange{kvPut(1, &prismv1.Item{}, nil)}, 1, &Fault{Change: true, Seq: 1, Reason: "put item 1 is nil"}},
		{"valid replace", []*prismv1.KeyValueChange{kvReplace(1, &prismv1.Item{}), kvReplace(2)}, 2, nil},
		{"nil replace", []*prismv1.KeyValueChange{{Seq: 1, Event: &prismv1.KeyValueEvent{Change: &prismv1.KeyValueEvent_Replace{}}}}, 1, &Fault{Change: true, Seq: 1, Reason: "nil replace"}},
		{"nil replace item", []*prismv1.KeyValueChange{kvReplace(1, nil)}, 1, &Fault{Change: true, Seq: 1, Reason: "replace item 0 is nil"}},
		{"bad replace expire", []*prismv1.KeyValueChange{kvReplace(3, &prismv1.Item{}, badExpire)}, 3, &Fault{Change: true, Seq: 3, Reason: "replace item 1: expire_time: …"}},
		{"bad expire", []*prismv1.KeyValueChange{kvPut(2, badExpire)}, 2, &Fault{Change: true, Seq: 2, Reason: "put item 0: expire_time: …"}},
		{"seq 0", []*prismv1.KeyValueChange{kvDelete(0)}, 1, &Fault{Reason: "change 0 has seq 0"}},
		{"not increasing", []*prismv1.KeyValueChange{kvDelete(2), kvDelete(2)}, 3, &Fault{Reason: "change 1 has seq 2 after seq 2"}},
		{"above through", []*prismv1.KeyValueChange{kvDelete(4)}, 3, &Fault{Reason: "change 0 has seq 4 above through 3"}},
	} {
		t.Run(tt.name, func(t *testing.T) { checkFault(t, CheckKeyValueBatch(tt.changes, tt.through), tt.want) })
	}
}

func TestCheckTimeSeriesBatch(t *testing.T) {
	for _, tt := range []struct {
		name    string
		changes []*prismv1.TimeSeriesChange
		through uint64
		want    *Fault
	}{
		{"valid", []*prismv1.TimeSeriesChange{tsAppend(1, "s", tsEvent("a")), tsAppend(2, "t")}, 2, nil},
		{"through too large", nil, math.MaxUint64, &Fault{Reason: "through 18446744073709551615 above 9223372036854775807"}},
		{"nil change", []*prismv1.TimeSeriesChange{nil}, 1, &Fault{Change: true, Reason: "nil change"}},
		{"nil append", []*prismv1.TimeSeriesChange{{Seq: 1}}, 1, &Fault{Change: true, Seq: 1, Reason: "nil append"}},
		{"empty series", []*prismv1.TimeSeriesChange{tsAppend(1, "")}, 1, &Fault{Change: true, Seq: 1, Reason: "empty series_id"}},
		{"nil event", []*prismv1.TimeSeriesChange{tsAppend(1, "s", tsEvent("a"), nil)}, 1, &Fault{Change: true, Seq: 1, Reason: "event 1 is nil"}},
		{"no time", []*prismv1.TimeSeriesChange{tsAppend(1, "s", &prismv1.TimeSeriesEvent{EventId: []byte("a")})}, 1, &Fault{Change: true, Seq: 1, Reason: "event 0 has no event_time"}},
		{"bad time", []*prismv1.TimeSeriesChange{tsAppend(1, "s", &prismv1.TimeSeriesEvent{EventId: []byte("a"), EventTime: &timestamppb.Timestamp{Nanos: 2e9}})}, 1,
			&Fault{Change: true, Seq: 1, Reason: "event 0: event_time: …"}},
		{"empty id", []*prismv1.TimeSeriesChange{tsAppend(1, "s", tsEvent(""))}, 1, &Fault{Change: true, Seq: 1, Reason: "event 0: event_id is 0 bytes, want 1 to 256"}},
		{"long id", []*prismv1.TimeSeriesChange{tsAppend(1, "s", tsEvent(strings.Repeat("x", 257)))}, 1, &Fault{Change: true, Seq: 1, Reason: "event 0: event_id is 257 bytes, want 1 to 256"}},
		{"seq 0", []*prismv1.TimeSeriesChange{tsAppend(0, "s")}, 1, &Fault{Reason: "change 0 has seq 0"}},
		{"not increasing", []*prismv1.TimeSeriesChange{tsAppend(3, "s"), tsAppend(1, "s")}, 3, &Fault{Reason: "change 1 has seq 1 after seq 3"}},
		{"above through", []*prismv1.TimeSeriesChange{tsAppend(2, "s")}, 1, &Fault{Reason: "change 0 has seq 2 above through 1"}},
	} {
		t.Run(tt.name, func(t *testing.T) { checkFault(t, CheckTimeSeriesBatch(tt.changes, tt.through), tt.want) })
	}
}
