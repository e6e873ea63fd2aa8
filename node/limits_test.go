package node_test

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/nats-io/nats.go"

	"github.com/prism-data/prism/client"
	"github.com/prism-data/prism/namespaces"
	"github.com/prism-data/prism/node"
	"github.com/prism-data/prism/node/nodetest"
)

// burst sends n puts at once through c and returns how many were stored
// and how many shed; any other error fails the test.
func burst(t *testing.T, c *client.Client, prefix string, n int) (ok, shed int64) {
	t.Helper()
	var okN, shedN atomic.Int64
	var wg sync.WaitGroup
	kv := c.KeyValue("orders")
	for i := range n {
		wg.Go(func() {
			id := fmt.Sprintf("%s-%d", prefix, i)
			_, err := kv.Put(context.Background(), []byte(id), []client.Item{{Key: []byte("k"), Value: []byte(id)}})
			switch {
			case err == nil:
				okN.Add(1)
			case errors.Is(err, client.ErrResourceExhausted):
				shedN.Add(1)
			default:
				t.Errorf("put %s: %v", id, err)
			}
		})
	}
	wg.Wait()
	return okN.Load(), shedN.Load()
}

// prism apply sets a namespace's limits from its needs and changes them
// live: write_rps 5 sheds a burst of 40 puts beyond its bucket of 10 (and
// its in-flight quota of 16), the Go client's own backoff carries
// sequential puts through the limit, and applying the namespace without
// write_rps admits the same burst whole, without a restart.
func TestApplySetsAndChangesLimitsLive(t *testing.T) {
	ctx := context.Background()
	st, admin, c := nodetest.Start(t, node.Config{})
	nc, err := nats.Connect(st.URL())
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(nc.Close)
	noRetry, err := client.New(nc, client.WithShedRetries(0))
	if err != nil {
		t.Fatal(err)
	}
	ns := namespaces.Namespace{Name: "orders", Abstraction: namespaces.AbstractionKeyValue, Backend: "sqlite", Needs: namespaces.Needs{WriteRPS: 5}}
	res, err := admin.Apply(ctx, ns, 0, "test")
	if err != nil {
		t.Fatal(err)
	}
	nodetest.WaitServing(t, admin, "orders", res.Revision)
	writeLimit := map[string]string{"namespace": "orders", "limit": "write_rate"}
	if v := counterValue(t, st.Metrics(), "prism_gateway_limit", writeLimit); v != 10 {
		t.Fatalf("prism_gateway_limit write_rate = %v, want 10", v)
	}

	ok, shed := burst(t, noRetry, "limited", 40)
	if shed == 0 || ok+shed != 40 || ok > 20 {
		t.Fatalf("at write_rps 5: %d stored, %d shed of 40; want most shed", ok, shed)
	}

	// The default client retries after the hint by itself.
	before := counterValue(t, st.Metrics(), "prism_gateway_shed_total", map[string]string{"namespace": "orders", "reason": "write_rate"})
	kv := c.KeyValue("orders")
	for i := range 12 {
		id := fmt.Sprint("backoff-", i)
		if _, err := kv.Put(ctx, []byte(id), []client.Item{{Key: []byte("k"), Value: []byte(id)}}); err != nil {
			t.Fatalf("put %s with the client's backoff: %v", id, err)
		}
	}
	if after := counterValue(t, st.Metrics(), "prism_gateway_shed_total", map[string]string{"namespace": "orders", "reason": "write_rate"}); after <= before {
		t.Errorf("write_rate sheds %v → %v: the sequential puts were never shed, so no backoff was exercised", before, after)
	}

	ns.Needs.WriteRPS = 0
	if res, err = admin.Apply(ctx, ns, res.Revision, "test"); err != nil {
		t.Fatal(err)
	}
	nodetest.WaitServing(t, admin, "orders", res.Revision)
	if v := counterValue(t, st.Metrics(), "prism_gateway_limit", writeLimit); v != 0 || counterValue(t, st.Metrics(), "prism_gateway_limit", map[string]string{"namespace": "orders", "limit": "principal_share"}) != 100 {
		t.Fatalf("prism_gateway_limit write_rate after the apply = %v, want 0 (none)", v)
	}
	if ok, shed := burst(t, noRetry, "unlimited", 40); ok != 40 || shed != 0 {
		t.Fatalf("without write_rps: %d stored, %d shed of 40; want all stored", ok, shed)
	}
}

