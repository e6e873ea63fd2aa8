package subjects_test

import (
	"errors"
	"reflect"
	"testing"
	"time"

	cenats "github.com/cloudevents/sdk-go/protocol/nats_jetstream/v2"
	"github.com/cloudevents/sdk-go/v2/binding"
	"github.com/nats-io/nats.go"
	"google.golang.org/protobuf/proto"

	prismv1 "github.com/prism-data/prism/proto/prism/v1"
	"github.com/prism-data/prism/subjects"
)

var meta = subjects.EventMeta{Namespace: "shop", IdempotencyToken: "tok-1", RequestHash: "ab", Time: time.Date(2026, 11, 26, 1, 2, 3, 4, time.UTC)}

func putEvent(id string) *prismv1.KeyValueEvent {
	return &prismv1.KeyValueEvent{Id: []byte(id), Change: &prismv1.KeyValueEvent_Put{Put: &prismv1.KeyValuePut{
		Items: []*prismv1.Item{{Key: []byte("k"), Value: []byte("v")}},
	}}}
}

func deleteEvent(id string) *prismv1.KeyValueEvent {
	return &prismv1.KeyValueEvent{Id: []byte(id), Change: &prismv1.KeyValueEvent_Delete{Delete: &prismv1.KeyValueDelete{}}}
}

func replaceEvent(id string) *prismv1.KeyValueEvent {
	return &prismv1.KeyValueEvent{Id: []byte(id), Change: &prismv1.KeyValueEvent_Replace{Replace: &prismv1.KeyValueReplace{
		Items: []*prismv1.Item{{Key: []byte("k"), Value: []byte("v")}},
	}}}
}

// Every kind of event Prism writes decodes with the CloudEvents SDK's NATS
// binding as a valid binary-mode CloudEvent, and round-trips through
// DecodeKeyValueEvent.
func TestEventsAreCloudEvents(t *testing.T) {
	put, err := subjects.NewKeyValueEvent(meta, putEvent("a.b"))
	if err != nil {
		t.Fatal(err)
	}
	del, err := subjects.NewKeyValueEvent(meta, deleteEvent("a.b"))
	if err != nil {
		t.Fatal(err)
	}
	replace, err := subjects.NewKeyValueEvent(meta, replaceEvent("a.b"))
	if err != nil {
		t.Fatal(err)
	}
	marker := subjects.NewMarker(meta, 3)
	tests := []struct {
		name     string
		msg      *nats.Msg
		wantType string
		wantSubj string
	}{
		{"put", put, subjects.TypeKeyValuePut, "a~2Eb"},
		{"delete", del, subjects.TypeKeyValueDelete, "a~2Eb"},
		{"replace", replace, subjects.TypeKeyValueReplace, "a~2Eb"},
		{"marker", marker, subjects.TypeMarker, "tok-1"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			m := cenats.NewMessage(tt.msg)
			if m.ReadEncoding() != binding.EncodingBinary {
				t.Fatalf("encoding %v, want binary", m.ReadEncoding())
			}
			ev, err := binding.ToEvent(t.Context(), m)
			if err != nil {
				t.Fatal(err)
			}
			if err := ev.Validate(); err != nil {
				t.Fatal(err)
			}
			if ev.Type() != tt.wantType || ev.Subject() != tt.wantSubj || ev.Source() != "/prism/shop" || !ev.Time().Equal(meta.Time) || ev.ID() == "" {
				t.Fatalf("event = %v", ev)
			}
			if got := ev.Extensions()["prismnamespace"]; got != "shop" {
				t.Fatalf("prismnamespace = %v", got)
			}
			decoded, err := subjects.DecodeKeyValueEvent(tt.msg.Subject, tt.msg.Header, tt.msg.Data)
			if err != nil {
				t.Fatal(err)
			}
			if tt.name == "marker" {
				if decoded != nil {
					t.Fatalf("marker decoded to %v, want nil", decoded)
				}
				return
			}
			var want prismv1.KeyValueEvent
			if err := proto.Unmarshal(ev.Data(), &want); err != nil || !proto.Equal(decoded, &want) {
				t.Fatalf("decoded %v, want %v (%v)", decoded, &want, err)
			}
		})
	}
}

