package subjects_test

import (
	"errors"
	"testing"

	"github.com/nats-io/nats.go"
	"google.golang.org/protobuf/proto"

	prismv1 "github.com/prism-data/prism/proto/prism/v1"
	"github.com/prism-data/prism/subjects"
)

func TestLogEventRoundTrip(t *testing.T) {
	ev := &prismv1.LogEvent{Key: []byte("order.7"), Value: []byte("v"), Headers: map[string]string{"source": "web"}}
	msg, err := subjects.NewLogEvent(meta, ev)
	if err != nil {
		t.Fatal(err)
	}
	if want := "prism.shop.events.log.order~2E7"; msg.Subject != want {
		t.Fatalf("subject %q, want %q", msg.Subject, want)
	}
	got, err := subjects.DecodeLogEvent(msg.Subject, msg.Header, msg.Data)
	if err != nil {
		t.Fatal(err)
	}
	if !proto.Equal(got, ev) {
		t.Fatalf("decoded %v, want %v", got, ev)
	}
	ce := subjects.CloudEventHeaders(msg.Header)
	if ce[subjects.HeaderID] == "" || ce[subjects.HeaderType] != subjects.TypeLogAppend || ce[subjects.HeaderContentType] != subjects.ContentTypeProto {
		t.Fatalf("cloud event headers %v", ce)
	}
	if _, ok := ce[subjects.HeaderRequestHash]; ok {
		t.Fatalf("cloud event headers carry %s", subjects.HeaderRequestHash)
	}
	marker := subjects.NewMarker(meta, 1)
	if got, err := subjects.DecodeLogEvent(marker.Subject, marker.Header, marker.Data); got != nil || err != nil {
		t.Fatalf("marker: %v, %v; want nil, nil", got, err)
	}
}

func TestDecodeLogEventRejects(t *testing.T) {
	good := func() *nats.Msg {
		m, err := subjects.NewLogEvent(meta, &prismv1.LogEvent{Key: []byte("k"), Value: []byte("v")})
		if err != nil {
			t.Fatal(err)
		}
		return m
	}
	kv, err := subjects.NewKeyValueEvent(meta, putEvent("k"))
	if err != nil {
		t.Fatal(err)
	}
	reserved, err := subjects.NewLogEvent(meta, &prismv1.LogEvent{Key: []byte("k"), Headers: map[string]string{"Prism-Seq": "1"}})
	if err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		name string
		msg  func() *nats.Msg
	}{
		{"keyvalue subject", func() *nats.Msg { return kv }},
		{"garbage payload", func() *nats.Msg { m := good(); m.Data = []byte{0xff}; return m }},
		{"wrong type", func() *nats.Msg { m := good(); m.Header.Set(subjects.HeaderType, subjects.TypeKeyValuePut); return m }},
		{"no id", func() *nats.Msg { m := good(); m.Header.Del(subjects.HeaderID); return m }},
		{"key mismatch", func() *nats.Msg { m := good(); m.Subject = subjects.LogEvent("shop", []byte("other")); return m }},
		{"reserved header", func() *nats.Msg { return reserved }},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			m := tt.msg()
			if _, err := subjects.DecodeLogEvent(m.Subject, m.Header, m.Data); !errors.Is(err, subjects.ErrBadEvent) {
				t.Fatalf("err %v, want ErrBadEvent", err)
			}
		})
	}
}

func TestIsReservedLogHeader(t *testing.T) {
	for name, want := range map[string]bool{"ce-id": true, "CE-Type": true, "prism-seq": true, "Content-Type": true, "source": false, "cex": false} {
		if got := subjects.IsReservedLogHeader(name); got != want {
			t.Errorf("IsReservedLogHeader(%q) = %v, want %v", name, got, want)
		}
	}
}
