package projectors_test

import (
	"bytes"
	"log/slog"
	"math/rand/v2"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/prometheus/client_golang/prometheus"
	"google.golang.org/protobuf/types/known/timestamppb"

	"github.com/prism-data/prism/projectors"
	prismv1 "github.com/prism-data/prism/proto/prism/v1"
	"github.com/prism-data/prism/subjects"
)

// TestLagSecondsGrowsDuringOutage: while the backend is down the age of the
// oldest unapplied event keeps growing although nothing commits; once the
// target has caught up it is 0, and every commit was timed.
func TestLagSecondsGrowsDuringOutage(t *testing.T) {
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
	if got := gather(t, reg)["prism_projector_lag_seconds"]; got != 0 {
		t.Fatalf("lag_seconds %v on an empty stream, want 0", got)
	}
	published := time.Now()
	pub.publishRandom(t, rand.New(rand.NewPCG(31, 32)), 50, 10)

	deadline := time.Now().Add(10 * time.Second)
	for gather(t, reg)["prism_projector_lag"] < 50 {
		if time.Now().After(deadline) {
			t.Fatalf("lag gauge %v during the outage, want 50", gather(t, reg)["prism_projector_lag"])
		}
		time.Sleep(10 * time.Millisecond)
	}
	first := gather(t, reg)["prism_projector_lag_seconds"]
	time.Sleep(200 * time.Millisecond)
	second := gather(t, reg)["prism_projector_lag_seconds"]
	if first <= 0 || second < first+0.2 {
		t.Errorf("lag_seconds %v, then %v 200ms later: want > 0 and growing with the clock", first, second)
	}
	if maxAge := time.Since(published).Seconds(); second > maxAge {
		t.Errorf("lag_seconds %v is older than the first event (%vs)", second, maxAge)
	}
	if got := gather(t, reg)["prism_projector_apply_duration_seconds"]; got != 0 {
		t.Errorf("%v apply durations observed while every apply failed, want 0", got)
	}

	down.Store(false)
	checkCaughtUp(t, p, pub, st, rec)
	got := gather(t, reg)
	if got["prism_projector_lag_seconds"] != 0 || got["prism_projector_lag"] != 0 {
		t.Errorf("after catching up: lag_seconds %v, lag %v; want 0, 0", got["prism_projector_lag_seconds"], got["prism_projector_lag"])
	}
	if got["prism_projector_apply_duration_seconds"] < 1 {
		t.Errorf("no apply duration observed after commits")
	}
}

// lockedBuffer is a bytes.Buffer safe for concurrent writes.
type lockedBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (l *lockedBuffer) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.Write(p)
}

func (l *lockedBuffer) String() string {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.String()
}

// TestLogsHoldNoRecordData: dead-lettering a malformed event and an event
// the target refuses logs neither their record ids nor their data, which
// may be personal; the dead letters keep the reasons.
func TestLogsHoldNoRecordData(t *testing.T) {
	js := startJetStream(t)
	st := openStore(t)
	pub := newPublisher(js)

	garbage := nats.NewMsg(subjects.KeyValueEvent(testNS, []byte("secret-id-garbage")))
	garbage.Header.Set(subjects.HeaderType, subjects.TypeKeyValuePut)
	garbage.Data = []byte("secret-value-garbage")
	pub.publishRaw(t, garbage)
	refused := &prismv1.KeyValueEvent{Id: []byte("secret-id-refused"), Change: &prismv1.KeyValueEvent_Put{Put: &prismv1.KeyValuePut{
		Items: []*prismv1.Item{{Key: []byte("secret-key"), Value: []byte("secret-value"), ExpireTime: &timestamppb.Timestamp{Seconds: -1 << 62}}},
	}}}
	msg, err := subjects.NewKeyValueEvent(subjects.EventMeta{Namespace: testNS}, refused)
	if err != nil {
		t.Fatal(err)
	}
	pub.publishRaw(t, msg)

	var logs lockedBuffer
	log := slog.New(slog.NewTextHandler(&logs, &slog.HandlerOptions{Level: slog.LevelDebug}))
	reg := prometheus.NewRegistry()
	p := startProjector(t, js, "sqlite", st, projectors.WithLogger(log), projectors.WithRegisterer(reg))
	checkCaughtUp(t, p, pub, st, nil)

	dls := deadLetters(t, js)
	if len(dls) != 2 {
		t.Fatalf("%d dead letters, want 2", len(dls))
	}
	for _, dl := range dls {
		if dl.Header.Get(subjects.HeaderDLQReason) == "" {
			t.Errorf("dead letter of seq %s without a reason", dl.Header.Get(subjects.HeaderDLQSeq))
		}
	}
	if got := gather(t, reg)["prism_projector_dead_letters_total"]; got != 2 {
		t.Errorf("dead_letters_total %v, want 2", got)
	}
	out := logs.String()
	if n := strings.Count(out, "event dead-lettered"); n != 2 {
		t.Errorf("%d dead-letter log lines, want 2:\n%s", n, out)
	}
	if strings.Contains(out, "secret") {
		t.Errorf("the logs hold record data:\n%s", out)
	}
}
