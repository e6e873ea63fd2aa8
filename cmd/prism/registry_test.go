package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/prometheus/client_golang/prometheus/testutil"

	"github.com/prism-data/prism/client"
	"github.com/prism-data/prism/gateway"
)

// TestStackFollowsRegistry runs the stack in process (so that -race sees
// the registry follower, the admin API and the gateway together) and
// applies, changes, deletes and purges a namespace while readers poll
// its status and write to it.
func TestStackFollowsRegistry(t *testing.T) {
	ctx := context.Background()
	dir := t.TempDir()
	f := serveFlags{dataDir: dir, natsListen: "127.0.0.1:0", drainTimeout: 10 * time.Second, nodes: 1}
	log := slog.New(slog.NewTextHandler(io.Discard, nil))
	st, err := startStack(ctx, f, log, seed{})
	if err != nil {
		t.Fatal(err)
	}
	defer st.Close(ctx)
	nc, err := nats.Connect(st.URL(f))
	if err != nil {
		t.Fatal(err)
	}
	defer nc.Close()
	admin := gateway.NewAdminClient(nc, 5*time.Second)
	c, err := client.New(nc, client.WithTimeout(10*time.Second))
	if err != nil {
		t.Fatal(err)
	}
	kv := c.KeyValue("orders")

	// Pollers: status and writes race the reconfigurations.
	stop := make(chan struct{})
	var wg sync.WaitGroup
	wg.Go(func() {
		for {
			select {
			case <-stop:
				return
			default:
			}
			_, _ = admin.List(ctx)
			_, _ = kv.Get(ctx, []byte("w"))
		}
	})

	ns := gateway.Namespace{Name: "orders", Abstraction: gateway.AbstractionKeyValue, Backend: "sqlite"}
	res, err := admin.Apply(ctx, ns, 0, "test")
	if err != nil {
		t.Fatal(err)
	}
	waitServing(t, admin, "orders", res.Revision)
	if _, err := kv.Put(ctx, []byte("a"), []client.Item{{Key: []byte("k"), Value: []byte("1")}}); err != nil {
		t.Fatal(err)
	}

	for i, change := range []func(*gateway.Namespace){
		func(n *gateway.Namespace) { n.Consistency = gateway.Strong },
		func(n *gateway.Namespace) { n.Needs.WriteRPS = 20_000 }, // batch size 1024: projector restart
		func(n *gateway.Namespace) { n.Needs.WriteRPS = 500 },    // batch size 64: again
	} {
		change(&ns)
		if res, err = admin.Apply(ctx, ns, res.Revision, "test"); err != nil {
			t.Fatal(err)
		}
		waitServing(t, admin, "orders", res.Revision)
		id := fmt.Sprintf("after-%d", i)
		if _, err := kv.Put(ctx, []byte(id), []client.Item{{Key: []byte("k"), Value: []byte(id)}}); err != nil {
			t.Fatal(err)
		}
		// Strong from the first change on: visible as soon as acked.
		if rec, err := kv.Get(ctx, []byte(id)); err != nil || len(rec.Items) != 1 || string(rec.Items[0].Value) != id {
			t.Fatalf("change %d: get %s = %+v, %v", i, id, rec, err)
		}
	}
	got, err := admin.Get(ctx, "orders")
	if err != nil {
		t.Fatal(err)
	}
	if got.Plan == nil || got.Targets[0].Checkpoint == 0 || got.Targets[0].Lag != 0 {
		t.Fatalf("ns get = %+v", got)
	}
	for _, s := range got.Plan.Settings {
		if s.Name == "batch_size" && s.Value != float64(64) {
			t.Errorf("batch_size = %v, want 64", s.Value)
		}
	}

	db := filepath.Join(dir, "sqlite", "orders.db")
	if _, err := os.Stat(db); err != nil {
		t.Fatal(err)
	}
	if _, err := admin.Delete(ctx, "orders", res.Revision, true); err != nil {
		t.Fatal(err)
	}
	deadline := time.Now().Add(10 * time.Second)
	for {
		_, statErr := os.Stat(db)
		_, getErr := kv.Get(ctx, []byte("a"))
		if errors.Is(statErr, os.ErrNotExist) && errors.Is(getErr, client.ErrNamespaceNotFound) {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("after purge: database %v, get %v", statErr, getErr)
		}
		time.Sleep(10 * time.Millisecond)
	}
	if _, err := st.js.Stream(ctx, "PRISM_ORDERS"); err == nil {
		t.Error("stream PRISM_ORDERS still exists after purge")
	}
	close(stop)
	wg.Wait()
	if got := testutil.ToFloat64(st.set.changes.WithLabelValues("put", "ok")); got != 4 {
		t.Errorf("prism_registry_changes_total{put,ok} = %v, want 4 (apply and three changes)", got)
	}
	if got := testutil.ToFloat64(st.set.changes.WithLabelValues("purge", "ok")); got != 1 {
		t.Errorf("prism_registry_changes_total{purge,ok} = %v, want 1", got)
	}
	if n, err := testutil.GatherAndCount(st.reg, "prism_namespaces"); err != nil || n != 2 {
		t.Errorf("prism_namespaces series = %d, %v; want 2 (serving, failed)", n, err)
	}
}

