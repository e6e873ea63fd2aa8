package replay_test

import (
	"context"
	"fmt"
	"maps"
	"math/rand/v2"
	"sync/atomic"
	"testing"
	"time"

	"github.com/nats-io/nats.go/jetstream"

	"github.com/prism-data/prism/backends/sqlite"
	"github.com/prism-data/prism/namespaces"
	"github.com/prism-data/prism/projectors"
	prismv1 "github.com/prism-data/prism/proto/prism/v1"
	"github.com/prism-data/prism/replay"
	"github.com/prism-data/prism/subjects"
)

// causeError is the refusal of a target with a cause the operator can
// fix (a constraint, a topic's size limit): permanent, so the projector
// dead-letters the change.
type causeError struct{ seq uint64 }

func (e causeError) Error() string {
	return fmt.Sprintf("refused by the test's cause: change %d", e.seq)
}
func (causeError) Permanent() bool { return true }

// refusing is a real SQLite target that, while broken, refuses every
// change putting the value "bad".
type refusing struct {
	*sqlite.Store
	broken atomic.Bool
}

func (r *refusing) ApplyKeyValue(ctx context.Context, changes []*prismv1.KeyValueChange, through uint64) error {
	if r.broken.Load() {
		for _, c := range changes {
			for _, it := range c.GetEvent().GetPut().GetItems() {
				if string(it.GetValue()) == "bad" {
					return causeError{c.GetSeq()}
				}
			}
		}
	}
	return r.Store.ApplyKeyValue(ctx, changes, through)
}

// TestDLQRedriveMatchesFreshReplay: events a target refused for a cause
// are dead-lettered while later events of the same records are applied
// (the target diverges from the stream); once the cause is fixed,
// redriving the dead letters, with the projector live, brings the target
// to exactly the records and revisions of a fresh replay of the stream.
// Redriving an event that is still poison (it does not decode, an invalid
// expiry) dead-letters it again. ADR 024.
func TestDLQRedriveMatchesFreshReplay(t *testing.T) {
	js := startJetStream(t)
	ns := namespace(t, js, "redrive")
	r := rand.New(rand.NewPCG(24, 7))
	ctx := context.Background()

	publish(t, js, ns, put("x1", "a", "1"))
	publish(t, js, ns, put("x1", "a", "bad", "b", "bad"))
	publish(t, js, ns, put("x1", "a", "3")) // newer than the refused write of a
	publish(t, js, ns, put("lone", "k", "bad"))
	randomEvents(t, js, ns, r, 60, 6)
	publish(t, js, ns, put("r2", "k0", "bad", "k9", "bad"))
	randomEvents(t, js, ns, r, 60, 6)

	live := &refusing{Store: openStore(t)}
	live.broken.Store(true)
	p, err := projectors.New(js, ns, "sqlite", live, projectors.WithLogger(discard), projectors.WithBackoff(time.Millisecond, 20*time.Millisecond))
	if err != nil {
		t.Fatal(err)
	}
	if err := p.Start(ctx); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = p.Stop(context.Background()) })
	waitProjected(t, js, ns, p)
	diverged := readAll(t, live.Store)

	var all []namespaces.DeadLetter
	for after := uint64(0); ; {
		page, err := namespaces.ListDeadLetters(ctx, js, namespaces.DLQListRequest{Name: ns, After: after, Limit: 5})
		if err != nil {
			t.Fatal(err)
		}
		all = append(all, page.DeadLetters...)
		if page.Next == 0 {
			if page.Depth != uint64(len(all)) {
				t.Fatalf("depth %d, listed %d", page.Depth, len(all))
			}
			break
		}
		after = page.Next
	}
	causes := 0
	for _, d := range all {
		if d.Target != "sqlite" || d.StreamSeq == 0 || d.Reason == "" || d.Subject == "" {
			t.Fatalf("dead letter %+v lacks its origin", d)
		}
		if isCause(d) {
			causes++
		}
	}
	if causes != 3 || len(all) == causes {
		t.Fatalf("%d dead letters, %d of the test's cause; want 3 of it and some poison", len(all), causes)
	}
	shown, err := namespaces.ShowDeadLetter(ctx, js, ns, all[0].Seq)
	if err != nil || len(shown.Data) == 0 || shown.Headers[subjects.HeaderType] == nil {
		t.Fatalf("show %d: %+v, %v; want the event's payload and CloudEvent headers", all[0].Seq, shown, err)
	}

	live.broken.Store(false) // the cause is fixed
	seqs := make([]uint64, len(all))
	for i, d := range all {
		seqs[i] = d.Seq
	}
	reply, err := namespaces.RedriveDeadLetters(ctx, js, namespaces.DLQRedriveRequest{
		DLQSelection: namespaces.DLQSelection{Name: ns, Seqs: seqs}, WaitMS: 20_000})
	if err != nil {
		t.Fatal(err)
	}
	if len(reply.Redriven) != len(all) {
		// Every dead letter was named: none is added with its record.
		t.Fatalf("redrove %d of %d", len(reply.Redriven), len(all))
	}
	for _, res := range reply.Redriven {
		switch {
		case res.Outcome == namespaces.RedrivePublished || res.Outcome == namespaces.RedriveSuperseded:
			t.Errorf("dead letter %d: outcome %s, want it applied or refused again", res.Seq, res.Outcome)
		case !isCause(res.DeadLetter) && (res.Outcome != namespaces.RedriveFailedAgain || res.NewSeq == 0):
			t.Errorf("poison dead letter %d (%s): outcome %s, want %s with a new dead letter", res.Seq, res.Reason, res.Outcome, namespaces.RedriveFailedAgain)
		}
	}
	if _, err := namespaces.ShowDeadLetter(ctx, js, ns, all[0].Seq); err == nil {
		t.Errorf("dead letter %d is still there after its redrive", all[0].Seq)
	}
	publish(t, js, ns, put("x1", "a", "4")) // writes go on after the redrive
	last := waitProjected(t, js, ns, p)

	fresh := replayInto(t, js, ns, subjects.AbstractionKeyValue, "fresh", replay.SQLiteTarget{Path: t.TempDir() + "/fresh.db"}, last)
	want := readAll(t, fresh.(*sqlite.Store))
	if maps.EqualFunc(diverged, want, func(a, b record) bool { return maps.Equal(a.items, b.items) }) {
		t.Fatal("the target did not diverge before the redrive: the test proves nothing")
	}
	got := readAll(t, live.Store)
	sameRecords(t, "target after redrive vs fresh replay", got, want, true)
	if x1 := got["x1"].items; x1["a"] != "4" || x1["b"] != "bad" {
		t.Errorf("x1 = %v, want a=4 (the redriven a=bad never overwrites a newer write) and b=bad", x1)
	}
}

// isCause reports whether d was refused for the test's cause.
func isCause(d namespaces.DeadLetter) bool {
	var e causeError
	_, err := fmt.Sscanf(d.Reason, "refused by the test's cause: change %d", &e.seq)
	return err == nil
}

// waitProjected waits until p applied the stream's last sequence and its
// consumer acknowledged it, and returns that sequence.
func waitProjected(t *testing.T, js jetstream.JetStream, ns string, p *projectors.Projector) uint64 {
	t.Helper()
	last := streamInfo(t, js, ns).State.LastSeq
	ctx, cancel := context.WithTimeout(context.Background(), catchUpTimeout)
	defer cancel()
	if err := p.WaitApplied(ctx, last); err != nil {
		t.Fatalf("wait applied %d: %v (applied %d)", last, err, p.Applied())
	}
	waitAcked(t, js, ns, "sqlite", last)
	return last
}
