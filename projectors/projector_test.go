package projectors_test

import (
	"context"
	"errors"
	"fmt"
	"math/rand/v2"
	"strconv"
	"sync/atomic"
	"testing"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
	"github.com/prometheus/client_golang/prometheus"
	"google.golang.org/protobuf/types/known/timestamppb"

	"github.com/prism-data/prism/itest/natstest"
	"github.com/prism-data/prism/projectors"
	prismv1 "github.com/prism-data/prism/proto/prism/v1"
	"github.com/prism-data/prism/subjects"
)

func TestProjectsEveryEvent(t *testing.T) {
	js := startJetStream(t)
	st := openStore(t)
	pub := newPublisher(js)
	r := rand.New(rand.NewPCG(1, 2))
	pub.publishRandom(t, r, 2500, 300)
	// An idempotency marker carries no change but moves the checkpoint.
	pub.publishRaw(t, subjects.NewMarker(subjects.EventMeta{Namespace: testNS, IdempotencyToken: "tok-1"}, 1))

	p := startProjector(t, js, "sqlite", st)
	// Half before Start, half while it runs.
	pub.publishRandom(t, r, 2500, 300)
	last := pub.publishRaw(t, subjects.NewMarker(subjects.EventMeta{Namespace: testNS, IdempotencyToken: "tok-2"}, 1))

	waitApplied(t, p, last)
	if got := p.Applied(); got != last {
		t.Fatalf("Applied() = %d, want %d", got, last)
	}
	if cp, err := st.Checkpoint(context.Background()); err != nil || cp != last {
		t.Fatalf("store checkpoint = %d, %v; want %d", cp, err, last)
	}
	checkStore(t, st, pub.model)
	if n := len(deadLetters(t, js)); n != 0 {
		t.Fatalf("%d dead letters, want 0", n)
	}
}

// TestCommitThenErrorAppliesOnce: the target commits a batch and then
// reports an error, as if the process died between commit and ack. The
// projector retries the batch; the checkpoint makes the retry a no-op.
func TestCommitThenErrorAppliesOnce(t *testing.T) {
	js := startJetStream(t)
	st := openStore(t)
	rec := newRecorder(st)
	rec.fail = func(call int, changes []*prismv1.KeyValueChange) (error, bool) {
		if call%3 == 0 && len(changes) > 0 {
			return errUnavailable, true
		}
		return nil, false
	}
	pub := newPublisher(js)
	r := rand.New(rand.NewPCG(3, 4))
	p := startProjector(t, js, "sqlite", rec, projectors.WithBatchSize(16))
	pub.publishRandom(t, r, 1000, 50)
	checkCaughtUp(t, p, pub, st, rec)
	if rec.calls < 10 {
		t.Fatalf("only %d apply calls: the failure path was not exercised", rec.calls)
	}
}

