package node_test

import (
	"context"
	"errors"
	"io"
	"math"
	"net"
	"net/http"
	"net/url"
	"runtime"
	"strings"
	"testing"
	"time"

	"github.com/prism-data/prism/client"
	"github.com/prism-data/prism/itest/natstest"
	"github.com/prism-data/prism/namespaces"
	"github.com/prism-data/prism/node"
	"github.com/prism-data/prism/node/nodetest"
)

// startNode starts a node on an embedded server on a free port under a
// temporary data directory, with seed applied; Cleanup closes it.
func startNode(t *testing.T, cfg node.Config, seed node.Seed) *node.Node {
	t.Helper()
	if cfg.DataDir == "" {
		cfg.DataDir = t.TempDir()
	}
	n, err := node.Start(context.Background(), cfg, nil, seed)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = n.Close(context.Background()) })
	return n
}

// connect returns a Prism client on a new connection to n.
func connect(t *testing.T, n *node.Node) *client.Client {
	c, _ := nodetest.Client(t, n.URL())
	return c
}

// putGet writes one item to record id of namespace ns and reads it back
// (the namespace is strong: the write is visible once acknowledged).
func putGet(t *testing.T, c *client.Client, ns, id, value string) {
	t.Helper()
	ctx := context.Background()
	kv := c.KeyValue(ns)
	seq, err := kv.Put(ctx, []byte(id), []client.Item{{Key: []byte("k"), Value: []byte(value)}})
	if err != nil {
		t.Fatalf("put %s/%s: %v", ns, id, err)
	}
	rec, err := kv.Get(ctx, []byte(id))
	if err != nil || len(rec.Items) != 1 || string(rec.Items[0].Value) != value || rec.Revision != seq {
		t.Fatalf("get %s/%s = %+v, %v; want %s at revision %d", ns, id, rec, err, value, seq)
	}
}

func strongKV(name string) namespaces.Namespace {
	return namespaces.Namespace{Name: name, Abstraction: namespaces.AbstractionKeyValue, Backend: "sqlite", Consistency: namespaces.Strong}
}

// prismGoroutines returns the stacks of the goroutines other than the
// caller's that run Prism code.
func prismGoroutines() []string {
	buf := make([]byte, 1<<20)
	buf = buf[:runtime.Stack(buf, true)]
	var out []string
	for i, g := range strings.Split(string(buf), "\n\n") {
		if i == 0 { // the caller
			continue
		}
		if strings.Contains(g, "github.com/prism-data/prism/") {
			out = append(out, g)
		}
	}
	return out
}

