// Package itest holds Prism's end-to-end tests: they build the prism binary,
// run `prism serve` as a separate process on an embedded NATS server and
// SQLite, and talk to it over NATS like an application would.
package itest

import (
	"bufio"
	"context"
	"fmt"
	"io"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/nats-io/nats.go"

	"github.com/prism-data/prism/client"
)

var prismBin string

func TestMain(m *testing.M) {
	if spec := os.Getenv(envNoisyLoad); spec != "" { // a load process of BenchmarkNoisyNeighbour
		os.Exit(runNoisyLoad(spec))
	}
	dir, err := os.MkdirTemp("", "prism-itest-")
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(1)
	}
	prismBin = filepath.Join(dir, "prism")
	build := exec.Command("go", "build", "-o", prismBin, "../cmd/prism")
	build.Stdout, build.Stderr = os.Stdout, os.Stderr
	if err := build.Run(); err != nil {
		fmt.Fprintln(os.Stderr, "build prism:", err)
		os.Exit(1)
	}
	code := m.Run()
	os.RemoveAll(dir)
	os.Exit(code)
}

// freePort returns a TCP port nobody listens on right now.
func freePort(t testing.TB) int {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	return l.Addr().(*net.TCPAddr).Port
}

// prismProc is a running `prism serve`.
type prismProc struct {
	t       testing.TB
	cmd     *exec.Cmd
	url     string
	dataDir string
	port    int
	args    []string
	mu      sync.Mutex
	output  strings.Builder
	done    chan struct{}
	waitErr error
}

// startPrism runs `prism serve` on dataDir and a free port (or port if not
// zero) and waits until it serves. With --nats-url in extra, p.url is that
// server.
func startPrism(t testing.TB, dataDir string, port int, extra ...string) *prismProc {
	t.Helper()
	p := newPrism(t, dataDir, port, extra...)
	p.start()
	return p
}

// newPrism is the prismProc startPrism starts, not started yet; Cleanup
// kills it.
func newPrism(t testing.TB, dataDir string, port int, extra ...string) *prismProc {
	t.Helper()
	if port == 0 {
		port = freePort(t)
	}
	p := &prismProc{t: t, dataDir: dataDir, port: port, url: fmt.Sprintf("nats://127.0.0.1:%d", port), args: extra}
	for i, a := range extra {
		if a == "--nats-url" && i+1 < len(extra) {
			p.url = extra[i+1] // clients connect where prism does
		}
	}
	t.Cleanup(func() { p.kill() })
	return p
}

func (p *prismProc) start() {
	p.t.Helper()
	p.waitServing(p.begin())
}

// begin starts the process and returns a channel closed once it serves
// (waitServing waits on it): processes begun one after the other start
// at the same instant.
func (p *prismProc) begin() <-chan struct{} {
	t := p.t
	t.Helper()
	args := append([]string{"serve", "--data-dir", p.dataDir, "--nats-listen", fmt.Sprintf("127.0.0.1:%d", p.port), "--log-level", "warn"}, p.args...)
	cmd := exec.Command(prismBin, args...)
	stdout, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	cmd.Stderr = &lockedWriter{p: p}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	p.cmd = cmd
	p.done = make(chan struct{})
	ready := make(chan struct{})
	go func() {
		sc := bufio.NewScanner(stdout)
		signalled := false
		for sc.Scan() {
			line := sc.Text()
			p.mu.Lock()
			p.output.WriteString(line + "\n")
			p.mu.Unlock()
			if !signalled && strings.HasPrefix(line, "Prism is serving") {
				close(ready)
				signalled = true
			}
		}
		io.Copy(io.Discard, stdout)
	}()
	go func() {
		p.waitErr = cmd.Wait()
		close(p.done)
	}()
	return ready
}

// waitServing waits until ready (begin's) is closed, failing the test if
// the process exits or takes more than 60 s.
func (p *prismProc) waitServing(ready <-chan struct{}) {
	t := p.t
	t.Helper()
	select {
	case <-ready:
	case <-p.done:
		t.Fatalf("prism serve exited before serving: %v\n%s", p.waitErr, p.Output())
	case <-time.After(60 * time.Second):
		t.Fatalf("prism serve did not start within 60s\n%s", p.Output())
	}
}

type lockedWriter struct{ p *prismProc }

func (w *lockedWriter) Write(b []byte) (int, error) {
	w.p.mu.Lock()
	defer w.p.mu.Unlock()
	return w.p.output.Write(b)
}

// Output is everything the process printed so far.
func (p *prismProc) Output() string {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.output.String()
}

// stop sends SIGTERM and waits for a clean exit.
func (p *prismProc) stop() {
	p.t.Helper()
	if err := p.cmd.Process.Signal(syscall.SIGTERM); err != nil {
		p.t.Fatal(err)
	}
	select {
	case <-p.done:
	case <-time.After(30 * time.Second):
		p.t.Fatalf("prism did not exit within 30s of SIGTERM\n%s", p.Output())
	}
	if p.waitErr != nil {
		p.t.Fatalf("prism exited with %v after SIGTERM\n%s", p.waitErr, p.Output())
	}
}

// kill sends SIGKILL and waits.
func (p *prismProc) kill() {
	if p.cmd == nil || p.cmd.Process == nil {
		return
	}
	select {
	case <-p.done:
		return
	default:
	}
	_ = p.cmd.Process.Kill()
	<-p.done
}

// restart starts the process again on the same data dir and port.
func (p *prismProc) restart() {
	p.t.Helper()
	p.start()
}

// connect returns a NATS connection and a Prism client for p.
func (p *prismProc) connect(t testing.TB) (*nats.Conn, *client.Client) {
	t.Helper()
	nc, err := nats.Connect(p.url, nats.MaxReconnects(-1), nats.ReconnectWait(100*time.Millisecond))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(nc.Close)
	c, err := client.New(nc, client.WithTimeout(15*time.Second))
	if err != nil {
		t.Fatal(err)
	}
	return nc, c
}

func testCtx(t testing.TB) context.Context {
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	t.Cleanup(cancel)
	return ctx
}