func TestPoisonEventsAreDeadLettered(t *testing.T) {
	js := startJetStream(t)
	st := openStore(t)
	pub := newPublisher(js)
	r := rand.New(rand.NewPCG(7, 8))
	pub.publishRandom(t, r, 20, 10)

	garbage := garbageEvent(t, r)
	garbage.Header.Set(subjects.HeaderMsgID, "client-token-1")
	garbageSeq := pub.publishRaw(t, garbage)

	// A valid payload with an unknown ce-type.
	wrongType, err := subjects.NewKeyValueEvent(subjects.EventMeta{Namespace: testNS}, randomEvent(r, 10))
	if err != nil {
		t.Fatal(err)
	}
	wrongType.Header.Set(subjects.HeaderType, "io.prism.kv.bogus")
	wrongTypeSeq := pub.publishRaw(t, wrongType)

	// Decodes fine but the SQLite store refuses it (invalid expire_time):
	// the projector must isolate it from its batch.
	refused := &prismv1.KeyValueEvent{Id: []byte("id-refused"), Change: &prismv1.KeyValueEvent_Put{Put: &prismv1.KeyValuePut{
		Items: []*prismv1.Item{{Key: []byte("k"), Value: []byte("v"), ExpireTime: &timestamppb.Timestamp{Seconds: -1 << 62}}},
	}}}
	refusedMsg, err := subjects.NewKeyValueEvent(subjects.EventMeta{Namespace: testNS}, refused)
	if err != nil {
		t.Fatal(err)
	}
	refusedSeq := pub.publishRaw(t, refusedMsg)

	pub.publishRandom(t, r, 20, 10)
	p := startProjector(t, js, "sqlite", st)
	pub.publishRandom(t, r, 5, 10)
	checkCaughtUp(t, p, pub, st, nil)

	dls := deadLetters(t, js)
	if len(dls) != 3 {
		t.Fatalf("%d dead letters, want 3", len(dls))
	}
	for i, tc := range []struct {
		seq     uint64
		msg     *nats.Msg
		subject string
	}{
		{garbageSeq, garbage, garbage.Subject},
		{wrongTypeSeq, wrongType, wrongType.Subject},
		{refusedSeq, refusedMsg, refusedMsg.Subject},
	} {
		dl := dls[i]
		h := dl.Header
		if dl.Subject != subjects.DeadLetter(testNS) {
			t.Errorf("dead letter %d: subject %q", i, dl.Subject)
		}
		if got := h.Get(subjects.HeaderDLQSeq); got != strconv.FormatUint(tc.seq, 10) {
			t.Errorf("dead letter %d: seq header %q, want %d", i, got, tc.seq)
		}
		if got := h.Get(subjects.HeaderDLQStream); got != subjects.Stream(testNS) {
			t.Errorf("dead letter %d: stream header %q", i, got)
		}
		if got := h.Get(subjects.HeaderDLQSubject); got != tc.subject {
			t.Errorf("dead letter %d: subject header %q, want %q", i, got, tc.subject)
		}
		if got := h.Get(subjects.HeaderDLQTarget); got != "sqlite" {
			t.Errorf("dead letter %d: target header %q", i, got)
		}
		if h.Get(subjects.HeaderDLQReason) == "" {
			t.Errorf("dead letter %d: no reason", i)
		}
		if want := fmt.Sprintf("%s:%d:sqlite", subjects.Stream(testNS), tc.seq); h.Get(subjects.HeaderMsgID) != want {
			t.Errorf("dead letter %d: msg id %q, want %q", i, h.Get(subjects.HeaderMsgID), want)
		}
		if got, want := h.Get(subjects.HeaderType), tc.msg.Header.Get(subjects.HeaderType); got != want {
			t.Errorf("dead letter %d: ce-type %q, want the original %q", i, got, want)
		}
		if string(dl.Data) != string(tc.msg.Data) {
			t.Errorf("dead letter %d: data differs from the original", i)
		}
		t.Logf("dead letter %d: %s", i, h.Get(subjects.HeaderDLQReason))
	}
}

// permanentErr is a target error blamed on the change.
type permanentErr struct{ seq uint64 }

func (e permanentErr) Error() string   { return fmt.Sprintf("change %d refused", e.seq) }
func (e permanentErr) Permanent() bool { return true }

func TestPermanentErrorDeadLettersOnlyTheChange(t *testing.T) {
	js := startJetStream(t)
	st := openStore(t)
	rec := newRecorder(st)
	pub := newPublisher(js)
	r := rand.New(rand.NewPCG(9, 10))
	pub.publishRandom(t, r, 30, 10)
	badSeq := pub.publish(t, randomEvent(r, 10))
	pub.publishRandom(t, r, 30, 10)
	// The model must not contain the refused change: rebuild it without.
	want := newModel()
	rec.fail = func(_ int, changes []*prismv1.KeyValueChange) (error, bool) {
		for _, c := range changes {
			if c.GetSeq() == badSeq {
				return permanentErr{badSeq}, false
			}
		}
		return nil, false
	}
	p := startProjector(t, js, "sqlite", rec)
	waitApplied(t, p, pub.lastSeq())

	// Replay the published events into a model, skipping the refused one.
	msgs := natstest.Msgs(t, js, subjects.Stream(testNS))
	if n := uint64(len(msgs)); n != pub.lastSeq() {
		t.Fatalf("stream holds %d messages, want %d", n, pub.lastSeq())
	}
	for _, m := range msgs {
		ev, err := subjects.DecodeKeyValueEvent(m.Subject, m.Header, m.Data)
		if err != nil {
			t.Fatal(err)
		}
		if m.Sequence != badSeq {
			want.apply(m.Sequence, ev)
		}
	}
	checkStore(t, st, want)
	dls := deadLetters(t, js)
	if len(dls) != 1 || dls[0].Header.Get(subjects.HeaderDLQSeq) != strconv.FormatUint(badSeq, 10) {
		t.Fatalf("dead letters %v, want exactly seq %d", dls, badSeq)
	}
}

