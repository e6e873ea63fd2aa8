package client_test

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"testing"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
	"google.golang.org/protobuf/types/known/timestamppb"

	"github.com/prism-data/prism/client"
	"github.com/prism-data/prism/itest/natstest"
	prismv1 "github.com/prism-data/prism/proto/prism/v1"
	"github.com/prism-data/prism/subjects"
)

const subNS = "feed"

// subEnv is an in-process NATS server with the stream of namespace subNS,
// and a Prism client on it.
type subEnv struct {
	nc *nats.Conn
	js jetstream.JetStream
	c  *client.Client
}

func newSubEnv(t *testing.T) *subEnv {
	t.Helper()
	nc, js := natstest.Start(t)
	natstest.NamespaceStreams(t, js, subNS)
	c, err := client.New(nc)
	if err != nil {
		t.Fatal(err)
	}
	return &subEnv{nc: nc, js: js, c: c}
}

func ctxFor(t *testing.T) context.Context {
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	t.Cleanup(cancel)
	return ctx
}

// publish stores msg on the namespace stream and returns its sequence.
func (e *subEnv) publish(t *testing.T, msg *nats.Msg) uint64 {
	t.Helper()
	ack, err := e.js.PublishMsg(context.Background(), msg)
	if err != nil {
		t.Fatal(err)
	}
	return ack.Sequence
}

// put stores a KeyValue put of record id and returns its sequence.
func (e *subEnv) put(t *testing.T, id string) uint64 {
	t.Helper()
	msg, err := subjects.NewKeyValueEvent(subjects.EventMeta{Namespace: subNS}, &prismv1.KeyValueEvent{
		Id: []byte(id),
		Change: &prismv1.KeyValueEvent_Put{Put: &prismv1.KeyValuePut{
			Items: []*prismv1.Item{{Key: []byte("k"), Value: []byte("v-" + id)}},
		}},
	})
	if err != nil {
		t.Fatal(err)
	}
	return e.publish(t, msg)
}

// appendTS stores a TimeSeries append to series and returns its sequence.
func (e *subEnv) appendTS(t *testing.T, series string) uint64 {
	t.Helper()
	msg, err := subjects.NewTimeSeriesEvent(subjects.EventMeta{Namespace: subNS}, &prismv1.TimeSeriesAppend{
		SeriesId: []byte(series),
		Events:   []*prismv1.TimeSeriesEvent{{EventTime: timestamppb.New(t0), EventId: []byte("e1")}},
	})
	if err != nil {
		t.Fatal(err)
	}
	return e.publish(t, msg)
}

// puts stores n puts of records prefix0 … and returns their sequences.
func (e *subEnv) puts(t *testing.T, prefix string, n int) []uint64 {
	t.Helper()
	seqs := make([]uint64, n)
	for i := range seqs {
		seqs[i] = e.put(t, fmt.Sprint(prefix, i))
	}
	return seqs
}

func (e *subEnv) subscribe(t *testing.T, opts ...client.SubscribeOption) *client.Subscription {
	t.Helper()
	sub, err := e.c.Subscribe(ctxFor(t), subNS, opts...)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		if err := sub.Stop(); err != nil {
			t.Error(err)
		}
	})
	return sub
}

// next reads n changes and fails the test on an error or a malformed change.
func next(t testing.TB, ctx context.Context, sub *client.Subscription, n int) []client.Change {
	t.Helper()
	out := make([]client.Change, 0, n)
	for range n {
		ch, err := sub.Next(ctx)
		if err != nil {
			t.Fatalf("after %d changes: %v", len(out), err)
		}
		if ch.Err != nil {
			t.Fatalf("change %d: %v", ch.Seq, ch.Err)
		}
		out = append(out, ch)
	}
	return out
}

func seqsOf(chs []client.Change) []uint64 {
	out := make([]uint64, len(chs))
	for i, ch := range chs {
		out[i] = ch.Seq
	}
	return out
}

func equalSeqs(t testing.TB, got, want []uint64) {
	t.Helper()
	if len(got) != len(want) {
		t.Fatalf("got %d changes %v, want %d %v", len(got), got, len(want), want)
	}
	for i := range got {
		if got[i] != want[i] {
			t.Fatalf("change %d: seq %d, want %d (got %v)", i, got[i], want[i], got)
		}
	}
}

