package gateway_test

import (
	"testing"
	"time"

	cenats "github.com/cloudevents/sdk-go/protocol/nats_jetstream/v2"
	"github.com/cloudevents/sdk-go/v2/binding"
	"github.com/nats-io/nats.go"
	"google.golang.org/protobuf/proto"

	prismv1 "github.com/prism-data/prism/proto/prism/v1"
	"github.com/prism-data/prism/subjects"
)

// TestEventIsCloudEvent decodes a stored event with the CloudEvents SDK's
// own NATS JetStream binding, as any CloudEvents consumer would.
func TestEventIsCloudEvent(t *testing.T) {
	e := newEnv(t, envConfig{})
	req := putReq("user-1", "name", "Ada")
	req.IdempotencyToken = "ce-token"
	var resp prismv1.WriteResponse
	m := nats.NewMsg(subjects.Write(testNS, "put"))
	m.Data = encode(t, req, encProto)
	m.Header.Set(subjects.HeaderContentTypeReq, subjects.ContentTypeProto)
	m.Header.Set("traceparent", "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01")
	reply, err := e.nc.RequestMsg(m, 10*time.Second)
	if err != nil {
		t.Fatal(err)
	}
	if er := decodeReply(t, reply, &resp, encProto); er != nil {
		t.Fatal(er)
	}

	stored := storedMsg(t, e.js, resp.GetSeq())
	msg := cenats.NewMessage(&nats.Msg{Subject: stored.Subject, Header: stored.Header, Data: stored.Data})
	if msg.ReadEncoding() != binding.EncodingBinary {
		t.Fatalf("encoding %v, want binary content mode", msg.ReadEncoding())
	}
	ev, err := binding.ToEvent(t.Context(), msg)
	if err != nil {
		t.Fatalf("binding.ToEvent: %v", err)
	}
	if err := ev.Validate(); err != nil {
		t.Fatalf("event.Validate: %v", err)
	}
	checks := []struct{ name, got, want string }{
		{"specversion", ev.SpecVersion(), "1.0"},
		{"type", ev.Type(), subjects.TypeKeyValuePut},
		{"source", ev.Source(), "/prism/" + testNS},
		{"subject", ev.Subject(), "user-1"},
		{"id", ev.ID(), stored.Header.Get(subjects.HeaderID)},
		{"datacontenttype", ev.DataContentType(), subjects.ContentTypeProto},
	}
	for _, c := range checks {
		if c.got != c.want {
			t.Errorf("%s = %q, want %q", c.name, c.got, c.want)
		}
	}
	if !ev.Time().Equal(fixedNow) {
		t.Errorf("time = %v, want %v", ev.Time(), fixedNow)
	}
	ext := ev.Extensions()
	for name, want := range map[string]string{
		"prismnamespace":      testNS,
		"prismidempotencykey": "ce-token",
		"traceparent":         "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01",
	} {
		if got, _ := ext[name].(string); got != want {
			t.Errorf("extension %s = %v, want %q", name, ext[name], want)
		}
	}
	var data prismv1.KeyValueEvent
	if err := proto.Unmarshal(ev.Data(), &data); err != nil {
		t.Fatalf("data: %v", err)
	}
	if string(data.GetId()) != "user-1" || string(data.GetPut().GetItems()[0].GetValue()) != "Ada" {
		t.Errorf("data %v", &data)
	}
}
