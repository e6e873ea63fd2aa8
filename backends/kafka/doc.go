// Package kafka is the Kafka backend of the Log abstraction (segmentio's
// kafka-go): the records of one namespace are a Kafka topic, and the
// projector's checkpoint is a compacted topic beside it.
//
// # Topics
//
// Open creates, if absent, the data topic TopicName(ns) ("prism-<ns>",
// WithTopic to choose another) with WithPartitions partitions and
// WithReplicationFactor replicas, and its checkpoint topic, the data
// topic's name plus ".checkpoint", with one partition and
// cleanup.policy=compact. Existing topics keep their settings.
//
// # Records
//
// ApplyLog produces one record per Log append, keyed by the record key and
// partitioned by the Java client's murmur2 hash of it (kafka-go's
// Murmur2Balancer), so every record of a key is in one partition, in
// append order. The record value is the append's value; its headers are
// the event's CloudEvents attributes (ce-id, ce-type io.prism.log.append,
// ce-time, ce-source, ce-subject, ce-specversion, content-type,
// ce-prismnamespace, …), prism-seq (the stream sequence, decimal) and the
// writer's own headers. The Writer sends with RequiredAcks=all and an
// explicit BatchSize and BatchTimeout (kafka-go's default 1 s timeout would
// make every write that does not fill a batch take a second).
//
// # Checkpoint and delivery
//
// kafka-go has no transactions, so the records and the checkpoint cannot
// commit together. ApplyLog therefore orders them: the batch's records are
// produced and acknowledged by the cluster first, and only then is the
// batch's last stream sequence written to the checkpoint topic (key: the
// data topic; value: the sequence in decimal). Open reads the checkpoint
// topic's last record. So the checkpoint never passes a record that is not
// stored, and a restart resumes at checkpoint+1 with no gap; but a crash
// or an error between the records and the checkpoint produces that batch
// again. Delivery into the topic is at-least-once: a duplicate has the same
// ce-id and prism-seq as the first copy, and consumers deduplicate by
// ce-id (ADR 009).
//
// # Reads
//
// Fetch reads a partition by offset range (Prism's read.fetch), returning
// each record's key, value, the writer's headers, seq, ce-id and time.
// ReaderConfig configures a kafka-go consumer-group Reader for Kafka-native
// consumers, and Record decodes the messages it returns the same way.
//
// Tests run against franz-go's in-process kfake cluster (kafkatest), driven
// by the real kafka-go client; a real broker comes with docker-compose.yml
// in a later issue.
package kafka
