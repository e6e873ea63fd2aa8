package namespaces

import (
	"fmt"
	"math"
)

// Rates the Kafka rules of the plan use (docs/performance.md).
const (
	// PartitionRateKafkaLog: the Log projector into Kafka (kfake in the
	// same process, batches of 256) measured at 57k–64k events/s; half the
	// lower end, as for the other projectors.
	PartitionRateKafkaLog = 28_000
	// KafkaConsumerPartitionRate is the records per second one
	// consumer-group member is planned to handle per partition: an
	// assumption (consumers do their own work per record), not a
	// measurement.
	KafkaConsumerPartitionRate = 5_000
)

// KafkaTopic is the derived settings of a log namespace's Kafka topic.
type KafkaTopic struct {
	// Partitions is the partition count of the topic when Prism creates
	// it.
	Partitions Derived[int]
	// ReplicationFactor is the replication factor of the topic and its
	// checkpoint topic when Prism creates them.
	ReplicationFactor Derived[int]
}

// DeriveKafkaTopic derives the topic settings of log namespace ns from its
// kafka section, else from its needs and p, the plan Derive made for it:
// partitions so that each consumer-group member handles at most
// KafkaConsumerPartitionRate records/s of write_rps (at least 1, at least
// p.Partitions), and a replication factor of 3 for durability durable or
// replicated (the producer waits for every in-sync replica), else 1. It is
// pure.
func DeriveKafkaTopic(ns Namespace, p Plan) KafkaTopic {
	var t KafkaTopic
	switch wr := ns.Needs.WriteRPS; {
	case ns.Kafka.Partitions > 0:
		t.Partitions = Derived[int]{ns.Kafka.Partitions, "kafka.partitions named in the spec"}
	case wr > 0:
		n := max(p.Partitions.Value, 1, int(math.Ceil(float64(wr)/KafkaConsumerPartitionRate)))
		t.Partitions = Derived[int]{n, fmt.Sprintf("write_rps=%d at %d records/s per consumer-group member and partition", wr, KafkaConsumerPartitionRate)}
	default:
		t.Partitions = Derived[int]{max(p.Partitions.Value, 1), "write_rps not stated: one partition keeps every record in one total order"}
	}
	switch {
	case ns.Kafka.ReplicationFactor > 0:
		t.ReplicationFactor = Derived[int]{ns.Kafka.ReplicationFactor, "kafka.replication_factor named in the spec"}
	case p.Durability == Durable || p.Durability == Replicated:
		t.ReplicationFactor = Derived[int]{3, fmt.Sprintf("durability=%s: the projector writes with acks=all, so a record is on every in-sync replica of 3 before its checkpoint moves (set min.insync.replicas=2 on the cluster)", p.Durability)}
	default:
		t.ReplicationFactor = Derived[int]{1, "durability=best-effort: one copy; the stream keeps every event for a replay"}
	}
	return t
}
