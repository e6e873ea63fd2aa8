package projectors_test

import (
	"context"
	"math/rand/v2"
	"testing"
	"time"

	"github.com/nats-io/nats.go/jetstream"

	"github.com/prism-data/prism/projectors"
	"github.com/prism-data/prism/subjects"
)

// A new consumer starts right after the target's checkpoint: from the
// first event for a new target, by start sequence checkpoint+1 otherwise,
// so a target that has most of the stream does not read it again.
func TestNewConsumerStartsAfterCheckpoint(t *testing.T) {
	for _, tc := range []struct {
		name       string
		checkpoint uint64
		policy     jetstream.DeliverPolicy
		startSeq   uint64
	}{
		{"new target", 0, jetstream.DeliverAllPolicy, 0},
		{"checkpoint 7", 7, jetstream.DeliverByStartSequencePolicy, 8},
	} {
		t.Run(tc.name, func(t *testing.T) {
			js := startJetStream(t)
			st := openStore(t)
			pub := newPublisher(js)
			pub.publishRandom(t, rand.New(rand.NewPCG(45, 46)), 10, 5)
			if err := st.ApplyKeyValue(context.Background(), nil, tc.checkpoint); err != nil {
				t.Fatal(err)
			}
			p := startProjector(t, js, "sqlite", st)
			waitApplied(t, p, pub.lastSeq())
			cons, err := js.Consumer(context.Background(), subjects.Stream(testNS), subjects.Consumer("sqlite"))
			if err != nil {
				t.Fatal(err)
			}
			cfg := cons.CachedInfo().Config
			if cfg.DeliverPolicy != tc.policy || cfg.OptStartSeq != tc.startSeq {
				t.Fatalf("consumer delivers %v from %d, want %v from %d", cfg.DeliverPolicy, cfg.OptStartSeq, tc.policy, tc.startSeq)
			}
		})
	}
}

// InUseBy refuses only another owner that consumes right now: with pulls
// waiting, or a delivery or an ack within the last five seconds.
func TestInUseBy(t *testing.T) {
	now := time.Now()
	recent, old := now.Add(-time.Second), now.Add(-time.Minute)
	info := func(owner string, waiting int, delivered, acked *time.Time) *jetstream.ConsumerInfo {
		i := &jetstream.ConsumerInfo{NumWaiting: waiting}
		if owner != "" {
			i.Config.Metadata = map[string]string{"prism-owner": owner}
		}
		i.Delivered.Last, i.AckFloor.Last = delivered, acked
		return i
	}
	for _, tc := range []struct {
		name      string
		info      *jetstream.ConsumerInfo
		owner     string
		wantOther string
		wantBusy  bool
	}{
		{"other owner idle", info("b", 0, &old, &old), "a", "b", false},
		{"other owner never delivered", info("b", 0, nil, nil), "a", "b", false},
		{"other owner pulling", info("b", 1, &old, &old), "a", "b", true},
		{"other owner delivered recently", info("b", 0, &recent, &old), "a", "b", true},
		{"other owner acked recently", info("b", 0, &old, &recent), "a", "b", true},
		{"other owner created it a moment ago", func() *jetstream.ConsumerInfo { i := info("b", 0, nil, nil); i.Created = recent; return i }(), "a", "b", true},
		{"other owner created it long ago", func() *jetstream.ConsumerInfo { i := info("b", 0, nil, nil); i.Created = old; return i }(), "a", "b", false},
		{"other owner claimed it a moment ago", func() *jetstream.ConsumerInfo {
			i := info("b", 0, nil, nil)
			i.Config.Metadata["prism-claimed"] = recent.Format(time.RFC3339Nano)
			return i
		}(), "a", "b", true},
		{"other owner claimed it long ago", func() *jetstream.ConsumerInfo {
			i := info("b", 0, nil, nil)
			i.Config.Metadata["prism-claimed"] = old.Format(time.RFC3339Nano)
			return i
		}(), "a", "b", false},
		{"same owner pulling", info("a", 3, &recent, &recent), "a", "a", false},
		{"no owner recorded", info("", 3, &recent, &recent), "a", "", false},
		{"projector without owner", info("b", 3, &recent, &recent), "", "b", false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			other, busy := projectors.InUseBy(tc.info, tc.owner)
			if other != tc.wantOther || busy != tc.wantBusy {
				t.Fatalf("InUseBy = %q, %v; want %q, %v", other, busy, tc.wantOther, tc.wantBusy)
			}
		})
	}
}

// An existing consumer whose settings differ from the projector's in any
// one of them (an operator's edit, an older Prism, a projector that now
// has an owner) is set back at Start; its deliver and ack policies, which
// the server cannot change, are kept.
func TestExistingConsumerSettingsAreReset(t *testing.T) {
	for _, tc := range []struct {
		name  string
		edit  func(*jetstream.ConsumerConfig)
		owner string // of the second projector
	}{
		{"description", func(c *jetstream.ConsumerConfig) { c.Description = "edited" }, ""},
		{"ack wait", func(c *jetstream.ConsumerConfig) { c.AckWait = time.Second }, ""},
		{"max ack pending", func(c *jetstream.ConsumerConfig) { c.MaxAckPending = 5 }, ""},
		{"filter subject", func(c *jetstream.ConsumerConfig) { c.FilterSubject = subjects.StreamSubjects(testNS)[0] }, ""},
		{"filter subjects", func(c *jetstream.ConsumerConfig) { c.FilterSubjects = subjects.StreamSubjects(testNS)[:1] }, ""},
		{"owner", func(*jetstream.ConsumerConfig) {}, "host-b/1"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			js := startJetStream(t)
			ctx := context.Background()
			// The consumer as this projector makes it, with one setting
			// edited.
			first := startProjector(t, js, "sqlite", openStore(t))
			if err := first.Stop(ctx); err != nil {
				t.Fatal(err)
			}
			cons, err := js.Consumer(ctx, subjects.Stream(testNS), subjects.Consumer("sqlite"))
			if err != nil {
				t.Fatal(err)
			}
			want := cons.CachedInfo().Config
			edited := want
			tc.edit(&edited)
			if _, err := js.UpdateConsumer(ctx, subjects.Stream(testNS), edited); err != nil {
				t.Fatal(err)
			}
			startProjector(t, js, "sqlite", openStore(t), projectors.WithOwner(tc.owner))
			if cons, err = js.Consumer(ctx, subjects.Stream(testNS), subjects.Consumer("sqlite")); err != nil {
				t.Fatal(err)
			}
			got := cons.CachedInfo().Config
			if got.Description != want.Description || got.AckWait != want.AckWait || got.MaxAckPending != want.MaxAckPending ||
				got.FilterSubject != "" || len(got.FilterSubjects) > 0 || got.AckPolicy != want.AckPolicy || got.DeliverPolicy != want.DeliverPolicy ||
				got.Metadata["prism-owner"] != tc.owner {
				t.Fatalf("consumer after Start:\n got %+v\nwant %+v", got, want)
			}
		})
	}
}