// TestNodeServesAndStops starts a node with a seed, writes and reads
// through the Go client, applies a second namespace to the registry and
// sees it served, then closes the node twice: the NATS port is free again
// and no Prism goroutine is left.
func TestNodeServesAndStops(t *testing.T) {
	ctx := context.Background()
	dir := t.TempDir()
	n, err := node.Start(ctx, node.Config{DataDir: dir}, nil, node.Seed{Namespaces: []namespaces.Namespace{strongKV("orders")}, By: "test"})
	if err != nil {
		t.Fatal(err)
	}
	closed := false
	t.Cleanup(func() {
		if !closed {
			_ = n.Close(ctx)
		}
	})
	if got := n.Config(); got.DrainTimeout != node.DefaultDrainTimeout || got.Nodes != 1 || got.NATSListen != node.DefaultNATSListen {
		t.Errorf("config defaults = drain %v, nodes %d, listen %q", got.DrainTimeout, got.Nodes, got.NATSListen)
	}
	if n.Server() == nil || n.Conn() == nil || n.JetStream() == nil || n.Registry() == nil || n.Metrics() == nil {
		t.Fatal("an accessor of the embedded node returned nil")
	}
	c, nc := nodetest.Client(t, n.URL())
	putGet(t, c, "orders", "a", "1")

	// A namespace applied to the registry is served live.
	ns := strongKV("users")
	reg, cluster := n.Registry(), namespaces.Cluster{Nodes: 1}
	plan, err := namespaces.PlanApply(ctx, reg, cluster, ns)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := namespaces.Apply(ctx, reg, cluster, ns, plan.Revision, "test"); err != nil {
		t.Fatal(err)
	}
	for deadline := time.Now().Add(10 * time.Second); ; time.Sleep(5 * time.Millisecond) {
		_, err := c.KeyValue("users").Get(ctx, []byte("nobody"))
		if errors.Is(err, client.ErrNotFound) {
			break // served, no such record
		}
		if time.Now().After(deadline) {
			t.Fatalf("users not served after apply: get = %v", err)
		}
	}
	putGet(t, c, "users", "ada", "lovelace")
	var names []string
	for _, s := range n.Served() {
		names = append(names, s.Name)
	}
	if strings.Join(names, ",") != "orders,users" {
		t.Fatalf("served %v, want orders,users", names)
	}

	addr := strings.TrimPrefix(n.URL(), "nats://")
	if err := n.Close(ctx); err != nil {
		t.Fatalf("close: %v", err)
	}
	closed = true
	if err := n.Close(ctx); err != nil {
		t.Fatalf("second close: %v", err)
	}
	l, err := net.Listen("tcp", addr)
	if err != nil {
		t.Fatalf("the NATS port %s is still held after Close: %v", addr, err)
	}
	l.Close()
	// The client's connection is the test's own: close it first, then
	// give exiting goroutines a moment to finish.
	nc.Close()
	var left []string
	for deadline := time.Now().Add(5 * time.Second); time.Now().Before(deadline); time.Sleep(10 * time.Millisecond) {
		if left = prismGoroutines(); len(left) == 0 {
			break
		}
	}
	if len(left) > 0 {
		t.Fatalf("%d Prism goroutines left after Close, e.g.:\n%s", len(left), left[0])
	}

	// The data outlives the node: a new one on the same directory serves it.
	n2 := startNode(t, node.Config{DataDir: dir}, node.Seed{})
	rec, err := connect(t, n2).KeyValue("users").Get(ctx, []byte("ada"))
	if err != nil || len(rec.Items) != 1 || string(rec.Items[0].Value) != "lovelace" {
		t.Fatalf("after restart: get users/ada = %+v, %v", rec, err)
	}
}

// A node on a connection it was given serves on it and leaves it open.
func TestNodeOnGivenConnection(t *testing.T) {
	ctx := context.Background()
	srv := natstest.Server(t)
	nc := natstest.Connect(t, srv)
	n := startNode(t, node.Config{Conn: nc}, node.Seed{Namespaces: []namespaces.Namespace{strongKV("orders")}, By: "test"})
	if n.Server() != nil {
		t.Error("a node on a given connection embeds a server")
	}
	if n.Conn() != nc {
		t.Error("Conn is not the connection given")
	}
	c, err := client.New(natstest.Connect(t, srv), client.WithTimeout(10*time.Second))
	if err != nil {
		t.Fatal(err)
	}
	putGet(t, c, "orders", "a", "1")
	if err := n.Close(ctx); err != nil {
		t.Fatal(err)
	}
	if nc.IsClosed() {
		t.Fatal("Close closed the connection the node was given")
	}
}

// Close reports a drain that outlasts the drain timeout, every time it is
// called.
func TestNodeCloseReportsDrainTimeout(t *testing.T) {
	n, err := node.Start(context.Background(), node.Config{DataDir: t.TempDir(), DrainTimeout: time.Nanosecond}, nil, node.Seed{Namespaces: []namespaces.Namespace{strongKV("orders")}, By: "test"})
	if err != nil {
		t.Fatal(err)
	}
	err = n.Close(context.Background())
	if !errors.Is(err, node.ErrDrainTimeout) {
		t.Fatalf("close with a 1ns drain timeout = %v, want ErrDrainTimeout", err)
	}
	if again := n.Close(context.Background()); again != err {
		t.Fatalf("second close = %v, want the first result %v", again, err)
	}
}

