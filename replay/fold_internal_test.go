package replay

import (
	"fmt"
	"testing"
	"time"

	"github.com/nats-io/nats.go/jetstream"
	"google.golang.org/protobuf/types/known/timestamppb"

	prismv1 "github.com/prism-data/prism/proto/prism/v1"
	"github.com/prism-data/prism/subjects"
)

func rawEvent(t *testing.T, seq uint64, ev *prismv1.KeyValueEvent) *jetstream.RawStreamMsg {
	t.Helper()
	msg, err := subjects.NewKeyValueEvent(subjects.EventMeta{Namespace: "ns"}, ev)
	if err != nil {
		t.Fatal(err)
	}
	return &jetstream.RawStreamMsg{Subject: msg.Subject, Header: msg.Header, Data: msg.Data, Sequence: seq}
}

// A replace sets the whole record, whatever came before it: the stream
// only ever has it first on its subject (its rollup removes what came
// before), but the fold does not rely on that.
func TestFoldReplaceAfterOtherEvents(t *testing.T) {
	now := time.Now()
	item := func(k, v string) *prismv1.Item { return &prismv1.Item{Key: []byte(k), Value: []byte(v)} }
	expiring := item("e", "1")
	expiring.ExpireTime = timestamppb.New(now)
	events := []*prismv1.KeyValueEvent{
		{Id: []byte("r"), Change: &prismv1.KeyValueEvent_Put{Put: &prismv1.KeyValuePut{Items: []*prismv1.Item{item("a", "1"), item("b", "1")}}}},
		{Id: []byte("r"), Change: &prismv1.KeyValueEvent_Replace{Replace: &prismv1.KeyValueReplace{Items: []*prismv1.Item{item("c", "2"), expiring}}}},
		{Id: []byte("r"), Change: &prismv1.KeyValueEvent_Put{Put: &prismv1.KeyValuePut{Items: []*prismv1.Item{item("a", "3")}}}},
	}
	f := newFolded()
	for i, ev := range events {
		f.add(rawEvent(t, uint64(i+1), ev))
	}
	var got []string
	for _, it := range f.live(now) {
		got = append(got, fmt.Sprintf("%s=%s", it.GetKey(), it.GetValue()))
	}
	if fmt.Sprint(got) != "[a=3 c=2]" || f.n != 3 || f.last.Sequence != 3 {
		t.Fatalf("folded %v (n %d), want [a=3 c=2] (e expired at now)", got, f.n)
	}
	if !tombstone(rawEvent(t, 4, &prismv1.KeyValueEvent{Id: []byte("r"), Change: &prismv1.KeyValueEvent_Replace{
		Replace: &prismv1.KeyValueReplace{Items: []*prismv1.Item{expiring}}}}), now) {
		t.Error("a replace of expired items only is not a tombstone")
	}
	if tombstone(rawEvent(t, 5, &prismv1.KeyValueEvent{Id: []byte("r"), Change: &prismv1.KeyValueEvent_Delete{
		Delete: &prismv1.KeyValueDelete{Keys: [][]byte{[]byte("a")}}}}), now) {
		t.Error("a delete of some keys is a tombstone: what it leaves depends on what came before")
	}
	expiredPut := rawEvent(t, 6, &prismv1.KeyValueEvent{Id: []byte("r"), Change: &prismv1.KeyValueEvent_Put{
		Put: &prismv1.KeyValuePut{Items: []*prismv1.Item{expiring}}}})
	if tombstone(expiredPut, now) {
		t.Error("a put of expired items is a tombstone: items written before it may still be live")
	}
	if !emptyAlone(expiredPut, now) {
		t.Error("a put of expired items alone on its subject leaves something live")
	}
}
