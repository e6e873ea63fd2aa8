package subjects_test

import (
	"errors"
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
	marker := subjects.NewMarker(meta, 3)
	tests := []struct {
		name     string
		msg      *nats.Msg
		wantType string
		wantSubj string
	}{
		{"put", put, subjects.TypeKeyValuePut, "a~2Eb"},
		{"delete", del, subjects.TypeKeyValueDelete, "a~2Eb"},
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
