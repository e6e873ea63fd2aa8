package subjects_test

import (
	"bytes"
	"errors"
	"maps"
	"slices"
	"testing"
	"time"

	cenats "github.com/cloudevents/sdk-go/protocol/nats_jetstream/v2"
	"github.com/cloudevents/sdk-go/v2/binding"
	"github.com/nats-io/nats.go"
	"google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/types/known/timestamppb"

	prismv1 "github.com/prism-data/prism/proto/prism/v1"
	"github.com/prism-data/prism/subjects"
)

func tsEvent(at time.Time, id string, tags map[string]string, payload string) *prismv1.TimeSeriesEvent {
	return &prismv1.TimeSeriesEvent{EventTime: timestamppb.New(at), EventId: []byte(id), Tags: tags, Payload: []byte(payload)}
}

func appendEvent(series string, events ...*prismv1.TimeSeriesEvent) *prismv1.TimeSeriesAppend {
	return &prismv1.TimeSeriesAppend{SeriesId: []byte(series), Events: events}
}

var t0 = time.Date(2026, 11, 26, 10, 0, 0, 123456789, time.UTC)

// A TimeSeries append is a valid binary-mode CloudEvent for the CloudEvents
// SDK, with the same attributes and extensions as a KeyValue event, and
// round-trips through DecodeTimeSeriesEvent.
func TestTimeSeriesEventIsCloudEvent(t *testing.T) {
	app := appendEvent("cpu.host-1",
		tsEvent(t0, "e1", map[string]string{"region": "eu", "host": "h1"}, "42"),
		tsEvent(t0, "e2", nil, ""),
	)
	msg, err := subjects.NewTimeSeriesEvent(meta, app)
	if err != nil {
		t.Fatal(err)
	}
	if want := "prism.shop.events.ts.cpu~2Ehost-1"; msg.Subject != want {
		t.Fatalf("subject %q, want %q", msg.Subject, want)
	}
	kv, err := subjects.NewKeyValueEvent(meta, putEvent("a"))
	if err != nil {
		t.Fatal(err)
	}
	if got, want := slices.Sorted(maps.Keys(msg.Header)), slices.Sorted(maps.Keys(kv.Header)); !slices.Equal(got, want) {
		t.Fatalf("headers %q, want those of a KeyValue event %q", got, want)
	}

	m := cenats.NewMessage(msg)
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
	if ev.Type() != subjects.TypeTimeSeriesAppend || ev.Subject() != "cpu~2Ehost-1" || ev.Source() != "/prism/shop" ||
		!ev.Time().Equal(meta.Time) || ev.ID() == "" || ev.DataContentType() != subjects.ContentTypeProto {
		t.Fatalf("event = %v", ev)
	}
	if got := ev.Extensions()["prismnamespace"]; got != "shop" {
		t.Fatalf("prismnamespace = %v", got)
	}
	if got := ev.Extensions()["prismidempotencykey"]; got != "tok-1" {
		t.Fatalf("prismidempotencykey = %v", got)
	}
	var fromSDK prismv1.TimeSeriesAppend
	if err := proto.Unmarshal(ev.Data(), &fromSDK); err != nil || !proto.Equal(&fromSDK, app) {
		t.Fatalf("SDK data %v, want %v (%v)", &fromSDK, app, err)
	}
	decoded, err := subjects.DecodeTimeSeriesEvent(msg.Subject, msg.Header, msg.Data)
	if err != nil {
		t.Fatal(err)
	}
	if !proto.Equal(decoded, app) {
		t.Fatalf("decoded %v, want %v", decoded, app)
	}
}

