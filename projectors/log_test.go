package projectors_test

import (
	"context"
	"fmt"
	"slices"
	"sync/atomic"
	"testing"
	"time"

	"github.com/nats-io/nats.go/jetstream"
	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kfake"
	"github.com/twmb/franz-go/pkg/kmsg"
	"google.golang.org/protobuf/proto"

	"github.com/prism-data/prism/backends/kafka"
	"github.com/prism-data/prism/backends/kafka/kafkatest"
	"github.com/prism-data/prism/projectors"
	prismv1 "github.com/prism-data/prism/proto/prism/v1"
	"github.com/prism-data/prism/subjects"
)

// The Kafka store must satisfy the projector's Log target interface.
var _ projectors.LogTarget = (*kafka.Store)(nil)

// logPublisher publishes Log appends and remembers what it published.
type logPublisher struct {
	streamLog
	sent map[uint64]*prismv1.LogEvent // by seq
	ids  map[uint64]string            // ce-id by seq
}

func newLogPublisher(js jetstream.JetStream) *logPublisher {
	return &logPublisher{streamLog: streamLog{js: js}, sent: map[uint64]*prismv1.LogEvent{}, ids: map[uint64]string{}}
}

// publish appends n records over keys keys, values "v<i>".
func (p *logPublisher) publish(tb testing.TB, n, keys int) {
	tb.Helper()
	for range n {
		i := len(p.sent)
		ev := &prismv1.LogEvent{Key: fmt.Appendf(nil, "key-%d", i%keys), Value: fmt.Appendf(nil, "v%d", i), Headers: map[string]string{"i": fmt.Sprint(i)}}
		msg, err := subjects.NewLogEvent(subjects.EventMeta{Namespace: testNS}, ev)
		if err != nil {
			tb.Fatal(err)
		}
		id := msg.Header.Get(subjects.HeaderID)
		p.publishEvent(tb, msg, func(seq uint64) { p.sent[seq], p.ids[seq] = ev, id })
	}
}

func openLogStore(tb testing.TB, brokers []string, opts ...kafka.Option) *kafka.Store {
	tb.Helper()
	opts = append([]kafka.Option{kafka.WithPartitions(4)}, opts...)
	st, err := kafka.Open(context.Background(), brokers, testNS, opts...)
	if err != nil {
		tb.Fatal(err)
	}
	tb.Cleanup(func() { st.Close() })
	return st
}

func newLogProjector(tb testing.TB, js jetstream.JetStream, t projectors.LogTarget) *projectors.Projector {
	tb.Helper()
	p, err := projectors.NewLog(js, testNS, "kafka", t, projectors.WithLogger(testLogger(tb)), projectors.WithBackoff(time.Millisecond, 20*time.Millisecond))
	if err != nil {
		tb.Fatal(err)
	}
	if err := p.Start(context.Background()); err != nil {
		tb.Fatal(err)
	}
	return p
}

func stopProjector(tb testing.TB, p *projectors.Projector) {
	tb.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if err := p.Stop(ctx); err != nil {
		tb.Fatal(err)
	}
}

// topicRecords reads every record of the store's topic.
func topicRecords(tb testing.TB, st *kafka.Store) []*prismv1.LogRecord {
	tb.Helper()
	var out []*prismv1.LogRecord
	for part := range st.Partitions() {
		for offset := int64(0); ; {
			resp, err := st.Fetch(context.Background(), &prismv1.LogFetchRequest{Partition: int32(part), Offset: offset, MaxRecords: 1000})
			if err != nil {
				tb.Fatal(err)
			}
			out = append(out, resp.GetRecords()...)
			offset = resp.GetNextOffset()
			if offset >= resp.GetHighWatermark() {
				break
			}
		}
	}
	return out
}

