package replay_test

import (
	"context"
	"fmt"
	"io"
	"log/slog"
	"path/filepath"
	"testing"
	"time"

	"github.com/prism-data/prism/backends/sqlite"
	"github.com/prism-data/prism/itest/natstest"
	"github.com/prism-data/prism/projectors"
	prismv1 "github.com/prism-data/prism/proto/prism/v1"
	"github.com/prism-data/prism/replay"
	"github.com/prism-data/prism/subjects"
)

// A replay paced by a throttle with a max rate (and an adaptive part that
// is cut by a lagging probe) still applies every event, exactly as written.
func TestThrottledReplayAppliesEverything(t *testing.T) {
	const ns, events, ids = "orders", 1500, 200
	_, js := natstest.Start(t)
	natstest.NamespaceStreams(t, js, ns)
	ctx := context.Background()
	want := map[string]string{}
	var last uint64
	for i := range events {
		id, value := fmt.Sprintf("rec-%03d", i%ids), fmt.Sprintf("v%d", i)
		ev := &prismv1.KeyValueEvent{Id: []byte(id), Change: &prismv1.KeyValueEvent_Put{Put: &prismv1.KeyValuePut{
			Items: []*prismv1.Item{{Key: []byte("k"), Value: []byte(value)}}}}}
		msg, err := subjects.NewKeyValueEvent(subjects.EventMeta{Namespace: ns}, ev)
		if err != nil {
			t.Fatal(err)
		}
		ack, err := js.PublishMsg(ctx, msg)
		if err != nil {
			t.Fatal(err)
		}
		want[id], last = value, ack.Sequence
	}

	st, err := sqlite.Open(ctx, filepath.Join(t.TempDir(), "replay.db"))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { st.Close() })
	th, err := replay.NewThrottle(replay.WithMaxRate(5000), replay.WithMinRate(1000), replay.WithThrottleInterval(20*time.Millisecond),
		replay.WithLagProbe(func(context.Context) (uint64, error) { return 100, nil }, 10))
	if err != nil {
		t.Fatal(err)
	}
	defer th.Close()
	quiet := slog.New(slog.NewTextHandler(io.Discard, nil))
	p, err := projectors.New(js, ns, "rebuild", st, projectors.WithLogger(quiet), projectors.WithThrottle(th), projectors.WithStopAt(last), projectors.WithBatchSize(64))
	if err != nil {
		t.Fatal(err)
	}
	if err := p.Start(ctx); err != nil {
		t.Fatal(err)
	}
	defer p.Stop(ctx)
	select {
	case <-p.Done():
	case <-time.After(60 * time.Second): // generous: 1500 events at >= 1000/s
		t.Fatalf("replay not done within 60s: applied %d of %d", p.Applied(), last)
	}
	if st := th.State(); !st.Throttled || st.Rate > 5000 || st.Rate < 1000 {
		t.Fatalf("throttle state %+v: want throttled by the lagging probe, within [1000, 5000]", st)
	}

	got := map[string]string{}
	resp, err := st.ScanIDs(ctx, &prismv1.ScanRequest{PageSize: 1000})
	if err != nil {
		t.Fatal(err)
	}
	for _, id := range resp.GetIds() {
		items, err := st.GetItems(ctx, &prismv1.GetRequest{Id: id})
		if err != nil {
			t.Fatal(err)
		}
		for _, it := range items.GetItems() {
			got[string(id)] = string(it.GetValue())
		}
	}
	if len(got) != len(want) {
		t.Fatalf("%d records replayed, want %d", len(got), len(want))
	}
	for id, v := range want {
		if got[id] != v {
			t.Fatalf("record %s = %q, want %q", id, got[id], v)
		}
	}
	if cp, err := st.Checkpoint(ctx); err != nil || cp != last {
		t.Fatalf("checkpoint %d, %v; want %d", cp, err, last)
	}
}
