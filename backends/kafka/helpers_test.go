package kafka_test

import (
	"context"
	"fmt"
	"testing"

	"github.com/prism-data/prism/backends/kafka"
	prismv1 "github.com/prism-data/prism/proto/prism/v1"
)

// change is the change of an append of key with value at seq, with
// CloudEvent id "id-<seq>" and the writer's header "n": seq.
func change(seq uint64, key, value string) *prismv1.LogChange {
	return &prismv1.LogChange{
		Seq:        seq,
		Event:      &prismv1.LogEvent{Key: []byte(key), Value: []byte(value), Headers: map[string]string{"n": fmt.Sprint(seq)}},
		CloudEvent: map[string]string{"ce-id": fmt.Sprintf("id-%d", seq), "ce-type": "io.prism.log.append", "ce-time": "2026-11-26T01:02:03.000000004Z"},
	}
}

// changes returns n changes from seq first on, over keys keys.
func changes(first uint64, n, keys int) []*prismv1.LogChange {
	out := make([]*prismv1.LogChange, n)
	for i := range out {
		seq := first + uint64(i)
		out[i] = change(seq, fmt.Sprintf("key-%d", int(seq)%keys), fmt.Sprintf("v%d", seq))
	}
	return out
}

func open(tb testing.TB, brokers []string, ns string, opts ...kafka.Option) *kafka.Store {
	tb.Helper()
	s, err := kafka.Open(context.Background(), brokers, ns, opts...)
	if err != nil {
		tb.Fatalf("Open: %v", err)
	}
	tb.Cleanup(func() { s.Close() })
	return s
}