// expectNothing checks that no change arrives within a short wait.
func expectNothing(t *testing.T, sub *client.Subscription) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 200*time.Millisecond)
	defer cancel()
	if ch, err := sub.Next(ctx); !errors.Is(err, context.DeadlineExceeded) {
		t.Fatalf("Next = %+v, %v; want nothing (DeadlineExceeded)", ch, err)
	}
}

func TestSubscribeDecodesBothAbstractions(t *testing.T) {
	e := newSubEnv(t)
	kvSeq := e.put(t, "user.1")
	tsSeq := e.appendTS(t, "cpu")
	sub := e.subscribe(t)
	chs := next(t, ctxFor(t), sub, 2)

	kv, ts := chs[0], chs[1]
	if kv.Seq != kvSeq || kv.Namespace != subNS || kv.ID == "" || kv.Time.IsZero() || kv.TimeSeries != nil ||
		string(kv.KeyValue.GetId()) != "user.1" || string(kv.KeyValue.GetPut().GetItems()[0].GetValue()) != "v-user.1" {
		t.Fatalf("KeyValue change = %+v", kv)
	}
	raw := natstest.Msg(t, e.js, subjects.Stream(subNS), kvSeq)
	if kv.ID != raw.Header.Get(subjects.HeaderID) || !kv.Time.Equal(raw.Time) {
		t.Fatalf("change id %q time %v, stream has %q %v", kv.ID, kv.Time, raw.Header.Get(subjects.HeaderID), raw.Time)
	}
	if ts.Seq != tsSeq || ts.KeyValue != nil || string(ts.TimeSeries.GetSeriesId()) != "cpu" ||
		string(ts.TimeSeries.GetEvents()[0].GetEventId()) != "e1" || ts.ID == kv.ID {
		t.Fatalf("TimeSeries change = %+v", ts)
	}
	if got := sub.LastSeq(); got != tsSeq {
		t.Fatalf("LastSeq = %d, want %d", got, tsSeq)
	}
}

func TestSubscribeStart(t *testing.T) {
	e := newSubEnv(t)
	first := e.puts(t, "a", 5)
	mid := time.Now()
	second := e.puts(t, "b", 5)
	all := append(append([]uint64(nil), first...), second...)

	tests := []struct {
		name string
		opts []client.SubscribeOption
		want []uint64
	}{
		{"all by default", nil, all},
		{"from seq", []client.SubscribeOption{client.FromSeq(first[3])}, all[3:]},
		{"from seq past the end waits", []client.SubscribeOption{client.FromSeq(all[len(all)-1] + 1)}, nil},
		{"from time", []client.SubscribeOption{client.FromTime(mid)}, second},
		{"new only", []client.SubscribeOption{client.NewOnly()}, nil},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			sub := e.subscribe(t, tt.opts...)
			equalSeqs(t, seqsOf(next(t, ctxFor(t), sub, len(tt.want))), tt.want)
			expectNothing(t, sub)
		})
	}

	// NewOnly and a start past the end deliver what is stored afterwards.
	newOnly := e.subscribe(t, client.NewOnly())
	past := e.subscribe(t, client.FromSeq(all[len(all)-1]+1))
	later := e.puts(t, "c", 3)
	equalSeqs(t, seqsOf(next(t, ctxFor(t), newOnly, 3)), later)
	equalSeqs(t, seqsOf(next(t, ctxFor(t), past, 3)), later)
}