// Config.MaxInFlight is the gateway's process cap (prism serve
// --max-in-flight): at 2, two reads waiting for a min_seq nobody wrote
// take both slots, and a put sent meanwhile is shed at once with
// RESOURCE_EXHAUSTED (process_in_flight) instead of waiting for one; the
// held reads end NOT_CONSISTENT_YET. At the default cap of 1024 the put
// would be stored.
func TestMaxInFlightShedsBeyondTheCap(t *testing.T) {
	ctx := context.Background()
	st, admin, _ := nodetest.Start(t, node.Config{MaxInFlight: 2})
	res, err := admin.Apply(ctx, namespaces.Namespace{Name: "orders", Abstraction: namespaces.AbstractionKeyValue, Backend: "sqlite"}, 0, "test")
	if err != nil {
		t.Fatal(err)
	}
	nodetest.WaitServing(t, admin, "orders", res.Revision)
	if v := counterValue(t, st.Metrics(), "prism_gateway_in_flight_capacity", nil); v != 2 {
		t.Fatalf("prism_gateway_in_flight_capacity = %v, want 2", v)
	}
	if c := st.Config(); c.MaxInFlight != 2 || c.MaxInFlightBytes != node.DefaultMaxInFlightBytes || c.MaxValueBytes != node.DefaultMaxValueBytes {
		t.Errorf("Config() = %d, %d, %d; want 2 and the defaults filled in", c.MaxInFlight, c.MaxInFlightBytes, c.MaxValueBytes)
	}
	nc, err := nats.Connect(st.URL())
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(nc.Close)
	c, err := client.New(nc, client.WithShedRetries(0), client.WithTimeout(10*time.Second))
	if err != nil {
		t.Fatal(err)
	}
	kv := c.KeyValue("orders")

	held := make(chan error, 2)
	for i := range 2 {
		go func() {
			_, err := kv.Get(ctx, []byte(fmt.Sprint("held-", i)), client.MinSeq(1<<40))
			held <- err
		}()
	}
	deadline := time.Now().Add(10 * time.Second)
	for counterValue(t, st.Metrics(), "prism_gateway_in_flight", nil) != 2 {
		if time.Now().After(deadline) {
			t.Fatalf("the held reads are not in flight: prism_gateway_in_flight = %v", counterValue(t, st.Metrics(), "prism_gateway_in_flight", nil))
		}
		time.Sleep(5 * time.Millisecond)
	}
	if _, err := kv.Put(ctx, []byte("third"), []client.Item{{Key: []byte("k"), Value: []byte("v")}}); !errors.Is(err, client.ErrResourceExhausted) {
		t.Fatalf("put beyond a cap of 2 = %v, want RESOURCE_EXHAUSTED", err)
	}
	if v := counterValue(t, st.Metrics(), "prism_gateway_shed_total", map[string]string{"namespace": "orders", "reason": "process_in_flight"}); v != 1 {
		t.Errorf("process_in_flight sheds = %v, want 1", v)
	}
	for range 2 {
		if err := <-held; !errors.Is(err, client.ErrNotConsistentYet) {
			t.Errorf("held read = %v, want NOT_CONSISTENT_YET", err)
		}
	}
	if _, err := kv.Put(ctx, []byte("after"), []client.Item{{Key: []byte("k"), Value: []byte("v")}}); err != nil {
		t.Fatalf("put once the slots are free: %v", err)
	}
}
