package itest

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"math/rand/v2"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/nats-io/nats.go"

	"github.com/prism-data/prism/backends/postgres/pgtest"
	"github.com/prism-data/prism/client"
	"github.com/prism-data/prism/itest/natstest"
)

// timedAcks records every acknowledged write: its id, value, sequence and
// when the acknowledgement arrived.
type timedAcks struct {
	mu    sync.Mutex
	ids   map[string]uint64
	times []time.Time
}

func (a *timedAcks) add(id string, seq uint64) {
	a.mu.Lock()
	defer a.mu.Unlock()
	a.ids[id] = seq
	a.times = append(a.times, time.Now())
}

// writeTimedUntil runs writers that put distinct ids, each its own id as
// the value, until stop is closed, recording every acknowledged write in
// the returned timedAcks. A write that fails is not acknowledged and not
// recorded (the client retries it with its token first).
func writeTimedUntil(kv *client.KeyValue, writers int, stop <-chan struct{}) (*timedAcks, *sync.WaitGroup) {
	acked := &timedAcks{ids: map[string]uint64{}}
	var wg sync.WaitGroup
	for w := range writers {
		wg.Go(func() {
			for i := 0; ; i++ {
				select {
				case <-stop:
					return
				default:
				}
				id := fmt.Sprintf("w%d-%06d", w, i)
				if seq, err := kv.Put(context.Background(), []byte(id), []client.Item{{Key: []byte("v"), Value: []byte(id)}}); err == nil {
					acked.add(id, seq)
				}
			}
		})
	}
	return acked, &wg
}

// between counts the acknowledgements that arrived in (from, to).
func (a *timedAcks) between(from, to time.Time) int {
	a.mu.Lock()
	defer a.mu.Unlock()
	n := 0
	for _, at := range a.times {
		if at.After(from) && at.Before(to) {
			n++
		}
	}
	return n
}

// longestGap is the longest time in [from, to] without an
// acknowledgement.
func (a *timedAcks) longestGap(from, to time.Time) time.Duration {
	a.mu.Lock()
	times := slices.Clone(a.times)
	a.mu.Unlock()
	slices.SortFunc(times, func(x, y time.Time) int { return x.Compare(y) })
	var gap time.Duration
	last := from
	for _, at := range times {
		if at.Before(from) || at.After(to) {
			continue
		}
		gap = max(gap, at.Sub(last))
		last = at
	}
	return max(gap, to.Sub(last))
}

