package node

import (
	"context"
	"errors"
	"fmt"
	"strings"

	"github.com/prism-data/prism/backends/kafka"
	"github.com/prism-data/prism/gateway"
	"github.com/prism-data/prism/namespaces"
	"github.com/prism-data/prism/projectors"
)

// logStore is a backend serving a Log namespace.
type logStore interface {
	projectors.LogTarget
	gateway.LogReader
	Close() error
}

var _ logStore = (*kafka.Store)(nil)

// kafkaBrokers returns the brokers of log namespace n: its kafka.brokers,
// else c.KafkaBrokers.
func kafkaBrokers(c Config, n namespaces.Namespace) ([]string, error) {
	if b := n.Kafka.Brokers.List(); len(b) > 0 {
		return b, nil
	}
	if len(c.KafkaBrokers) == 0 {
		return nil, errors.New("backend kafka needs brokers: set kafka.brokers in the namespace file, --kafka-brokers, or PRISM_KAFKA_BROKERS (host:port, comma-separated)")
	}
	return c.KafkaBrokers, nil
}

// openKafka opens the Kafka topic of log namespace n, creating it with the
// partitions and replication factor of its plan (plan.Kafka: the kafka
// section, else the needs).
func openKafka(ctx context.Context, c Config, n namespaces.Namespace, plan namespaces.Plan) (interface{ Close() error }, string, error) {
	brokers, err := kafkaBrokers(c, n)
	if err != nil {
		return nil, "", err
	}
	topic := plan.Kafka
	opts := []kafka.Option{kafka.WithPartitions(topic.Partitions.Value), kafka.WithReplicationFactor(topic.ReplicationFactor.Value)}
	if n.Kafka.Topic != "" {
		opts = append(opts, kafka.WithTopic(n.Kafka.Topic))
	}
	st, err := kafka.Open(ctx, brokers, n.Name, opts...)
	if err != nil {
		return nil, "", err
	}
	return st, fmt.Sprintf("Kafka topic %s (%d partitions) on %s", st.Topic(), st.Partitions(), strings.Join(brokers, ",")), nil
}

// logCheckpoint is /readyz's probe of a log store: the Kafka cluster
// answers (the store's checkpoint itself is kept in memory).
func logCheckpoint(ls logStore) func(ctx context.Context) (uint64, error) {
	return func(ctx context.Context) (uint64, error) {
		if p, ok := ls.(interface{ Ping(context.Context) error }); ok {
			if err := p.Ping(ctx); err != nil {
				return 0, err
			}
		}
		return ls.Checkpoint(ctx)
	}
}
