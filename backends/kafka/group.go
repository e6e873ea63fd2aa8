package kafka

import (
	"errors"
	"time"

	"github.com/segmentio/kafka-go"
)

// ReaderConfig returns the kafka-go configuration of a consumer-group
// Reader of the data topic: a Kafka-native subscription for consumers that
// read the topic themselves rather than through Prism's Fetch.
//
//	r := kafka.NewReader(store.ReaderConfig("billing"))
//	defer r.Close()
//	for {
//		m, err := r.FetchMessage(ctx)
//		if err != nil { return err }
//		rec := prismkafka.Record(m) // key, value, headers, seq, ce-id, time
//		if !seen(rec.Id) { handle(rec) }
//		if err := r.CommitMessages(ctx, m); err != nil { return err }
//	}
//
// The group's members share the partitions; each partition is read in
// offset order, so a key's records arrive in append order. A group new to
// the topic starts at its first record. Commits are synchronous
// (CommitInterval 0): commit after handling a message and a restarted
// member resumes after the last commit, redelivering what was handled but
// not committed. Together with the projector's at-least-once production,
// a consumer may see a record twice and deduplicates by ce-id
// (LogRecord.Id). The caller may change the returned config (StartOffset,
// MaxWait, Dialer, …) before kafka.NewReader; it owns and closes the
// Reader. It returns an error for an empty groupID.
func (s *Store) ReaderConfig(groupID string) (kafka.ReaderConfig, error) {
	if groupID == "" {
		return kafka.ReaderConfig{}, errors.New("reader config: empty consumer group id")
	}
	return kafka.ReaderConfig{
		Brokers:        s.Brokers(),
		GroupID:        groupID,
		Topic:          s.topic,
		StartOffset:    kafka.FirstOffset,
		MinBytes:       1,
		MaxBytes:       fetchMaxBytes,
		MaxWait:        100 * time.Millisecond,
		CommitInterval: 0,
	}, nil
}
