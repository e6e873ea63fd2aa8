package namespaces

import (
	"fmt"
	"net"
	"strings"

	"go.yaml.in/yaml/v3"
)

// KafkaConfig configures a namespace whose backend is "kafka" (abstraction
// log). Every field is optional.
type KafkaConfig struct {
	// Brokers are the bootstrap brokers, host:port. Empty means the ones
	// cmd/prism is given (--kafka-brokers or PRISM_KAFKA_BROKERS).
	Brokers Brokers `yaml:"brokers,omitempty" json:"brokers,omitzero"`
	// Topic is the data topic; empty means prism-<name>. Its checkpoint
	// topic is the same name plus ".checkpoint".
	Topic string `yaml:"topic,omitempty" json:"topic,omitempty"`
	// Partitions of the topic when Prism creates it; 0 means derived
	// (DeriveKafkaTopic). An existing topic keeps its partitions.
	Partitions int `yaml:"partitions,omitempty" json:"partitions,omitempty"`
	// ReplicationFactor of the topics when Prism creates them; 0 means
	// derived from needs.durability.
	ReplicationFactor int `yaml:"replication_factor,omitempty" json:"replication_factor,omitempty"`
}

// Brokers is a list of host:port addresses: Names, whose YAML form must
// not be an empty list (leave brokers out instead). Namespace.Validate
// checks every address.
type Brokers struct{ Names }

// NewBrokers returns the Brokers list of addrs.
func NewBrokers(addrs ...string) Brokers { return Brokers{NewNames(addrs...)} }

// UnmarshalYAML implements yaml.Unmarshaler.
func (b *Brokers) UnmarshalYAML(n *yaml.Node) error {
	var addrs []string
	if err := n.Decode(&addrs); err != nil {
		return fmt.Errorf("line %d: kafka.brokers: want a list of host:port: %w", n.Line, err)
	}
	if len(addrs) == 0 {
		return fmt.Errorf("line %d: kafka.brokers: the list is empty; name a broker or leave brokers out", n.Line)
	}
	if err := b.set(addrs); err != nil {
		return fmt.Errorf("line %d: kafka.brokers: %w", n.Line, err)
	}
	return nil
}

// ValidateBroker reports whether addr is a host:port broker address.
func ValidateBroker(addr string) error {
	host, port, err := net.SplitHostPort(addr)
	if err != nil || host == "" || port == "" || strings.Contains(addr, ",") {
		return fmt.Errorf("broker %q: want host:port, e.g. 127.0.0.1:9092", addr)
	}
	return nil
}

// validateLog checks what ties the log abstraction to the kafka backend
// and the kafka section.
func (n Namespace) validateLog() error {
	k := n.Kafka
	for i, a := range k.Brokers.List() {
		if err := ValidateBroker(a); err != nil {
			return fmt.Errorf("namespace %s: kafka.brokers[%d]: %w", n.Name, i, err)
		}
	}
	switch {
	case n.Abstraction == AbstractionLog && n.Backend != "kafka" && n.Backend != BackendAuto:
		return fmt.Errorf("namespace %s: abstraction log is served by backend kafka, not %q", n.Name, n.Backend)
	case n.Backend == "kafka" && n.Abstraction != AbstractionLog:
		return fmt.Errorf("namespace %s: backend kafka serves abstraction log only, not %s", n.Name, n.Abstraction)
	case n.Backend != "kafka" && n.Backend != BackendAuto && k != (KafkaConfig{}):
		return fmt.Errorf("namespace %s: a kafka section needs backend: kafka, not %q", n.Name, n.Backend)
	case k.Partitions < 0 || k.Partitions > 10000:
		return fmt.Errorf("namespace %s: kafka.partitions %d: use 1 to 10000, or 0 to derive it", n.Name, k.Partitions)
	case k.ReplicationFactor < 0 || k.ReplicationFactor > 7:
		return fmt.Errorf("namespace %s: kafka.replication_factor %d: use 1 to 7, or 0 to derive it", n.Name, k.ReplicationFactor)
	case n.PublishChanges && n.Abstraction == AbstractionLog:
		return fmt.Errorf("namespace %s: publish_changes is not served for abstraction log; consumers read the Kafka topic", n.Name)
	}
	for _, c := range k.Topic {
		if !(c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9' || c == '.' || c == '_' || c == '-') {
			return fmt.Errorf("namespace %s: kafka.topic %q: only a-z, A-Z, 0-9, '.', '_' and '-' are allowed", n.Name, k.Topic)
		}
	}
	switch {
	case len(k.Topic) > 200:
		return fmt.Errorf("namespace %s: kafka.topic is %d characters; the limit is 200", n.Name, len(k.Topic))
	case k.Topic == "." || k.Topic == "..":
		return fmt.Errorf("namespace %s: kafka.topic %q is not a valid topic name", n.Name, k.Topic)
	}
	return nil
}
