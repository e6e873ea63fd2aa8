package kafka

import (
	"context"
	"errors"
	"fmt"
	"io"
	"strconv"
	"sync"
	"sync/atomic"
	"time"

	"github.com/segmentio/kafka-go"

	"github.com/prism-data/prism/subjects"

	"github.com/prism-data/prism/backends/internal/kit"
)

// defaultTimeout bounds a call whose context has no deadline.
const defaultTimeout = 30 * time.Second

// Store is the Kafka topic of one Log namespace and its checkpoint topic.
// Its methods are safe for concurrent use. Create it with Open and release
// it with Close.
type Store struct {
	brokers    []string
	topic      string
	cpTopic    string
	partitions int
	partIDs    []int // 0 to partitions-1, for the balancer
	opts       options

	transport *kafka.Transport
	client    *kafka.Client
	writer    *kafka.Writer // data topic, balanced by key
	cpWriter  *kafka.Writer // checkpoint topic, one record per batch
	balancer  kafka.Murmur2Balancer

	// gate is entered by every operation and closed by Close, so Close
	// waits for the operations in flight and none starts after it.
	gate kit.Gate

	// wmu serializes ApplyLog calls. checkpoint is the last checkpoint
	// written or read; it changes under wmu and is read without it, so a
	// Checkpoint call never waits for a slow batch.
	wmu        sync.Mutex
	checkpoint atomic.Uint64
}

// TopicName returns the data topic of namespace ns: "prism-" and the
// namespace (a valid namespace is a valid topic name).
func TopicName(ns string) string { return "prism-" + ns }

// Open opens the topic of namespace on the Kafka cluster of brokers
// (host:port, at least one), creating it if absent with the options'
// partitions and replication factor, together with its checkpoint topic
// (one partition, cleanup.policy=compact), and reads the checkpoint.
// An existing topic keeps its partitions and replication.
//
// It returns an error for an invalid namespace, option or broker list, or
// when the cluster cannot be reached or refuses the topics; it never
// returns a partly opened Store.
func Open(ctx context.Context, brokers []string, namespace string, opts ...Option) (*Store, error) {
	o := defaultOptions(namespace)
	if err := kit.ApplyOptions(&o, opts); err != nil {
		return nil, fmt.Errorf("open kafka store: %w", err)
	}
	if err := subjects.ValidateNamespace(namespace); err != nil {
		return nil, fmt.Errorf("open kafka store: %w", err)
	}
	if len(brokers) == 0 {
		return nil, errors.New("open kafka store: no brokers; name at least one host:port")
	}
	for _, b := range brokers {
		if b == "" {
			return nil, errors.New("open kafka store: empty broker address")
		}
	}
	ctx, cancel := withTimeout(ctx)
	defer cancel()

	addr := kafka.TCP(brokers...)
	transport := &kafka.Transport{DialTimeout: o.dialTimeout, ClientID: "prism"}
	s := &Store{
		brokers:   append([]string(nil), brokers...),
		topic:     o.topic,
		cpTopic:   o.topic + CheckpointSuffix,
		opts:      o,
		transport: transport,
		client:    &kafka.Client{Addr: addr, Transport: transport, Timeout: defaultTimeout},
		balancer:  kafka.Murmur2Balancer{Consistent: true},
	}
	if err := s.ensureTopics(ctx); err != nil {
		transport.CloseIdleConnections()
		return nil, fmt.Errorf("open kafka store: %w", noBroker(ctx, brokers, o.dialTimeout, err))
	}
	cp, err := s.readCheckpoint(ctx)
	if err != nil {
		transport.CloseIdleConnections()
		return nil, fmt.Errorf("open kafka store: %w", err)
	}
	s.checkpoint.Store(cp)
	s.writer = &kafka.Writer{
		Addr:  addr,
		Topic: s.topic,
		// Murmur2 is the Java client's default partitioner, so a Java
		// producer puts a key in the same partition; Consistent hashes an
		// empty key too instead of spreading it at random.
		Balancer:     &s.balancer,
		MaxAttempts:  o.maxAttempts,
		BatchSize:    o.batchSize,
		BatchBytes:   int64(o.batchBytes),
		BatchTimeout: o.batchTimeout,
		RequiredAcks: kafka.RequireAll,
		Transport:    transport,
	}
	s.cpWriter = &kafka.Writer{
		Addr:         addr,
		Topic:        s.cpTopic,
		Balancer:     &kafka.LeastBytes{},
		MaxAttempts:  o.maxAttempts,
		BatchSize:    1, // one record per batch: sent at once
		BatchTimeout: o.batchTimeout,
		RequiredAcks: kafka.RequireAll,
		Transport:    transport,
	}
	return s, nil
}

