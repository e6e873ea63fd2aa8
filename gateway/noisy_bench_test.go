package gateway_test

import (
	"context"
	"fmt"
	"slices"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/nats-io/nats.go"

	"github.com/prism-data/prism/gateway"
	"github.com/prism-data/prism/namespaces"
	prismv1 "github.com/prism-data/prism/proto/prism/v1"
	"github.com/prism-data/prism/subjects"
)

// The noisy-neighbour measurement of ADR 023 (docs/performance.md):
// namespace quiet writes at its declared 100 writes/s, first alone, then
// while namespace demo, which declared 500 writes/s, is offered 10× that
// (5,000 puts/s) in the same gateway. It reports quiet's p99 in both
// phases, their ratio, and how many of demo's puts were shed; and, as a
// control, quiet's p99 while demo sends exactly its limit (2× declared),
// which admission lets through. Run:
//
//	go test ./gateway -run '^$' -bench NoisyNeighbour -benchtime 1x
func BenchmarkNoisyNeighbour(b *testing.B) {
	const (
		quietRPS = 100
		noisyRPS = 500
		phase    = 3 * time.Second
	)
	e := newEnv(b, envConfig{opts: []gateway.Option{gateway.WithClock(time.Now)},
		namespace: func(n *namespaces.Namespace) { n.Needs.WriteRPS = noisyRPS }})
	quiet := namespaces.Namespace{Name: "quiet", Abstraction: "keyvalue", Backend: "sqlite", Needs: namespaces.Needs{WriteRPS: quietRPS}}
	if err := namespaces.EnsureStreams(context.Background(), e.js, quiet); err != nil {
		b.Fatal(err)
	}
	if err := e.gw.AddNamespace(quiet, e.store, e.proj); err != nil {
		b.Fatal(err)
	}
	for range b.N {
		alone, _, _ := noisyPhase(b, e.nc, phase, quietRPS, 0)
		// The control: demo at its limit (2× declared), nothing to shed.
		atLimit, _, _ := noisyPhase(b, e.nc, phase, quietRPS, namespaces.LimitHeadroom*noisyRPS)
		noisy, offered, shed := noisyPhase(b, e.nc, phase, quietRPS, 10*noisyRPS)
		b.ReportMetric(float64(alone.Microseconds())/1000, "quiet-p99-alone-ms")
		b.ReportMetric(float64(atLimit.Microseconds())/1000, "quiet-p99-neighbour-at-limit-ms")
		b.ReportMetric(float64(noisy.Microseconds())/1000, "quiet-p99-noisy-ms")
		b.ReportMetric(float64(noisy)/float64(alone), "p99-ratio")
		b.ReportMetric(float64(offered), "noisy-offered")
		b.ReportMetric(float64(shed), "noisy-shed")
		b.ReportMetric(float64(e.gw.Shed("quiet")[gateway.ShedWriteRate]+e.gw.Shed("quiet")[gateway.ShedFairShare]), "quiet-shed")
	}
}

// noisyPhase runs quiet at quietRPS and, when noisyRPS > 0, demo at
// noisyRPS, both open loop, for d. It returns quiet's p99 and how many
// puts demo was offered and shed.
func noisyPhase(b *testing.B, nc *nats.Conn, d time.Duration, quietRPS, noisyRPS int) (p99 time.Duration, offered, shed int64) {
	ctx, cancel := context.WithTimeout(context.Background(), d)
	defer cancel()
	var mu sync.Mutex
	var lat []time.Duration
	var sent, shedN atomic.Int64
	var wg sync.WaitGroup
	pace := func(rps int, do func(i int)) {
		defer wg.Done()
		tick := time.NewTicker(time.Second / time.Duration(rps))
		defer tick.Stop()
		for i := 0; ; i++ {
			select {
			case <-ctx.Done():
				return
			case <-tick.C:
				wg.Add(1)
				go func() { defer wg.Done(); do(i) }()
			}
		}
	}
	put := func(ns, id string) (*nats.Msg, time.Duration, error) {
		m := nats.NewMsg(subjects.Write(ns, "put"))
		m.Header.Set(subjects.HeaderContentTypeReq, subjects.ContentTypeProto)
		m.Data = encode(b, putReq(id, "k", "v"), encProto)
		start := time.Now()
		reply, err := nc.RequestMsg(m, 5*time.Second)
		return reply, time.Since(start), err
	}
	wg.Add(1)
	go pace(quietRPS, func(i int) {
		reply, took, err := put("quiet", fmt.Sprint("q", i))
		if err != nil || reply.Header.Get(subjects.HeaderErrorCode) != "" {
			return // counted by the gateway's shed counts
		}
		mu.Lock()
		lat = append(lat, took)
		mu.Unlock()
	})
	if noisyRPS > 0 {
		// Ten pacers of a tenth each: one ticker cannot tick 5,000 times a
		// second reliably.
		for p := range 10 {
			wg.Add(1)
			go pace(noisyRPS/10, func(i int) {
				sent.Add(1)
				reply, _, err := put(testNS, fmt.Sprintf("n%d-%d", p, i))
				if err == nil && reply.Header.Get(subjects.HeaderErrorCode) == prismv1.Code_RESOURCE_EXHAUSTED.String() {
					shedN.Add(1)
				}
			})
		}
	}
	wg.Wait()
	if len(lat) == 0 {
		b.Fatal("no quiet put succeeded")
	}
	slices.Sort(lat)
	return lat[len(lat)*99/100], sent.Load(), shedN.Load()
}