// /healthz, /readyz and /metrics are served on HTTPListen while the node
// runs, and the listener is closed with it.
func TestNodeHTTP(t *testing.T) {
	ctx := context.Background()
	n := startNode(t, node.Config{HTTPListen: "127.0.0.1:0"}, node.Seed{Namespaces: []namespaces.Namespace{strongKV("orders")}, By: "test"})
	base := (&url.URL{Scheme: "http", Host: n.HTTPAddr()}).String()
	get := func(path string) (int, string) {
		t.Helper()
		resp, err := http.Get(base + path)
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		b, _ := io.ReadAll(resp.Body)
		return resp.StatusCode, string(b)
	}
	if code, body := get("/healthz"); code != http.StatusOK || body != "ok\n" {
		t.Errorf("/healthz = %d %q", code, body)
	}
	if code, body := get("/readyz"); code != http.StatusOK || !strings.HasPrefix(body, "ready\nauth: off") {
		t.Errorf("/readyz = %d %q", code, body)
	}
	if code, body := get("/metrics"); code != http.StatusOK || !strings.Contains(body, `prism_namespaces{state="serving"} 1`) {
		t.Errorf("/metrics = %d, no prism_namespaces serving 1:\n%s", code, body)
	}
	if err := n.Close(ctx); err != nil {
		t.Fatal(err)
	}
	if _, err := http.Get(base + "/healthz"); err == nil {
		t.Error("/healthz still answers after Close")
	}
}

func TestConfigValidate(t *testing.T) {
	tests := []struct {
		name    string
		cfg     node.Config
		wantErr string
	}{
		{"no data directory", node.Config{}, "--data-dir"},
		{"negative nodes", node.Config{DataDir: "d", NATSURL: "nats://x:4222", Nodes: -1}, "--nodes -1"},
		{"unknown role", node.Config{DataDir: "d", Role: "leader"}, `--role "leader": want all, gateway or projector`},
		{"gateway role", node.Config{DataDir: "d", Role: node.RoleGateway}, ""},
		{"negative max in flight", node.Config{DataDir: "d", MaxInFlight: -1}, "--max-in-flight -1: want at least 1"},
		{"negative max in-flight bytes", node.Config{DataDir: "d", MaxInFlightBytes: -1}, "--max-in-flight-bytes -1: want at least 1"},
		{"negative max value", node.Config{DataDir: "d", MaxValueBytes: -1}, "--max-value-bytes -1: want at least 524288"},
		{"max value below the inline limit", node.Config{DataDir: "d", MaxValueBytes: 512<<10 - 1}, "--max-value-bytes 524287: want at least 524288"},
		{"max value at the inline limit", node.Config{DataDir: "d", MaxValueBytes: 512 << 10}, ""},
		{"small caps", node.Config{DataDir: "d", MaxInFlight: 1, MaxInFlightBytes: 1}, ""},
		{"negative compaction pace", node.Config{DataDir: "d", CompactRate: -1}, "--compact-rate -1: want a number of messages a second"},
		{"compaction pace not a number", node.Config{DataDir: "d", CompactRate: math.NaN()}, "--compact-rate NaN"},
		{"compaction pace", node.Config{DataDir: "d", CompactRate: 500}, ""},
		{"defaults", node.Config{DataDir: "d"}, ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			err := tt.cfg.Validate()
			if tt.wantErr == "" {
				if err != nil {
					t.Fatal(err)
				}
				return
			}
			if err == nil || !strings.Contains(err.Error(), tt.wantErr) {
				t.Fatalf("validate = %v, want %q", err, tt.wantErr)
			}
		})
	}
	// Start refuses it the same way, before touching the disk.
	if _, err := node.Start(context.Background(), node.Config{}, nil, node.Seed{}); err == nil || !strings.Contains(err.Error(), "--data-dir") {
		t.Fatalf("start without a data directory = %v", err)
	}
}