// Topic is the data topic.
func (s *Store) Topic() string { return s.topic }

// CheckpointTopic is the checkpoint topic.
func (s *Store) CheckpointTopic() string { return s.cpTopic }

// Partitions is the number of partitions of the data topic, as Open found
// it.
func (s *Store) Partitions() int { return s.partitions }

// Brokers are the bootstrap brokers the Store was opened with.
func (s *Store) Brokers() []string { return append([]string(nil), s.brokers...) }

// PartitionOf returns the partition the records of key go to: the Java
// client's murmur2 partitioner over the topic's partitions.
func (s *Store) PartitionOf(key []byte) int {
	return s.balancer.Balance(kafka.Message{Key: key}, s.partIDs...)
}

// ensureTopics creates the data and checkpoint topics if absent and reads
// the data topic's partition count.
func (s *Store) ensureTopics(ctx context.Context) error {
	resp, err := s.client.CreateTopics(ctx, &kafka.CreateTopicsRequest{Topics: []kafka.TopicConfig{
		{Topic: s.topic, NumPartitions: s.opts.partitions, ReplicationFactor: s.opts.replication},
		{
			Topic: s.cpTopic, NumPartitions: 1, ReplicationFactor: s.opts.replication,
			ConfigEntries: []kafka.ConfigEntry{{ConfigName: "cleanup.policy", ConfigValue: "compact"}},
		},
	}})
	if err != nil {
		return fmt.Errorf("create topics: %w", err)
	}
	for name, terr := range resp.Errors {
		if errors.Is(terr, kafka.InvalidReplicationFactor) {
			brokers := "?"
			if md, err := s.client.Metadata(ctx, &kafka.MetadataRequest{}); err == nil {
				brokers = strconv.Itoa(len(md.Brokers))
			}
			return fmt.Errorf("create topic %s: replication factor %d needs as many brokers, the cluster has %s: set kafka.replication_factor (or lower needs.durability): %w", name, s.opts.replication, brokers, terr)
		}
		if terr != nil && !errors.Is(terr, kafka.TopicAlreadyExists) {
			return fmt.Errorf("create topic %s: %w", name, terr)
		}
	}
	// A topic just created may not be in every broker's metadata yet.
	for attempt := 0; ; attempt++ {
		n, err := s.partitionCount(ctx, s.topic)
		if err == nil && n > 0 {
			s.partitions = n
			s.partIDs = make([]int, n)
			for i := range s.partIDs {
				s.partIDs[i] = i
			}
			return nil
		}
		if attempt >= 50 {
			return fmt.Errorf("metadata of topic %s: %d partitions, %w", s.topic, n, err)
		}
		select {
		case <-ctx.Done():
			return fmt.Errorf("metadata of topic %s: %w", s.topic, ctx.Err())
		case <-time.After(20 * time.Millisecond):
		}
	}
}

func (s *Store) partitionCount(ctx context.Context, topic string) (int, error) {
	md, err := s.client.Metadata(ctx, &kafka.MetadataRequest{Topics: []string{topic}})
	if err != nil {
		return 0, err
	}
	for _, t := range md.Topics {
		if t.Name == topic {
			return len(t.Partitions), t.Error
		}
	}
	return 0, nil
}

// readCheckpoint reads the last record of the checkpoint topic: the
// checkpoint in decimal, keyed by the data topic. 0 if there is none.
func (s *Store) readCheckpoint(ctx context.Context) (uint64, error) {
	first, end, err := s.offsets(ctx, s.cpTopic, 0)
	if err != nil {
		return 0, fmt.Errorf("checkpoint offsets: %w", err)
	}
	if end <= first {
		return 0, nil
	}
	var cp uint64
	found := false
	_, err = s.fetchRecords(ctx, s.cpTopic, 0, end-1, func(r kafka.Record) (bool, error) {
		if r.Offset != end-1 {
			return r.Offset < end-1, nil
		}
		key, value, err := readBytes(r)
		if err != nil {
			return false, err
		}
		if string(key) != s.topic {
			return false, fmt.Errorf("%w: offset %d of %s has key %q, want %q", ErrCorrupt, r.Offset, s.cpTopic, key, s.topic)
		}
		if cp, err = strconv.ParseUint(string(value), 10, 64); err != nil {
			return false, fmt.Errorf("%w: offset %d of %s: %v", ErrCorrupt, r.Offset, s.cpTopic, err)
		}
		found = true
		return false, nil
	})
	if err != nil {
		return 0, fmt.Errorf("read checkpoint: %w", err)
	}
	if !found {
		return 0, fmt.Errorf("read checkpoint: no record at offset %d of %s", end-1, s.cpTopic)
	}
	return cp, nil
}

