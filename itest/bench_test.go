package itest

import (
	"context"
	"fmt"
	"path/filepath"
	"sort"
	"sync"
	"testing"
	"time"

	"github.com/nats-io/nats-server/v2/server"
	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/prism-data/prism/backends/sqlite"
	"github.com/prism-data/prism/client"
	"github.com/prism-data/prism/gateway"
	"github.com/prism-data/prism/namespaces"
	"github.com/prism-data/prism/projectors"
)

// benchEnv is Prism wired in-process: embedded NATS, gateway, projector and
// SQLite, with a client on its own in-process connection, plus a raw
// JetStream stream configured like a namespace stream for the baselines.
type benchEnv struct {
	c     *client.Client
	js    jetstream.JetStream
	rawNC *nats.Conn
	raw   string // subject prefix of the raw stream
}

func newBenchEnv(b *testing.B, consistency namespaces.Consistency) *benchEnv {
	b.Helper()
	ctx := context.Background()
	dir := b.TempDir()
	s, err := server.NewServer(&server.Options{Port: -1, JetStream: true, StoreDir: filepath.Join(dir, "js"), NoLog: true, NoSigs: true})
	if err != nil {
		b.Fatal(err)
	}
	go s.Start()
	if !s.ReadyForConnections(10 * time.Second) {
		b.Fatal("nats not ready")
	}
	b.Cleanup(func() { s.Shutdown(); s.WaitForShutdown() })
	conn := func() *nats.Conn {
		nc, err := nats.Connect("", nats.InProcessServer(s))
		if err != nil {
			b.Fatal(err)
		}
		b.Cleanup(nc.Close)
		return nc
	}
	srvNC := conn()
	js, err := jetstream.New(srvNC)
	if err != nil {
		b.Fatal(err)
	}
	ns := namespaces.Namespace{Name: "bench", Abstraction: "keyvalue", Backend: "sqlite", Consistency: consistency}
	if err := namespaces.EnsureStreams(ctx, js, ns); err != nil {
		b.Fatal(err)
	}
	store, err := sqlite.Open(ctx, filepath.Join(dir, "bench.db"))
	if err != nil {
		b.Fatal(err)
	}
	b.Cleanup(func() { store.Close() })
	proj, err := projectors.New(js, ns.Name, "sqlite", store)
	if err != nil {
		b.Fatal(err)
	}
	if err := proj.Start(ctx); err != nil {
		b.Fatal(err)
	}
	b.Cleanup(func() { proj.Stop(context.Background()) })
	gw, err := gateway.New(srvNC)
	if err != nil {
		b.Fatal(err)
	}
	if err := gw.AddNamespace(ns, store, proj); err != nil {
		b.Fatal(err)
	}
	if err := gw.Start(ctx); err != nil {
		b.Fatal(err)
	}
	b.Cleanup(func() { gw.Drain(context.Background()) })

	// The baseline stream: same storage and options as a namespace stream.
	if _, err := js.CreateStream(ctx, jetstream.StreamConfig{Name: "RAW", Subjects: []string{"raw.>"}, Storage: jetstream.FileStorage, Duplicates: 2 * time.Minute, AllowAtomicPublish: true, AllowDirect: true}); err != nil {
		b.Fatal(err)
	}
	clientNC := conn()
	c, err := client.New(clientNC)
	if err != nil {
		b.Fatal(err)
	}
	rawNC := conn()
	rawJS, err := jetstream.New(rawNC)
	if err != nil {
		b.Fatal(err)
	}
	return &benchEnv{c: c, js: rawJS, rawNC: rawNC, raw: "raw.kv."}
}

var benchValue = make([]byte, 256)

// BenchmarkWriteConcurrent64 is measure (a): acknowledged writes per second
// through the gateway with 64 requests in flight. Compare with
// BenchmarkRawAsyncPublish.
func BenchmarkWriteConcurrent64(b *testing.B) {
	env := newBenchEnv(b, namespaces.Eventual)
	kv := env.c.KeyValue("bench")
	ctx := context.Background()
	var wg sync.WaitGroup
	work := make(chan int, 1024)
	b.ResetTimer()
	for w := 0; w < 64; w++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := range work {
				if _, err := kv.Put(ctx, fmt.Appendf(nil, "id-%d", i), []client.Item{{Key: []byte("v"), Value: benchValue}}); err != nil {
					b.Error(err)
					return
				}
			}
		}()
	}
	for i := 0; i < b.N; i++ {
		work <- i
	}
	close(work)
	wg.Wait()
	b.ReportMetric(float64(b.N)/b.Elapsed().Seconds(), "writes/s")
}

// BenchmarkRawAsyncPublish is the baseline of (a): JetStream async publish
// of the same payload size to per-record subjects, at most 64 in flight.
func BenchmarkRawAsyncPublish(b *testing.B) {
	env := newBenchEnv(b, namespaces.Eventual)
	ctx := context.Background()
	js, err := jetstream.New(env.rawNC, jetstream.WithPublishAsyncMaxPending(64))
	if err != nil {
		b.Fatal(err)
	}
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		if _, err := js.PublishAsync(env.raw+fmt.Sprintf("id-%d", i), benchValue); err != nil {
			b.Fatal(err)
		}
	}
	select {
	case <-js.PublishAsyncComplete():
	case <-ctx.Done():
	}
	b.ReportMetric(float64(b.N)/b.Elapsed().Seconds(), "writes/s")
}

func reportLatency(b *testing.B, lat []time.Duration) {
	sort.Slice(lat, func(i, j int) bool { return lat[i] < lat[j] })
	if len(lat) == 0 {
		return
	}
	b.ReportMetric(float64(lat[len(lat)/2].Microseconds()), "p50-µs")
	b.ReportMetric(float64(lat[len(lat)*99/100].Microseconds()), "p99-µs")
}

// BenchmarkWriteSequential is measure (b): one write at a time through the
// gateway, p50/p99 latency. Compare with BenchmarkRawSyncPublish.
func BenchmarkWriteSequential(b *testing.B) {
	env := newBenchEnv(b, namespaces.Eventual)
	kv := env.c.KeyValue("bench")
	ctx := context.Background()
	lat := make([]time.Duration, 0, b.N)
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		start := time.Now()
		if _, err := kv.Put(ctx, fmt.Appendf(nil, "id-%d", i), []client.Item{{Key: []byte("v"), Value: benchValue}}); err != nil {
			b.Fatal(err)
		}
		lat = append(lat, time.Since(start))
	}
	reportLatency(b, lat)
}

// BenchmarkRawSyncPublish is the baseline of (b).
func BenchmarkRawSyncPublish(b *testing.B) {
	env := newBenchEnv(b, namespaces.Eventual)
	ctx := context.Background()
	lat := make([]time.Duration, 0, b.N)
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		start := time.Now()
		if _, err := env.js.Publish(ctx, env.raw+fmt.Sprintf("id-%d", i), benchValue); err != nil {
			b.Fatal(err)
		}
		lat = append(lat, time.Since(start))
	}
	reportLatency(b, lat)
}
