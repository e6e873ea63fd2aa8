package node_test

import (
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/testutil"

	"github.com/prism-data/prism/client"
	"github.com/prism-data/prism/namespaces"
	"github.com/prism-data/prism/node"
	"github.com/prism-data/prism/node/nodetest"
)

// TestStackFollowsRegistry runs the stack in process (so that -race sees
// the registry follower, the admin API and the gateway together) and
// applies, changes, deletes and purges a namespace while readers poll
// its status and write to it.
func TestStackFollowsRegistry(t *testing.T) {
	ctx := context.Background()
	dir := t.TempDir()
	st, admin, c := nodetest.Start(t, node.Config{DataDir: dir})
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

	ns := namespaces.Namespace{Name: "orders", Abstraction: namespaces.AbstractionKeyValue, Backend: "sqlite"}
	res, err := admin.Apply(ctx, ns, 0, "test")
	if err != nil {
		t.Fatal(err)
	}
	nodetest.WaitServing(t, admin, "orders", res.Revision)
	if _, err := kv.Put(ctx, []byte("a"), []client.Item{{Key: []byte("k"), Value: []byte("1")}}); err != nil {
		t.Fatal(err)
	}

	for i, change := range []func(*namespaces.Namespace){
		func(n *namespaces.Namespace) { n.Consistency = namespaces.Strong },
		func(n *namespaces.Namespace) { n.Needs.WriteRPS = 20_000 }, // batch size 1024: projector restart
		func(n *namespaces.Namespace) { n.Needs.WriteRPS = 500 },    // batch size 64: again
	} {
		change(&ns)
		if res, err = admin.Apply(ctx, ns, res.Revision, "test"); err != nil {
			t.Fatal(err)
		}
		nodetest.WaitServing(t, admin, "orders", res.Revision)
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
	batch := -1.0
	for _, s := range got.Plan.Settings {
		if s.Name == "batch_size" {
			batch, _ = s.Value.(float64)
		}
	}
	if batch != 64 {
		t.Errorf("plan batch_size = %v, want 64", batch)
	}
	served := node.ServedBatchSize(st, "orders")
	if served != 64 {
		t.Errorf("the projector serving orders was built with batch size %d, want 64", served)
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
	if _, err := st.JetStream().Stream(ctx, "PRISM_ORDERS"); err == nil {
		t.Error("stream PRISM_ORDERS still exists after purge")
	}
	close(stop)
	wg.Wait()
	if got := testutil.ToFloat64(node.RegistryChanges(st).WithLabelValues("put", "ok")); got != 4 {
		t.Errorf("prism_registry_changes_total{put,ok} = %v, want 4 (apply and three changes)", got)
	}
	if got := testutil.ToFloat64(node.RegistryChanges(st).WithLabelValues("purge", "ok")); got != 1 {
		t.Errorf("prism_registry_changes_total{purge,ok} = %v, want 1", got)
	}
	if n, err := testutil.GatherAndCount(st.Metrics(), "prism_namespaces"); err != nil || n != 2 {
		t.Errorf("prism_namespaces series = %d, %v; want 2 (serving, failed)", n, err)
	}
}

// TestStackReportsFailedNamespace applies a namespace whose backend cannot
// be reached: the admin API reports it failed with the reason, the
// others are served, and deleting it clears it.
func TestStackReportsFailedNamespace(t *testing.T) {
	ctx := context.Background()
	st, admin, c := nodetest.Start(t, node.Config{DataDir: t.TempDir(), PostgresDSN: "postgres://prism@127.0.0.1:1/prism?connect_timeout=1"})
	bad := namespaces.Namespace{Name: "ledger", Abstraction: namespaces.AbstractionKeyValue, Backend: "postgres"}
	// Stored in the registry past the admin API's check, which refuses
	// it: as a namespace whose backend went down after it was applied.
	res, err := namespaces.Apply(ctx, st.Registry(), namespaces.Cluster{Nodes: 1, Postgres: true}, bad, 0, "test")
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
	// Registered but not served here: retryable, not "no such namespace".
	if _, err := c.KeyValue("ledger").Get(ctx, []byte("x")); !errors.Is(err, client.ErrUnavailable) {
		t.Errorf("get from the failed namespace: %v, want UNAVAILABLE", err)
	}
	if got := testutil.ToFloat64(node.RegistryChanges(st).WithLabelValues("put", "failed")); got < 1 {
		t.Errorf("prism_registry_changes_total{put,failed} = %v, want ≥ 1", got)
	}
	good, err := admin.Apply(ctx, namespaces.Namespace{Name: "orders", Abstraction: namespaces.AbstractionKeyValue, Backend: "sqlite"}, 0, "test")
	if err != nil {
		t.Fatal(err)
	}
	nodetest.WaitServing(t, admin, "orders", good.Revision)
	if _, err := admin.Delete(ctx, "ledger", 0, false); err != nil {
		t.Fatal(err)
	}
	// Deleted: no longer retried, and requests for it are no longer handed
	// back but answered NAMESPACE_NOT_FOUND.
	for deadline := time.Now().Add(10 * time.Second); ; time.Sleep(10 * time.Millisecond) {
		_, err := c.KeyValue("ledger").Get(ctx, []byte("x"))
		if errors.Is(err, client.ErrNamespaceNotFound) {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("ledger after delete: %v, want NAMESPACE_NOT_FOUND", err)
		}
	}
}

// TestReadCacheNeverStale serves a namespace whose needs turn the gateway
// read cache on, keeps readers filling the cache while a writer overwrites
// the same records, and checks that every read made after a write (strong,
// and read-your-writes with min_seq) sees it, and that the cache served
// reads.
func TestReadCacheNeverStale(t *testing.T) {
	ctx := context.Background()
	st, admin, c := nodetest.Start(t, node.Config{DataDir: t.TempDir()})
	for _, consistency := range []namespaces.Consistency{namespaces.Strong, namespaces.ReadYourWrites} {
		name := "hot_" + strings.ReplaceAll(string(consistency), "-", "_")
		ns := namespaces.Namespace{Name: name, Abstraction: namespaces.AbstractionKeyValue, Backend: "sqlite", Consistency: consistency,
			Needs: namespaces.Needs{ReadRPS: 10_000, WriteRPS: 1_000}}
		res, err := admin.Apply(ctx, ns, 0, "test")
		if err != nil {
			t.Fatal(err)
		}
		if !planSetting(res.Plan, "read_cache") {
			t.Fatalf("plan of %s: read_cache off: %+v", name, res.Plan.Settings)
		}
		nodetest.WaitServing(t, admin, name, res.Revision)
		kv := c.KeyValue(name)
		const ids = 8
		stop := make(chan struct{})
		var wg sync.WaitGroup
		for r := range 3 {
			wg.Go(func() {
				for i := r; ; i++ {
					select {
					case <-stop:
						return
					default:
					}
					_, _ = kv.Get(ctx, fmt.Appendf(nil, "id-%d", i%ids))
				}
			})
		}
		for i := 1; i <= 400; i++ {
			id := fmt.Appendf(nil, "id-%d", i%ids)
			want := fmt.Sprint(i)
			seq, err := kv.Put(ctx, id, []client.Item{{Key: []byte("v"), Value: []byte(want)}})
			if err != nil {
				t.Fatal(err)
			}
			var opts []client.ReadOption
			if consistency == namespaces.ReadYourWrites {
				opts = append(opts, client.MinSeq(seq))
			}
			// Twice: the second read may be a cache hit.
			for range 2 {
				rec, err := kv.Get(ctx, id, opts...)
				if err != nil || len(rec.Items) != 1 || string(rec.Items[0].Value) != want || rec.Revision != seq {
					close(stop)
					t.Fatalf("%s: get %s after put %s (seq %d) = %+v, %v: stale", name, id, want, seq, rec, err)
				}
			}
		}
		close(stop)
		wg.Wait()
		hits := counterValue(t, st.Metrics(), "prism_gateway_read_cache_total", map[string]string{"namespace": name, "result": "hit"})
		if hits == 0 {
			t.Errorf("%s: the read cache served no read", name)
		}
		t.Logf("%s: %v cache hits", name, hits)
	}
}

// planSetting reports the boolean setting name of p.
func planSetting(p namespaces.PlanReport, name string) bool {
	for _, s := range p.Settings {
		if s.Name == name {
			b, _ := s.Value.(bool)
			return b
		}
	}
	return false
}

// counterValue returns the value of the counter (or gauge) metric with
// labels in reg, 0 when it has not been counted.
func counterValue(t *testing.T, reg *prometheus.Registry, metric string, labels map[string]string) float64 {
	t.Helper()
	mfs, err := reg.Gather()
	if err != nil {
		t.Fatal(err)
	}
	for _, mf := range mfs {
		if mf.GetName() != metric {
			continue
		}
	next:
		for _, m := range mf.GetMetric() {
			for _, lp := range m.GetLabel() {
				if v, ok := labels[lp.GetName()]; ok && v != lp.GetValue() {
					continue next
				}
			}
			return m.GetCounter().GetValue() + m.GetGauge().GetValue()
		}
	}
	return 0
}

// A new watch of the registry (after a reconnect) stops the namespaces it
// did not deliver: they were deleted while nobody watched.
func TestForgetUnseen(t *testing.T) {
	ctx := context.Background()
	st, admin, c := nodetest.Start(t, node.Config{DataDir: t.TempDir()})
	for _, name := range []string{"kept", "gone"} {
		res, err := admin.Apply(ctx, namespaces.Namespace{Name: name, Abstraction: namespaces.AbstractionKeyValue, Backend: "sqlite"}, 0, "test")
		if err != nil {
			t.Fatal(err)
		}
		nodetest.WaitServing(t, admin, name, res.Revision)
	}
	node.ForgetUnseen(ctx, st, map[string]bool{"kept": true})
	if _, err := c.KeyValue("gone").Get(ctx, []byte("x")); !errors.Is(err, client.ErrNamespaceNotFound) {
		t.Fatalf("gone after forgetUnseen: %v, want NAMESPACE_NOT_FOUND", err)
	}
	if _, err := c.KeyValue("kept").Get(ctx, []byte("x")); !errors.Is(err, client.ErrNotFound) {
		t.Fatalf("kept after forgetUnseen: %v, want NOT_FOUND (served, no such record)", err)
	}
}