func TestDecodeKeyValueEventRejectsPoison(t *testing.T) {
	good, err := subjects.NewKeyValueEvent(meta, putEvent("a"))
	if err != nil {
		t.Fatal(err)
	}
	other, _ := proto.Marshal(putEvent("b"))
	tests := []struct {
		name   string
		mutate func(m *nats.Msg)
	}{
		{"garbage data", func(m *nats.Msg) { m.Data = []byte{0xff, 0xff, 0xff} }},
		{"id differs from subject", func(m *nats.Msg) { m.Data = other }},
		{"type differs from payload", func(m *nats.Msg) { m.Header.Set(subjects.HeaderType, subjects.TypeKeyValueDelete) }},
		{"replace type on a put", func(m *nats.Msg) { m.Header.Set(subjects.HeaderType, subjects.TypeKeyValueReplace) }},
		{"unknown type", func(m *nats.Msg) { m.Header.Set(subjects.HeaderType, "com.example") }},
		{"wrong spec version", func(m *nats.Msg) { m.Header.Set(subjects.HeaderSpecVersion, "0.3") }},
		{"json content", func(m *nats.Msg) { m.Header.Set(subjects.HeaderContentType, subjects.ContentTypeJSON) }},
		{"not an event subject", func(m *nats.Msg) { m.Subject = "prism.shop.write.put" }},
		{"marker subject, data type", func(m *nats.Msg) { m.Subject = subjects.Marker("shop", "x") }},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			m := &nats.Msg{Subject: good.Subject, Header: nats.Header{}, Data: good.Data}
			for k, v := range good.Header {
				m.Header[k] = append([]string(nil), v...)
			}
			tt.mutate(m)
			if _, err := subjects.DecodeKeyValueEvent(m.Subject, m.Header, m.Data); !errors.Is(err, subjects.ErrBadEvent) {
				t.Fatalf("err = %v, want ErrBadEvent", err)
			}
		})
	}
}

// DecodeEvent decodes every abstraction's events, and markers, as the
// decoder of that abstraction does, and says what a malformed event was.
func TestDecodeEvent(t *testing.T) {
	kv, err := subjects.NewKeyValueEvent(meta, putEvent("a.b"))
	if err != nil {
		t.Fatal(err)
	}
	tsEv := &prismv1.TimeSeriesAppend{SeriesId: []byte("s1")}
	ts, err := subjects.NewTimeSeriesEvent(meta, tsEv)
	if err != nil {
		t.Fatal(err)
	}
	logEv := &prismv1.LogEvent{Key: []byte("k"), Value: []byte("v")}
	lg, err := subjects.NewLogEvent(meta, logEv)
	if err != nil {
		t.Fatal(err)
	}
	marker := subjects.NewMarker(meta, 2)
	badMarker := subjects.NewMarker(meta, 2)
	badMarker.Header.Set(subjects.HeaderType, subjects.TypeKeyValuePut)
	badKV := &nats.Msg{Subject: kv.Subject, Header: kv.Header, Data: []byte{0xff}}
	tests := []struct {
		name       string
		msg        *nats.Msg
		want       proto.Message // nil: no payload
		wantAbs    string
		wantMarker bool
		wantErr    []error
	}{
		{name: "key value", msg: kv, want: putEvent("a.b"), wantAbs: subjects.AbstractionKeyValue},
		{name: "time series", msg: ts, want: tsEv, wantAbs: subjects.AbstractionTimeSeries},
		{name: "log", msg: lg, want: logEv, wantAbs: subjects.AbstractionLog},
		{name: "marker", msg: marker, wantAbs: "tok", wantMarker: true},
		{name: "marker of another type", msg: badMarker, wantAbs: "tok", wantMarker: true, wantErr: []error{subjects.ErrBadEvent}},
		{name: "bad payload", msg: badKV, wantAbs: subjects.AbstractionKeyValue, wantErr: []error{subjects.ErrBadEvent}},
		{name: "not an event subject", msg: &nats.Msg{Subject: "prism.shop.write.put", Header: kv.Header}, wantErr: []error{subjects.ErrBadEvent, subjects.ErrInvalidSubject}},
		{name: "bad namespace", msg: &nats.Msg{Subject: "prism.Shop.events.kv.a", Header: kv.Header}, wantErr: []error{subjects.ErrBadEvent, subjects.ErrInvalidNamespace}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			d, err := subjects.DecodeEvent(tt.msg.Subject, tt.msg.Header, tt.msg.Data)
			for _, want := range tt.wantErr {
				if !errors.Is(err, want) {
					t.Fatalf("err = %v, want %v", err, want)
				}
			}
			if len(tt.wantErr) == 0 && err != nil {
				t.Fatal(err)
			}
			if d.Abstraction != tt.wantAbs || d.IsMarker() != tt.wantMarker {
				t.Fatalf("abstraction %q, marker %v; want %q, %v", d.Abstraction, d.IsMarker(), tt.wantAbs, tt.wantMarker)
			}
			var got []proto.Message
			for _, p := range []proto.Message{d.KeyValue, d.TimeSeries, d.Log} {
				if !reflect.ValueOf(p).IsNil() {
					got = append(got, p)
				}
			}
			switch {
			case tt.want == nil && len(got) != 0:
				t.Fatalf("payloads %v, want none", got)
			case tt.want != nil && (len(got) != 1 || !proto.Equal(got[0], tt.want)):
				t.Fatalf("payloads %v, want %v", got, tt.want)
			}
		})
	}
}
