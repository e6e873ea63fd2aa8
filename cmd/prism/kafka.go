package main

import (
	"context"
	"errors"
	"fmt"
	"os"
	"strings"

	"github.com/nats-io/nats.go/jetstream"

	"github.com/prism-data/prism/backends/kafka"
	"github.com/prism-data/prism/gateway"
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
// else --kafka-brokers, else $PRISM_KAFKA_BROKERS (both comma-separated).
func kafkaBrokers(f serveFlags, n gateway.Namespace) ([]string, error) {
	if b := n.Kafka.Brokers.List(); len(b) > 0 {
		return b, nil
	}
	list, from := f.kafkaBrokers, "--kafka-brokers"
	if list == "" {
		list, from = os.Getenv("PRISM_KAFKA_BROKERS"), "PRISM_KAFKA_BROKERS"
	}
	if list == "" {
		return nil, errors.New("backend kafka needs brokers: set kafka.brokers in the namespace file, --kafka-brokers, or PRISM_KAFKA_BROKERS (host:port, comma-separated)")
	}
	var out []string
	for _, b := range strings.Split(list, ",") {
		b = strings.TrimSpace(b)
		if err := gateway.ValidateBroker(b); err != nil {
			return nil, fmt.Errorf("%s: %w", from, err)
		}
		out = append(out, b)
	}
	return out, nil
}

// openKafka opens the Kafka topic of log namespace n, creating it with the
// partitions and replication factor of its derived plan (DeriveKafkaTopic:
// the kafka section, else the needs).
func openKafka(ctx context.Context, f serveFlags, n gateway.Namespace) (interface{ Close() error }, string, error) {
	brokers, err := kafkaBrokers(f, n)
	if err != nil {
		return nil, "", err
	}
	plan, err := gateway.Derive(n, gateway.Cluster{Nodes: 1, SyncAlways: f.syncAlways, Postgres: f.postgresDSN != ""})
	if err != nil {
		// serve does not apply plans yet (README): derive the topic from
		// the needs alone rather than refuse the namespace.
		plan = gateway.Plan{Durability: n.Needs.Durability}
	}
	topic := gateway.DeriveKafkaTopic(n, plan)
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

// openLog starts the projector of the log namespace sv.ns into its store
// and registers the namespace with gw.
func openLog(ctx context.Context, js jetstream.JetStream, gw *gateway.Gateway, popts []projectors.Option, sv *served) error {
	n := sv.ns
	ls, ok := sv.store.(logStore)
	if !ok {
		return fmt.Errorf("backend %s does not serve the log abstraction; use kafka", n.Backend)
	}
	var err error
	if sv.proj, err = projectors.NewLog(js, n.Name, n.Backend, ls, popts...); err != nil {
		return err
	}
	// The checkpoint of a Kafka store is in memory; /readyz asks the
	// cluster too.
	sv.checkpoint = func(ctx context.Context) (uint64, error) {
		if p, ok := ls.(interface{ Ping(context.Context) error }); ok {
			if err := p.Ping(ctx); err != nil {
				return 0, err
			}
		}
		return ls.Checkpoint(ctx)
	}
	if err := sv.proj.Start(ctx); err != nil {
		return fmt.Errorf("start projector: %w", err)
	}
	return gw.AddLogNamespace(n, ls, sv.proj)
}

// kafkaSettings are the plan rows of a log namespace's Kafka topic
// (DeriveKafkaTopic); none for other backends.
func kafkaSettings(n gateway.Namespace, p gateway.Plan) []gateway.Setting {
	if p.Backend.Value != "kafka" {
		return nil
	}
	t := gateway.DeriveKafkaTopic(n, p)
	return []gateway.Setting{
		{Name: "kafka_partitions", Value: t.Partitions.Value, Reason: t.Partitions.Reason},
		{Name: "kafka_replication_factor", Value: t.ReplicationFactor.Value, Reason: t.ReplicationFactor.Reason},
	}
}
