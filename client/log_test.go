package client_test

import (
	"context"
	"errors"
	"sync"
	"testing"
	"time"

	"github.com/nats-io/nats.go"
	"google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/types/known/timestamppb"

	"github.com/prism-data/prism/client"
	prismv1 "github.com/prism-data/prism/proto/prism/v1"
	"github.com/prism-data/prism/subjects"
)

// A gateway stand-in for a log namespace: the first append fails with
// UNAVAILABLE and the retry succeeds with the same request; a fetch of a
// read-your-writes handle carries the append's seq as min_seq, and its
// reply maps onto LogRecords.
func TestLogAppendAndFetch(t *testing.T) {
	nc := connect(t)
	var (
		mu      sync.Mutex
		appends []*prismv1.LogAppendRequest
		fetches []*prismv1.LogFetchRequest
	)
	if _, err := nc.Subscribe(subjects.Write("clicks", "append"), func(m *nats.Msg) {
		req := new(prismv1.LogAppendRequest)
		if err := proto.Unmarshal(m.Data, req); err != nil {
			t.Error(err)
			return
		}
		mu.Lock()
		appends = append(appends, req)
		n := len(appends)
		mu.Unlock()
		if n == 1 {
			replyError(t, m, prismv1.Code_UNAVAILABLE, "jetstream down")
			return
		}
		data, _ := proto.Marshal(&prismv1.WriteResponse{Seq: 7})
		_ = m.Respond(data)
	}); err != nil {
		t.Fatal(err)
	}
	if _, err := nc.Subscribe(subjects.Read("clicks", "fetch"), func(m *nats.Msg) {
		req := new(prismv1.LogFetchRequest)
		if err := proto.Unmarshal(m.Data, req); err != nil {
			t.Error(err)
			return
		}
		mu.Lock()
		fetches = append(fetches, req)
		mu.Unlock()
		data, _ := proto.Marshal(&prismv1.LogFetchResponse{
			Partition: 2, Partitions: 4, NextOffset: 6, HighWatermark: 9,
			Records: []*prismv1.LogRecord{{
				Partition: 2, Offset: 5, Key: []byte("k"), Value: []byte("v"), Headers: map[string]string{"h": "1"},
				Seq: 7, Id: "ce-7", Time: timestamppb.New(t0),
			}},
		})
		_ = m.Respond(data)
	}); err != nil {
		t.Fatal(err)
	}
	c, err := client.New(nc, client.WithRetries(3, time.Millisecond))
	if err != nil {
		t.Fatal(err)
	}
	l := c.Log("clicks", client.ReadYourWrites())
	ctx := context.Background()
	seq, err := l.Append(ctx, []byte("k"), []byte("v"), map[string]string{"h": "1"})
	if err != nil || seq != 7 {
		t.Fatalf("Append = %d, %v; want 7", seq, err)
	}
	if len(appends) != 2 || appends[0].GetIdempotencyToken() == "" || !proto.Equal(appends[0], appends[1]) {
		t.Fatalf("appends sent = %v, want the same request with a token twice", appends)
	}
	want := &prismv1.LogAppendRequest{Key: []byte("k"), Value: []byte("v"), Headers: map[string]string{"h": "1"}, IdempotencyToken: appends[0].GetIdempotencyToken()}
	if !proto.Equal(appends[0], want) {
		t.Fatalf("append %v, want %v", appends[0], want)
	}

	page, err := l.FetchKey(ctx, []byte("k"), 5, client.Until(9), client.MaxRecords(3))
	if err != nil {
		t.Fatal(err)
	}
	wantReq := &prismv1.LogFetchRequest{Key: []byte("k"), Offset: 5, EndOffset: 9, MaxRecords: 3, MinSeq: 7}
	if len(fetches) != 1 || !proto.Equal(fetches[0], wantReq) {
		t.Fatalf("fetch sent %v, want %v", fetches, wantReq)
	}
	r := page.Records
	if len(r) != 1 || r[0].Partition != 2 || r[0].Offset != 5 || string(r[0].Key) != "k" || string(r[0].Value) != "v" ||
		r[0].Headers["h"] != "1" || r[0].Seq != 7 || r[0].ID != "ce-7" || !r[0].Time.Equal(t0) {
		t.Fatalf("records %+v", r)
	}
	if page.Partition != 2 || page.Partitions != 4 || page.NextOffset != 6 || page.HighWatermark != 9 {
		t.Fatalf("page %+v", page)
	}
	if _, err := l.Fetch(ctx, 1, 0, client.AfterWrite(3)); err != nil {
		t.Fatal(err)
	}
	if got := fetches[1]; got.GetPartition() != 1 || got.GetMinSeq() != 7 {
		t.Fatalf("fetch sent %v, want partition 1 and min_seq 7 (the larger of AfterWrite and the handle's)", got)
	}
	if _, err := l.Append(ctx, []byte("k"), nil, nil, client.IfRevision(1)); !errors.Is(err, client.ErrInvalidArgument) {
		t.Fatalf("Append with IfRevision: %v, want ErrInvalidArgument", err)
	}
}

func TestSubscribeDecodesLogAppends(t *testing.T) {
	e := newSubEnv(t)
	ev := &prismv1.LogEvent{Key: []byte("k"), Value: []byte("v"), Headers: map[string]string{"h": "1"}}
	msg, err := subjects.NewLogEvent(subjects.EventMeta{Namespace: subNS}, ev)
	if err != nil {
		t.Fatal(err)
	}
	seq := e.publish(t, msg)
	sub := e.subscribe(t)
	chs := next(t, ctxFor(t), sub, 1)
	if ch := chs[0]; ch.Seq != seq || ch.Err != nil || !proto.Equal(ch.Log, ev) || ch.ID != msg.Header.Get(subjects.HeaderID) {
		t.Fatalf("change %+v, want the log append at seq %d", ch, seq)
	}
}

// A record whose reply carries no time has a zero Time, not the Unix epoch.
func TestLogFetchWithoutTime(t *testing.T) {
	nc := connect(t)
	if _, err := nc.Subscribe(subjects.Read("clicks", "fetch"), func(m *nats.Msg) {
		data, _ := proto.Marshal(&prismv1.LogFetchResponse{
			NextOffset: 2, HighWatermark: 2,
			Records: []*prismv1.LogRecord{{Offset: 0, Seq: 1}, {Offset: 1, Seq: 2, Time: timestamppb.New(t0)}},
		})
		_ = m.Respond(data)
	}); err != nil {
		t.Fatal(err)
	}
	c, err := client.New(nc)
	if err != nil {
		t.Fatal(err)
	}
	page, err := c.Log("clicks").Fetch(context.Background(), 0, 0)
	if err != nil {
		t.Fatal(err)
	}
	if r := page.Records; len(r) != 2 || !r[0].Time.IsZero() || !r[1].Time.Equal(t0) {
		t.Fatalf("records %+v, want a zero time, then %v", r, t0)
	}
}
