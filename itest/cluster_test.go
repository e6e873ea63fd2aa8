package itest

import (
	"context"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/prism-data/prism/backends/postgres/pgtest"
	"github.com/prism-data/prism/client"
	"github.com/prism-data/prism/subjects"
)

// natsCluster is three nats-server processes built from go.mod, routed
// into one cluster with JetStream: the topology of docker-compose.yml
// without Docker.
type natsCluster struct {
	t     testing.TB
	bin   string
	nodes []*natsNode
}

type natsNode struct {
	name, conf, log string
	port            int
	cmd             *exec.Cmd
}

func startNATSCluster(t testing.TB) *natsCluster {
	t.Helper()
	c := &natsCluster{t: t, bin: natsServerBin(t)}
	ports, cports := make([]int, 3), make([]int, 3)
	for i := range 3 {
		ports[i], cports[i] = freePort(t), freePort(t)
	}
	var routes []string
	for _, p := range cports {
		routes = append(routes, fmt.Sprintf("%q", fmt.Sprintf("nats://127.0.0.1:%d", p)))
	}
	for i := range 3 {
		dir := t.TempDir()
		n := &natsNode{name: fmt.Sprintf("n%d", i+1), conf: filepath.Join(dir, "nats.conf"), log: filepath.Join(dir, "nats.log"), port: ports[i]}
		conf := fmt.Sprintf(`server_name: %q
listen: "127.0.0.1:%d"
jetstream { store_dir: %q }
cluster {
  name: "prism"
  listen: "127.0.0.1:%d"
  routes: [%s]
}
`, n.name, n.port, filepath.Join(dir, "js"), cports[i], strings.Join(routes, ", "))
		if err := os.WriteFile(n.conf, []byte(conf), 0o600); err != nil {
			t.Fatal(err)
		}
		c.nodes = append(c.nodes, n)
	}
	for i := range c.nodes {
		c.start(i)
	}
	t.Cleanup(func() {
		for i := range c.nodes {
			c.kill(i)
		}
		if t.Failed() {
			for _, n := range c.nodes {
				if b, err := os.ReadFile(n.log); err == nil {
					t.Logf("%s log (tail):\n%s", n.name, tail(string(b), 40))
				}
			}
		}
	})
	c.waitJetStream()
	return c
}

func (c *natsCluster) start(i int) {
	c.t.Helper()
	n := c.nodes[i]
	n.cmd = exec.Command(c.bin, "-c", n.conf, "-l", n.log)
	if err := n.cmd.Start(); err != nil {
		c.t.Fatal(err)
	}
	waitListening(c.t, n.port)
}

// kill stops node i with SIGKILL.
func (c *natsCluster) kill(i int) {
	if n := c.nodes[i]; n.cmd != nil && n.cmd.Process != nil {
		_ = n.cmd.Process.Kill()
		_ = n.cmd.Wait()
		n.cmd = nil
	}
}

// urls are the client URLs of every node, as one comma-separated string.
func (c *natsCluster) urls() string {
	var u []string
	for _, n := range c.nodes {
		u = append(u, fmt.Sprintf("nats://127.0.0.1:%d", n.port))
	}
	return strings.Join(u, ",")
}

// waitJetStream waits until the cluster has a JetStream meta leader.
func (c *natsCluster) waitJetStream() {
	c.t.Helper()
	nc, err := nats.Connect(c.urls())
	if err != nil {
		c.t.Fatal(err)
	}
	defer nc.Close()
	js, _ := jetstream.New(nc)
	deadline := time.Now().Add(60 * time.Second)
	for {
		ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
		_, err := js.AccountInfo(ctx)
		cancel()
		if err == nil {
			return
		}
		if time.Now().After(deadline) {
			c.t.Fatalf("the NATS cluster has no JetStream leader after 60s: %v", err)
		}
		time.Sleep(200 * time.Millisecond)
	}
}

func tail(s string, lines int) string {
	l := strings.Split(strings.TrimRight(s, "\n"), "\n")
	return strings.Join(l[max(0, len(l)-lines):], "\n")
}