func TestTimeSeriesEventRoundTrip(t *testing.T) {
	maxID := string(bytes.Repeat([]byte{0xff}, subjects.MaxEventIDLen))
	tests := []struct {
		name string
		app  *prismv1.TimeSeriesAppend
	}{
		{"one event", appendEvent("s", tsEvent(t0, "e", nil, "p"))},
		{"empty series id", appendEvent("", tsEvent(t0, "e", nil, "p"))},
		{"binary series id", appendEvent("\x00.*> \xff", tsEvent(t0, "e", nil, "p"))},
		{"unicode series id and tags", appendEvent("température/é", tsEvent(t0, "é", map[string]string{"lieu": "Genève"}, "21.5"))},
		{"equal times, several ids", appendEvent("s", tsEvent(t0, "b", nil, ""), tsEvent(t0, "a", nil, ""), tsEvent(t0.Add(-time.Hour), "a", nil, ""))},
		{"longest event id", appendEvent("s", tsEvent(t0, maxID, nil, ""))},
		{"epoch and before", appendEvent("s", tsEvent(time.Unix(0, 0), "e", nil, ""), tsEvent(time.Date(1900, 1, 1, 0, 0, 0, 0, time.UTC), "e", nil, ""))},
		{"no events", appendEvent("s")},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			msg, err := subjects.NewTimeSeriesEvent(meta, tt.app)
			if err != nil {
				t.Fatal(err)
			}
			if want := subjects.TimeSeriesEvent(meta.Namespace, tt.app.GetSeriesId()); msg.Subject != want {
				t.Fatalf("subject %q, want %q", msg.Subject, want)
			}
			if got, want := msg.Header.Get(subjects.HeaderSubject), subjects.EncodeID(tt.app.GetSeriesId()); got != want {
				t.Fatalf("ce-subject %q, want %q", got, want)
			}
			got, err := subjects.DecodeTimeSeriesEvent(msg.Subject, msg.Header, msg.Data)
			if err != nil {
				t.Fatal(err)
			}
			if !proto.Equal(got, tt.app) {
				t.Fatalf("decoded %v, want %v", got, tt.app)
			}
		})
	}
}

func TestDecodeTimeSeriesEventRejectsPoison(t *testing.T) {
	good, err := subjects.NewTimeSeriesEvent(meta, appendEvent("s", tsEvent(t0, "e1", nil, "p")))
	if err != nil {
		t.Fatal(err)
	}
	kv, err := subjects.NewKeyValueEvent(meta, putEvent("s"))
	if err != nil {
		t.Fatal(err)
	}
	marshal := func(app *prismv1.TimeSeriesAppend) []byte {
		b, err := proto.Marshal(app)
		if err != nil {
			t.Fatal(err)
		}
		return b
	}
	setData := func(app *prismv1.TimeSeriesAppend) func(m *nats.Msg) {
		data := marshal(app)
		return func(m *nats.Msg) { m.Data = data }
	}
	tests := []struct {
		name   string
		mutate func(m *nats.Msg)
	}{
		{"garbage data", func(m *nats.Msg) { m.Data = []byte{0xff, 0xff, 0xff} }},
		{"KeyValue payload", func(m *nats.Msg) { m.Data = kv.Data }},
		{"whole KeyValue event on a ts subject", func(m *nats.Msg) {
			m.Header, m.Data = kv.Header, kv.Data
		}},
		{"ts event on a kv subject", func(m *nats.Msg) { m.Subject = subjects.KeyValueEvent("shop", []byte("s")) }},
		{"series id differs from subject", setData(appendEvent("other", tsEvent(t0, "e1", nil, "p")))},
		{"KeyValue put type", func(m *nats.Msg) { m.Header.Set(subjects.HeaderType, subjects.TypeKeyValuePut) }},
		{"unknown type", func(m *nats.Msg) { m.Header.Set(subjects.HeaderType, "com.example") }},
		{"no type", func(m *nats.Msg) { m.Header.Del(subjects.HeaderType) }},
		{"wrong spec version", func(m *nats.Msg) { m.Header.Set(subjects.HeaderSpecVersion, "0.3") }},
		{"json content", func(m *nats.Msg) { m.Header.Set(subjects.HeaderContentType, subjects.ContentTypeJSON) }},
		{"not an event subject", func(m *nats.Msg) { m.Subject = "prism.shop.write.append" }},
		{"non-canonical series token", func(m *nats.Msg) { m.Subject = "prism.shop.events.ts.~73" }},
		{"marker subject, data type", func(m *nats.Msg) { m.Subject = subjects.Marker("shop", "x") }},
		{"no event time", setData(appendEvent("s", &prismv1.TimeSeriesEvent{EventId: []byte("e")}))},
		{"invalid event time", setData(appendEvent("s", &prismv1.TimeSeriesEvent{EventTime: &timestamppb.Timestamp{Nanos: 1e9}, EventId: []byte("e")}))},
		{"event time after year 9999", setData(appendEvent("s", &prismv1.TimeSeriesEvent{EventTime: &timestamppb.Timestamp{Seconds: 1 << 40}, EventId: []byte("e")}))},
		{"empty event id", setData(appendEvent("s", tsEvent(t0, "e1", nil, ""), tsEvent(t0, "", nil, "")))},
		{"event id too long", setData(appendEvent("s", tsEvent(t0, string(bytes.Repeat([]byte("x"), subjects.MaxEventIDLen+1)), nil, "")))},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			m := &nats.Msg{Subject: good.Subject, Header: nats.Header{}, Data: good.Data}
			for k, v := range good.Header {
				m.Header[k] = append([]string(nil), v...)
			}
			tt.mutate(m)
			got, err := subjects.DecodeTimeSeriesEvent(m.Subject, m.Header, m.Data)
			if !errors.Is(err, subjects.ErrBadEvent) {
				t.Fatalf("got %v, err = %v, want ErrBadEvent", got, err)
			}
		})
	}
}