func TestSubscribeInvalid(t *testing.T) {
	e := newSubEnv(t)
	tests := []struct {
		name    string
		ns      string
		opts    []client.SubscribeOption
		wantErr error
	}{
		{"bad namespace", "Bad.NS", nil, client.ErrInvalidArgument},
		{"unknown namespace", "nosuch", nil, client.ErrNamespaceNotFound},
		{"seq zero", subNS, []client.SubscribeOption{client.FromSeq(0)}, client.ErrInvalidArgument},
		{"zero time", subNS, []client.SubscribeOption{client.FromTime(time.Time{})}, client.ErrInvalidArgument},
		{"two starts", subNS, []client.SubscribeOption{client.FromSeq(1), client.NewOnly()}, client.ErrInvalidArgument},
		{"buffer too small", subNS, []client.SubscribeOption{client.WithBuffer(client.MinSubscribeBuffer - 1)}, client.ErrInvalidArgument},
		{"buffer too large", subNS, []client.SubscribeOption{client.WithBuffer(client.MaxSubscribeBuffer + 1)}, client.ErrInvalidArgument},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			sub, err := e.c.Subscribe(ctxFor(t), tt.ns, tt.opts...)
			if !errors.Is(err, tt.wantErr) {
				if sub != nil {
					_ = sub.Stop()
				}
				t.Fatalf("err = %v, want %v", err, tt.wantErr)
			}
		})
	}
}

// Subscribing on a closed connection is UNAVAILABLE, wrapping the NATS
// error.
func TestSubscribeClosedConnection(t *testing.T) {
	e := newSubEnv(t)
	e.nc.Close()
	sub, err := e.c.Subscribe(ctxFor(t), subNS)
	if !errors.Is(err, client.ErrUnavailable) || !errors.Is(err, nats.ErrConnectionClosed) {
		if sub != nil {
			_ = sub.Stop()
		}
		t.Fatalf("err = %v, want ErrUnavailable wrapping nats.ErrConnectionClosed", err)
	}
}

// Markers are not changes: they are left out, and the changes around them
// keep their stream sequences.
func TestSubscribeSkipsMarkers(t *testing.T) {
	e := newSubEnv(t)
	before := e.put(t, "a")
	marker := e.publish(t, subjects.NewMarker(subjects.EventMeta{Namespace: subNS, IdempotencyToken: "tok"}, 1))
	after := e.put(t, "b")
	sub := e.subscribe(t)
	equalSeqs(t, seqsOf(next(t, ctxFor(t), sub, 2)), []uint64{before, after})
	if after != marker+1 {
		t.Fatalf("marker at %d, next put at %d: the marker was not between them", marker, after)
	}
	expectNothing(t, sub)
}

// A poison message is delivered as a Change with Err, in its place, and the
// subscription goes on.
func TestSubscribePoison(t *testing.T) {
	e := newSubEnv(t)
	good1 := e.put(t, "a")
	bad := nats.NewMsg(subjects.KeyValueEvent(subNS, []byte("x")))
	bad.Header.Set(subjects.HeaderID, "poison-1")
	bad.Data = []byte("not protobuf")
	badSeq := e.publish(t, bad)
	good2 := e.put(t, "b")

	sub := e.subscribe(t)
	ctx := ctxFor(t)
	var got []client.Change
	for range 3 {
		ch, err := sub.Next(ctx)
		if err != nil {
			t.Fatal(err)
		}
		got = append(got, ch)
	}
	equalSeqs(t, seqsOf(got), []uint64{good1, badSeq, good2})
	p := got[1]
	if !errors.Is(p.Err, client.ErrMalformedChange) || !errors.Is(p.Err, subjects.ErrBadEvent) ||
		p.KeyValue != nil || p.TimeSeries != nil || p.ID != "poison-1" {
		t.Fatalf("poison change = %+v", p)
	}
	if got[0].Err != nil || got[2].Err != nil || got[2].KeyValue == nil {
		t.Fatalf("good changes = %+v, %+v", got[0], got[2])
	}
}