// TestStandbyServesWritesAcrossAKill runs two prism serve processes on
// one NATS server with a read-your-writes KeyValue namespace on
// PostgreSQL (a strong write waits for the projection, so it waits for
// the takeover: ADR 022). The
// first projects it; the second opens it on standby (ADR 022): it serves
// writes, and reads too, the backend being shared. Under eight writers
// the first is killed with SIGKILL: the second keeps acknowledging writes
// while it is still on standby (it can take over only once the dead
// process's consumer has been idle for five seconds), then takes over.
// Afterwards every acknowledged write is in PostgreSQL with its value and
// at the sequence it was acknowledged with (stored once), read through
// the survivor.
func TestStandbyServesWritesAcrossAKill(t *testing.T) {
	srv := natstest.Server(t)
	dsn := pgtest.DSN(t)
	ns := pgtest.Namespace(t, "standby-")
	cfg := configDir(t, fmt.Sprintf("name: %s\nabstraction: keyvalue\nbackend: postgres\nconsistency: read-your-writes\n", ns))
	args := func(http string) []string {
		return []string{"--nats-url", srv.ClientURL(), "--config", cfg, "--postgres-dsn", dsn, "--log-level", "info", "--http-listen", http}
	}
	firstHTTP, secondHTTP := fmt.Sprintf("127.0.0.1:%d", freePort(t)), fmt.Sprintf("127.0.0.1:%d", freePort(t))
	first := startPrism(t, t.TempDir(), 0, args(firstHTTP)...)
	second := startPrism(t, t.TempDir(), 0, args(secondHTTP)...)
	waitOutput(t, second, "target on standby")

	nc, err := nats.Connect(srv.ClientURL(), nats.MaxReconnects(-1))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(nc.Close)
	c, err := client.New(nc, client.WithTimeout(time.Second), client.WithRetries(6, 50*time.Millisecond))
	if err != nil {
		t.Fatal(err)
	}
	kv := c.KeyValue(ns)
	// No deadline: each call gets the client's own timeout, and writes
	// its retries, so a request lost with the killed process is retried.
	ctx := context.Background()

	// Both processes answer, the standby from the shared PostgreSQL: no
	// read is handed back, and each process answered some.
	for i := range 100 {
		id := fmt.Appendf(nil, "warm-%03d", i)
		seq, err := kv.Put(ctx, id, []client.Item{item("v", "x")})
		if err != nil {
			t.Fatalf("put %s: %v", id, err)
		}
		if rec, err := kv.Get(ctx, id, client.MinSeq(seq)); err != nil || rec.Revision != seq {
			t.Fatalf("get %s after its put at %d: %+v, %v", id, seq, rec, err)
		}
	}
	for name, addr := range map[string]string{"first": firstHTTP, "second": secondHTTP} {
		m := scrape(t, "http://"+addr)
		if n := sumSeries(m, "prism_gateway_handed_back_total"); n != 0 {
			t.Errorf("%s handed back %v requests, want none", name, n)
		}
		if n := sumSeries(m, `prism_gateway_requests_total{code="OK",namespace="`+ns+`",op="read.get"}`); n == 0 {
			t.Errorf("%s answered no get: %v", name, seriesOf(m, "prism_gateway_requests_total"))
		}
		if n := sumSeries(m, `prism_gateway_requests_total{code="OK",namespace="`+ns+`",op="write.put"}`); n == 0 {
			t.Errorf("%s answered no put", name)
		}
	}

	stop := make(chan struct{})
	acked, wg := writeTimedUntil(kv, 8, stop)
	time.Sleep(time.Second)
	killed := time.Now()
	first.kill()
	waitOutput(t, second, "took over a standby target")
	tookOver := time.Now()
	time.Sleep(time.Second)
	close(stop)
	wg.Wait()
	end := time.Now()

	// The standby cannot take over within five seconds of the dead
	// process's last delivery (projectors.InUseBy), and a request the
	// dead process took ends within the client's one-second timeout: what
	// is acknowledged from 1.5 s to 3 s after the kill, the standby
	// acknowledged on standby.
	from, onStandby := killed.Add(1500*time.Millisecond), killed.Add(3*time.Second)
	if tookOver.Before(onStandby) {
		t.Fatalf("the standby took over %v after the kill, sooner than a dead owner's consumer is free", tookOver.Sub(killed))
	}
	if n := acked.between(from, onStandby); n == 0 {
		t.Fatalf("no write acknowledged 1.5 s to 3 s after the kill: the standby served no write\n%s", second.Output())
	}
	t.Logf("%d writes acknowledged; %d between the kill and the takeover %v later; longest time without an acknowledged write: %v",
		len(acked.ids), acked.between(killed, tookOver), tookOver.Sub(killed).Round(time.Millisecond), acked.longestGap(killed.Add(-time.Second), end).Round(time.Millisecond))

	// Read back with a timeout that leaves the new owner time to apply
	// what the standby acknowledged.
	vc, err := client.New(nc, client.WithTimeout(30*time.Second))
	if err != nil {
		t.Fatal(err)
	}
	verifyTimedAcks(t, vc.KeyValue(ns), acked)
}

// verifyTimedAcks reads every acknowledged write of acked back through kv,
// with eight readers, and fails the test with the first ten that are
// missing, or stored with another value or at another sequence than the
// acknowledgement said.
func verifyTimedAcks(t *testing.T, kv *client.KeyValue, acked *timedAcks) {
	t.Helper()
	ctx := context.Background()
	ids := make(chan string)
	var mu sync.Mutex
	var failures []string
	var readers sync.WaitGroup
	for range 8 {
		readers.Go(func() {
			for id := range ids {
				seq := acked.ids[id]
				rec, err := kv.Get(ctx, []byte(id), client.MinSeq(seq))
				var failure string
				switch {
				case err != nil:
					failure = fmt.Sprintf("acknowledged write %s (seq %d) lost: %v", id, seq, err)
				case rec.Revision != seq || len(rec.Items) != 1 || !bytes.Equal(rec.Items[0].Value, []byte(id)):
					failure = fmt.Sprintf("acknowledged write %s at seq %d: got revision %d items %+v", id, seq, rec.Revision, rec.Items)
				}
				if failure != "" {
					mu.Lock()
					failures = append(failures, failure)
					mu.Unlock()
				}
			}
		})
	}
	for id := range acked.ids {
		ids <- id
	}
	close(ids)
	readers.Wait()
	if len(failures) > 0 {
		t.Fatalf("%d of %d acknowledged writes wrong, e.g.:\n%s", len(failures), len(acked.ids), strings.Join(failures[:min(len(failures), 10)], "\n"))
	}
}

