package natskv_test

import (
	"context"
	"fmt"
	"sync/atomic"
	"testing"
	"time"

	"github.com/nats-io/nats.go/jetstream"
	"google.golang.org/protobuf/types/known/timestamppb"

	"github.com/prism-data/prism/backends/natskv"
	"github.com/prism-data/prism/itest/natstest"
	prismv1 "github.com/prism-data/prism/proto/prism/v1"
)

var nsCounter atomic.Int64

// newNamespace returns a namespace no other test of this process uses.
func newNamespace() string { return fmt.Sprintf("ns%d", nsCounter.Add(1)) }

// openStore opens a store of a new namespace on a fresh in-process server
// and returns it with its JetStream context; it is closed at cleanup.
func openStore(t testing.TB, opts ...natskv.Option) (*natskv.Store, jetstream.JetStream, string) {
	t.Helper()
	_, js := natstest.Start(t)
	ns := newNamespace()
	return open(t, js, ns, opts...), js, ns
}

func open(t testing.TB, js jetstream.JetStream, ns string, opts ...natskv.Option) *natskv.Store {
	t.Helper()
	s, err := natskv.Open(context.Background(), js, ns, opts...)
	if err != nil {
		t.Fatalf("Open: %v", err)
	}
	t.Cleanup(func() { _ = s.Close() })
	return s
}

func put(seq uint64, id string, items ...*prismv1.Item) *prismv1.KeyValueChange {
	return &prismv1.KeyValueChange{Seq: seq, Event: &prismv1.KeyValueEvent{
		Id:     []byte(id),
		Change: &prismv1.KeyValueEvent_Put{Put: &prismv1.KeyValuePut{Items: items}},
	}}
}

func replace(seq uint64, id string, items ...*prismv1.Item) *prismv1.KeyValueChange {
	return &prismv1.KeyValueChange{Seq: seq, Event: &prismv1.KeyValueEvent{
		Id:     []byte(id),
		Change: &prismv1.KeyValueEvent_Replace{Replace: &prismv1.KeyValueReplace{Items: items}},
	}}
}

func del(seq uint64, id string, keys ...string) *prismv1.KeyValueChange {
	d := &prismv1.KeyValueDelete{}
	for _, k := range keys {
		d.Keys = append(d.Keys, []byte(k))
	}
	return &prismv1.KeyValueChange{Seq: seq, Event: &prismv1.KeyValueEvent{
		Id: []byte(id), Change: &prismv1.KeyValueEvent_Delete{Delete: d},
	}}
}

func item(key, value string) *prismv1.Item {
	return &prismv1.Item{Key: []byte(key), Value: []byte(value)}
}

// getAll reads every item of record id.
func getAll(t testing.TB, s *natskv.Store, id string) (items []*prismv1.Item, revision uint64) {
	t.Helper()
	req := &prismv1.GetRequest{Id: []byte(id), PageSize: 1000}
	for {
		resp, err := s.GetItems(context.Background(), req)
		if err != nil {
			t.Fatalf("GetItems(%q): %v", id, err)
		}
		items = append(items, resp.GetItems()...)
		revision = resp.GetRevision()
		if resp.GetNextPageToken() == "" {
			return items, revision
		}
		req.PageToken = resp.GetNextPageToken()
	}
}

func checkpoint(t testing.TB, s *natskv.Store) uint64 {
	t.Helper()
	cp, err := s.Checkpoint(context.Background())
	if err != nil {
		t.Fatalf("Checkpoint: %v", err)
	}
	return cp
}

// lastSeq returns the last sequence of the bucket's stream: the number of
// messages it stored since it was created.
func lastSeq(t testing.TB, js jetstream.JetStream, s *natskv.Store) uint64 {
	t.Helper()
	st, err := js.Stream(context.Background(), "KV_"+s.Bucket())
	if err != nil {
		t.Fatal(err)
	}
	info, err := st.Info(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	return info.State.LastSeq
}

func timestamp(t time.Time) *timestamppb.Timestamp { return timestamppb.New(t) }
