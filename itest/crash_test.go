package itest

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"net"
	"os/exec"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/prism-data/prism/client"
)

// ackedWrites records the writes Prism acknowledged: id -> value, and the
// highest sequence.
type ackedWrites struct {
	mu     sync.Mutex
	values map[string][]byte
	maxSeq uint64
}

func (a *ackedWrites) add(id string, value []byte, seq uint64) {
	a.mu.Lock()
	defer a.mu.Unlock()
	a.values[id] = value
	if seq > a.maxSeq {
		a.maxSeq = seq
	}
}

// writeUntil runs writers that put distinct ids until stop is closed,
// recording every acknowledged write. Errors after stop are expected (the
// process is going away) and ignored.
func writeUntil(t *testing.T, kv *client.KeyValue, writers int, stop <-chan struct{}, acked *ackedWrites) *sync.WaitGroup {
	// In-flight calls end when stop closes: they are not acknowledged.
	ctx, cancel := context.WithCancel(testCtx(t))
	go func() { <-stop; cancel() }()
	var wg sync.WaitGroup
	var n atomic.Int64
	for w := 0; w < writers; w++ {
		wg.Add(1)
		go func(w int) {
			defer wg.Done()
			for i := 0; ; i++ {
				select {
				case <-stop:
					return
				default:
				}
				id := fmt.Sprintf("w%02d-%06d", w, i)
				val := bytes.Repeat([]byte{byte('a' + w%26)}, 64)
				seq, err := kv.Put(ctx, []byte(id), []client.Item{{Key: []byte("v"), Value: val}})
				if err != nil {
					// In flight when the process died: not acknowledged.
					time.Sleep(10 * time.Millisecond)
					continue
				}
				n.Add(1)
				acked.add(id, val, seq)
			}
		}(w)
	}
	return &wg
}

// verifyAcked asserts every acknowledged write is readable with its value.
func verifyAcked(t *testing.T, kv *client.KeyValue, acked *ackedWrites) {
	t.Helper()
	ctx := testCtx(t)
	if len(acked.values) == 0 {
		t.Fatal("no write was acknowledged; the test proves nothing")
	}
	for id, want := range acked.values {
		rec, err := kv.Get(ctx, []byte(id), client.MinSeq(acked.maxSeq))
		if err != nil {
			t.Fatalf("acknowledged write %s lost: %v", id, err)
		}
		if len(rec.Items) != 1 || !bytes.Equal(rec.Items[0].Value, want) {
			t.Fatalf("acknowledged write %s: got %+v", id, rec.Items)
		}
	}
	t.Logf("%d acknowledged writes all present (max seq %d)", len(acked.values), acked.maxSeq)
}

func TestSIGTERMKeepsAckedWrites(t *testing.T) {
	p := startPrism(t, t.TempDir(), 0)
	_, c := p.connect(t)
	kv := c.KeyValue("demo")
	acked := &ackedWrites{values: map[string][]byte{}}
	stop := make(chan struct{})
	wg := writeUntil(t, kv, 8, stop, acked)
	time.Sleep(700 * time.Millisecond)
	p.stop() // SIGTERM with writes in flight: a clean, draining exit
	close(stop)
	wg.Wait()
	if !strings.Contains(p.Output(), "shutting down") {
		t.Errorf("no drain message in output:\n%s", p.Output())
	}
	p.restart()
	verifyAcked(t, kv, acked)
}

func TestKill9KeepsAckedWrites(t *testing.T) {
	p := startPrism(t, t.TempDir(), 0)
	_, c := p.connect(t)
	kv := c.KeyValue("demo")
	acked := &ackedWrites{values: map[string][]byte{}}
	stop := make(chan struct{})
	wg := writeUntil(t, kv, 8, stop, acked)
	time.Sleep(700 * time.Millisecond)
	p.kill() // SIGKILL of the whole process, writes in flight
	close(stop)
	wg.Wait()
	p.restart()
	verifyAcked(t, kv, acked)
}

func TestPortTakenNamesTheFlag(t *testing.T) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	addr := l.Addr().String()
	out, err := exec.Command(prismBin, "serve", "--data-dir", t.TempDir(), "--nats-listen", addr).CombinedOutput()
	var exit *exec.ExitError
	if !errors.As(err, &exit) || exit.ExitCode() == 0 {
		t.Fatalf("prism serve on a taken port: err %v, want a non-zero exit\n%s", err, out)
	}
	for _, want := range []string{addr, "--nats-listen", "--nats-url"} {
		if !strings.Contains(string(out), want) {
			t.Errorf("error output lacks %q:\n%s", want, out)
		}
	}
}
