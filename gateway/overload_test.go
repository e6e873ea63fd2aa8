package gateway_test

import (
	"context"
	"fmt"
	"os"
	"runtime"
	"strconv"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/prism-data/prism/gateway"
	prismv1 "github.com/prism-data/prism/proto/prism/v1"
	"github.com/prism-data/prism/subjects"
)

// Overload bounds of TestOverloadStaysBoundedAndLosesNothing: a gateway of
// 16 slots and small buffers, so that 10× its capacity is cheap to offer.
const (
	overloadCap          = 16
	overloadMaxBytes     = 64 << 10
	overloadPendingMsgs  = 4096
	overloadPendingBytes = 1 << 20
)

// Offered 10× its capacity (160 callers in closed loop against 16 slots)
// for 2 s (PRISM_OVERLOAD_SECONDS to run longer, e.g. the 30), the
// gateway sheds rather than grows: requests in flight, their bytes and the
// subscriptions' buffers stay within the configured bounds, and the heap
// within the documented bound (docs/operations.md, "Memory bound") plus
// the test's own callers; once the load stops it serves again at once,
// and every acknowledged write is read back with its value.
func TestOverloadStaysBoundedAndLosesNothing(t *testing.T) {
	run := 2 * time.Second
	if s := os.Getenv("PRISM_OVERLOAD_SECONDS"); s != "" {
		n, err := strconv.Atoi(s)
		if err != nil || n <= 0 {
			t.Fatalf("PRISM_OVERLOAD_SECONDS=%q: want a positive number of seconds", s)
		}
		run = time.Duration(n) * time.Second
	}
	e := newEnv(t, envConfig{opts: []gateway.Option{
		gateway.WithMaxInFlight(overloadCap),
		gateway.WithMaxInFlightBytes(overloadMaxBytes),
		gateway.WithPendingLimits(overloadPendingMsgs, overloadPendingBytes),
	}})
	runtime.GC()
	var base runtime.MemStats
	runtime.ReadMemStats(&base)

	ctx, cancel := context.WithTimeout(context.Background(), run)
	defer cancel()
	var (
		mu    sync.Mutex
		acked = map[string]uint64{} // record id → seq
		shed  atomic.Int64
		other atomic.Int64
		wg    sync.WaitGroup
	)
	for w := range 10 * overloadCap {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := 0; ctx.Err() == nil; i++ {
				id := fmt.Sprintf("w%d-%d", w, i)
				msg := request(t, e.nc, subjects.Write(testNS, "put"), encode(t, putReq(id, "k", id), encProto), encProto)
				var resp prismv1.WriteResponse
				switch perr := decodeReply(t, msg, &resp, encProto); {
				case perr == nil:
					mu.Lock()
					acked[id] = resp.GetSeq()
					mu.Unlock()
				case perr.GetCode() == prismv1.Code_RESOURCE_EXHAUSTED:
					shed.Add(1)
				default:
					other.Add(1)
				}
			}
		}()
	}
	// Sample the gateway's accounting and the heap while the load runs.
	var peak gateway.Load
	var peakHeap uint64
	tick := time.NewTicker(2 * time.Millisecond)
	for n := 0; ctx.Err() == nil; n++ {
		<-tick.C
		l := e.gw.Load()
		peak.InFlight = max(peak.InFlight, l.InFlight)
		peak.PendingMsgs = max(peak.PendingMsgs, l.PendingMsgs)
		peak.PendingBytes = max(peak.PendingBytes, l.PendingBytes)
		if n%25 == 0 {
			var ms runtime.MemStats
			runtime.ReadMemStats(&ms)
			peakHeap = max(peakHeap, ms.HeapAlloc)
		}
	}
	tick.Stop()
	wg.Wait()

	if shed.Load() == 0 || len(acked) == 0 {
		t.Fatalf("%d acked, %d shed: the load did not overload the gateway", len(acked), shed.Load())
	}
	if other.Load() != 0 {
		t.Errorf("%d requests failed with another code than RESOURCE_EXHAUSTED", other.Load())
	}
	l := e.gw.Load()
	if peak.InFlight > overloadCap || l.PeakInFlightBytes > overloadMaxBytes {
		t.Errorf("peak in flight %d (cap %d), peak in-flight bytes %d (bound %d)", peak.InFlight, overloadCap, l.PeakInFlightBytes, overloadMaxBytes)
	}
	if peak.PendingMsgs > 3*overloadPendingMsgs || peak.PendingBytes > 3*overloadPendingBytes {
		t.Errorf("subscriptions buffered %d messages, %d bytes; bound 3 × %d, 3 × %d", peak.PendingMsgs, peak.PendingBytes, overloadPendingMsgs, overloadPendingBytes)
	}
	// The documented bound of the gateway's request memory, plus what the
	// test itself keeps: 64 MiB for its 160 callers and the in-process
	// NATS server, and 1 KiB for each acknowledged write, which the
	// in-process JetStream store, SQLite's cache and the acked map hold.
	// What overload adds, the shed requests (ten times as many), is not
	// allowed for.
	bound := uint64(3*overloadPendingBytes+overloadMaxBytes+overloadCap*gateway.RequestOverheadBytes) + 64<<20 + uint64(len(acked))<<10
	if grew := peakHeap - min(peakHeap, base.HeapAlloc); grew > bound {
		t.Errorf("heap grew by %d bytes under overload, bound %d", grew, bound)
	}
	t.Logf("%v at 10× capacity: %d acked, %d shed, peak in flight %d, peak pending %d msgs / %d bytes, heap +%d KiB",
		run, len(acked), shed.Load(), peak.InFlight, peak.PendingMsgs, peak.PendingBytes, (peakHeap-min(peakHeap, base.HeapAlloc))>>10)

	// Recovered by itself: the next write is served at once.
	var resp prismv1.WriteResponse
	mustCall(t, e.nc, subjects.Write(testNS, "put"), putReq("after", "k", "after"), &resp)
	if n := e.gw.Load().InFlight; n != 0 {
		t.Errorf("%d requests still in flight after the load", n)
	}

	// Nothing acknowledged is lost: every acked write is read back.
	wctx, wcancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer wcancel()
	if err := e.proj.WaitApplied(wctx, resp.GetSeq()); err != nil {
		t.Fatal(err)
	}
	for id, seq := range acked {
		var get prismv1.GetResponse
		mustCall(t, e.nc, subjects.Read(testNS, "get"), &prismv1.GetRequest{Id: []byte(id), MinSeq: seq}, &get)
		if len(get.GetItems()) != 1 || string(get.GetItems()[0].GetValue()) != id {
			t.Fatalf("acked write %s (seq %d) reads back as %v", id, seq, get.GetItems())
		}
	}
}
