package projectors_test

import (
	"context"
	"fmt"
	"strconv"
	"sync/atomic"
	"testing"
	"time"

	"github.com/nats-io/nats.go"
	kafkago "github.com/segmentio/kafka-go"

	"github.com/prism-data/prism/backends/kafka"
	"github.com/prism-data/prism/backends/kafka/kafkatest"
	"github.com/prism-data/prism/projectors"
	prismv1 "github.com/prism-data/prism/proto/prism/v1"
	"github.com/prism-data/prism/subjects"
)

// benchKafkaPartitions is the partition count of the benchmark topics.
const benchKafkaPartitions = 4

// Log appends into Kafka (kfake, in this process), against raw kafka-go
// produce of the same records in the same run:
//
//	go test -run '^$' -bench 'ProjectKafka|RawKafkaProduce' -benchtime 3x -count 3 ./projectors/
//
// benchEvents appends of benchValue-byte values over 1000 keys, 4
// partitions, the store's default Writer settings (BatchSize 1000,
// BatchTimeout 2 ms, RequiredAcks all).
// benchRuns numbers the topics and consumers of the benchmarks, so that no
// run reuses one.
var benchRuns atomic.Int64

func benchLogKey(i int) []byte { return fmt.Appendf(nil, "key-%04d", i%1000) }

// BenchmarkProjectKafka measures a Log projector catching up from an empty
// topic on a stream that already holds benchEvents appends: each iteration
// projects them all into a fresh topic through a fresh consumer. batch256
// is the projector's default batch size, batch1000 its size for
// write_rps ≥ 10000 (ADR 007): each ApplyLog waits up to the Writer's
// BatchTimeout for partitions whose share of the batch does not fill a
// Writer batch, so larger batches amortize that wait.
func BenchmarkProjectKafka(b *testing.B) {
	js := startJetStream(b)
	key := benchLogKey
	value := make([]byte, benchValue)
	last := publishAll(b, js, func(i int) (*nats.Msg, error) {
		return subjects.NewLogEvent(subjects.EventMeta{Namespace: testNS}, &prismv1.LogEvent{Key: key(i), Value: value})
	})
	_, brokers := kafkatest.Start(b)
	for _, batch := range []int{benchBatch, 1000} {
		b.Run(fmt.Sprintf("batch%d", batch), func(b *testing.B) {
			benchProjection(b, last, func(int) (*projectors.Projector, func()) {
				i := benchRuns.Add(1) // unique across -count and the runs of b.N
				st, err := kafka.Open(context.Background(), brokers, testNS, kafka.WithTopic(fmt.Sprintf("bench-%d", i)), kafka.WithPartitions(benchKafkaPartitions))
				if err != nil {
					b.Fatal(err)
				}
				p, err := projectors.NewLog(js, testNS, fmt.Sprintf("bench%d", i), st, projectors.WithLogger(testLogger(b)), projectors.WithBatchSize(batch))
				if err != nil {
					b.Fatal(err)
				}
				return p, func() { st.Close() }
			})
		})
	}
}

// BenchmarkRawKafkaProduce is the floor for BenchmarkProjectKafka: the same
// records, with the same headers (the CloudEvents ones and prism-seq),
// written with a kafka-go Writer of the store's settings to a fresh topic,
// no stream and no checkpoint. batch256 hands the Writer 256 records per
// call, as the projector's batches; all hands it every record at once (the
// Writer then fills batches of 1000 per partition).
func BenchmarkRawKafkaProduce(b *testing.B) {
	_, brokers := kafkatest.Start(b)
	key := benchLogKey
	value := make([]byte, benchValue)
	msgs := make([]kafkago.Message, benchEvents)
	for i := range msgs {
		ev, err := subjects.NewLogEvent(subjects.EventMeta{Namespace: testNS}, &prismv1.LogEvent{Key: key(i), Value: value})
		if err != nil {
			b.Fatal(err)
		}
		var h []kafkago.Header
		for k, v := range subjects.CloudEventHeaders(ev.Header) {
			h = append(h, kafkago.Header{Key: k, Value: []byte(v)})
		}
		h = append(h, kafkago.Header{Key: kafka.HeaderSeq, Value: strconv.AppendInt(nil, int64(i+1), 10)})
		msgs[i] = kafkago.Message{Key: key(i), Value: value, Headers: h, Time: time.Now()}
	}
	for _, tc := range []struct {
		name  string
		chunk int
	}{{"batch256", benchBatch}, {"all", benchEvents}} {
		b.Run(tc.name, func(b *testing.B) {
			for i := 0; i < b.N; i++ {
				b.StopTimer()
				// A Store creates the topic as the projector's would.
				st, err := kafka.Open(context.Background(), brokers, testNS, kafka.WithTopic(fmt.Sprintf("raw-%d", benchRuns.Add(1))), kafka.WithPartitions(benchKafkaPartitions))
				if err != nil {
					b.Fatal(err)
				}
				w := &kafkago.Writer{
					Addr: kafkago.TCP(brokers...), Topic: st.Topic(), Balancer: &kafkago.Murmur2Balancer{Consistent: true},
					BatchSize: kafka.DefaultBatchSize, BatchBytes: kafka.DefaultBatchBytes, BatchTimeout: kafka.DefaultBatchTimeout,
					RequiredAcks: kafkago.RequireAll, MaxAttempts: kafka.DefaultMaxAttempts, Transport: &kafkago.Transport{},
				}
				b.StartTimer()
				for start := 0; start < len(msgs); start += tc.chunk {
					if err := w.WriteMessages(context.Background(), msgs[start:min(start+tc.chunk, len(msgs))]...); err != nil {
						b.Fatal(err)
					}
				}
				b.StopTimer()
				w.Close()
				st.Close()
				b.StartTimer()
			}
			b.ReportMetric(float64(b.N)*benchEvents/b.Elapsed().Seconds(), "events/s")
		})
	}
}