// Each decoder accepts its own abstraction only; both skip markers.
func TestDecodersKeepToTheirAbstraction(t *testing.T) {
	ts, err := subjects.NewTimeSeriesEvent(meta, appendEvent("a", tsEvent(t0, "e", nil, "")))
	if err != nil {
		t.Fatal(err)
	}
	kv, err := subjects.NewKeyValueEvent(meta, putEvent("a"))
	if err != nil {
		t.Fatal(err)
	}
	if _, err := subjects.DecodeKeyValueEvent(ts.Subject, ts.Header, ts.Data); !errors.Is(err, subjects.ErrBadEvent) {
		t.Errorf("DecodeKeyValueEvent(ts event) err = %v, want ErrBadEvent", err)
	}
	// Even with a KeyValue type and payload, a ts subject is not a KeyValue event.
	if _, err := subjects.DecodeKeyValueEvent(ts.Subject, kv.Header, kv.Data); !errors.Is(err, subjects.ErrBadEvent) {
		t.Errorf("DecodeKeyValueEvent(kv event on ts subject) err = %v, want ErrBadEvent", err)
	}
	if _, err := subjects.DecodeTimeSeriesEvent(kv.Subject, kv.Header, kv.Data); !errors.Is(err, subjects.ErrBadEvent) {
		t.Errorf("DecodeTimeSeriesEvent(kv event) err = %v, want ErrBadEvent", err)
	}
	if _, err := subjects.DecodeTimeSeriesEvent(kv.Subject, ts.Header, ts.Data); !errors.Is(err, subjects.ErrBadEvent) {
		t.Errorf("DecodeTimeSeriesEvent(ts event on kv subject) err = %v, want ErrBadEvent", err)
	}
	marker := subjects.NewMarker(meta, 2)
	if got, err := subjects.DecodeTimeSeriesEvent(marker.Subject, marker.Header, marker.Data); got != nil || err != nil {
		t.Errorf("DecodeTimeSeriesEvent(marker) = %v, %v, want nil, nil", got, err)
	}
	if got, err := subjects.DecodeKeyValueEvent(marker.Subject, marker.Header, marker.Data); got != nil || err != nil {
		t.Errorf("DecodeKeyValueEvent(marker) = %v, %v, want nil, nil", got, err)
	}
}
