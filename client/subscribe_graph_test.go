package client_test

import (
	"testing"

	"google.golang.org/protobuf/proto"

	prismv1 "github.com/prism-data/prism/proto/prism/v1"
	"github.com/prism-data/prism/subjects"
)

// A subscription delivers the vertex and edge events of a graph
// namespace.
func TestSubscribeDecodesGraphEvents(t *testing.T) {
	e := newSubEnv(t)
	meta := subjects.EventMeta{Namespace: subNS}
	events := []*prismv1.GraphEvent{
		{Element: &prismv1.GraphEvent_Vertex{Vertex: &prismv1.Vertex{Id: "a", Label: "person", Properties: map[string]string{"k": "v"}}}},
		{Element: &prismv1.GraphEvent_Edge{Edge: &prismv1.Edge{From: "a", Label: "knows", To: "b"}}},
		{Element: &prismv1.GraphEvent_Vertex{Vertex: &prismv1.Vertex{Id: "a"}}, Delete: true},
	}
	var seqs []uint64
	for _, ev := range events {
		msg, err := subjects.NewGraphEvent(meta, ev)
		if err != nil {
			t.Fatal(err)
		}
		seqs = append(seqs, e.publish(t, msg))
	}
	sub := e.subscribe(t)
	chs := next(t, ctxFor(t), sub, len(events))
	equalSeqs(t, seqsOf(chs), seqs)
	for i, ch := range chs {
		if !proto.Equal(ch.Graph, events[i]) || ch.KeyValue != nil || ch.Entity != nil || ch.Err != nil {
			t.Errorf("change %d = %+v, want %v", i, ch, events[i])
		}
	}
	expectNothing(t, sub)
}
