package projectors_test

import (
	"context"
	"math/rand/v2"
	"strconv"
	"testing"

	"github.com/nats-io/nats.go/jetstream"

	"github.com/prism-data/prism/projectors"
	prismv1 "github.com/prism-data/prism/proto/prism/v1"
	"github.com/prism-data/prism/subjects"
)

// setDeadLetterMaxMsgSize sets the largest message the dead-letter stream
// takes: 1 makes it refuse every dead letter, -1 is the default (no limit).
func setDeadLetterMaxMsgSize(tb testing.TB, js jetstream.JetStream, size int32) {
	tb.Helper()
	ctx := context.Background()
	s, err := js.Stream(ctx, subjects.DeadLetterStream)
	if err != nil {
		tb.Fatal(err)
	}
	cfg := s.CachedInfo().Config
	cfg.MaxMsgSize = size
	if _, err := js.UpdateStream(ctx, cfg); err != nil {
		tb.Fatalf("set max msg size of %s to %d: %v", subjects.DeadLetterStream, size, err)
	}
}

// TestDeadLetterPublishFailureHoldsThePoison: while the dead-letter stream
// refuses dead letters, the projector neither skips nor acknowledges the
// poison event and its checkpoint stays below it; once the stream takes
// them again, the dead letter appears with its reason and the projection
// goes on past it. Both ways to poison are covered: an event that does not
// decode, and a change the target refuses as permanent.
func TestDeadLetterPublishFailureHoldsThePoison(t *testing.T) {
	for _, tc := range []struct {
		name string
		// poison publishes the poison event (not part of the model) and
		// returns the reason its dead letter must carry.
		poison func(t *testing.T, pub *publisher, rec *recorder, r *rand.Rand) (seq uint64, reason string)
	}{
		{"undecodable", func(t *testing.T, pub *publisher, _ *recorder, r *rand.Rand) (uint64, string) {
			garbage := garbageEvent(t, r)
			_, decodeErr := subjects.DecodeKeyValueEvent(garbage.Subject, garbage.Header, garbage.Data)
			if decodeErr == nil {
				t.Fatal("the garbage event decodes")
			}
			return pub.publishRaw(t, garbage), decodeErr.Error()
		}},
		{"refused by the target", func(t *testing.T, pub *publisher, rec *recorder, r *rand.Rand) (uint64, string) {
			msg, err := subjects.NewKeyValueEvent(subjects.EventMeta{Namespace: testNS}, randomEvent(r, 10))
			if err != nil {
				t.Fatal(err)
			}
			seq := pub.publishRaw(t, msg)
			rec.fail = func(_ int, changes []*prismv1.KeyValueChange) (error, bool) {
				for _, c := range changes {
					if c.GetSeq() == seq {
						return permanentErr{seq}, false
					}
				}
				return nil, false
			}
			return seq, permanentErr{seq}.Error()
		}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			js := startJetStream(t)
			st := openStore(t)
			rec := newRecorder(st)
			pub := newPublisher(js)
			r := rand.New(rand.NewPCG(41, 42))
			pub.publishRandom(t, r, 10, 10)
			poisonSeq, reason := tc.poison(t, pub, rec, r)
			pub.publishRandom(t, r, 10, 10)

			setDeadLetterMaxMsgSize(t, js, 1)
			failed := make(chan struct{}, 1)
			p := startProjector(t, js, "sqlite", rec, projectors.WithLogger(hookedLogger(t, "publish dead letter failed", failed)))

			// The checkpoint must not reach the poison while its dead
			// letter cannot be stored: watch for that while the
			// projector fails to publish it three times.
			passed := make(chan error, 1)
			watch, stopWatching := context.WithCancel(context.Background())
			defer stopWatching()
			go func() { passed <- p.WaitApplied(watch, poisonSeq) }()
			for attempt := 1; attempt <= 3; attempt++ {
				select {
				case <-failed:
				case err := <-passed:
					t.Fatalf("checkpoint %d passed the poison event %d (wait: %v) after %d failed dead-letter publishes: skipped without a dead letter",
						p.Applied(), poisonSeq, err, attempt-1)
				case <-t.Context().Done():
					t.Fatal("test ended before the dead-letter publish failed")
				}
			}
			if got := p.Applied(); got >= poisonSeq {
				t.Fatalf("Applied() = %d while the dead letter of %d fails", got, poisonSeq)
			}
			if cp, err := st.Checkpoint(context.Background()); err != nil || cp >= poisonSeq {
				t.Fatalf("store checkpoint %d, %v while the dead letter of %d fails", cp, err, poisonSeq)
			}
			cons, err := js.Consumer(context.Background(), subjects.Stream(testNS), subjects.Consumer("sqlite"))
			if err != nil {
				t.Fatal(err)
			}
			if floor := cons.CachedInfo().AckFloor.Stream; floor >= poisonSeq {
				t.Fatalf("ack floor %d: the poison event %d was acknowledged without a dead letter", floor, poisonSeq)
			}
			if n := len(deadLetters(t, js)); n != 0 {
				t.Fatalf("%d dead letters while the stream refuses them", n)
			}

			setDeadLetterMaxMsgSize(t, js, -1)
			checkCaughtUp(t, p, pub, st, rec)
			dls := deadLetters(t, js)
			if len(dls) != 1 {
				t.Fatalf("%d dead letters, want 1", len(dls))
			}
			if got := dls[0].Header.Get(subjects.HeaderDLQSeq); got != strconv.FormatUint(poisonSeq, 10) {
				t.Errorf("dead letter of seq %s, want %d", got, poisonSeq)
			}
			if got := dls[0].Header.Get(subjects.HeaderDLQReason); got != reason {
				t.Errorf("dead letter reason %q, want %q", got, reason)
			}
		})
	}
}