func TestWaitApplied(t *testing.T) {
	js := startJetStream(t)
	st := openStore(t)
	pub := newPublisher(js)
	r := rand.New(rand.NewPCG(11, 12))
	pub.publishRandom(t, r, 10, 5)
	p := startProjector(t, js, "sqlite", st)

	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if err := p.WaitApplied(ctx, 10); err != nil {
		t.Fatalf("reached seq: %v", err)
	}
	if err := p.WaitApplied(ctx, 0); err != nil {
		t.Fatalf("seq 0: %v", err)
	}

	short, cancelShort := context.WithTimeout(context.Background(), 50*time.Millisecond)
	defer cancelShort()
	if err := p.WaitApplied(short, 1000); !errors.Is(err, context.DeadlineExceeded) {
		t.Fatalf("future seq: err = %v, want context.DeadlineExceeded", err)
	}

	const waiters = 200
	errs := make(chan error, waiters)
	for i := range waiters {
		go func() { errs <- p.WaitApplied(ctx, uint64(11+i%10)) }()
	}
	pub.publishRandom(t, r, 10, 5)
	for range waiters {
		if err := <-errs; err != nil {
			t.Fatalf("waiter: %v", err)
		}
	}
	if p.Applied() < 20 {
		t.Fatalf("Applied() = %d after every waiter returned, want >= 20", p.Applied())
	}
}

func TestTransientFailuresAreRetried(t *testing.T) {
	js := startJetStream(t)
	st := openStore(t)
	rec := newRecorder(st)
	const failures = 7
	injected := 0 // under rec.mu
	rec.fail = func(call int, _ []*prismv1.KeyValueChange) (error, bool) {
		if call <= failures {
			injected++
			return fmt.Errorf("apply: %w", errUnavailable), false
		}
		return nil, false
	}
	reg := prometheus.NewRegistry()
	pub := newPublisher(js)
	pub.publishRandom(t, rand.New(rand.NewPCG(13, 14)), 500, 50)
	p := startProjector(t, js, "sqlite", rec, projectors.WithRegisterer(reg))
	checkCaughtUp(t, p, pub, st, rec) // every event applied exactly once
	if n := len(deadLetters(t, js)); n != 0 {
		t.Fatalf("%d dead letters, want 0", n)
	}
	rec.mu.Lock()
	calls := rec.calls
	rec.mu.Unlock()
	if injected != failures || calls <= failures {
		t.Fatalf("%d failures injected in %d apply calls, want all %d and then success", injected, calls, failures)
	}
	got := gather(t, reg)
	// Each failed call is one apply error, no more, no fewer.
	if got["prism_projector_apply_errors_total"] != failures {
		t.Errorf("apply errors metric %v, want %d: one per failed call", got["prism_projector_apply_errors_total"], failures)
	}
	if got["prism_projector_applied_seq"] != float64(pub.lastSeq()) {
		t.Errorf("applied seq metric %v, want %d", got["prism_projector_applied_seq"], pub.lastSeq())
	}
	if got["prism_projector_events_applied_total"] != 500 {
		t.Errorf("events applied metric %v, want 500: each once", got["prism_projector_events_applied_total"])
	}
	if got["prism_projector_lag"] != 0 {
		t.Errorf("lag metric %v after catching up, want 0", got["prism_projector_lag"])
	}
}

// gather returns the value of each gauge and counter of reg and the sample
// count of each histogram.
func gather(t *testing.T, reg *prometheus.Registry) map[string]float64 {
	t.Helper()
	mfs, err := reg.Gather()
	if err != nil {
		t.Fatal(err)
	}
	out := map[string]float64{}
	for _, mf := range mfs {
		for _, m := range mf.GetMetric() {
			switch {
			case m.GetGauge() != nil:
				out[mf.GetName()] = m.GetGauge().GetValue()
			case m.GetCounter() != nil:
				out[mf.GetName()] = m.GetCounter().GetValue()
			case m.GetHistogram() != nil:
				out[mf.GetName()] = float64(m.GetHistogram().GetSampleCount())
			}
		}
	}
	return out
}

// TestConsumerRepositionedAtCheckpoint: a consumer that delivered (and even
// acked) past the target's checkpoint, as after restoring the target from an
// older copy, is moved back so nothing is skipped.
func TestConsumerRepositionedAtCheckpoint(t *testing.T) {
	js := startJetStream(t)
	pub := newPublisher(js)
	r := rand.New(rand.NewPCG(17, 18))
	pub.publishRandom(t, r, 300, 30)

	// A first target consumes everything through the consumer.
	first := startProjector(t, js, "sqlite", openStore(t))
	waitApplied(t, first, pub.lastSeq())
	if err := first.Stop(context.Background()); err != nil {
		t.Fatal(err)
	}

	// A fresh (empty) target takes over the same consumer.
	st := openStore(t)
	p := startProjector(t, js, "sqlite", st)
	pub.publishRandom(t, r, 10, 30)
	checkCaughtUp(t, p, pub, st, nil)
}

