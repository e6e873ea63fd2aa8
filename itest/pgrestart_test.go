package itest

import (
	"errors"
	"fmt"
	"io"
	"net/http"
	"os"
	"os/exec"
	"regexp"
	"strconv"
	"testing"
	"time"

	"github.com/prism-data/prism/backends/postgres/pgtest"
	"github.com/prism-data/prism/client"
)

// TestPostgresRestartUnderLoad restarts the machine's PostgreSQL server
// while prism projects a stream of writes into it. Writes keep being
// acknowledged (they are on the stream); the projector retries with backoff
// while PostgreSQL is down and catches up; every acknowledged write ends up
// in PostgreSQL.
//
// It restarts a shared server, so it runs only when asked:
// PRISM_TEST_PG_RESTART=1 (.ci/run runs it alone, after the other tests).
func TestPostgresRestartUnderLoad(t *testing.T) {
	if os.Getenv("PRISM_TEST_PG_RESTART") != "1" {
		t.Skip("restarts the machine's PostgreSQL; set PRISM_TEST_PG_RESTART=1 to run it (as .ci/run does)")
	}
	dsn := pgtest.DSN(t)
	ns := pgtest.Namespace(t, "restart-")
	yaml := fmt.Sprintf("name: %s\nabstraction: keyvalue\nbackend: postgres\nconsistency: eventual\n", ns)
	cfg := configDir(t, yaml)
	metrics := fmt.Sprintf("127.0.0.1:%d", freePort(t))
	p := startPrism(t, t.TempDir(), 0, "--config", cfg, "--postgres-dsn", dsn, "--metrics-listen", metrics)
	_, c := p.connect(t)
	kv := c.KeyValue(ns)

	acked := &ackedWrites{values: map[string][]byte{}}
	stop := make(chan struct{})
	wg := writeUntil(t, kv, 4, stop, acked)
	time.Sleep(500 * time.Millisecond)
	restartPostgres(t)
	time.Sleep(500 * time.Millisecond)
	close(stop)
	wg.Wait()

	// Catching up may take a few backoff rounds: wait for the projection.
	deadline := time.Now().Add(90 * time.Second)
	for {
		_, err := kv.Get(testCtx(t), []byte("probe"), client.MinSeq(acked.maxSeq))
		if errors.Is(err, client.ErrNotFound) {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("projection did not reach seq %d: %v", acked.maxSeq, err)
		}
		time.Sleep(500 * time.Millisecond)
	}
	verifyAcked(t, kv, acked)
	if n := metricValue(t, metrics, "prism_projector_apply_errors_total"); n == 0 {
		t.Errorf("no apply error was counted: the restart did not hit the projector, the test proves little")
	} else {
		t.Logf("projector retried %v failed applies while PostgreSQL restarted", n)
	}
}

// restartPostgres restarts the machine's PostgreSQL cluster and waits until
// it answers again.
func restartPostgres(t *testing.T) {
	t.Helper()
	versions, err := os.ReadDir("/etc/postgresql")
	if err != nil || len(versions) == 0 {
		t.Fatalf("no PostgreSQL cluster under /etc/postgresql: %v", err)
	}
	out, err := exec.Command("pg_ctlcluster", "--skip-systemctl-redirect", versions[0].Name(), "main", "restart").CombinedOutput()
	if err != nil {
		t.Fatalf("restart PostgreSQL: %v\n%s", err, out)
	}
	for i := 0; i < 60; i++ {
		if exec.Command("pg_isready", "-q", "-h", "127.0.0.1", "-p", "5432").Run() == nil {
			return
		}
		time.Sleep(500 * time.Millisecond)
	}
	t.Fatal("PostgreSQL did not come back within 30s")
}

// metricValue sums the samples of a Prometheus metric at addr.
func metricValue(t *testing.T, addr, name string) float64 {
	t.Helper()
	resp, err := http.Get("http://" + addr + "/metrics")
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	body, _ := io.ReadAll(resp.Body)
	re := regexp.MustCompile(`(?m)^` + regexp.QuoteMeta(name) + `(?:\{[^}]*\})? (\S+)$`)
	matches := re.FindAllSubmatch(body, -1)
	if len(matches) == 0 {
		t.Fatalf("no metric %s at %s", name, addr)
	}
	var sum float64
	for _, m := range matches {
		v, err := strconv.ParseFloat(string(m[1]), 64)
		if err != nil {
			t.Fatalf("metric %s: %v", name, err)
		}
		sum += v
	}
	return sum
}
