package itest

import (
	"errors"
	"fmt"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/prism-data/prism/client"
	"github.com/prism-data/prism/itest/natstest"
)

// TestStandaloneNATSServer serves a namespace with publish_changes from
// a standalone nats-server (natstest.Standalone: the machine's, or
// $PRISM_STANDALONE_NATS_URL): writes, reads, the core NATS fan-out of
// changes, and mutate, which needs atomic batch publish (2.12+) and must be
// refused cleanly, storing nothing, on an older server. CI runs it on the
// machine's 2.9 and on a current server.
func TestStandaloneNATSServer(t *testing.T) {
	standaloneURL, nc, js := natstest.Standalone(t)
	ctx := testCtx(t)
	t.Logf("standalone nats-server %s", nc.ConnectedServerVersion())

	name := fmt.Sprintf("standalone_%d", time.Now().UnixNano())
	spec := fmt.Sprintf("name: %s\nabstraction: keyvalue\nbackend: sqlite\nconsistency: read-your-writes\npublish_changes: true\n", name)
	cfg := configDir(t, spec)
	// The namespace comes from --config: a registry new on the shared
	// server would otherwise get the demo namespace.
	p := startPrism(t, t.TempDir(), 0, "--nats-url", standaloneURL, "--config", cfg)
	t.Cleanup(func() {
		// Leave the shared server as it was: purge the namespace.
		if out, err := p.cli(t, "", "ns", "delete", name, "--yes", "--purge"); err != nil {
			t.Logf("cleanup: %v\n%s", err, out)
		}
		deadline := time.Now().Add(10 * time.Second)
		for time.Now().Before(deadline) {
			if _, err := js.Stream(ctx, "PRISM_"+strings.ToUpper(name)); errors.Is(err, jetstream.ErrStreamNotFound) {
				return
			}
			time.Sleep(20 * time.Millisecond)
		}
		t.Errorf("stream of %s still on the standalone server after purge", name)
	})

	changes := make(chan *nats.Msg, 16)
	sub, err := nc.ChanSubscribe("prism."+name+".changes.>", changes)
	if err != nil {
		t.Fatal(err)
	}
	defer sub.Unsubscribe()
	if err := nc.Flush(); err != nil {
		t.Fatal(err)
	}

	_, c := p.connect(t)
	kv := c.KeyValue(name)
	putUntilServed(t, kv, "first")
	seq, err := kv.Put(ctx, []byte("user.1"), []client.Item{item("name", "Ada")})
	if err != nil {
		t.Fatal(err)
	}
	rec, err := kv.Get(ctx, []byte("user.1"), client.MinSeq(seq))
	if err != nil || len(rec.Items) != 1 || string(rec.Items[0].Value) != "Ada" {
		t.Fatalf("get = %+v, %v", rec, err)
	}
	seen := map[uint64]string{}
	for len(seen) < 2 {
		select {
		case m := <-changes:
			s, _ := strconv.ParseUint(m.Header.Get("Nats-Sequence"), 10, 64)
			seen[s] = m.Header.Get("ce-subject")
		case <-time.After(10 * time.Second):
			t.Fatalf("changes received: %v; want the two puts", seen)
		}
	}
	if seen[seq] == "" {
		t.Errorf("no change with Nats-Sequence %d among %v", seq, seen)
	}

	_, err = kv.Mutate(ctx, []client.Mutation{
		{ID: []byte("m1"), Items: []client.Item{item("k", "1")}},
		{ID: []byte("m2"), Items: []client.Item{item("k", "2")}},
	})
	info, ierr := js.Stream(ctx, "PRISM_"+strings.ToUpper(name))
	if ierr != nil {
		t.Fatal(ierr)
	}
	if info.CachedInfo().Config.AllowAtomicPublish {
		if err != nil {
			t.Fatalf("mutate on a server with atomic batch publish: %v", err)
		}
		return
	}
	if !errors.Is(err, client.ErrFailedPrecondition) || !strings.Contains(err.Error(), "2.12") {
		t.Fatalf("mutate on a server without atomic batch publish: %v, want FAILED_PRECONDITION naming 2.12", err)
	}
	if last := info.CachedInfo().State.LastSeq; last != seq {
		t.Errorf("stream last seq %d after the refused mutate, want %d: it stored something", last, seq)
	}
}