// seriesOf lists the scraped series of metric name.
func seriesOf(m map[string]float64, name string) []string {
	var out []string
	for series := range m {
		if strings.HasPrefix(series, name) {
			out = append(out, series)
		}
	}
	slices.Sort(out)
	return out
}

// sumSeries sums the scraped series whose name and labels start with
// prefix.
func sumSeries(m map[string]float64, prefix string) float64 {
	var sum float64
	for series, v := range m {
		if strings.HasPrefix(series, strings.TrimSuffix(prefix, "}")) {
			sum += v
		}
	}
	return sum
}

// TestGatewayAndProjectorRoles splits one deployment by role: a
// projector-only process and a gateway-only one on a strong namespace on
// PostgreSQL. Every request goes to the gateway (the projector answers
// none), which serves reads from PostgreSQL and acknowledges a strong
// write once the other process's projection applied it, read through the
// consumer they share; the gateway never projects.
func TestGatewayAndProjectorRoles(t *testing.T) {
	srv := natstest.Server(t)
	dsn := pgtest.DSN(t)
	ns := pgtest.Namespace(t, "roles-")
	cfg := configDir(t, fmt.Sprintf("name: %s\nabstraction: keyvalue\nbackend: postgres\nconsistency: strong\n", ns))
	projHTTP, gwHTTP := fmt.Sprintf("127.0.0.1:%d", freePort(t)), fmt.Sprintf("127.0.0.1:%d", freePort(t))
	common := []string{"--nats-url", srv.ClientURL(), "--config", cfg, "--postgres-dsn", dsn, "--log-level", "info"}
	proj := startPrism(t, t.TempDir(), 0, append(common, "--role", "projector", "--http-listen", projHTTP)...)
	gw := startPrism(t, t.TempDir(), 0, append(common, "--role", "gateway", "--http-listen", gwHTTP)...)
	waitOutput(t, gw, "this process is gateway-only")

	_, c := proj.connect(t)
	kv := c.KeyValue(ns)
	ctx := testCtx(t)
	for i := range 50 {
		id := fmt.Appendf(nil, "r%02d", i)
		seq, err := kv.Put(ctx, id, []client.Item{item("v", string(id))})
		if err != nil {
			t.Fatalf("put %s: %v", id, err)
		}
		// Strong: acknowledged only once applied, so a plain get sees it.
		rec, err := kv.Get(ctx, id)
		if err != nil || rec.Revision != seq || string(rec.Items[0].Value) != string(id) {
			t.Fatalf("get %s after its strong put at %d: %+v, %v", id, seq, rec, err)
		}
	}
	pm := scrape(t, "http://"+projHTTP)
	if len(seriesOf(pm, "prism_gateway_requests_total")) != 0 {
		t.Errorf("the projector-only process answered requests: %v", seriesOf(pm, "prism_gateway_requests_total"))
	}
	if n := sumSeries(pm, `prism_projector_events_applied_total{namespace="`+ns+`"`); n < 50 {
		t.Errorf("the projector applied %v events, want at least 50", n)
	}
	m := scrape(t, "http://"+gwHTTP)
	if n := sumSeries(m, `prism_gateway_requests_total{code="OK",namespace="`+ns+`",op="write.put"}`); n != 50 {
		t.Errorf("the gateway answered %v puts, want 50", n)
	}
	if n := sumSeries(m, `prism_projector_events_applied_total{namespace="`+ns+`"`); n != 0 {
		t.Errorf("the gateway-only process applied %v events", n)
	}
	if strings.Contains(gw.Output(), "took over") {
		t.Errorf("the gateway-only process took over:\n%s", gw.Output())
	}
}