func TestStartErrors(t *testing.T) {
	js := startJetStream(t)
	st := openStore(t)
	ctx := context.Background()

	p, err := projectors.New(js, "missing", "sqlite", st, projectors.WithLogger(testLogger(t)))
	if err != nil {
		t.Fatal(err)
	}
	if err := p.Start(ctx); !errors.Is(err, projectors.ErrMissingStream) || !errors.Is(err, jetstream.ErrStreamNotFound) {
		t.Fatalf("start without stream: %v, want ErrMissingStream", err)
	}

	// A target ahead of the stream (the stream was recreated) is refused.
	if err := st.ApplyKeyValue(ctx, nil, 100); err != nil {
		t.Fatal(err)
	}
	p, err = projectors.New(js, testNS, "sqlite", st, projectors.WithLogger(testLogger(t)))
	if err != nil {
		t.Fatal(err)
	}
	if err := p.Start(ctx); !errors.Is(err, projectors.ErrCheckpointAhead) {
		t.Fatalf("start with checkpoint ahead of the stream: %v, want ErrCheckpointAhead", err)
	}

	for _, tc := range []struct {
		name    string
		ns      string
		target  string
		opts    []projectors.Option
		wantErr error
	}{
		{name: "ok", ns: testNS, target: "sqlite"},
		{name: "bad namespace", ns: "Bad.NS", target: "sqlite", wantErr: subjects.ErrInvalidNamespace},
		{name: "batch size 0", ns: testNS, target: "sqlite", opts: []projectors.Option{projectors.WithBatchSize(0)}, wantErr: projectors.ErrInvalidOption},
		{name: "backoff min > max", ns: testNS, target: "sqlite", opts: []projectors.Option{projectors.WithBackoff(time.Second, time.Millisecond)}, wantErr: projectors.ErrInvalidOption},
		{name: "nil logger", ns: testNS, target: "sqlite", opts: []projectors.Option{projectors.WithLogger(nil)}, wantErr: projectors.ErrInvalidOption},
		{name: "nil registerer", ns: testNS, target: "sqlite", opts: []projectors.Option{projectors.WithRegisterer(nil)}, wantErr: projectors.ErrInvalidOption},
	} {
		t.Run(tc.name, func(t *testing.T) {
			_, err := projectors.New(js, tc.ns, tc.target, st, tc.opts...)
			if tc.wantErr == nil && err != nil || tc.wantErr != nil && !errors.Is(err, tc.wantErr) {
				t.Fatalf("New: %v, want %v", err, tc.wantErr)
			}
		})
	}
	if _, err := projectors.New(js, testNS, "a.b", st); err == nil {
		t.Fatal("New accepted target name a.b")
	}
}

// TestConsumerDeletedWhileRunning: the subscription ends under the projector
// (here: an operator deletes the consumer); it recreates the consumer at its
// checkpoint and goes on.
func TestConsumerDeletedWhileRunning(t *testing.T) {
	js := startJetStream(t)
	st := openStore(t)
	pub := newPublisher(js)
	r := rand.New(rand.NewPCG(19, 20))
	p := startProjector(t, js, "sqlite", st)
	pub.publishRandom(t, r, 100, 20)
	waitApplied(t, p, pub.lastSeq())

	ctx := context.Background()
	if err := js.DeleteConsumer(ctx, subjects.Stream(testNS), subjects.Consumer("sqlite")); err != nil {
		t.Fatal(err)
	}
	pub.publishRandom(t, r, 100, 20)
	checkCaughtUp(t, p, pub, st, nil)
	if _, err := js.Consumer(ctx, subjects.Stream(testNS), subjects.Consumer("sqlite")); err != nil {
		t.Fatalf("consumer not recreated: %v", err)
	}
}

// TestOutageShowsLag: while the backend is down, nothing is applied or
// dead-lettered and the lag gauge grows; once it is back, everything lands.
func TestOutageShowsLag(t *testing.T) {
	js := startJetStream(t)
	st := openStore(t)
	rec := newRecorder(st)
	var down atomic.Bool
	down.Store(true)
	rec.fail = func(int, []*prismv1.KeyValueChange) (error, bool) {
		if down.Load() {
			return errUnavailable, false
		}
		return nil, false
	}
	reg := prometheus.NewRegistry()
	pub := newPublisher(js)
	p := startProjector(t, js, "sqlite", rec, projectors.WithRegisterer(reg))
	pub.publishRandom(t, rand.New(rand.NewPCG(21, 22)), 200, 20)

	deadline := time.Now().Add(10 * time.Second)
	for gather(t, reg)["prism_projector_lag"] < 200 {
		if time.Now().After(deadline) {
			t.Fatalf("lag gauge %v during the outage, want 200", gather(t, reg)["prism_projector_lag"])
		}
		time.Sleep(10 * time.Millisecond)
	}
	if p.Applied() != 0 {
		t.Fatalf("applied %d while the backend is down", p.Applied())
	}
	down.Store(false)
	checkCaughtUp(t, p, pub, st, rec)
	if n := len(deadLetters(t, js)); n != 0 {
		t.Fatalf("%d dead letters after an outage, want 0", n)
	}
}
