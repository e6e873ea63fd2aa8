// Package nodetest starts Prism nodes for tests: in process, on an
// embedded NATS server on a free port, closed at cleanup.
package nodetest

import (
	"context"
	"io"
	"log/slog"
	"testing"
	"time"

	"github.com/nats-io/nats.go"

	"github.com/prism-data/prism/client"
	"github.com/prism-data/prism/namespaces"
	"github.com/prism-data/prism/node"
)

// Start starts a node on an embedded server on a free port with cfg's
// other settings (cfg.DataDir is a new temporary directory when empty)
// and an empty registry, and returns it with an admin client and a Prism
// client on a connection of their own; Cleanup closes them all.
func Start(t testing.TB, cfg node.Config) (*node.Node, *namespaces.AdminClient, *client.Client) {
	t.Helper()
	if cfg.DataDir == "" {
		cfg.DataDir = t.TempDir()
	}
	cfg.NATSListen, cfg.DrainTimeout, cfg.Nodes = "127.0.0.1:0", 10*time.Second, 1
	ctx := context.Background()
	n, err := node.Start(ctx, cfg, slog.New(slog.NewTextHandler(io.Discard, nil)), node.Seed{})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = n.Close(ctx) })
	c, nc := Client(t, n.URL())
	return n, namespaces.NewAdminClient(nc, 5*time.Second), c
}

// Client returns a Prism client on a new connection to url, and the
// connection; Cleanup closes it.
func Client(t testing.TB, url string) (*client.Client, *nats.Conn) {
	t.Helper()
	nc, err := nats.Connect(url)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(nc.Close)
	c, err := client.New(nc, client.WithTimeout(10*time.Second))
	if err != nil {
		t.Fatal(err)
	}
	return c, nc
}

// WaitServing waits until namespace name is served at revision: its one
// target running (a liveness bound of 10s).
func WaitServing(t testing.TB, admin *namespaces.AdminClient, name string, revision uint64) {
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
