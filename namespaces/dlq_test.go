package namespaces_test

import (
	"context"
	"errors"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
	"google.golang.org/protobuf/types/known/timestamppb"

	"github.com/prism-data/prism/itest/natstest"
	"github.com/prism-data/prism/namespaces"
	prismv1 "github.com/prism-data/prism/proto/prism/v1"
	"github.com/prism-data/prism/status"
	"github.com/prism-data/prism/subjects"
)

const dlqNS = "shop"

// publishEvent stores msg in the namespace stream and returns its seq.
func publishEvent(t testing.TB, js jetstream.JetStream, msg *nats.Msg) uint64 {
	t.Helper()
	ack, err := js.PublishMsg(context.Background(), msg)
	if err != nil {
		t.Fatal(err)
	}
	return ack.Sequence
}

func kvPut(t testing.TB, id, v string) *nats.Msg {
	t.Helper()
	msg, err := subjects.NewKeyValueEvent(subjects.EventMeta{Namespace: dlqNS}, &prismv1.KeyValueEvent{Id: []byte(id),
		Change: &prismv1.KeyValueEvent_Put{Put: &prismv1.KeyValuePut{Items: []*prismv1.Item{{Key: []byte("k"), Value: []byte(v)}}}}})
	if err != nil {
		t.Fatal(err)
	}
	return msg
}

// deadLetter stores a dead letter of target for event msg at seq, as a
// projector does, and returns its sequence in the dead-letter stream.
func deadLetter(t testing.TB, js jetstream.JetStream, msg *nats.Msg, seq uint64, target string) uint64 {
	t.Helper()
	dl := nats.NewMsg(subjects.DeadLetter(dlqNS))
	dl.Data = msg.Data
	dl.Header.Set(subjects.HeaderDLQReason, "refused")
	dl.Header.Set(subjects.HeaderDLQSeq, strconv.FormatUint(seq, 10))
	dl.Header.Set(subjects.HeaderDLQSubject, msg.Subject)
	dl.Header.Set(subjects.HeaderDLQTarget, target)
	return publishEvent(t, js, dl)
}

// copies returns the Prism-Redrive-Of of every message of the namespace
// stream after seq, in order.
func copies(t *testing.T, js jetstream.JetStream, after uint64) []string {
	t.Helper()
	s, err := js.Stream(context.Background(), subjects.Stream(dlqNS))
	if err != nil {
		t.Fatal(err)
	}
	var out []string
	for seq := after + 1; ; seq++ {
		m, err := s.GetMsg(context.Background(), seq)
		if errors.Is(err, jetstream.ErrMsgNotFound) {
			return out
		}
		if err != nil {
			t.Fatal(err)
		}
		out = append(out, m.Header.Get(subjects.HeaderRedriveOf))
	}
}

// Redriving one dead letter of a KeyValue record republishes the record
// from its first dead-lettered event on, takes the record's other dead
// letters (of every target) with it, and leaves other records' alone.
func TestRedriveReprojectsTheRecord(t *testing.T) {
	_, js := natstest.Start(t)
	natstest.NamespaceStreams(t, js, dlqNS)
	ctx := context.Background()
	e1, e2, e3 := kvPut(t, "r", "1"), kvPut(t, "r", "2"), kvPut(t, "r", "3")
	s1, s2, s3 := publishEvent(t, js, e1), publishEvent(t, js, e2), publishEvent(t, js, e3)
	other := kvPut(t, "q", "x")
	so := publishEvent(t, js, other)
	d1 := deadLetter(t, js, e1, s1, "sqlite")
	deadLetter(t, js, e3, s3, "pg")
	keep := deadLetter(t, js, other, so, "sqlite")
	d3 := deadLetter(t, js, e3, s3, "sqlite")

	reply, err := namespaces.RedriveDeadLetters(ctx, js, namespaces.DLQRedriveRequest{DLQSelection: namespaces.DLQSelection{Name: dlqNS, Seqs: []uint64{d3}}})
	if err != nil {
		t.Fatal(err)
	}
	if len(reply.Redriven) != 3 || reply.Redriven[0].Seq != d1 || reply.Remaining != 1 {
		t.Fatalf("redrove %+v, %d left; want r's three dead letters from %d, one left", reply.Redriven, reply.Remaining, d1)
	}
	for _, r := range reply.Redriven {
		if r.Outcome != namespaces.RedrivePublished || len(r.Republished) != 3 {
			t.Errorf("dead letter %d: %s, republished %v; want published, r's 3 events", r.Seq, r.Outcome, r.Republished)
		}
	}
	want := []string{strconv.FormatUint(s1, 10), strconv.FormatUint(s2, 10), strconv.FormatUint(s3, 10)}
	if got := copies(t, js, so); len(got) != 3 || got[0] != want[0] || got[1] != want[1] || got[2] != want[2] {
		t.Fatalf("republished copies of %v, want %v, in order", got, want)
	}
	if _, err := namespaces.ShowDeadLetter(ctx, js, dlqNS, keep); err != nil {
		t.Fatalf("the other record's dead letter: %v", err)
	}
}

