package bench

import (
	"context"
	"fmt"
	"log/slog"
	"slices"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/nats-io/nats.go"
	"google.golang.org/protobuf/proto"

	"github.com/prism-data/prism/namespaces"
	"github.com/prism-data/prism/node"
	prismv1 "github.com/prism-data/prism/proto/prism/v1"
	"github.com/prism-data/prism/subjects"
)

// The noisy-neighbour measurement of ADR 023 (docs/performance.md), on
// the runtime prism serve runs (embedded NATS, SQLite, real projectors):
// namespace quiet writes at its declared 100 writes/s, first alone, then
// while namespace demo, which declared 500 writes/s, is offered 10× that
// (5,000 puts/s) in the same process. It reports quiet's p99 in both
// phases, their ratio, and how many of demo's puts were shed; and, as a
// control, quiet's p99 while demo sends exactly its limit (2× declared),
// which admission lets through. Run:
//
//	go test ./bench -run '^$' -bench NoisyNeighbour -benchtime 1x
func BenchmarkNoisyNeighbour(b *testing.B) {
	const (
		quietRPS = 100
		noisyRPS = 500
		phase    = 3 * time.Second
	)
	ctx := context.Background()
	quiet := namespaces.Namespace{Name: "quiet", Abstraction: "keyvalue", Backend: "sqlite", Needs: namespaces.Needs{WriteRPS: quietRPS}}
	noisyNS := namespaces.Namespace{Name: "demo", Abstraction: "keyvalue", Backend: "sqlite", Needs: namespaces.Needs{WriteRPS: noisyRPS}}
	p, err := StartNode(ctx, EmbeddedConfig{DataDir: b.TempDir(), Namespace: quiet, More: []namespaces.Namespace{noisyNS}, By: "bench", Logger: slog.New(slog.DiscardHandler)})
	if err != nil {
		b.Fatal(err)
	}
	b.Cleanup(func() { _ = p.Close(context.Background()) })
	nc, err := nats.Connect(p.URL())
	if err != nil {
		b.Fatal(err)
	}
	b.Cleanup(nc.Close)
	// demo may be served a moment after quiet.
	for deadline := time.Now().Add(10 * time.Second); ; {
		reply, err := putMsg(nc, "demo", "warm")
		if err == nil && reply.Header.Get(subjects.HeaderErrorCode) == "" {
			break
		}
		if time.Now().After(deadline) {
			b.Fatalf("namespace demo not served: %v", err)
		}
		time.Sleep(50 * time.Millisecond)
	}
	shedOf := func(ns string) float64 {
		return gatherSum(b, p, "prism_gateway_shed_total", ns)
	}
	for range b.N {
		alone, _, _ := noisyPhase(b, nc, phase, quietRPS, 0)
		// The control: demo at its limit (2× declared), nothing to shed.
		atLimit, _, _ := noisyPhase(b, nc, phase, quietRPS, namespaces.LimitHeadroom*noisyRPS)
		noisy, offered, shed := noisyPhase(b, nc, phase, quietRPS, 10*noisyRPS)
		b.ReportMetric(float64(alone.Microseconds())/1000, "quiet-p99-alone-ms")
		b.ReportMetric(float64(atLimit.Microseconds())/1000, "quiet-p99-neighbour-at-limit-ms")
		b.ReportMetric(float64(noisy.Microseconds())/1000, "quiet-p99-noisy-ms")
		b.ReportMetric(float64(noisy)/float64(alone), "p99-ratio")
		b.ReportMetric(float64(offered), "noisy-offered")
		b.ReportMetric(float64(shed), "noisy-shed")
		b.ReportMetric(shedOf("quiet"), "quiet-shed")
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
		start := time.Now()
		reply, err := putMsg(nc, ns, id)
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
				reply, _, err := put("demo", fmt.Sprintf("n%d-%d", p, i))
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

// putMsg sends a put of record id to namespace ns as any NATS client
// would, without the Go client's backoff, and returns the reply.
func putMsg(nc *nats.Conn, ns, id string) (*nats.Msg, error) {
	data, err := proto.Marshal(&prismv1.PutRequest{Id: []byte(id), Items: []*prismv1.Item{{Key: []byte("k"), Value: []byte(id)}}})
	if err != nil {
		return nil, err
	}
	m := nats.NewMsg(subjects.Write(ns, "put"))
	m.Header.Set(subjects.HeaderContentTypeReq, subjects.ContentTypeProto)
	m.Data = data
	return nc.RequestMsg(m, 5*time.Second)
}

// gatherSum is the sum of counter name over every label set of
// namespace ns in p's metrics.
func gatherSum(b *testing.B, p Embedded, name, ns string) float64 {
	b.Helper()
	mfs, err := p.(*node.Node).Metrics().Gather()
	if err != nil {
		b.Fatal(err)
	}
	var sum float64
	for _, mf := range mfs {
		if mf.GetName() != name {
			continue
		}
		for _, m := range mf.GetMetric() {
			for _, lp := range m.GetLabel() {
				if lp.GetName() == "namespace" && lp.GetValue() == ns {
					sum += m.GetCounter().GetValue()
				}
			}
		}
	}
	return sum
}
