package main

import (
	"context"
	"io"
	"log/slog"
	"testing"
	"time"

	"github.com/nats-io/nats.go"

	"github.com/prism-data/prism/client"
	"github.com/prism-data/prism/gateway"
	"github.com/prism-data/prism/node"
)

// startTestNode starts a node on an embedded server on a free port with
// cfg's other settings and an empty registry, and returns it with an admin
// client and a Prism client; Cleanup closes them.
func startTestNode(t *testing.T, cfg node.Config) (*node.Node, *gateway.AdminClient, *client.Client) {
	t.Helper()
	cfg.NATSListen, cfg.DrainTimeout = "127.0.0.1:0", 10*time.Second
	ctx := context.Background()
	n, err := node.Start(ctx, cfg, slog.New(slog.NewTextHandler(io.Discard, nil)), node.Seed{})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = n.Close(ctx) })
	nc, err := nats.Connect(n.URL())
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(nc.Close)
	c, err := client.New(nc, client.WithTimeout(10*time.Second))
	if err != nil {
		t.Fatal(err)
	}
	return n, gateway.NewAdminClient(nc, 5*time.Second), c
}

// waitServing waits until the node serves namespace name at revision.
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
