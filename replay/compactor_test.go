package replay_test

import (
	"context"
	"errors"
	"strconv"
	"sync"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/prism-data/prism/replay"
)

// counter returns the value of the counter name (summed over its label
// values) in reg.
func counter(t *testing.T, reg *prometheus.Registry, name string) float64 {
	t.Helper()
	mfs, err := reg.Gather()
	if err != nil {
		t.Fatal(err)
	}
	var sum float64
	for _, mf := range mfs {
		if mf.GetName() == name {
			for _, m := range mf.GetMetric() {
				sum += m.GetCounter().GetValue()
			}
		}
	}
	return sum
}

// The Compactor leaves a stream below its ratio alone and compacts it once
// it is above, counting what it did.
func TestCompactorRunsOnRatio(t *testing.T) {
	js := startJetStream(t)
	ns := namespace(t, js, "auto")
	publishKeys(t, js, ns, 10, 2, strconv.Itoa) // 2 messages per subject: not above 3
	reg := prometheus.NewRegistry()
	c, err := replay.NewCompactor(js, ns, replay.WithCompactLogger(discard), replay.WithCompactRegisterer(reg),
		replay.WithCompactRatio(3), replay.WithCompactCheckInterval(5*time.Millisecond), replay.WithCompactMaxInterval(0))
	if err != nil {
		t.Fatal(err)
	}
	ctx, stop := runCompactor(t, c)

	// Some 40 checks at the ratio: none may run a pass.
	time.Sleep(200 * time.Millisecond)
	if n := counter(t, reg, "prism_compactor_passes_total"); n != 0 {
		t.Fatalf("%v passes below the ratio", n)
	}
	if err := c.Run(ctx); !errors.Is(err, replay.ErrCompactorRunning) {
		t.Fatalf("second Run = %v, want ErrCompactorRunning", err)
	}

	publishKeys(t, js, ns, 10, 2, strconv.Itoa) // 4 per subject
	// Generous for a loaded machine: a check runs every 5ms.
	deadline := time.Now().Add(catchUpTimeout)
	// The pass counts what it did once it has done it all: wait for the
	// count, not only for the stream to shrink.
	for streamInfo(t, js, ns).State.Msgs != 10 || counter(t, reg, "prism_compactor_passes_total") == 0 {
		if time.Now().After(deadline) {
			t.Fatalf("stream still holds %d messages", streamInfo(t, js, ns).State.Msgs)
		}
		time.Sleep(5 * time.Millisecond)
	}
	for name, want := range map[string]float64{
		"prism_compactor_records_compacted_total": 10,
		"prism_compactor_messages_removed_total":  40,
		"prism_compactor_errors_total":            0,
	} {
		if got := counter(t, reg, name); got != want {
			t.Errorf("%s = %v, want %v", name, got, want)
		}
	}
	if _, stats := c.LastPass(); stats.RolledUp != 10 {
		t.Errorf("last pass %+v", stats)
	}
	if err := stop(); err != nil {
		t.Fatalf("Run = %v after its context ended, want nil", err)
	}
}

// runCompactor runs c until stop (or the end of the test) and returns
// Run's context and stop, which returns what Run returned.
func runCompactor(t *testing.T, c *replay.Compactor) (context.Context, func() error) {
	ctx, cancel := context.WithCancel(context.Background())
	ran := make(chan error, 1)
	go func() { ran <- c.Run(ctx) }()
	stop := sync.OnceValue(func() error {
		cancel()
		return <-ran
	})
	t.Cleanup(func() { _ = stop() })
	return ctx, stop
}

// The Compactor runs a pass every max interval whatever the ratio, and
// counts a failing pass as an error.
func TestCompactorMaxIntervalAndErrors(t *testing.T) {
	js := startJetStream(t)
	ns := namespace(t, js, "tick")
	publishKeys(t, js, ns, 5, 1, strconv.Itoa)
	publish(t, js, ns, del("key0"))
	publish(t, js, ns, put("key1", "v", "again")) // the tombstone is not the last message
	reg := prometheus.NewRegistry()
	c, err := replay.NewCompactor(js, ns, replay.WithCompactLogger(discard), replay.WithCompactRegisterer(reg),
		replay.WithCompactCheckInterval(5*time.Millisecond), replay.WithCompactMaxInterval(time.Nanosecond),
		replay.WithTombstoneRetention(0))
	if err != nil {
		t.Fatal(err)
	}
	_, stop := runCompactor(t, c)
	// Generous for a loaded machine: a pass runs every 5ms.
	deadline := time.Now().Add(catchUpTimeout)
	for counter(t, reg, "prism_compactor_tombstones_purged_total") != 1 {
		if time.Now().After(deadline) {
			t.Fatal("the deleted record was never purged")
		}
		time.Sleep(5 * time.Millisecond)
	}
	if err := js.DeleteStream(context.Background(), "PRISM_TICK"); err != nil {
		t.Fatal(err)
	}
	for counter(t, reg, "prism_compactor_errors_total") == 0 {
		if time.Now().After(deadline) {
			t.Fatal("no error counted for a missing stream")
		}
		time.Sleep(5 * time.Millisecond)
	}
	if err := stop(); err != nil {
		t.Fatal(err)
	}
	// A second Compactor of the namespace shares the registered metrics.
	if _, err := replay.NewCompactor(js, ns, replay.WithCompactRegisterer(reg)); err != nil {
		t.Fatalf("second compactor on the same registerer: %v", err)
	}
	if _, err := replay.NewCompactor(js, ns, replay.WithCompactCheckInterval(0)); !errors.Is(err, replay.ErrInvalidCompactOption) {
		t.Fatalf("check interval 0: %v", err)
	}
	if _, err := replay.NewCompactor(js, "Bad"); err == nil {
		t.Fatal("NewCompactor accepted an invalid namespace")
	}
}
