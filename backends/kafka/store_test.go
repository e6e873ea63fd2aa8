package kafka_test

import (
	"context"
	"errors"
	"strings"
	"testing"
	"time"

	kafkago "github.com/segmentio/kafka-go"

	"github.com/prism-data/prism/backends/kafka"
	"github.com/prism-data/prism/backends/kafka/kafkatest"
	prismv1 "github.com/prism-data/prism/proto/prism/v1"
)

func TestOpenValidates(t *testing.T) {
	_, brokers := kafkatest.Start(t)
	tests := []struct {
		name    string
		brokers []string
		ns      string
		opts    []kafka.Option
		wantErr string // a substring of the error that names the cause
	}{
		{"no brokers", nil, "ns", nil, "no brokers"},
		{"empty broker", []string{""}, "ns", nil, "empty broker address"},
		{"bad namespace", brokers, "Bad", nil, `invalid namespace name "Bad"`},
		{"zero partitions", brokers, "ns", []kafka.Option{kafka.WithPartitions(0)}, "WithPartitions: 0 partitions"},
		{"zero replication", brokers, "ns", []kafka.Option{kafka.WithReplicationFactor(0)}, "WithReplicationFactor: 0,"},
		{"bad topic", brokers, "ns", []kafka.Option{kafka.WithTopic("a/b")}, `WithTopic: topic "a/b": only a-z`},
		{"long topic", brokers, "ns", []kafka.Option{kafka.WithTopic(strings.Repeat("t", 240))}, "WithTopic: topic \"" + strings.Repeat("t", 240) + "\": need 1 to"},
		{"zero batch timeout", brokers, "ns", []kafka.Option{kafka.WithBatchTimeout(0)}, "WithBatchTimeout: 0s,"},
		{"zero batch size", brokers, "ns", []kafka.Option{kafka.WithBatchSize(0)}, "WithBatchSize: 0,"},
		{"zero attempts", brokers, "ns", []kafka.Option{kafka.WithMaxAttempts(0)}, "WithMaxAttempts: 0,"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			s, err := kafka.Open(context.Background(), tt.brokers, tt.ns, tt.opts...)
			if err == nil {
				s.Close()
				t.Fatal("Open: no error")
			}
			if !strings.Contains(err.Error(), tt.wantErr) {
				t.Fatalf("Open: %v, want an error containing %q", err, tt.wantErr)
			}
		})
	}
}

// An existing topic keeps its partitions, and a key's partition is the
// same for every Store of the topic: b, opened asking for 2 partitions,
// must hash over the topic's 5 too ("a" is partition 4 of 5 but 0 of 2).
func TestExistingTopicKeepsPartitions(t *testing.T) {
	_, brokers := kafkatest.Start(t)
	a := open(t, brokers, "keep", kafka.WithPartitions(5))
	b := open(t, brokers, "keep", kafka.WithPartitions(2))
	if a.Partitions() != 5 || b.Partitions() != 5 {
		t.Fatalf("partitions %d and %d, want 5 and 5", a.Partitions(), b.Partitions())
	}
	if a.Topic() != "prism-keep" || a.CheckpointTopic() != "prism-keep.checkpoint" {
		t.Fatalf("topics %s and %s", a.Topic(), a.CheckpointTopic())
	}
	for _, key := range []string{"a", "b", "order-17", ""} {
		if pa, pb := a.PartitionOf([]byte(key)), b.PartitionOf([]byte(key)); pa != pb || pa < 0 || pa >= 5 {
			t.Fatalf("key %q: partitions %d and %d", key, pa, pb)
		}
	}
}

// Single-change batches, each with its checkpoint, are read back by
// another Store of the topic. (How long they take is measured by
// BenchmarkProjectLog, not asserted here.)
func TestSingleWritesReachAnotherStore(t *testing.T) {
	_, brokers := kafkatest.Start(t)
	s := open(t, brokers, "single", kafka.WithBatchTimeout(time.Millisecond))
	ctx := context.Background()
	for seq := uint64(1); seq <= 100; seq++ {
		if err := s.ApplyLog(ctx, changes(seq, 1, 3), seq); err != nil {
			t.Fatal(err)
		}
	}
	r := open(t, brokers, "single")
	total := 0
	for p := range r.Partitions() {
		resp, err := r.Fetch(ctx, &prismv1.LogFetchRequest{Partition: int32(p), MaxRecords: 1000})
		if err != nil {
			t.Fatal(err)
		}
		total += len(resp.GetRecords())
	}
	if cp, _ := r.Checkpoint(ctx); cp != 100 || total != 100 {
		t.Fatalf("checkpoint %d and %d records, want 100 and 100", cp, total)
	}
}

func TestOffsetOutOfRangeBlamesTheRequest(t *testing.T) {
	_, brokers := kafkatest.Start(t)
	s := open(t, brokers, "range")
	if err := s.ApplyLog(context.Background(), changes(1, 3, 1), 3); err != nil {
		t.Fatal(err)
	}
	_, err := s.Fetch(context.Background(), &prismv1.LogFetchRequest{Offset: 4})
	if !errors.Is(err, kafka.ErrOffsetOutOfRange) {
		t.Fatalf("Fetch past the end: %v, want ErrOffsetOutOfRange", err)
	}
}

func TestPing(t *testing.T) {
	c, brokers := kafkatest.Start(t)
	s := open(t, brokers, "ping")
	if err := s.Ping(context.Background()); err != nil {
		t.Fatalf("Ping: %v", err)
	}
	c.Close()
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
	defer cancel()
	if err := s.Ping(ctx); err == nil {
		t.Fatal("Ping of a closed cluster: no error")
	}
	s.Close()
	if err := s.Ping(context.Background()); !errors.Is(err, kafka.ErrClosed) {
		t.Fatalf("Ping after Close: %v, want ErrClosed", err)
	}
}

// A replication factor above the number of brokers is refused with what
// to change, not the broker's bare error code.
func TestOpenReplicationAboveBrokers(t *testing.T) {
	_, brokers := kafkatest.Start(t)
	s, err := kafka.Open(context.Background(), brokers, "rf", kafka.WithReplicationFactor(3))
	if err == nil {
		s.Close()
		t.Fatal("Open with replication 3 on one broker: no error")
	}
	if !errors.Is(err, kafkago.InvalidReplicationFactor) || !strings.Contains(err.Error(), "the cluster has 1") || !strings.Contains(err.Error(), "kafka.replication_factor") {
		t.Fatalf("Open: %v", err)
	}
}