func TestSubscribeStop(t *testing.T) {
	e := newSubEnv(t)
	e.puts(t, "a", 3)
	sub, err := e.c.Subscribe(ctxFor(t), subNS)
	if err != nil {
		t.Fatal(err)
	}
	next(t, ctxFor(t), sub, 1)

	// A Next blocked on an empty subscription is released by Stop.
	empty, err := e.c.Subscribe(ctxFor(t), subNS, client.NewOnly())
	if err != nil {
		t.Fatal(err)
	}
	blocked := make(chan error, 1)
	go func() {
		_, err := empty.Next(ctxFor(t))
		blocked <- err
	}()

	for range 3 {
		if err := sub.Stop(); err != nil {
			t.Fatalf("Stop: %v", err)
		}
		if err := empty.Stop(); err != nil {
			t.Fatalf("Stop: %v", err)
		}
	}
	if _, err := sub.Next(ctxFor(t)); !errors.Is(err, client.ErrSubscriptionClosed) {
		t.Fatalf("Next after Stop: %v, want ErrSubscriptionClosed", err)
	}
	select {
	case err := <-blocked:
		if !errors.Is(err, client.ErrSubscriptionClosed) {
			t.Fatalf("blocked Next: %v, want ErrSubscriptionClosed", err)
		}
	case <-time.After(10 * time.Second):
		t.Fatal("Stop did not release a blocked Next")
	}
	for range sub.Changes(ctxFor(t)) {
		t.Fatal("Changes yielded after Stop")
	}
	// Stop deleted the server-side consumers.
	s, err := e.js.Stream(context.Background(), subjects.Stream(subNS))
	if err != nil {
		t.Fatal(err)
	}
	info, err := s.Info(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	if info.State.Consumers != 0 {
		t.Fatalf("%d consumers left on the stream after Stop", info.State.Consumers)
	}
}

// Resuming with FromSeq(LastSeq()+1) after Stop delivers the rest: no gap,
// no duplicate.
func TestSubscribeResume(t *testing.T) {
	e := newSubEnv(t)
	all := e.puts(t, "a", 10)
	sub, err := e.c.Subscribe(ctxFor(t), subNS, client.WithBuffer(client.MinSubscribeBuffer))
	if err != nil {
		t.Fatal(err)
	}
	got := seqsOf(next(t, ctxFor(t), sub, 4))
	if err := sub.Stop(); err != nil {
		t.Fatal(err)
	}
	all = append(all, e.puts(t, "b", 5)...)

	resumed := e.subscribe(t, client.FromSeq(sub.LastSeq()+1))
	ctx := ctxFor(t)
	for ch, err := range resumed.Changes(ctx) {
		if err != nil {
			t.Fatal(err)
		}
		got = append(got, ch.Seq)
		if len(got) == len(all) {
			break
		}
	}
	equalSeqs(t, got, all)
	expectNothing(t, resumed)
}

// Many subscribers each see every change, in order.
func TestSubscribeConcurrent(t *testing.T) {
	e := newSubEnv(t)
	const subscribers, changes = 20, 200
	var want []uint64
	for i := range changes {
		if i%4 == 0 {
			want = append(want, e.appendTS(t, fmt.Sprint("s", i)))
		} else {
			want = append(want, e.put(t, fmt.Sprint("r", i)))
		}
	}
	ctx := ctxFor(t)
	results := make([][]uint64, subscribers)
	var wg sync.WaitGroup
	for i := range subscribers {
		sub := e.subscribe(t, client.WithBuffer(client.MinSubscribeBuffer+i*5))
		wg.Go(func() {
			for ch, err := range sub.Changes(ctx) {
				if err != nil || ch.Err != nil {
					t.Errorf("subscriber %d: %v %v", i, err, ch.Err)
					return
				}
				results[i] = append(results[i], ch.Seq)
				if len(results[i]) == changes {
					return
				}
			}
		})
	}
	wg.Wait()
	for i, got := range results {
		t.Run(fmt.Sprint("subscriber ", i), func(t *testing.T) { equalSeqs(t, got, want) })
	}
}

// A subscriber that does not read holds its own buffer only: a fast one on
// the same connection gets every change meanwhile, and the slow one still
// gets them all once it reads.
func TestSlowSubscriberDoesNotStallOthers(t *testing.T) {
	e := newSubEnv(t)
	slow := e.subscribe(t, client.WithBuffer(client.MinSubscribeBuffer))
	fast := e.subscribe(t, client.WithBuffer(64))
	want := e.puts(t, "a", 500)

	equalSeqs(t, seqsOf(next(t, ctxFor(t), fast, len(want))), want)
	equalSeqs(t, seqsOf(next(t, ctxFor(t), slow, len(want))), want)
	last := want[len(want)-1]
	if fast.LastSeq() != last || slow.LastSeq() != last {
		t.Fatalf("LastSeq %d (fast) and %d (slow), want %d", fast.LastSeq(), slow.LastSeq(), last)
	}
}