// TestClusterSurvivesKills runs the stack of docker-compose.yml without
// Docker: three nats-server processes in one cluster, two prism serve
// processes on it, a read-your-writes KeyValue namespace on PostgreSQL
// declared durability: replicated (an R3 stream). Under eight writers it
// kills with SIGKILL the Prism process that projects, then a NATS node,
// brings both back, and checks that every acknowledged write is stored
// once, at the sequence it was acknowledged with, that the namespace is
// not stuck (a new write is read back through either process), and
// reports the longest time without an acknowledged write.
func TestClusterSurvivesKills(t *testing.T) {
	cl := startNATSCluster(t)
	dsn := pgtest.DSN(t)
	ns := pgtest.Namespace(t, "cluster-")
	cfg := configDir(t, fmt.Sprintf("name: %s\nabstraction: keyvalue\nbackend: postgres\nconsistency: read-your-writes\nneeds:\n  durability: replicated\n", ns))
	args := []string{"--nats-url", cl.urls(), "--nodes", "3", "--config", cfg, "--postgres-dsn", dsn, "--log-level", "info"}
	first := startPrism(t, t.TempDir(), 0, args...)
	second := startPrism(t, t.TempDir(), 0, args...)
	waitOutput(t, second, "target on standby")

	nc, err := nats.Connect(cl.urls(), nats.MaxReconnects(-1), nats.ReconnectWait(50*time.Millisecond))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(nc.Close)
	js, _ := jetstream.New(nc)
	info, err := js.Stream(testCtx(t), subjects.Stream(ns))
	if err != nil {
		t.Fatal(err)
	}
	if r := info.CachedInfo().Config.Replicas; r != 3 {
		t.Fatalf("stream %s has %d replicas, want 3 (durability: replicated)", subjects.Stream(ns), r)
	}
	c, err := client.New(nc, client.WithTimeout(2*time.Second), client.WithRetries(8, 50*time.Millisecond))
	if err != nil {
		t.Fatal(err)
	}
	kv := c.KeyValue(ns)

	stop := make(chan struct{})
	acked, wg := writeTimedUntil(kv, 8, stop)
	begin := time.Now()
	time.Sleep(time.Second)
	first.kill()
	waitOutput(t, second, "took over a standby target")
	time.Sleep(time.Second)
	natsKilled := time.Now()
	cl.kill(1)
	time.Sleep(3 * time.Second)
	cl.start(1)
	natsBack := time.Now()
	first.restart()
	time.Sleep(2 * time.Second)
	close(stop)
	wg.Wait()
	end := time.Now()
	t.Logf("%d writes acknowledged in %v; longest time without an acknowledged write: %v around the Prism kill and takeover, %v around the NATS node's kill and return, %v after",
		len(acked.ids), end.Sub(begin).Round(time.Millisecond), acked.longestGap(begin, natsKilled).Round(time.Millisecond),
		acked.longestGap(natsKilled, natsBack).Round(time.Millisecond), acked.longestGap(natsBack, end).Round(time.Millisecond))
	if len(acked.ids) == 0 {
		t.Fatal("no write was acknowledged")
	}

	// Not stuck: a new write is read back, with min_seq, through either
	// process (both serve reads from PostgreSQL).
	vc, err := client.New(nc, client.WithTimeout(30*time.Second))
	if err != nil {
		t.Fatal(err)
	}
	vkv := vc.KeyValue(ns)
	ctx := testCtx(t)
	for i := range 20 {
		id := fmt.Appendf(nil, "after-%d", i)
		seq, err := vkv.Put(ctx, id, []client.Item{item("v", "x")})
		if err != nil {
			t.Fatalf("put after the kills: %v", err)
		}
		if rec, err := vkv.Get(ctx, id, client.MinSeq(seq)); err != nil || rec.Revision != seq {
			t.Fatalf("get after the kills: %+v, %v", rec, err)
		}
	}
	verifyTimedAcks(t, vkv, acked)
}
