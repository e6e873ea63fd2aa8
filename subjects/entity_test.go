package subjects_test

import (
	"errors"
	"testing"

	"google.golang.org/protobuf/proto"

	prismv1 "github.com/prism-data/prism/proto/prism/v1"
	"github.com/prism-data/prism/subjects"
)

func TestEntityEventRoundTrip(t *testing.T) {
	for _, ev := range []*prismv1.EntityEvent{
		{Id: []byte("user 1"), Record: []byte("rec"), Indexes: []*prismv1.IndexEntry{{Index: "created_at", Key: []byte{0x80, 1}}}},
		{Id: []byte("user 1"), Delete: true},
	} {
		msg, err := subjects.NewEntityEvent(meta, ev)
		if err != nil {
			t.Fatal(err)
		}
		if msg.Subject != subjects.EntityEvent(meta.Namespace, ev.GetId()) || msg.Subject != "prism."+meta.Namespace+".events.en.user~201" {
			t.Errorf("subject %s", msg.Subject)
		}
		got, err := subjects.DecodeEntityEvent(msg.Subject, msg.Header, msg.Data)
		if err != nil || !proto.Equal(got, ev) {
			t.Errorf("decode = %v, %v; want %v", got, err, ev)
		}
		d, err := subjects.DecodeEvent(msg.Subject, msg.Header, msg.Data)
		if err != nil || !proto.Equal(d.Entity, ev) || d.Abstraction != subjects.AbstractionEntity {
			t.Errorf("DecodeEvent = %+v, %v", d, err)
		}
	}
}

func TestDecodeEntityEventRejectsPoison(t *testing.T) {
	put := &prismv1.EntityEvent{Id: []byte("u1"), Record: []byte("rec")}
	for _, c := range []struct {
		name   string
		change func(ev *prismv1.EntityEvent, typ *string)
	}{
		{"put without record", func(ev *prismv1.EntityEvent, _ *string) { ev.Record = nil }},
		{"delete type on a put", func(_ *prismv1.EntityEvent, typ *string) { *typ = subjects.TypeEntityDelete }},
		{"other id", func(ev *prismv1.EntityEvent, _ *string) { ev.Id = []byte("u2") }},
		{"kv type", func(_ *prismv1.EntityEvent, typ *string) { *typ = subjects.TypeKeyValuePut }},
	} {
		msg, _ := subjects.NewEntityEvent(meta, put)
		ev := proto.Clone(put).(*prismv1.EntityEvent)
		typ := msg.Header.Get(subjects.HeaderType)
		c.change(ev, &typ)
		msg.Header.Set(subjects.HeaderType, typ)
		msg.Data, _ = proto.Marshal(ev)
		if _, err := subjects.DecodeEntityEvent(msg.Subject, msg.Header, msg.Data); !errors.Is(err, subjects.ErrBadEvent) {
			t.Errorf("%s: %v, want ErrBadEvent", c.name, err)
		}
	}
}

// A unique-index claim is on a subject of its own, carries no data change
// (decoders return nothing for it, like an idempotency marker) and decodes
// with DecodeEntityClaim.
func TestEntityClaim(t *testing.T) {
	c := &prismv1.EntityClaim{Index: "handle", Key: []byte("ada"), Owner: []byte("a1")}
	msg, err := subjects.NewEntityClaim(meta, c)
	if err != nil {
		t.Fatal(err)
	}
	if msg.Subject != subjects.EntityClaim(meta.Namespace, "handle", []byte("ada")) || msg.Subject != "prism."+meta.Namespace+".events.uq.handle~00ada" {
		t.Errorf("subject %s", msg.Subject)
	}
	if ev, err := subjects.DecodeEntityEvent(msg.Subject, msg.Header, msg.Data); ev != nil || err != nil {
		t.Errorf("DecodeEntityEvent of a claim = %v, %v; want nothing", ev, err)
	}
	d, err := subjects.DecodeEvent(msg.Subject, msg.Header, msg.Data)
	if err != nil || !d.IsMarker() || d.Entity != nil {
		t.Errorf("DecodeEvent of a claim = %+v, %v; want a marker", d, err)
	}
	got, err := subjects.DecodeEntityClaim(msg.Header, msg.Data)
	if err != nil || !proto.Equal(got, c) {
		t.Errorf("DecodeEntityClaim = %v, %v", got, err)
	}
	msg.Header.Set(subjects.HeaderType, subjects.TypeMarker)
	if _, err := subjects.DecodeEvent(msg.Subject, msg.Header, msg.Data); !errors.Is(err, subjects.ErrBadEvent) {
		t.Errorf("a claim subject with the marker type: %v, want ErrBadEvent", err)
	}
}