// A dead letter whose event and record are gone from the stream is
// superseded: nothing is republished. A TimeSeries dead letter is
// republished alone. Unknown or foreign dead letters are NOT_FOUND and
// leave the others in place; a selection of both seqs and all is refused.
func TestRedriveSupersededAppendsAndRefusals(t *testing.T) {
	_, js := natstest.Start(t)
	natstest.NamespaceStreams(t, js, dlqNS)
	natstest.NamespaceStreams(t, js, "other")
	ctx := context.Background()
	gone := kvPut(t, "g", "1")
	sg := publishEvent(t, js, gone)
	ts, err := subjects.NewTimeSeriesEvent(subjects.EventMeta{Namespace: dlqNS}, &prismv1.TimeSeriesAppend{SeriesId: []byte("s"),
		Events: []*prismv1.TimeSeriesEvent{{EventTime: timestamppb.Now(), EventId: []byte("e1")}}})
	if err != nil {
		t.Fatal(err)
	}
	st := publishEvent(t, js, ts)
	publishEvent(t, js, kvPut(t, "s", "unrelated")) // another subject, never copied
	last := publishEvent(t, js, kvPut(t, "z", "z"))
	stream, err := js.Stream(ctx, subjects.Stream(dlqNS))
	if err != nil {
		t.Fatal(err)
	}
	if err := stream.DeleteMsg(ctx, sg); err != nil {
		t.Fatal(err)
	}
	dg, dt := deadLetter(t, js, gone, sg, "sqlite"), deadLetter(t, js, ts, st, "sqlite")

	for _, tc := range []struct {
		name string
		sel  namespaces.DLQSelection
		want error
	}{
		{"unknown seq", namespaces.DLQSelection{Name: dlqNS, Seqs: []uint64{dg, 999}}, status.ErrNotFound},
		{"another namespace's", namespaces.DLQSelection{Name: "other", Seqs: []uint64{dg}}, status.ErrNotFound},
		{"seqs and all", namespaces.DLQSelection{Name: dlqNS, Seqs: []uint64{dg}, All: true}, status.ErrInvalidArgument},
		{"nothing selected", namespaces.DLQSelection{Name: dlqNS}, status.ErrInvalidArgument},
	} {
		if _, err := namespaces.RedriveDeadLetters(ctx, js, namespaces.DLQRedriveRequest{DLQSelection: tc.sel}); !errors.Is(err, tc.want) {
			t.Errorf("%s: %v, want %v", tc.name, err, tc.want)
		}
	}
	if got := copies(t, js, last); len(got) != 0 {
		t.Fatalf("a refused redrive republished %v", got)
	}
	reply, err := namespaces.RedriveDeadLetters(ctx, js, namespaces.DLQRedriveRequest{DLQSelection: namespaces.DLQSelection{Name: dlqNS, All: true}})
	if err != nil || len(reply.Redriven) != 2 || reply.Remaining != 0 {
		t.Fatalf("redrive all: %+v, %v", reply, err)
	}
	if r := reply.Redriven[0]; r.Seq != dg || r.Outcome != namespaces.RedriveSuperseded || len(r.Republished) != 0 {
		t.Errorf("dead letter of a deleted event: %+v, want superseded", r)
	}
	if r := reply.Redriven[1]; r.Seq != dt || r.Outcome != namespaces.RedrivePublished || len(r.Republished) != 1 {
		t.Errorf("time-series dead letter: %+v, want its append republished alone", r)
	}
	if got := copies(t, js, last); len(got) != 1 || got[0] != strconv.FormatUint(st, 10) {
		t.Fatalf("republished copies of %v, want only the append %d", got, st)
	}
}

