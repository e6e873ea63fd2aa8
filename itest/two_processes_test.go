package itest

import (
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/prism-data/prism/client"
	"github.com/prism-data/prism/itest/natstest"
)

// TestSecondProcessDoesNotSplitAProjection starts two prism serve
// processes, each with its own data directory, on one NATS server. The
// second must not also consume the namespace's projector consumer (each
// SQLite file would get part of the events): it reports the namespace
// unserved, and its gateway hands the requests for it back to the queue
// group, so every request succeeds. When the first stops, the second takes over and
// its own SQLite file gets every event.
func TestSecondProcessDoesNotSplitAProjection(t *testing.T) {
	ns := natstest.Server(t)

	first := startPrism(t, t.TempDir(), 0, "--nats-url", ns.ClientURL())
	_, c := first.connect(t)
	kv := c.KeyValue("demo")
	ctx := testCtx(t)
	for i := range 100 {
		if _, err := kv.Put(ctx, fmt.Appendf(nil, "before-%d", i), []client.Item{item("v", "x")}); err != nil {
			t.Fatal(err)
		}
	}

	second := startPrism(t, t.TempDir(), 0, "--nats-url", ns.ClientURL(), "--log-level", "info")
	waitOutput(t, second, "consumer in use by another projector")

	// Both gateways take requests; every one succeeds (the second answers
	// UNAVAILABLE, the client retries and meets the first).
	var last uint64
	for i := range 200 {
		seq, err := kv.Put(ctx, fmt.Appendf(nil, "during-%d", i), []client.Item{item("v", "x")})
		if err != nil {
			t.Fatalf("put while two processes run: %v", err)
		}
		last = seq
		if _, err := kv.Get(ctx, fmt.Appendf(nil, "before-%d", i%100), client.MinSeq(seq)); err != nil {
			t.Fatalf("get while two processes run: %v", err)
		}
	}

	first.stop()
	// The second retries every 5 s and takes over once the first's pulls
	// are gone; its own file must hold every record, not a share.
	deadline := time.Now().Add(60 * time.Second)
	for {
		ids, _, err := kv.Scan(ctx, client.PageSize(1000), client.MinSeq(last))
		if err == nil && len(ids) == 300 {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("after the first process stopped: %d ids, %v; want 300\n%s", len(ids), err, second.Output())
		}
		time.Sleep(100 * time.Millisecond)
	}
}

// waitOutput waits until p printed s.
func waitOutput(t *testing.T, p *prismProc, s string) {
	t.Helper()
	deadline := time.Now().Add(30 * time.Second)
	for !strings.Contains(p.Output(), s) {
		if time.Now().After(deadline) {
			t.Fatalf("prism did not print %q within 30s:\n%s", s, p.Output())
		}
		time.Sleep(20 * time.Millisecond)
	}
}