// checkTopic asserts that the topic holds every record pub published, with
// its key, value, headers, seq and ce-id, each key's records in publish
// order once duplicates are dropped by ce-id, and nothing else. It returns
// how many duplicates it dropped; each is a byte-for-byte copy.
func checkTopic(tb testing.TB, st *kafka.Store, pub *logPublisher) (dups int) {
	tb.Helper()
	recs := topicRecords(tb, st)
	seen := map[string]*prismv1.LogRecord{}
	perKey := map[string][]uint64{}
	for _, r := range recs {
		if first, ok := seen[r.GetId()]; ok {
			if first.GetSeq() != r.GetSeq() || string(first.GetValue()) != string(r.GetValue()) || first.GetPartition() != r.GetPartition() {
				tb.Fatalf("record %s at %d/%d differs from its first copy at %d/%d", r.GetId(), r.GetPartition(), r.GetOffset(), first.GetPartition(), first.GetOffset())
			}
			dups++
			continue
		}
		seen[r.GetId()] = r
		ev, ok := pub.sent[r.GetSeq()]
		if !ok {
			tb.Fatalf("record of seq %d was never published", r.GetSeq())
		}
		if r.GetId() != pub.ids[r.GetSeq()] || string(r.GetKey()) != string(ev.GetKey()) || string(r.GetValue()) != string(ev.GetValue()) || !sameHeaders(r.GetHeaders(), ev.GetHeaders()) {
			tb.Fatalf("record of seq %d: %v, want %v with id %s", r.GetSeq(), r, ev, pub.ids[r.GetSeq()])
		}
		perKey[string(r.GetKey())] = append(perKey[string(r.GetKey())], r.GetSeq())
	}
	if len(seen) != len(pub.sent) {
		tb.Fatalf("topic holds %d distinct records, %d were published", len(seen), len(pub.sent))
	}
	for key, seqs := range perKey {
		if !slices.IsSorted(seqs) {
			tb.Fatalf("key %s: records in order %v, want ascending seq", key, seqs)
		}
	}
	return dups
}

func sameHeaders(a, b map[string]string) bool {
	if len(a) != len(b) {
		return false
	}
	for k, v := range a {
		if w, ok := b[k]; !ok || w != v {
			return false
		}
	}
	return true
}

func TestLogProjectsAppendsInKeyOrder(t *testing.T) {
	js := startJetStream(t)
	_, brokers := kafkatest.Start(t)
	st := openLogStore(t, brokers)
	pub := newLogPublisher(js)
	pub.publish(t, 150, 7)
	p := newLogProjector(t, js, st)
	defer stopProjector(t, p)
	pub.publish(t, 150, 7)
	waitApplied(t, p, pub.lastSeq())
	if dups := checkTopic(t, st, pub); dups != 0 {
		t.Fatalf("%d duplicates without any failure", dups)
	}
	if cp, _ := st.Checkpoint(context.Background()); cp != pub.lastSeq() {
		t.Fatalf("checkpoint %d, want %d", cp, pub.lastSeq())
	}
}

// A projector stopped mid-stream and a Store closed, then both started
// again while appends go on, resume where they stopped: every record is in
// the topic exactly once.
func TestLogRestartMidStreamHasNoGap(t *testing.T) {
	js := startJetStream(t)
	_, brokers := kafkatest.Start(t)
	pub := newLogPublisher(js)
	pub.publish(t, 300, 5)

	st1 := openLogStore(t, brokers)
	p1 := newLogProjector(t, js, st1)
	waitApplied(t, p1, 100)
	stopProjector(t, p1)
	if err := st1.Close(); err != nil {
		t.Fatal(err)
	}
	pub.publish(t, 200, 5)

	st2 := openLogStore(t, brokers)
	cp, err := st2.Checkpoint(context.Background())
	if err != nil || cp < 100 || cp > 300 {
		t.Fatalf("reopened checkpoint %d, %v; want 100 to 300", cp, err)
	}
	p2 := newLogProjector(t, js, st2)
	defer stopProjector(t, p2)
	pub.publish(t, 100, 5)
	waitApplied(t, p2, pub.lastSeq())
	if dups := checkTopic(t, st2, pub); dups != 0 {
		t.Fatalf("%d duplicates after a clean stop", dups)
	}
}

