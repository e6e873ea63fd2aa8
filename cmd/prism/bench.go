package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"math/rand/v2"
	"os/signal"
	"slices"
	"sync"
	"syscall"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/spf13/cobra"

	"github.com/prism-data/prism/client"
)

type benchFlags struct {
	natsURL   string
	namespace string
	workers   int
	duration  time.Duration
	valueSize int
	ids       int
	readRatio float64
}

func newBenchCmd() *cobra.Command {
	var f benchFlags
	cmd := &cobra.Command{
		Use:   "bench",
		Short: "Load a running Prism with puts and gets and report throughput and latency",
		Long: `bench drives a running Prism through the Go client: --workers goroutines
each send one request at a time for --duration, a --read-ratio share of them
gets of ids written earlier, the rest puts of one --value-size item. It
prints requests per second and p50/p90/p99/max latency per operation, and a
progress line every second.`,
		Example: "  prism bench --nats-url nats://127.0.0.1:4333 --workers 64 --duration 10s",
		Args:    cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			ctx, stop := signal.NotifyContext(cmd.Context(), syscall.SIGINT, syscall.SIGTERM)
			defer stop()
			return runBench(ctx, cmd.OutOrStdout(), f)
		},
	}
	fl := cmd.Flags()
	fl.StringVar(&f.natsURL, "nats-url", nats.DefaultURL, "NATS server Prism serves on")
	fl.StringVar(&f.namespace, "namespace", "demo", "KeyValue namespace to load")
	fl.IntVar(&f.workers, "workers", 64, "concurrent requests in flight")
	fl.DurationVar(&f.duration, "duration", 10*time.Second, "how long to run")
	fl.IntVar(&f.valueSize, "value-size", 256, "bytes per value")
	fl.IntVar(&f.ids, "ids", 100000, "number of distinct record ids")
	fl.Float64Var(&f.readRatio, "read-ratio", 0, "share of requests that are gets, 0..1")
	return cmd
}

type opStats struct {
	lat    []time.Duration
	errors int
}

func runBench(ctx context.Context, out io.Writer, f benchFlags) error {
	if f.workers < 1 || f.duration <= 0 || f.valueSize < 0 || f.ids < 1 || f.readRatio < 0 || f.readRatio > 1 {
		return errors.New("bench: --workers and --ids must be ≥ 1, --duration > 0, --read-ratio in [0,1]")
	}
	nc, err := nats.Connect(f.natsURL, nats.Name("prism-bench"))
	if err != nil {
		return fmt.Errorf("connect to %s: %w", f.natsURL, err)
	}
	defer nc.Close()
	c, err := client.New(nc)
	if err != nil {
		return err
	}
	kv := c.KeyValue(f.namespace)
	value := make([]byte, f.valueSize)
	// Fail fast on a wrong namespace or URL.
	if _, err := kv.Put(ctx, []byte("bench-0"), []client.Item{{Key: []byte("v"), Value: value}}); err != nil {
		return fmt.Errorf("first put: %w", err)
	}

	ctx, cancel := context.WithTimeout(ctx, f.duration)
	defer cancel()
	var (
		mu    sync.Mutex
		puts  opStats
		gets  opStats
		wg    sync.WaitGroup
		start = time.Now()
	)
	for w := 0; w < f.workers; w++ {
		wg.Add(1)
		go func(w int) {
			defer wg.Done()
			rng := rand.New(rand.NewPCG(uint64(w), uint64(start.UnixNano())))
			var p, g opStats
			for ctx.Err() == nil {
				id := fmt.Appendf(nil, "bench-%d", rng.IntN(f.ids))
				t0 := time.Now()
				if rng.Float64() < f.readRatio {
					_, err := kv.Get(ctx, id)
					if ctx.Err() != nil {
						break // cut off by the end of the run, not an error
					}
					if err != nil && !errors.Is(err, client.ErrNotFound) {
						g.errors++
						continue
					}
					g.lat = append(g.lat, time.Since(t0))
				} else {
					_, err := kv.Put(ctx, id, []client.Item{{Key: []byte("v"), Value: value}})
					if ctx.Err() != nil {
						break
					}
					if err != nil {
						p.errors++
						continue
					}
					p.lat = append(p.lat, time.Since(t0))
				}
			}
			mu.Lock()
			puts.lat, puts.errors = append(puts.lat, p.lat...), puts.errors+p.errors
			gets.lat, gets.errors = append(gets.lat, g.lat...), gets.errors+g.errors
			mu.Unlock()
		}(w)
	}
	tick := time.NewTicker(time.Second)
	defer tick.Stop()
	for done := false; !done; {
		select {
		case <-ctx.Done():
			done = true
		case <-tick.C:
			fmt.Fprintf(out, "  %s elapsed\n", time.Since(start).Round(time.Second))
		}
	}
	wg.Wait()
	elapsed := time.Since(start)
	fmt.Fprintf(out, "namespace %s, %d workers, %s, %d-byte values\n", f.namespace, f.workers, elapsed.Round(time.Millisecond), f.valueSize)
	printOp(out, "put", puts, elapsed)
	printOp(out, "get", gets, elapsed)
	return nil
}

func printOp(out io.Writer, name string, s opStats, elapsed time.Duration) {
	if len(s.lat) == 0 && s.errors == 0 {
		return
	}
	slices.Sort(s.lat)
	pct := func(p float64) time.Duration {
		if len(s.lat) == 0 {
			return 0
		}
		return s.lat[min(len(s.lat)-1, int(float64(len(s.lat))*p))]
	}
	fmt.Fprintf(out, "%-4s %9.0f ops/s  p50 %-9s p90 %-9s p99 %-9s max %-9s errors %d\n", name,
		float64(len(s.lat))/elapsed.Seconds(), pct(0.5), pct(0.9), pct(0.99), pct(1), s.errors)
}