// waitServing waits until the stack serves namespace name at revision.
func waitServing(t *testing.T, admin *gateway.AdminClient, name string, revision uint64) {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for {
		n, err := admin.Get(context.Background(), name)
		if err == nil && len(n.Targets) == 1 && n.Targets[0].State == "running" && n.Targets[0].Revision == revision {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("namespace %s not served at revision %d: %+v, %v", name, revision, n, err)
		}
		time.Sleep(5 * time.Millisecond)
	}
}

// TestStackReportsFailedNamespace applies a namespace whose backend cannot
// be reached: the admin API reports it failed with the reason, the
// others are served, and deleting it clears it.
func TestStackReportsFailedNamespace(t *testing.T) {
	ctx := context.Background()
	f := serveFlags{dataDir: t.TempDir(), natsListen: "127.0.0.1:0", drainTimeout: 10 * time.Second, nodes: 1,
		postgresDSN: "postgres://prism@127.0.0.1:1/prism?connect_timeout=1"}
	st, err := startStack(ctx, f, slog.New(slog.NewTextHandler(io.Discard, nil)), seed{})
	if err != nil {
		t.Fatal(err)
	}
	defer st.Close(ctx)
	nc, err := nats.Connect(st.URL(f))
	if err != nil {
		t.Fatal(err)
	}
	defer nc.Close()
	admin := gateway.NewAdminClient(nc, 5*time.Second)
	bad := gateway.Namespace{Name: "ledger", Abstraction: gateway.AbstractionKeyValue, Backend: "postgres"}
	res, err := admin.Apply(ctx, bad, 0, "test")
	if err != nil {
		t.Fatal(err)
	}
	deadline := time.Now().Add(30 * time.Second)
	for {
		n, err := admin.Get(ctx, "ledger")
		if err == nil && len(n.Targets) == 1 && n.Targets[0].State == "failed" {
			if n.Targets[0].Revision != res.Revision || !strings.Contains(n.Targets[0].Error, "postgres") {
				t.Errorf("failed target = %+v", n.Targets[0])
			}
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("ledger not reported failed: %+v, %v", n, err)
		}
		time.Sleep(10 * time.Millisecond)
	}
	if got := testutil.ToFloat64(st.set.changes.WithLabelValues("put", "failed")); got < 1 {
		t.Errorf("prism_registry_changes_total{put,failed} = %v, want ≥ 1", got)
	}
	good, err := admin.Apply(ctx, gateway.Namespace{Name: "orders", Abstraction: gateway.AbstractionKeyValue, Backend: "sqlite"}, 0, "test")
	if err != nil {
		t.Fatal(err)
	}
	waitServing(t, admin, "orders", good.Revision)
	if _, err := admin.Delete(ctx, "ledger", 0, false); err != nil {
		t.Fatal(err)
	}
	for deadline := time.Now().Add(10 * time.Second); ; time.Sleep(10 * time.Millisecond) {
		st.set.mu.Lock()
		_, failed := st.set.failed["ledger"]
		st.set.mu.Unlock()
		if !failed {
			break
		}
		if time.Now().After(deadline) {
			t.Fatal("ledger still failed after delete")
		}
	}
}