// offsets returns the first kept offset and the end offset (high
// watermark) of a partition.
func (s *Store) offsets(ctx context.Context, topic string, partition int) (first, end int64, err error) {
	resp, err := s.client.ListOffsets(ctx, &kafka.ListOffsetsRequest{Topics: map[string][]kafka.OffsetRequest{
		topic: {kafka.FirstOffsetOf(partition), kafka.LastOffsetOf(partition)},
	}})
	if err != nil {
		return 0, 0, err
	}
	for _, p := range resp.Topics[topic] {
		if p.Partition == partition {
			return p.FirstOffset, p.LastOffset, p.Error
		}
	}
	return 0, 0, fmt.Errorf("no offsets of %s/%d in the reply", topic, partition)
}

// fetchRecords fetches from offset of a partition and calls each with the
// records of one response, in offset order, until it returns false or an
// error. Records before offset may be among them. It returns the
// partition's high watermark as the response gave it.
func (s *Store) fetchRecords(ctx context.Context, topic string, partition int, offset int64, each func(kafka.Record) (bool, error)) (highWatermark int64, err error) {
	resp, err := s.client.Fetch(ctx, &kafka.FetchRequest{
		Topic: topic, Partition: partition, Offset: offset,
		MinBytes: 1, MaxBytes: fetchMaxBytes, MaxWait: fetchMaxWait,
	})
	if err != nil {
		return 0, err
	}
	if resp.Error != nil {
		return 0, resp.Error
	}
	return resp.HighWatermark, eachRecord(resp.Records, each)
}

func eachRecord(rr kafka.RecordReader, each func(kafka.Record) (bool, error)) error {
	if rr == nil {
		return nil
	}
	for {
		r, err := rr.ReadRecord()
		if errors.Is(err, io.EOF) {
			return nil
		}
		if err != nil {
			return err
		}
		more, err := each(*r)
		if err != nil || !more {
			return err
		}
	}
}

// readBytes reads a record's key and value.
func readBytes(r kafka.Record) (key, value []byte, err error) {
	if r.Key != nil {
		if key, err = io.ReadAll(r.Key); err != nil {
			return nil, nil, fmt.Errorf("record key: %w", err)
		}
	}
	if r.Value != nil {
		if value, err = io.ReadAll(r.Value); err != nil {
			return nil, nil, fmt.Errorf("record value: %w", err)
		}
	}
	return key, value, nil
}

// Checkpoint returns the highest stream sequence of which every record is
// acknowledged by the cluster (0 for a new topic), as Open read it or
// ApplyLog last wrote it: it does no I/O. Errors: ErrClosed.
func (s *Store) Checkpoint(ctx context.Context) (uint64, error) {
	unlock, err := s.read()
	if err != nil {
		return 0, err
	}
	defer unlock()
	return s.checkpoint.Load(), nil
}

// Ping asks the leader of the data topic's partition 0 for its offsets
// (kafka-go answers metadata requests from a cache, so those prove
// nothing): nil when it answers. Errors: ErrClosed, or the cluster's error.
func (s *Store) Ping(ctx context.Context) error {
	unlock, err := s.read()
	if err != nil {
		return err
	}
	defer unlock()
	ctx, cancel := withTimeout(ctx)
	defer cancel()
	if _, _, err := s.offsets(ctx, s.topic, 0); err != nil {
		return fmt.Errorf("ping kafka: %w", err)
	}
	return nil
}

// read lets one operation in and returns the function that ends it, or
// returns ErrClosed.
func (s *Store) read() (func(), error) {
	if err := s.gate.Enter(ErrClosed); err != nil {
		return nil, err
	}
	return s.gate.Leave, nil
}

// Close waits for the operations in flight, flushes and closes the writers
// and the connections. It is idempotent; the Store is unusable afterwards.
func (s *Store) Close() error {
	return s.gate.Close(func() error {
		err := errors.Join(s.writer.Close(), s.cpWriter.Close())
		s.transport.CloseIdleConnections()
		if err != nil {
			return fmt.Errorf("close kafka store: %w", err)
		}
		return nil
	})
}

func withTimeout(ctx context.Context) (context.Context, context.CancelFunc) {
	if _, ok := ctx.Deadline(); ok {
		return context.WithCancel(ctx)
	}
	return context.WithTimeout(ctx, defaultTimeout)
}
