package client_test

import (
	"testing"

	"google.golang.org/protobuf/proto"

	prismv1 "github.com/prism-data/prism/proto/prism/v1"
	"github.com/prism-data/prism/subjects"
)

// A subscription delivers the puts and deletes of an entity namespace and
// leaves its unique-index claims out, like idempotency markers.
func TestSubscribeDecodesEntityEvents(t *testing.T) {
	e := newSubEnv(t)
	meta := subjects.EventMeta{Namespace: subNS}
	put := &prismv1.EntityEvent{Id: []byte("u1"), Record: []byte("rec"), Indexes: []*prismv1.IndexEntry{{Index: "handle", Key: []byte("ada")}}}
	claim, err := subjects.NewEntityClaim(meta, &prismv1.EntityClaim{Index: "handle", Key: []byte("ada"), Owner: []byte("u1")})
	if err != nil {
		t.Fatal(err)
	}
	e.publish(t, claim)
	msg, err := subjects.NewEntityEvent(meta, put)
	if err != nil {
		t.Fatal(err)
	}
	putSeq := e.publish(t, msg)
	del, err := subjects.NewEntityEvent(meta, &prismv1.EntityEvent{Id: []byte("u1"), Delete: true})
	if err != nil {
		t.Fatal(err)
	}
	delSeq := e.publish(t, del)

	sub := e.subscribe(t)
	chs := next(t, ctxFor(t), sub, 2)
	equalSeqs(t, seqsOf(chs), []uint64{putSeq, delSeq})
	if !proto.Equal(chs[0].Entity, put) || chs[0].KeyValue != nil || chs[0].Err != nil {
		t.Errorf("first change %+v, want the put", chs[0])
	}
	if !chs[1].Entity.GetDelete() || string(chs[1].Entity.GetId()) != "u1" {
		t.Errorf("second change %+v, want the delete of u1", chs[1])
	}
	expectNothing(t, sub)
}
