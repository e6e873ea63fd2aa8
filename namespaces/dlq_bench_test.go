package namespaces_test

import (
	"context"
	"fmt"
	"testing"

	"github.com/prism-data/prism/itest/natstest"
	"github.com/prism-data/prism/namespaces"
)

// BenchmarkRedrive redrives dead letters of distinct KeyValue records
// whose record has suffix events since the dead-lettered one, in requests
// of MaxDeadLettersPerRequest as prism dlq redrive does (without waiting
// for a target). It reports dead letters per second.
//
//	go test ./namespaces/ -run '^$' -bench BenchmarkRedrive -benchtime 5x
func BenchmarkRedrive(b *testing.B) {
	for _, suffix := range []int{1, 10} {
		b.Run(fmt.Sprintf("events-per-record=%d", suffix), func(b *testing.B) {
			ctx := context.Background()
			const n = namespaces.MaxDeadLettersPerRequest
			total := 0
			for range b.N {
				b.StopTimer()
				_, js := natstest.Start(b)
				natstest.NamespaceStreams(b, js, dlqNS)
				seqs := make([]uint64, 0, n)
				for i := range n {
					first := kvPut(b, fmt.Sprintf("r%d", i), "0")
					s := publishEvent(b, js, first)
					for j := 1; j < suffix; j++ {
						publishEvent(b, js, kvPut(b, fmt.Sprintf("r%d", i), fmt.Sprint(j)))
					}
					seqs = append(seqs, deadLetter(b, js, first, s, "sqlite"))
				}
				b.StartTimer()
				reply, err := namespaces.RedriveDeadLetters(ctx, js, namespaces.DLQRedriveRequest{DLQSelection: namespaces.DLQSelection{Name: dlqNS, Seqs: seqs}})
				if err != nil || len(reply.Redriven) != n {
					b.Fatalf("redrive: %d, %v", len(reply.Redriven), err)
				}
				total += n
			}
			b.ReportMetric(float64(total)/b.Elapsed().Seconds(), "deadletters/s")
		})
	}
}
