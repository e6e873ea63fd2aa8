package gateway_test

import (
	"context"
	"fmt"
	"net"
	"net/url"
	"testing"
	"time"

	"github.com/nats-io/nats-server/v2/server"
	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/prism-data/prism/namespaces"
	"github.com/prism-data/prism/subjects"
)

// startCluster starts a three-node JetStream cluster in process and
// returns a JetStream handle on it once it has a meta leader.
func startCluster(t *testing.T) jetstream.JetStream {
	t.Helper()
	ports := make([]int, 3)
	for i := range ports {
		l, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			t.Fatal(err)
		}
		ports[i] = l.Addr().(*net.TCPAddr).Port
		l.Close()
	}
	var routes []*url.URL
	for _, p := range ports {
		routes = append(routes, &url.URL{Scheme: "nats", Host: fmt.Sprintf("127.0.0.1:%d", p)})
	}
	var urls []string
	for i := range ports {
		s, err := server.NewServer(&server.Options{
			ServerName: fmt.Sprintf("n%d", i), Host: "127.0.0.1", Port: -1,
			JetStream: true, StoreDir: t.TempDir(), NoLog: true, NoSigs: true,
			Cluster: server.ClusterOpts{Name: "prism-test", Host: "127.0.0.1", Port: ports[i]},
			Routes:  routes,
		})
		if err != nil {
			t.Fatal(err)
		}
		go s.Start()
		t.Cleanup(func() { s.Shutdown(); s.WaitForShutdown() })
		if !s.ReadyForConnections(10 * time.Second) {
			t.Fatal("cluster node not ready")
		}
		urls = append(urls, s.ClientURL())
	}
	nc, err := nats.Connect(urls[0])
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(nc.Close)
	js, err := jetstream.New(nc)
	if err != nil {
		t.Fatal(err)
	}
	deadline := time.Now().Add(30 * time.Second)
	for {
		ctx, cancel := context.WithTimeout(context.Background(), time.Second)
		_, err := js.AccountInfo(ctx)
		cancel()
		if err == nil {
			return js
		}
		if time.Now().After(deadline) {
			t.Fatalf("cluster has no JetStream meta leader: %v", err)
		}
		time.Sleep(100 * time.Millisecond)
	}
}

// On a three-node cluster, a replicated namespace's stream and the
// dead-letter stream get three replicas, and the registry is raised to
// three when it was made with one.
func TestReplicatedOnCluster(t *testing.T) {
	js := startCluster(t)
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()

	if _, _, err := namespaces.OpenRegistry(ctx, js, 1); err != nil {
		t.Fatal(err)
	}
	reg, created, err := namespaces.OpenRegistry(ctx, js, 3)
	if err != nil || created {
		t.Fatalf("reopen with 3 replicas: created %v, %v", created, err)
	}
	if s, err := js.Stream(ctx, "KV_"+subjects.RegistryBucket); err != nil || s.CachedInfo().Config.Replicas != 3 {
		t.Fatalf("registry stream replicas after raise: %v", err)
	}

	cluster := namespaces.Cluster{Nodes: 3}
	ns := namespaces.Namespace{Name: "ledger", Abstraction: namespaces.AbstractionKeyValue, Backend: "postgres", Needs: namespaces.Needs{Durability: namespaces.Replicated}}
	res, err := namespaces.Apply(ctx, reg, cluster, ns, 0, "test")
	if err != nil {
		t.Fatal(err)
	}
	p, err := namespaces.Derive(ns, cluster)
	if err != nil {
		t.Fatal(err)
	}
	if err := namespaces.ApplyStreams(ctx, js, ns, p); err != nil {
		t.Fatal(err)
	}
	for _, name := range []string{subjects.Stream("ledger"), subjects.DeadLetterStream} {
		s, err := js.Stream(ctx, name)
		if err != nil {
			t.Fatal(err)
		}
		if got := s.CachedInfo().Config.Replicas; got != 3 {
			t.Errorf("stream %s: %d replicas, want 3", name, got)
		}
	}
	// A best-effort namespace applied afterwards does not lower the
	// shared dead-letter stream.
	small := namespaces.Namespace{Name: "cache", Abstraction: namespaces.AbstractionKeyValue, Backend: "sqlite"}
	sp, err := namespaces.Derive(small, cluster)
	if err != nil {
		t.Fatal(err)
	}
	if err := namespaces.ApplyStreams(ctx, js, small, sp); err != nil {
		t.Fatal(err)
	}
	if s, _ := js.Stream(ctx, subjects.DeadLetterStream); s.CachedInfo().Config.Replicas != 3 {
		t.Errorf("dead-letter stream lowered to %d replicas", s.CachedInfo().Config.Replicas)
	}
	if s, _ := js.Stream(ctx, subjects.Stream("cache")); s.CachedInfo().Config.Replicas != 1 {
		t.Errorf("best-effort stream: %d replicas, want 1", s.CachedInfo().Config.Replicas)
	}
	if res.Revision == 0 {
		t.Error("apply stored nothing")
	}

	// Raised live to replicated: the stream becomes three copies in place,
	// keeps its events and takes writes at once.
	if _, err := js.Publish(ctx, subjects.KeyValueEvent("cache", []byte("a")), []byte("before")); err != nil {
		t.Fatal(err)
	}
	small.Needs.Durability = namespaces.Replicated
	if sp, err = namespaces.Derive(small, cluster); err != nil {
		t.Fatal(err)
	}
	if err := namespaces.ApplyStreams(ctx, js, small, sp); err != nil {
		t.Fatal(err)
	}
	pctx, pcancel := context.WithTimeout(ctx, 2*time.Second)
	defer pcancel()
	if _, err := js.Publish(pctx, subjects.KeyValueEvent("cache", []byte("b")), []byte("after")); err != nil {
		t.Fatalf("write right after raising replicas: %v", err)
	}
	s, err := js.Stream(ctx, subjects.Stream("cache"))
	if err != nil {
		t.Fatal(err)
	}
	if info := s.CachedInfo(); info.Config.Replicas != 3 || info.State.Msgs != 2 {
		t.Errorf("after raising: %d replicas, %d messages; want 3 and 2", info.Config.Replicas, info.State.Msgs)
	}
}
