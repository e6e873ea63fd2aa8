package natskv_test

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"testing"
	"time"

	"github.com/nats-io/nats.go/jetstream"

	"github.com/prism-data/prism/backends/natskv"
	"github.com/prism-data/prism/itest/natstest"
	prismv1 "github.com/prism-data/prism/proto/prism/v1"
)

// TestStandaloneServer applies, reads, scans, sweeps and reopens a bucket
// on a standalone nats-server (natstest.Standalone: the machine's, or
// $PRISM_STANDALONE_NATS_URL), to prove the store works with a server
// Prism did not start. On a server older than 2.12 it checks that Open
// refuses it and skips the rest.
func TestStandaloneServer(t *testing.T) {
	standaloneURL, nc, js := natstest.Standalone(t)
	ctx := context.Background()
	ns := fmt.Sprintf("natskvtest-%d", time.Now().UnixNano())
	t.Cleanup(func() {
		if err := js.DeleteKeyValue(context.Background(), natskv.BucketName(ns)); err != nil && !errors.Is(err, jetstream.ErrBucketNotFound) {
			t.Errorf("delete bucket: %v", err)
		}
	})
	clock := time.Date(2030, 1, 1, 0, 0, 0, 0, time.UTC)
	now := func() time.Time { return clock }
	s, err := natskv.Open(ctx, js, ns, natskv.WithClock(now))
	if errors.Is(err, natskv.ErrUnsupportedServer) {
		// An old server is refused up front, before a bucket is made,
		// rather than written to without atomic batches.
		if _, err := js.KeyValue(ctx, natskv.BucketName(ns)); !errors.Is(err, jetstream.ErrBucketNotFound) {
			t.Errorf("Open refused server %s but left bucket %s: %v", nc.ConnectedServerVersion(), natskv.BucketName(ns), err)
		}
		t.Skipf("the standalone nats-server at %s is %s: Open refuses it with %q (atomic batches need 2.12+)",
			standaloneURL, nc.ConnectedServerVersion(), err)
	}
	if err != nil {
		t.Fatalf("Open: %v", err)
	}
	t.Cleanup(func() { _ = s.Close() })

	soon := &prismv1.Item{Key: []byte("ttl"), Value: []byte("t")}
	soon.ExpireTime = timestamp(clock.Add(time.Minute))
	if err := s.ApplyKeyValue(ctx, []*prismv1.KeyValueChange{
		put(1, "a", item("k1", "v1"), item("k2", "v2"), soon),
		put(2, "b", item("k", "v")),
		del(3, "b"),
		put(4, "\x00bin", item("", "empty key")),
	}, 5); err != nil {
		t.Fatal(err)
	}
	items, rev := getAll(t, s, "a")
	if got := keys(items); !slices.Equal(got, []string{"k1", "k2", "ttl"}) || rev != 1 {
		t.Fatalf("record a = %q rev %d", got, rev)
	}
	if items, rev := getAll(t, s, "\x00bin"); len(items) != 1 || string(items[0].GetValue()) != "empty key" || rev != 4 {
		t.Fatalf("binary record = %v rev %d", items, rev)
	}
	scan, err := s.ScanIDs(ctx, &prismv1.ScanRequest{})
	if err != nil || len(scan.GetIds()) != 2 || string(scan.GetIds()[0]) != "\x00bin" || string(scan.GetIds()[1]) != "a" {
		t.Fatalf("ScanIDs = %q, %v", scan.GetIds(), err)
	}
	clock = clock.Add(time.Hour)
	if n, err := s.SweepExpired(ctx); err != nil || n != 1 {
		t.Fatalf("SweepExpired = %d, %v; want 1", n, err)
	}
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}

	s = open(t, js, ns, natskv.WithClock(now))
	if cp := checkpoint(t, s); cp != 5 {
		t.Fatalf("checkpoint after reopen = %d, want 5", cp)
	}
	if items, _ := getAll(t, s, "a"); !slices.Equal(keys(items), []string{"k1", "k2"}) {
		t.Fatalf("record a after sweep and reopen = %q", keys(items))
	}
}

func keys(items []*prismv1.Item) []string {
	var out []string
	for _, it := range items {
		out = append(out, string(it.GetKey()))
	}
	return out
}