// failCheckpointWrites makes the cluster refuse the next n produce requests
// to topic with a retriable error, as a broker that lost its replicas
// would, and counts them.
func failCheckpointWrites(c *kfake.Cluster, topic string, n int32) *atomic.Int32 {
	var failed atomic.Int32
	c.ControlKey(int16(kmsg.Produce), func(req kmsg.Request) (kmsg.Response, error, bool) {
		c.KeepControl()
		pr := req.(*kmsg.ProduceRequest)
		if len(pr.Topics) != 1 || pr.Topics[0].Topic != topic || failed.Load() >= n {
			return nil, nil, false
		}
		failed.Add(1)
		resp := pr.ResponseKind().(*kmsg.ProduceResponse)
		for _, rt := range pr.Topics {
			t := kmsg.NewProduceResponseTopic()
			t.Topic = rt.Topic
			for _, rp := range rt.Partitions {
				p := kmsg.NewProduceResponseTopicPartition()
				p.Partition = rp.Partition
				p.ErrorCode = kerr.NotEnoughReplicas.Code
				t.Partitions = append(t.Partitions, p)
			}
			resp.Topics = append(resp.Topics, t)
		}
		return resp, nil, true
	})
	return &failed
}

// When the checkpoint cannot be written after a batch's records were
// acknowledged, the projector retries the batch: its records are in the
// topic twice, each copy with the same ce-id and prism-seq, and nothing is
// missing. This is the at-least-once delivery ADR 009 documents.
func TestLogFailedCheckpointDuplicatesButLosesNothing(t *testing.T) {
	js := startJetStream(t)
	c, brokers := kafkatest.Start(t)
	pub := newLogPublisher(js)
	pub.publish(t, 60, 3)
	st := openLogStore(t, brokers, kafka.WithMaxAttempts(1))
	failed := failCheckpointWrites(c, st.CheckpointTopic(), 2)
	p := newLogProjector(t, js, st)
	defer stopProjector(t, p)
	waitApplied(t, p, pub.lastSeq())
	if failed.Load() != 2 {
		t.Fatalf("%d checkpoint writes refused, want 2", failed.Load())
	}
	if dups := checkTopic(t, st, pub); dups == 0 {
		t.Fatal("no duplicates although two checkpoint writes failed after their records were stored")
	}
	if cp, _ := st.Checkpoint(context.Background()); cp != pub.lastSeq() {
		t.Fatalf("checkpoint %d, want %d", cp, pub.lastSeq())
	}
}

func TestLogPoisonEventsAreDeadLettered(t *testing.T) {
	js := startJetStream(t)
	_, brokers := kafkatest.Start(t)
	st := openLogStore(t, brokers)
	pub := newLogPublisher(js)
	meta := subjects.EventMeta{Namespace: testNS}
	good, err := subjects.NewLogEvent(meta, &prismv1.LogEvent{Key: []byte("key-0"), Value: []byte("x")})
	if err != nil {
		t.Fatal(err)
	}
	kvPut := &prismv1.KeyValueEvent{Id: []byte("key-0"), Change: &prismv1.KeyValueEvent_Put{Put: &prismv1.KeyValuePut{}}}
	kvEvent, err := subjects.NewKeyValueEvent(meta, kvPut)
	if err != nil {
		t.Fatal(err)
	}
	forged, err := proto.Marshal(&prismv1.LogEvent{Key: []byte("key-0"), Headers: map[string]string{"prism-seq": "1"}})
	if err != nil {
		t.Fatal(err)
	}
	poison := map[uint64]string{}
	pub.publish(t, 10, 3)
	poison[pub.publishRaw(t, poisonFrom(good, []byte{0xff, 0xff, 0x01}))] = "garbage payload"
	pub.publish(t, 10, 3)
	poison[pub.publishRaw(t, kvEvent)] = "KeyValue event in a log namespace"
	poison[pub.publishRaw(t, poisonFrom(good, forged))] = "reserved header"
	pub.publish(t, 10, 3)

	p := newLogProjector(t, js, st)
	defer stopProjector(t, p)
	waitApplied(t, p, pub.lastSeq())
	checkTopic(t, st, pub)
	dl := deadLetters(t, js)
	if len(dl) != len(poison) {
		t.Fatalf("%d dead letters, want %d", len(dl), len(poison))
	}
	for _, m := range dl {
		var seq uint64
		fmt.Sscan(m.Header.Get(subjects.HeaderDLQSeq), &seq)
		if _, ok := poison[seq]; !ok || m.Header.Get(subjects.HeaderDLQReason) == "" || m.Header.Get(subjects.HeaderDLQTarget) != "kafka" {
			t.Fatalf("dead letter of seq %d (%q, target %q) is not one of the poison events %v", seq, m.Header.Get(subjects.HeaderDLQReason), m.Header.Get(subjects.HeaderDLQTarget), poison)
		}
	}
}