// TestTakeoverServesNoStaleRead: a strong SQLite namespace, its owner
// killed after thousands of acknowledged writes its standby never
// applied (a standby's SQLite file is its own). The standby takes over and
// must not answer reads from its file before it has caught up with what
// the dead owner applied: until then its reads are UNAVAILABLE, and from
// the first read it answers, every acknowledged write is visible (strong
// consistency), never NOT_FOUND.
func TestTakeoverServesNoStaleRead(t *testing.T) {
	srv := natstest.Server(t)
	cfg := configDir(t, "name: strict\nabstraction: keyvalue\nbackend: sqlite\nconsistency: strong\n")
	args := []string{"--nats-url", srv.ClientURL(), "--config", cfg, "--log-level", "info"}
	first := startPrism(t, t.TempDir(), 0, args...)
	second := startPrism(t, t.TempDir(), 0, args...)
	waitOutput(t, second, "target on standby")
	_, c := first.connect(t)
	kv := c.KeyValue("strict")
	ctx := testCtx(t)

	const n = 3000
	var wg sync.WaitGroup
	for w := range 8 {
		wg.Go(func() {
			for i := w; i < n; i += 8 {
				if _, err := kv.Put(ctx, fmt.Appendf(nil, "r%04d", i), []client.Item{item("v", "x")}); err != nil {
					t.Errorf("put r%04d: %v", i, err)
					return
				}
			}
		})
	}
	wg.Wait()
	if t.Failed() {
		return
	}
	first.kill()

	unavailable := 0
	deadline := time.Now().Add(60 * time.Second)
	for {
		_, err := kv.Get(ctx, fmt.Appendf(nil, "r%04d", n-1))
		if err == nil {
			break
		}
		if !errors.Is(err, client.ErrUnavailable) && !errors.Is(err, client.ErrDeadlineExceeded) {
			t.Fatalf("read after the owner died: %v, want UNAVAILABLE until the takeover caught up, then the record", err)
		}
		unavailable++
		if time.Now().After(deadline) {
			t.Fatalf("no read answered within 60 s of the kill\n%s", second.Output())
		}
		time.Sleep(20 * time.Millisecond)
	}
	for i := range n {
		if _, err := kv.Get(ctx, fmt.Appendf(nil, "r%04d", i)); err != nil {
			t.Fatalf("acknowledged strong write r%04d after the takeover: %v", i, err)
		}
	}
	if !strings.Contains(second.Output(), "caught up with the process that projected it before") {
		t.Errorf("no catch-up before serving reads in the log:\n%s", second.Output())
	}
	t.Logf("%d reads UNAVAILABLE before the takeover caught up", unavailable)
}

// TestSimultaneousStartsNeverSplit starts two prism serve processes at
// the same instant (up to 20 ms apart, from a seeded random source) on a
// new SQLite namespace, several times. Each time exactly one of them
// projects it and the other is on standby: a namespace split between two
// SQLite files would show as a second projector, or as writes missing
// from the one that serves the reads.
func TestSimultaneousStartsNeverSplit(t *testing.T) {
	srv := natstest.Server(t)
	r := rand.New(rand.NewPCG(18, 18))
	for round := range 5 {
		ns := fmt.Sprintf("race%d", round)
		cfg := configDir(t, fmt.Sprintf("name: %s\nabstraction: keyvalue\nbackend: sqlite\nconsistency: read-your-writes\n", ns))
		args := []string{"--nats-url", srv.ClientURL(), "--config", cfg, "--log-level", "info"}
		delay := time.Duration(r.IntN(20)) * time.Millisecond
		procs := []*prismProc{newPrism(t, t.TempDir(), 0, args...), newPrism(t, t.TempDir(), 0, args...)}
		first := procs[0].begin()
		time.Sleep(delay)
		second := procs[1].begin()
		procs[0].waitServing(first)
		procs[1].waitServing(second)
		started := func(p *prismProc) bool {
			return strings.Contains(p.Output(), `msg="projector started" namespace=`+ns+" ")
		}
		standby := func(p *prismProc) bool { return strings.Contains(p.Output(), "target on standby") }
		deadline := time.Now().Add(30 * time.Second)
		for !(started(procs[0]) && standby(procs[1]) || started(procs[1]) && standby(procs[0])) {
			if time.Now().After(deadline) {
				t.Fatalf("round %d (second %v later): want one projector and one standby\nfirst:\n%s\nsecond:\n%s", round, delay, procs[0].Output(), procs[1].Output())
			}
			time.Sleep(20 * time.Millisecond)
		}
		if started(procs[0]) && started(procs[1]) {
			t.Fatalf("round %d: both processes project %s", round, ns)
		}
		t.Logf("round %d, second %v later: one projects, one on standby (raced the consumer's creation: %t)", round, delay,
			strings.Contains(procs[0].Output()+procs[1].Output(), "was created by another projector just now"))
		_, c := procs[0].connect(t)
		kv := c.KeyValue(ns)
		ctx := testCtx(t)
		var last uint64
		for i := range 100 {
			seq, err := kv.Put(ctx, fmt.Appendf(nil, "r%03d", i), []client.Item{item("v", "x")})
			if err != nil {
				t.Fatalf("round %d: put: %v", round, err)
			}
			last = seq
		}
		ids, _, err := kv.Scan(ctx, client.PageSize(1000), client.MinSeq(last))
		if err != nil || len(ids) != 100 {
			t.Fatalf("round %d: the projection holds %d of 100 records (%v): split", round, len(ids), err)
		}
		for _, p := range procs {
			p.kill()
		}
	}
}

