package replay_test

import (
	"context"
	"errors"
	"fmt"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/nats-io/nats.go/jetstream"

	"github.com/prism-data/prism/backends/sqlite"
	"github.com/prism-data/prism/projectors"
	"github.com/prism-data/prism/replay"
	"github.com/prism-data/prism/subjects"
)

// jobEnv is a namespace stream with writes to replay.
type jobEnv struct {
	js   jetstream.JetStream
	ns   string
	dir  string
	last uint64
}

// newJobEnv publishes n writes (puts and deletes over 40 records) to a
// new namespace's stream.
func newJobEnv(t *testing.T, n int) *jobEnv {
	t.Helper()
	e := &jobEnv{js: startJetStream(t), dir: t.TempDir()}
	e.ns = namespace(t, e.js, "orders")
	for i := range n {
		id := fmt.Sprintf("rec-%02d", i%40)
		if i%11 == 10 {
			e.last = publish(t, e.js, e.ns, del(id))
		} else {
			e.last = publish(t, e.js, e.ns, put(id, fmt.Sprint("k", i%3), fmt.Sprint(i)))
		}
	}
	return e
}

func (e *jobEnv) config(target string) replay.JobConfig {
	return replay.JobConfig{JetStream: e.js, Namespace: e.ns, Target: target, Owner: "replay@test", BatchSize: 64,
		Storage: replay.SQLiteTarget{Path: filepath.Join(e.dir, target+".db")}, Logger: discard}
}

func (e *jobEnv) run(t *testing.T, c replay.JobConfig) (replay.Result, error) {
	t.Helper()
	j, err := replay.NewJob(c)
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), catchUpTimeout)
	defer cancel()
	return j.Run(ctx)
}

func (e *jobEnv) open(t *testing.T, target string) *sqlite.Store {
	t.Helper()
	st, err := sqlite.Open(context.Background(), filepath.Join(e.dir, target+".db"))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { st.Close() })
	return st
}

// A job replays the whole stream into a new target, identical to a plain
// projection, and deletes its consumer; run again it has nothing to do.
func TestJobReplaysTheStream(t *testing.T) {
	e := newJobEnv(t, 300)
	want := openStore(t)
	project(t, e.js, e.ns, "served", want)

	c := e.config("rebuild")
	c.Throttle = replay.ThrottleConfig{MaxRate: 100_000, Adaptive: true, MaxLag: 5000, MaxLatency: time.Second}
	var started *replay.Running
	c.Events.Started = func(r *replay.Running) { started = r }
	res, err := e.run(t, c)
	if err != nil {
		t.Fatal(err)
	}
	if res.Start != 0 || res.StopAt != e.last || res.Applied != e.last {
		t.Fatalf("result %+v, want start 0, stop at and applied %d", res, e.last)
	}
	if started == nil || started.Projector() == nil || started.Throttle() == nil {
		t.Fatal("Started was not told of the running projector and throttle")
	}
	sameRecords(t, "replayed", readAll(t, e.open(t, "rebuild")), readAll(t, want), true)
	if _, err := e.js.Consumer(context.Background(), subjects.Stream(e.ns), subjects.Consumer("rebuild")); !errors.Is(err, jetstream.ErrConsumerNotFound) {
		t.Fatalf("consumer of the finished job: %v, want it deleted", err)
	}
	res, err = e.run(t, e.config("rebuild"))
	if err != nil || !res.UpToDate || res.Start != e.last {
		t.Fatalf("second run: %+v, %v; want up to date at %d", res, err, e.last)
	}
}

