package subjects_test

import (
	"errors"
	"strings"
	"testing"

	"google.golang.org/protobuf/proto"

	prismv1 "github.com/prism-data/prism/proto/prism/v1"
	"github.com/prism-data/prism/subjects"
)

func vertexEvent(id, label string, del bool) *prismv1.GraphEvent {
	return &prismv1.GraphEvent{Element: &prismv1.GraphEvent_Vertex{Vertex: &prismv1.Vertex{Id: id, Label: label}}, Delete: del}
}

func edgeEvent(from, label, to string, del bool) *prismv1.GraphEvent {
	return &prismv1.GraphEvent{Element: &prismv1.GraphEvent_Edge{Edge: &prismv1.Edge{From: from, Label: label, To: to}}, Delete: del}
}

func TestGraphEventRoundTrip(t *testing.T) {
	withProps := vertexEvent("alice", "person", false)
	withProps.GetVertex().Properties = map[string]string{"name": "Alice"}
	for _, c := range []struct {
		ev      *prismv1.GraphEvent
		subject string
		typ     string
	}{
		{withProps, "prism.shop.events.gv.alice", subjects.TypeGraphVertexUpsert},
		{vertexEvent("a b", "", true), "prism.shop.events.gv.a~20b", subjects.TypeGraphVertexDelete},
		{edgeEvent("alice", "follows", "bob", false), "prism.shop.events.ge.alice~00follows~00bob", subjects.TypeGraphEdgeUpsert},
		{edgeEvent("alice", "follows", "bob", true), "prism.shop.events.ge.alice~00follows~00bob", subjects.TypeGraphEdgeDelete},
	} {
		msg, err := subjects.NewGraphEvent(meta, c.ev)
		if err != nil {
			t.Fatal(err)
		}
		if msg.Subject != c.subject || msg.Header.Get(subjects.HeaderType) != c.typ {
			t.Errorf("subject %s type %s, want %s %s", msg.Subject, msg.Header.Get(subjects.HeaderType), c.subject, c.typ)
		}
		got, err := subjects.DecodeGraphEvent(msg.Subject, msg.Header, msg.Data)
		if err != nil || !proto.Equal(got, c.ev) {
			t.Errorf("decode = %v, %v; want %v", got, err, c.ev)
		}
		d, err := subjects.DecodeEvent(msg.Subject, msg.Header, msg.Data)
		if err != nil || !proto.Equal(d.Graph, c.ev) {
			t.Errorf("DecodeEvent = %+v, %v", d, err)
		}
	}
	if _, err := subjects.NewGraphEvent(meta, &prismv1.GraphEvent{}); err == nil {
		t.Error("an event without a vertex or an edge was built")
	}
}

func TestDecodeGraphEventRejectsPoison(t *testing.T) {
	good := edgeEvent("a", "l", "b", false)
	for _, c := range []struct {
		name    string
		subject string // "" keeps the built one
		typ     string // "" keeps the built one
		ev      *prismv1.GraphEvent
	}{
		{"type of a delete on an upsert", "", subjects.TypeGraphEdgeDelete, good},
		{"vertex type on an edge", "", subjects.TypeGraphVertexUpsert, good},
		{"edge payload on a vertex subject", "prism.shop.events.gv.a~00l~00b", "", good},
		{"payload of another edge", "prism.shop.events.ge.a~00l~00c", "", good},
		{"a keyvalue subject", "prism.shop.events.kv.a", "", good},
		{"empty label", "prism.shop.events.ge.a~00~00b", "", edgeEvent("a", "", "b", false)},
		{"NUL in an id", "", "", edgeEvent("a\x00x", "l", "b", false)},
		{"vertex delete with a label", "prism.shop.events.gv.v", subjects.TypeGraphVertexDelete, vertexEvent("v", "n", true)},
		{"vertex without a label", "prism.shop.events.gv.v", "", vertexEvent("v", "", false)},
		{"neither", "prism.shop.events.gv.v", subjects.TypeGraphVertexUpsert, &prismv1.GraphEvent{}},
	} {
		t.Run(c.name, func(t *testing.T) {
			msg, err := subjects.NewGraphEvent(meta, good)
			if err != nil {
				t.Fatal(err)
			}
			data, _ := proto.Marshal(c.ev)
			subject := msg.Subject
			if c.subject != "" {
				subject = c.subject
			} else if c.ev != good {
				subject = "prism.shop.events.ge." + subjects.EncodeID(subjects.GraphEventID(c.ev))
			}
			if c.typ != "" {
				msg.Header.Set(subjects.HeaderType, c.typ)
			}
			if _, err := subjects.DecodeGraphEvent(subject, msg.Header, data); !errors.Is(err, subjects.ErrBadEvent) {
				t.Errorf("decode = %v, want ErrBadEvent", err)
			}
		})
	}
}

func TestValidateGraphName(t *testing.T) {
	for _, c := range []struct {
		s    string
		want string // "" for valid
	}{
		{"alice", ""},
		{"ünïcode ok", ""},
		{strings.Repeat("x", 256), ""},
		{"", "1 to 256 bytes"},
		{strings.Repeat("x", 257), "1 to 256 bytes"},
		{"a\x00b", "NUL"},
		{"\xff", "UTF-8"},
	} {
		err := subjects.ValidateGraphName("id", c.s)
		if (err == nil) != (c.want == "") || err != nil && !strings.Contains(err.Error(), c.want) {
			t.Errorf("ValidateGraphName(%q) = %v, want %q", c.s, err, c.want)
		}
	}
}