// TestSimultaneousRestartsNeverSplit restarts two prism serve processes at
// the same instant on a consumer idle for longer than its pin (ADR 026),
// where both may start a projector (each found it idle). The server
// delivers to the one client it pins; the other finds it pinned, goes on
// standby, and hands its reads over. Every write, through either process,
// is then read through either, with read-your-writes, never missing.
func TestSimultaneousRestartsNeverSplit(t *testing.T) {
	srv := natstest.Server(t)
	r := rand.New(rand.NewPCG(26, 26))
	const ns = "restart"
	cfg := configDir(t, "name: "+ns+"\nabstraction: keyvalue\nbackend: sqlite\nconsistency: read-your-writes\n")
	args := []string{"--nats-url", srv.ClientURL(), "--config", cfg, "--log-level", "info"}
	procs := []*prismProc{newPrism(t, t.TempDir(), 0, args...), newPrism(t, t.TempDir(), 0, args...)}
	procs[0].start()
	procs[1].start()
	written := 0
	put := func(p *prismProc, n int) uint64 {
		t.Helper()
		_, c := p.connect(t)
		kv := c.KeyValue(ns)
		var last uint64
		for range n {
			seq, err := kv.Put(testCtx(t), fmt.Appendf(nil, "r%04d", written), []client.Item{item("v", "x")})
			if err != nil {
				t.Fatalf("put: %v", err)
			}
			written, last = written+1, seq
		}
		return last
	}
	put(procs[0], 20)
	for round := range 3 {
		for _, p := range procs {
			p.kill()
		}
		// Idle for longer than the pin and the in-use window: both
		// restarted processes may find the consumer free.
		time.Sleep(4 * time.Second)
		delay := time.Duration(r.IntN(20)) * time.Millisecond
		first := procs[0].begin()
		time.Sleep(delay)
		second := procs[1].begin()
		procs[0].waitServing(first)
		procs[1].waitServing(second)
		put(procs[round%2], 30)
		last := put(procs[(round+1)%2], 30)
		// A read may be refused for a while (NOT_CONSISTENT_YET from the
		// process whose projector is not pinned, before it goes on
		// standby; UNAVAILABLE while it hands reads over), never answered
		// short.
		for i, p := range procs {
			_, c := p.connect(t)
			deadline := time.Now().Add(30 * time.Second)
			for {
				ids, _, err := c.KeyValue(ns).Scan(testCtx(t), client.PageSize(1000), client.MinSeq(last))
				if err == nil && len(ids) == written {
					break
				}
				if err == nil || !(errors.Is(err, client.ErrNotConsistentYet) || errors.Is(err, client.ErrUnavailable)) || time.Now().After(deadline) {
					t.Fatalf("round %d (second %v later): through process %d: %d of %d records (%v): split\nfirst:\n%s\nsecond:\n%s",
						round, delay, i, len(ids), written, err, procs[0].Output(), procs[1].Output())
				}
				time.Sleep(100 * time.Millisecond)
			}
		}
		t.Logf("round %d, second %v later: %d records read through both (a projector demoted: %t)", round, delay, written,
			strings.Contains(procs[0].Output()+procs[1].Output(), "another process projects it now"))
	}
}