// A record with more events since its dead letter than one atomic batch
// takes is refused, naming prism compact (not the record's subject, which
// holds its id), and its dead letter is kept.
func TestRedriveRefusesALongRecord(t *testing.T) {
	_, js := natstest.Start(t)
	natstest.NamespaceStreams(t, js, dlqNS)
	ctx := context.Background()
	first := kvPut(t, "long", "0")
	s1 := publishEvent(t, js, first)
	for i := range 500 {
		if _, err := js.PublishMsgAsync(kvPut(t, "long", strconv.Itoa(i+1))); err != nil {
			t.Fatal(err)
		}
	}
	select {
	case <-js.PublishAsyncComplete():
	case <-time.After(10 * time.Second):
		t.Fatal("publish timed out")
	}
	d := deadLetter(t, js, first, s1, "sqlite")
	reply, err := namespaces.RedriveDeadLetters(ctx, js, namespaces.DLQRedriveRequest{DLQSelection: namespaces.DLQSelection{Name: dlqNS, Seqs: []uint64{d}}})
	if err != nil || len(reply.Redriven) != 1 || reply.Remaining != 1 {
		t.Fatalf("redrive of a 501-event record: %+v, %v", reply, err)
	}
	if r := reply.Redriven[0]; r.Outcome != namespaces.RedriveRefused || !strings.Contains(r.Detail, "prism compact") || strings.Contains(r.Detail, first.Subject) || len(r.Republished) != 0 {
		t.Fatalf("redrive of a 501-event record: %+v, want refused naming prism compact, without the subject", r)
	}
	if _, err := namespaces.ShowDeadLetter(ctx, js, dlqNS, d); err != nil {
		t.Fatalf("the refused dead letter is gone: %v", err)
	}
}

// A graph vertex delete also deletes the vertex's edges, so a redrive
// never republishes one: the events up to a later delete are superseded
// by it, and a dead-lettered delete is refused (and kept).
func TestRedriveOfAVertexNeverRepublishesADelete(t *testing.T) {
	_, js := natstest.Start(t)
	natstest.NamespaceStreams(t, js, dlqNS)
	ctx := context.Background()
	vertex := func(id string, del bool) *nats.Msg {
		msg, err := subjects.NewGraphEvent(subjects.EventMeta{Namespace: dlqNS}, &prismv1.GraphEvent{
			Element: &prismv1.GraphEvent_Vertex{Vertex: &prismv1.Vertex{Id: id, Label: "person"}}, Delete: del})
		if err != nil {
			t.Fatal(err)
		}
		return msg
	}
	up := vertex("v", false)
	sUp := publishEvent(t, js, up)
	publishEvent(t, js, vertex("v", true))
	sAgain := publishEvent(t, js, vertex("v", false))
	del := vertex("w", true)
	sDel := publishEvent(t, js, del)
	uUp, uDel := vertex("u", false), vertex("u", true)
	suUp, suDel := publishEvent(t, js, uUp), publishEvent(t, js, uDel)
	dUp, dDel := deadLetter(t, js, up, sUp, "sqlite"), deadLetter(t, js, del, sDel, "sqlite")
	// u: an upsert and its later delete both dead-lettered.
	deadLetter(t, js, uUp, suUp, "sqlite")
	deadLetter(t, js, uDel, suDel, "sqlite")

	reply, err := namespaces.RedriveDeadLetters(ctx, js, namespaces.DLQRedriveRequest{DLQSelection: namespaces.DLQSelection{Name: dlqNS, All: true}})
	if err != nil || len(reply.Redriven) != 4 || reply.Remaining != 3 {
		t.Fatalf("redrive: %+v, %v; want four results, the deletes' records kept", reply, err)
	}
	for _, r := range reply.Redriven[2:] {
		if r.Outcome != namespaces.RedriveRefused {
			t.Errorf("dead letter %d of a vertex with a dead-lettered delete: %s, want refused", r.Seq, r.Outcome)
		}
	}
	if r := reply.Redriven[0]; r.Seq != dUp || r.Outcome != namespaces.RedrivePublished || len(r.Republished) != 1 {
		t.Errorf("upsert before a delete: %+v, want only the upsert after the delete republished", r)
	}
	if got := copies(t, js, suDel); len(got) != 1 || got[0] != strconv.FormatUint(sAgain, 10) {
		t.Errorf("republished copies of %v, want only %d", got, sAgain)
	}
	if r := reply.Redriven[1]; r.Seq != dDel || r.Outcome != namespaces.RedriveRefused || !strings.Contains(r.Detail, "prism replay") {
		t.Errorf("dead-lettered vertex delete: %+v, want refused pointing to prism replay", r)
	}
}
