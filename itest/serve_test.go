package itest

import (
	"bytes"
	"fmt"
	"io"
	"net/http"
	"strings"
	"testing"

	"github.com/prism-data/prism/client"
	"github.com/prism-data/prism/itest/natstest"
)

// TestExternalNATS runs prism against a NATS server it did not start
// (--nats-url), restarts it, and reads back what it wrote.
func TestExternalNATS(t *testing.T) {
	ns := natstest.Server(t)

	dataDir := t.TempDir()
	p := startPrism(t, dataDir, 0, "--nats-url", ns.ClientURL())
	if !strings.Contains(p.Output(), ns.ClientURL()) {
		t.Errorf("startup output does not name the NATS server %s:\n%s", ns.ClientURL(), p.Output())
	}
	_, c := p.connect(t)
	kv := c.KeyValue("demo")
	ctx := testCtx(t)
	seq, err := kv.Put(ctx, []byte("ext"), []client.Item{item("k", "v")})
	if err != nil {
		t.Fatal(err)
	}
	p.stop()
	p.restart()
	rec, err := kv.Get(ctx, []byte("ext"), client.MinSeq(seq))
	if err != nil || len(rec.Items) != 1 || string(rec.Items[0].Value) != "v" || rec.Revision != seq {
		t.Fatalf("after restart on the external server: %+v, %v", rec, err)
	}
}

// TestMetricsAndSyncAlways serves /metrics and runs the embedded server with
// fsync on every write.
func TestMetricsAndSyncAlways(t *testing.T) {
	metricsAddr := fmt.Sprintf("127.0.0.1:%d", freePort(t))
	p := startPrism(t, t.TempDir(), 0, "--metrics-listen", metricsAddr, "--sync-always")
	_, c := p.connect(t)
	kv := c.KeyValue("demo")
	ctx := testCtx(t)
	var last uint64
	for i := 0; i < 5; i++ {
		seq, err := kv.Put(ctx, []byte(fmt.Sprint("m", i)), []client.Item{item("k", "v")})
		if err != nil {
			t.Fatal(err)
		}
		last = seq
	}
	resp, err := http.Get("http://" + metricsAddr + "/metrics")
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	body, _ := io.ReadAll(resp.Body)
	for _, want := range []string{
		fmt.Sprintf(`prism_projector_applied_seq{namespace="demo",target="sqlite"} %d`, last),
		`prism_gateway_requests_total{code="OK",namespace="demo",op="write.put"} 5`,
		"go_goroutines",
	} {
		if !bytes.Contains(body, []byte(want)) {
			t.Errorf("/metrics lacks %q", want)
		}
	}
	if t.Failed() {
		t.Logf("/metrics:\n%s", body)
	}
}