// To stops there and the next run resumes from it; From starts a new
// target later and is refused where it would leave a gap or an overlap.
func TestJobSequenceRange(t *testing.T) {
	e := newJobEnv(t, 200)
	want := openStore(t)
	project(t, e.js, e.ns, "served", want)

	c := e.config("part")
	c.To = 100
	if res, err := e.run(t, c); err != nil || res.Applied != 100 {
		t.Fatalf("run to 100: %+v, %v", res, err)
	}
	st := e.open(t, "part")
	if cp, err := st.Checkpoint(context.Background()); err != nil || cp != 100 {
		t.Fatalf("checkpoint after To 100 = %d, %v", cp, err)
	}
	c = e.config("part")
	c.From = 50
	if _, err := e.run(t, c); err == nil || !strings.Contains(err.Error(), "checkpoint is 100") {
		t.Fatalf("From 50 on a target at 100: %v", err)
	}
	c.From = 150
	if _, err := e.run(t, c); err == nil || !strings.Contains(err.Error(), "skip the events") {
		t.Fatalf("From 150 on a target at 100: %v", err)
	}
	c.From = 101
	if _, err := e.run(t, c); err != nil {
		t.Fatalf("resume: %v", err)
	}
	sameRecords(t, "resumed", readAll(t, st), readAll(t, want), true)

	c = e.config("late")
	c.From = e.last
	var skipped uint64
	c.Events.Skipped = func(from uint64) { skipped = from }
	if _, err := e.run(t, c); err != nil {
		t.Fatalf("From on a new target: %v", err)
	}
	if skipped != e.last {
		t.Fatalf("Skipped told %d, want %d", skipped, e.last)
	}
	if late := readAll(t, e.open(t, "late")); len(late) > 1 {
		t.Fatalf("target from the last sequence holds %d records, want at most the last write's", len(late))
	}

	c = e.config("part")
	c.To = e.last + 10
	if _, err := e.run(t, c); err == nil || !strings.Contains(err.Error(), "past the stream's last sequence") {
		t.Fatalf("To past the head: %v", err)
	}
}

// A target another owner projects right now is refused before anything
// changes, Reset included; a Reset asks first and drops the data.
func TestJobRefusesTargetInUseAndResets(t *testing.T) {
	e := newJobEnv(t, 100)
	st := e.open(t, "busy")
	p, err := projectors.New(e.js, e.ns, "busy", st, projectors.WithOwner("serve@other"), projectors.WithLogger(discard))
	if err != nil {
		t.Fatal(err)
	}
	ctx := context.Background()
	if err := p.Start(ctx); err != nil {
		t.Fatal(err)
	}
	if err := p.WaitApplied(ctx, e.last); err != nil {
		t.Fatal(err)
	}
	for _, reset := range []bool{false, true} {
		c := e.config("busy")
		c.Reset = reset
		_, err := e.run(t, c)
		var inUse *replay.InUseError
		if !errors.Is(err, projectors.ErrConsumerInUse) || !errors.As(err, &inUse) || inUse.Owner != "serve@other" {
			t.Fatalf("job (reset %v) on a target in use: %v", reset, err)
		}
	}
	if cp, err := st.Checkpoint(ctx); err != nil || cp != e.last {
		t.Fatalf("the refused reset changed the target: checkpoint %d, %v", cp, err)
	}
	if err := p.Stop(ctx); err != nil {
		t.Fatal(err)
	}

	if _, err := e.run(t, e.config("copy")); err != nil {
		t.Fatal(err)
	}
	c := e.config("copy")
	c.Reset = true
	c.ConfirmReset = func() bool { return false }
	if _, err := e.run(t, c); err == nil || !strings.Contains(err.Error(), "not confirmed") {
		t.Fatalf("unconfirmed reset: %v", err)
	}
	c.ConfirmReset = func() bool { return true }
	var dropped string
	c.Events.Dropped = func(where string) { dropped = where }
	res, err := e.run(t, c)
	if err != nil || res.Start != 0 || res.Applied != e.last {
		t.Fatalf("confirmed reset: %+v, %v; want a replay from 0 to %d", res, err, e.last)
	}
	if want := "sqlite " + filepath.Join(e.dir, "copy.db"); dropped != want {
		t.Fatalf("Dropped told %q, want %q", dropped, want)
	}
}

// A second job of the same target is refused while the first holds it.
func TestJobLocksTheTarget(t *testing.T) {
	e := newJobEnv(t, 20)
	lock, err := replay.SQLiteTarget{Path: filepath.Join(e.dir, "x.db")}.Lock(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	defer lock()
	if _, err := e.run(t, e.config("x")); err == nil || !strings.Contains(err.Error(), "another prism replay is writing") {
		t.Fatalf("job on a locked target: %v", err)
	}
}

// A following job started on an open store runs until stopped, keeps its
// consumer and leaves the store open: what a migration's backfill does.
func TestJobStartFollowsOnAnOpenStore(t *testing.T) {
	e := newJobEnv(t, 50)
	st := openStore(t)
	c := e.config("backfill")
	c.Storage, c.Follow = replay.OpenTarget(st, "the backfill's store"), true
	j, err := replay.NewJob(c)
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), catchUpTimeout)
	defer cancel()
	r, err := j.Start(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if err := r.Projector().WaitApplied(ctx, e.last); err != nil {
		t.Fatal(err)
	}
	more := publish(t, e.js, e.ns, put("late", "k", "v"))
	if err := r.Projector().WaitApplied(ctx, more); err != nil {
		t.Fatal(err)
	}
	if err := r.Stop(ctx); err != nil {
		t.Fatal(err)
	}
	if cp, err := st.Checkpoint(ctx); err != nil || cp != more {
		t.Fatalf("checkpoint of the open store after Stop = %d, %v; want %d (store still open)", cp, err, more)
	}
	if _, err := e.js.Consumer(ctx, subjects.Stream(e.ns), subjects.Consumer("backfill")); err != nil {
		t.Fatalf("consumer of a stopped following job: %v, want it kept", err)
	}
}

