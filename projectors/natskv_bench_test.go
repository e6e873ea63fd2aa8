package projectors_test

import (
	"context"
	"fmt"
	"testing"
	"time"

	"github.com/nats-io/nats.go/jetstream"

	"github.com/prism-data/prism/backends/natskv"
	"github.com/prism-data/prism/projectors"
)

// BenchmarkProjectNATSKV is BenchmarkProjectSQLite into a NATS KV bucket on
// the same server, a fresh bucket per iteration. Compare with
// BenchmarkRawNATSKVPublish:
//
//	go test -run '^$' -bench 'ProjectNATSKV|RawNATSKVPublish' -benchtime 3x -count 3 ./projectors/
func BenchmarkProjectNATSKV(b *testing.B) {
	js := startJetStream(b)
	last := publishKeyValue(b, js)
	ctx := context.Background()
	benchProjection(b, last, func(i int) (*projectors.Projector, func()) {
		target := fmt.Sprintf("benchkv%d", i)
		st, err := natskv.Open(ctx, js, target)
		if err != nil {
			b.Fatal(err)
		}
		p, err := projectors.New(js, testNS, target, st, projectors.WithLogger(testLogger(b)))
		if err != nil {
			b.Fatal(err)
		}
		return p, func() {
			st.Close()
			if err := js.DeleteKeyValue(ctx, natskv.BucketName(target)); err != nil {
				b.Fatal(err)
			}
		}
	})
}

// BenchmarkRawNATSKVPublish is the floor for BenchmarkProjectNATSKV: the
// same number of entries written to a KV bucket as fast as raw JetStream
// goes, asynchronous publishes to the bucket's subjects ($KV.<bucket>.<key>),
// 256 in flight, every one acknowledged. No checkpoint, no record entry,
// no revision check: what the store does on top of this is the cost of
// never overwriting newer state.
func BenchmarkRawNATSKVPublish(b *testing.B) {
	js := startJetStream(b)
	ctx := context.Background()
	value := make([]byte, benchValue+1)
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		b.StopTimer()
		bucket := fmt.Sprintf("RAW%d", i)
		if _, err := js.CreateKeyValue(ctx, jetstream.KeyValueConfig{Bucket: bucket, History: 1}); err != nil {
			b.Fatal(err)
		}
		b.StartTimer()
		for n := range benchEvents {
			if _, err := js.PublishAsync(fmt.Sprintf("$KV.%s.i.%s.k", bucket, benchID(n)), value); err != nil {
				b.Fatal(err)
			}
			if n%benchBatch == benchBatch-1 {
				select {
				case <-js.PublishAsyncComplete():
				case <-time.After(time.Minute):
					b.Fatal("publish timed out")
				}
			}
		}
		select {
		case <-js.PublishAsyncComplete():
		case <-time.After(time.Minute):
			b.Fatal("publish timed out")
		}
		b.StopTimer()
		if err := js.DeleteKeyValue(ctx, bucket); err != nil {
			b.Fatal(err)
		}
		b.StartTimer()
	}
	b.ReportMetric(float64(b.N)*benchEvents/b.Elapsed().Seconds(), "rows/s")
}
