package itest

import (
	"context"
	"fmt"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/prism-data/prism/backends/postgres/pgtest"
	"github.com/prism-data/prism/client"
)

// BenchmarkCluster measures writes and reads through 1, 2 and 3 prism
// serve processes on a 3-node NATS cluster (separate processes, an R3
// eventual KeyValue namespace on PostgreSQL, 256-byte values, 64 requests
// in flight), and raw JetStream R3 publishes on the same cluster in the
// same run: issue #18's scale-out figures. Everything shares the
// machine's cores; docs/performance.md says how many. Rerun:
//
//	go test ./itest -run '^$' -bench BenchmarkCluster -benchtime 20000x
func BenchmarkCluster(b *testing.B) {
	cl := startNATSCluster(b)
	nc, err := nats.Connect(cl.urls())
	if err != nil {
		b.Fatal(err)
	}
	b.Cleanup(nc.Close)
	value := []byte(strings.Repeat("v", 256))

	b.Run("raw-r3-publish", func(b *testing.B) {
		js, _ := jetstream.New(nc)
		name := fmt.Sprintf("RAW_%d", time.Now().UnixNano())
		if _, err := js.CreateStream(context.Background(), jetstream.StreamConfig{Name: name, Subjects: []string{name + ".>"}, Replicas: 3}); err != nil {
			b.Fatal(err)
		}
		var n atomic.Int64
		b.SetParallelism(32)
		b.ResetTimer()
		b.RunParallel(func(pb *testing.PB) {
			for pb.Next() {
				if _, err := js.Publish(context.Background(), fmt.Sprintf("%s.k%d", name, n.Add(1)%10000), value); err != nil {
					b.Error(err)
					return
				}
			}
		})
	})

	dsn := pgtest.DSN(b)
	for procs := 1; procs <= 3; procs++ {
		b.Run(fmt.Sprintf("prism-%d", procs), func(b *testing.B) {
			ns := pgtest.Namespace(b, "bench-")
			cfg := configDir(b, fmt.Sprintf("name: %s\nabstraction: keyvalue\nbackend: postgres\nneeds:\n  durability: replicated\n", ns))
			for range procs {
				startPrism(b, b.TempDir(), 0, "--nats-url", cl.urls(), "--nodes", "3", "--config", cfg, "--postgres-dsn", dsn, "--no-compact")
			}
			c, err := client.New(nc, client.WithTimeout(10*time.Second))
			if err != nil {
				b.Fatal(err)
			}
			kv := c.KeyValue(ns)
			for _, op := range []string{"put", "get"} {
				b.Run(op, func(b *testing.B) {
					var n atomic.Int64
					b.SetParallelism(32)
					b.ResetTimer()
					b.RunParallel(func(pb *testing.PB) {
						for pb.Next() {
							id := fmt.Appendf(nil, "id-%d", n.Add(1)%10000)
							var err error
							if op == "put" {
								_, err = kv.Put(context.Background(), id, []client.Item{{Key: []byte("k"), Value: value}})
							} else if _, err = kv.Get(context.Background(), id); err != nil && strings.Contains(err.Error(), "NOT_FOUND") {
								err = nil
							}
							if err != nil {
								b.Error(err)
								return
							}
						}
					})
				})
			}
		})
	}
}
