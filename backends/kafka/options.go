package kafka

import (
	"errors"
	"fmt"
	"time"

	"github.com/prism-data/prism/backends/internal/kit"
)

// Defaults of the options.
const (
	// DefaultBatchSize is the most messages the Writer sends to one
	// partition in one produce request, and the most changes ApplyLog
	// hands the Writer at once (see WithBatchSize).
	DefaultBatchSize = 1000
	// DefaultBatchTimeout is how long the Writer waits for a partition's
	// batch to fill before it sends it. kafka-go's own default is 1 s,
	// which makes every write that does not fill a batch take a second.
	DefaultBatchTimeout = 2 * time.Millisecond
	// DefaultBatchBytes is the most bytes of one produce request to a
	// partition; a record (value, key and headers) must fit in it.
	DefaultBatchBytes = 4 << 20
	// DefaultMaxAttempts is how often the Writer tries a produce request
	// before ApplyLog returns the error (and the projector retries the
	// batch with backoff).
	DefaultMaxAttempts = 3
)

type options struct {
	topic        string
	partitions   int
	replication  int
	batchSize    int
	batchTimeout time.Duration
	batchBytes   int
	maxAttempts  int
	dialTimeout  time.Duration
}

func defaultOptions(namespace string) options {
	return options{
		topic:        TopicName(namespace),
		partitions:   1,
		replication:  1,
		batchSize:    DefaultBatchSize,
		batchTimeout: DefaultBatchTimeout,
		batchBytes:   DefaultBatchBytes,
		maxAttempts:  DefaultMaxAttempts,
		dialTimeout:  10 * time.Second,
	}
}

// Option configures Open. Each option validates its argument and makes Open
// fail with a descriptive error when it is invalid.
type Option func(*options) error

// WithTopic sets the data topic (default TopicName(namespace)); the
// checkpoint topic is its name plus CheckpointSuffix. A Kafka topic name
// is 1 to 249 characters of [a-zA-Z0-9._-], leaving room for the suffix.
func WithTopic(name string) Option {
	return func(o *options) error {
		if err := validTopic(name); err != nil {
			return fmt.Errorf("WithTopic: %w", err)
		}
		o.topic = name
		return nil
	}
}

// WithPartitions sets the partitions of a topic Open creates (default 1).
// An existing topic keeps its partitions. n must be 1 to 10000.
func WithPartitions(n int) Option {
	return func(o *options) error {
		o.partitions = n
		return kit.CheckRange("WithPartitions", n, 1, 10000, "partitions")
	}
}

// WithReplicationFactor sets the replication factor of the topics Open
// creates (default 1; 3 on a production cluster). An existing topic keeps
// its replication. n must be 1 to 7.
func WithReplicationFactor(n int) Option {
	return func(o *options) error {
		o.replication = n
		return kit.CheckRange("WithReplicationFactor", n, 1, 7, "")
	}
}

// WithBatchSize sets the Writer's BatchSize, and ApplyLog hands it at most
// that many changes per WriteMessages call, so that each partition's share
// of a call is one produce request and a failed request never leaves a
// later one of the same partition written before it (default
// DefaultBatchSize; 1 to 100000).
func WithBatchSize(n int) Option {
	return func(o *options) error {
		o.batchSize = n
		return kit.CheckRange("WithBatchSize", n, 1, 100000, "")
	}
}

// WithBatchTimeout sets the Writer's BatchTimeout: the longest a partial
// batch waits before it is sent, and so the least time an ApplyLog of
// fewer than BatchSize changes per partition takes (default
// DefaultBatchTimeout; 0 < d ≤ 1s).
func WithBatchTimeout(d time.Duration) Option {
	return func(o *options) error {
		if d <= 0 || d > time.Second {
			return fmt.Errorf("WithBatchTimeout: %v, need more than 0 and at most 1s", d)
		}
		o.batchTimeout = d
		return nil
	}
}

// WithMaxAttempts sets how often the Writer tries one produce request
// before ApplyLog fails (default DefaultMaxAttempts; 1 to 100).
func WithMaxAttempts(n int) Option {
	return func(o *options) error {
		o.maxAttempts = n
		return kit.CheckRange("WithMaxAttempts", n, 1, 100, "")
	}
}

// CheckpointSuffix ends the name of a data topic's checkpoint topic.
const CheckpointSuffix = ".checkpoint"

// maxTopicLen is Kafka's longest topic name.
const maxTopicLen = 249

func validTopic(name string) error {
	if name == "" || len(name)+len(CheckpointSuffix) > maxTopicLen {
		return fmt.Errorf("topic %q: need 1 to %d characters", name, maxTopicLen-len(CheckpointSuffix))
	}
	if name == "." || name == ".." {
		return errors.New(`topic "." and ".." are not allowed`)
	}
	for i := 0; i < len(name); i++ {
		c := name[i]
		if !(c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9' || c == '.' || c == '_' || c == '-') {
			return fmt.Errorf("topic %q: only a-z, A-Z, 0-9, '.', '_' and '-' are allowed", name)
		}
	}
	return nil
}