func TestNewJobRefuses(t *testing.T) {
	ok := replay.JobConfig{JetStream: startJetStream(t), Namespace: "orders", Target: "t", Storage: replay.SQLiteTarget{Path: "x.db"}}
	tests := []struct {
		name   string
		change func(*replay.JobConfig)
		want   string
	}{
		{"no target", func(c *replay.JobConfig) { c.Target = "" }, "no target"},
		{"no storage", func(c *replay.JobConfig) { c.Storage = nil }, "no storage"},
		{"log", func(c *replay.JobConfig) { c.Abstraction = subjects.AbstractionLog }, "keyvalue, timeseries, entity and graph"},
		{"follow and to", func(c *replay.JobConfig) { c.Follow, c.To = true, 5 }, "exclude each other"},
		{"from after to", func(c *replay.JobConfig) { c.From, c.To = 9, 5 }, "after To"},
		{"negative rate", func(c *replay.JobConfig) { c.Throttle.MaxRate = -1 }, "max rate"},
		{"reset of an open store", func(c *replay.JobConfig) { c.Reset, c.Storage = true, replay.OpenTarget(nil, "x") }, "cannot be dropped"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			c := ok
			tt.change(&c)
			if _, err := replay.NewJob(c); !errors.Is(err, replay.ErrInvalidJob) || !strings.Contains(err.Error(), tt.want) {
				t.Fatalf("NewJob = %v, want ErrInvalidJob with %q", err, tt.want)
			}
		})
	}
	if _, err := replay.NewJob(ok); err != nil {
		t.Fatal(err)
	}
}

// The live-lag probe counts the consumers being consumed and ignores the
// ones nobody consumes, however far behind they are.
func TestLiveLagProbe(t *testing.T) {
	e := newJobEnv(t, 50)
	ctx := context.Background()
	// The served projector, caught up and waiting for more.
	served, err := projectors.New(e.js, e.ns, "sqlite", openStore(t), projectors.WithLogger(discard))
	if err != nil {
		t.Fatal(err)
	}
	if err := served.Start(ctx); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = served.Stop(context.Background()) })
	if err := served.WaitApplied(ctx, e.last); err != nil {
		t.Fatal(err)
	}
	waitAcked(t, e.js, e.ns, "sqlite", e.last)
	stream, err := e.js.Stream(ctx, "PRISM_ORDERS")
	if err != nil {
		t.Fatal(err)
	}
	probe := replay.LiveLagProbe(stream, "proj_mine")
	newConsumer := func(name string) jetstream.Consumer {
		c, err := stream.CreateConsumer(ctx, jetstream.ConsumerConfig{Durable: name, AckPolicy: jetstream.AckExplicitPolicy})
		if err != nil {
			t.Fatal(err)
		}
		return c
	}
	newConsumer("proj_stale") // 50 behind, nobody consuming
	newConsumer("proj_mine")  // the replay's own
	if lag, err := probe(ctx); err != nil || lag != 0 {
		t.Fatalf("lag with the served projector caught up and a stale consumer = %d, %v; want 0", lag, err)
	}
	busy := newConsumer("proj_busy")
	b, err := busy.Fetch(1)
	if err != nil {
		t.Fatal(err)
	}
	for m := range b.Messages() {
		if err := m.DoubleAck(ctx); err != nil {
			t.Fatal(err)
		}
	}
	if lag, err := probe(ctx); err != nil || lag != e.last-1 {
		t.Fatalf("lag with a consumer that just acked its first event = %d, %v; want %d", lag, err, e.last-1)
	}
}
