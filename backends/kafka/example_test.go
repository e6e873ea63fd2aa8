package kafka_test

// The README's Kafka snippet is the region between "// snippet: NAME" and
// "// end snippet" below (itest's TestReadmeSnippets checks they are the
// same), so it compiles as printed. The example is compiled, not run.

import (
	"context"

	"github.com/segmentio/kafka-go"

	prismkafka "github.com/prism-data/prism/backends/kafka"
)

func ExampleStore_ReaderConfig() {
	run := func(ctx context.Context, store *prismkafka.Store, handle func(id string)) error {
		// snippet: kafka-reader
		// prismkafka is github.com/prism-data/prism/backends/kafka, kafka is kafka-go
		cfg, err := store.ReaderConfig("billing") // store: a *prismkafka.Store
		if err != nil {
			return err
		}
		r := kafka.NewReader(cfg)
		defer r.Close()
		m, err := r.FetchMessage(ctx)
		if err != nil {
			return err
		}
		rec := prismkafka.Record(m) // key, value, headers, Seq, Id (ce-id), Time
		handle(rec.GetId())         // deduplicate by ce-id: delivery is at-least-once
		err = r.CommitMessages(ctx, m)
		// end snippet
		return err
	}
	_ = run
}
