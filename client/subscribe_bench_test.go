package client_test

import (
	"context"
	"fmt"
	"sync"
	"testing"
	"time"

	"github.com/prism-data/prism/client"
	"github.com/prism-data/prism/itest/natstest"
	prismv1 "github.com/prism-data/prism/proto/prism/v1"
	"github.com/prism-data/prism/subjects"
)

// fanOutEvents is how many changes each subscriber reads per op.
const fanOutEvents = 10_000

// BenchmarkSubscribeFanOut measures Subscribe fan-out on an in-process
// server: N subscriptions, opened on one connection, each read the same
// fanOutEvents changes (one-item puts, 100-byte values) already on the
// stream, from the first. One op is every subscriber reading all of them;
// deliveries/s is N × events/s.
//
//	go test -run '^$' -bench SubscribeFanOut -benchtime 3x -count 3 ./client/
func BenchmarkSubscribeFanOut(b *testing.B) {
	nc, js := natstest.Start(b)
	natstest.NamespaceStreams(b, js, subNS)
	value := make([]byte, 100)
	for i := range fanOutEvents {
		msg, err := subjects.NewKeyValueEvent(subjects.EventMeta{Namespace: subNS}, &prismv1.KeyValueEvent{
			Id:     fmt.Appendf(nil, "rec-%d", i),
			Change: &prismv1.KeyValueEvent_Put{Put: &prismv1.KeyValuePut{Items: []*prismv1.Item{{Key: []byte("k"), Value: value}}}},
		})
		if err != nil {
			b.Fatal(err)
		}
		if _, err := js.PublishMsgAsync(msg); err != nil {
			b.Fatal(err)
		}
	}
	select {
	case <-js.PublishAsyncComplete():
	case <-time.After(time.Minute):
		b.Fatal("publish timed out")
	}
	c, err := client.New(nc)
	if err != nil {
		b.Fatal(err)
	}
	for _, n := range []int{1, 8, 32} {
		b.Run(fmt.Sprintf("subscribers=%d", n), func(b *testing.B) {
			ctx, cancel := context.WithTimeout(context.Background(), 5*time.Minute)
			defer cancel()
			for range b.N {
				b.StopTimer()
				subs := make([]*client.Subscription, n)
				for i := range subs {
					if subs[i], err = c.Subscribe(ctx, subNS, client.FromSeq(1), client.WithBuffer(1024)); err != nil {
						b.Fatal(err)
					}
				}
				b.StartTimer()
				var wg sync.WaitGroup
				for _, sub := range subs {
					wg.Add(1)
					go func() {
						defer wg.Done()
						for range fanOutEvents {
							ch, err := sub.Next(ctx)
							if err != nil || ch.Err != nil {
								b.Errorf("next: %v %v", err, ch.Err)
								return
							}
						}
					}()
				}
				wg.Wait()
				b.StopTimer()
				for _, sub := range subs {
					_ = sub.Stop()
				}
				b.StartTimer()
			}
			secs := b.Elapsed().Seconds()
			b.ReportMetric(float64(b.N)*fanOutEvents/secs, "events/s")
			b.ReportMetric(float64(b.N*n)*fanOutEvents/secs, "deliveries/s")
		})
	}
}
