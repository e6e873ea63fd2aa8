package kafka_test

import (
	"context"
	"fmt"
	"testing"

	"github.com/prism-data/prism/backends/kafka"
	"github.com/prism-data/prism/backends/kafka/kafkatest"
	prismv1 "github.com/prism-data/prism/proto/prism/v1"
)

func change(seq uint64, key, value string) *prismv1.LogChange {
	return &prismv1.LogChange{
		Seq:        seq,
		Event:      &prismv1.LogEvent{Key: []byte(key), Value: []byte(value), Headers: map[string]string{"n": fmt.Sprint(seq)}},
		CloudEvent: map[string]string{"ce-id": fmt.Sprintf("id-%d", seq), "ce-type": "io.prism.log.append", "ce-time": "2026-11-26T01:02:03.000000004Z"},
	}
}

func TestSmoke(t *testing.T) {
	_, brokers := kafkatest.Start(t)
	ctx := context.Background()
	s, err := kafka.Open(ctx, brokers, "orders", kafka.WithPartitions(3))
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	var changes []*prismv1.LogChange
	for i := 1; i <= 10; i++ {
		changes = append(changes, change(uint64(i), fmt.Sprintf("k%d", i%4), fmt.Sprintf("v%d", i)))
	}
	if err := s.ApplyLog(ctx, changes, 12); err != nil {
		t.Fatal(err)
	}
	cp, _ := s.Checkpoint(ctx)
	t.Logf("cp %d partitions %d", cp, s.Partitions())
	for p := 0; p < s.Partitions(); p++ {
		resp, err := s.Fetch(ctx, &prismv1.LogFetchRequest{Partition: int32(p)})
		if err != nil {
			t.Fatal(err)
		}
		t.Logf("p%d: %v", p, resp)
	}
	s.Close()
	s2, err := kafka.Open(ctx, brokers, "orders")
	if err != nil {
		t.Fatal(err)
	}
	defer s2.Close()
	cp, _ = s2.Checkpoint(ctx)
	t.Logf("reopened cp %d", cp)
}
