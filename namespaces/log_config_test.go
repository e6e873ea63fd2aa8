package namespaces_test

import (
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/prism-data/prism/namespaces"
)

func TestLogNamespaceValidation(t *testing.T) {
	log := namespaces.Namespace{Name: "clicks", Abstraction: namespaces.AbstractionLog, Backend: "kafka"}
	tests := []struct {
		name    string
		edit    func(n *namespaces.Namespace)
		wantErr string
	}{
		{"valid", func(*namespaces.Namespace) {}, ""},
		{"valid with a kafka section", func(n *namespaces.Namespace) {
			n.Kafka = namespaces.KafkaConfig{Brokers: namespaces.NewBrokers("k1:9092", "k2:9092"), Topic: "clicks.v1", Partitions: 6, ReplicationFactor: 3}
		}, ""},
		{"auto backend", func(n *namespaces.Namespace) { n.Backend = namespaces.BackendAuto }, ""},
		{"log on sqlite", func(n *namespaces.Namespace) { n.Backend = "sqlite" }, "abstraction log is served by backend kafka"},
		{"kafka for keyvalue", func(n *namespaces.Namespace) { n.Abstraction = namespaces.AbstractionKeyValue }, "backend kafka serves abstraction log only"},
		{"kafka section on sqlite", func(n *namespaces.Namespace) {
			n.Abstraction, n.Backend, n.Kafka.Topic = namespaces.AbstractionKeyValue, "sqlite", "t"
		}, "a kafka section needs backend: kafka"},
		{"negative partitions", func(n *namespaces.Namespace) { n.Kafka.Partitions = -1 }, "kafka.partitions -1"},
		{"replication 8", func(n *namespaces.Namespace) { n.Kafka.ReplicationFactor = 8 }, "kafka.replication_factor 8"},
		{"bad topic", func(n *namespaces.Namespace) { n.Kafka.Topic = "a/b" }, "kafka.topic"},
		{"publish changes", func(n *namespaces.Namespace) { n.PublishChanges = true }, "publish_changes is not served"},
		{"retention", func(n *namespaces.Namespace) { n.Retention = namespaces.Duration(3600e9) }, "retention applies to abstraction timeseries only"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			n := log
			tt.edit(&n)
			err := n.Validate()
			if tt.wantErr == "" && err != nil || tt.wantErr != "" && (err == nil || !strings.Contains(err.Error(), tt.wantErr)) {
				t.Fatalf("Validate: %v, want %q", err, tt.wantErr)
			}
		})
	}
}

func TestLoadLogNamespaceFile(t *testing.T) {
	tests := []struct {
		name    string
		yaml    string
		want    []string
		wantErr string
	}{
		{"brokers", "name: clicks\nabstraction: log\nbackend: kafka\nkafka:\n  brokers: [k1:9092, 'k2:9093']\n  partitions: 6\n", []string{"k1:9092", "k2:9093"}, ""},
		{"no section", "name: clicks\nabstraction: log\nbackend: kafka\n", nil, ""},
		{"bad broker", "name: clicks\nabstraction: log\nbackend: kafka\nkafka:\n  brokers: [k1]\n", nil, `broker "k1": want host:port`},
		{"empty list", "name: clicks\nabstraction: log\nbackend: kafka\nkafka:\n  brokers: []\n", nil, "the list is empty"},
		{"unknown field", "name: clicks\nabstraction: log\nbackend: kafka\nkafka:\n  broker: k1:9092\n", nil, "field broker not found"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			path := filepath.Join(t.TempDir(), "ns.yaml")
			if err := os.WriteFile(path, []byte(tt.yaml), 0o644); err != nil {
				t.Fatal(err)
			}
			ns, err := namespaces.LoadNamespaceFile(path)
			if tt.wantErr != "" {
				if err == nil || !strings.Contains(err.Error(), tt.wantErr) {
					t.Fatalf("err = %v, want it to contain %q", err, tt.wantErr)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if got := ns.Kafka.Brokers.List(); strings.Join(got, ",") != strings.Join(tt.want, ",") {
				t.Fatalf("brokers %v, want %v", got, tt.want)
			}
		})
	}
}

func TestDeriveKafkaTopic(t *testing.T) {
	tests := []struct {
		name            string
		kafka           namespaces.KafkaConfig
		needs           namespaces.Needs
		cluster         namespaces.Cluster
		wantPartitions  int
		wantReplication int
	}{
		{"defaults", namespaces.KafkaConfig{}, namespaces.Needs{}, namespaces.Cluster{Nodes: 1}, 1, 1},
		{"write rate", namespaces.KafkaConfig{}, namespaces.Needs{WriteRPS: 12_000}, namespaces.Cluster{Nodes: 1}, 3, 1},
		{"durable", namespaces.KafkaConfig{}, namespaces.Needs{Durability: namespaces.Durable}, namespaces.Cluster{Nodes: 1, SyncAlways: true}, 1, 3},
		{"replicated", namespaces.KafkaConfig{}, namespaces.Needs{Durability: namespaces.Replicated}, namespaces.Cluster{Nodes: 3}, 1, 3},
		{"named", namespaces.KafkaConfig{Partitions: 12, ReplicationFactor: 2}, namespaces.Needs{WriteRPS: 12_000, Durability: namespaces.Replicated}, namespaces.Cluster{Nodes: 3}, 12, 2},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			ns := namespaces.Namespace{Name: "clicks", Abstraction: namespaces.AbstractionLog, Backend: namespaces.BackendAuto, Kafka: tt.kafka, Needs: tt.needs}
			p, err := namespaces.Derive(ns, tt.cluster)
			if err != nil {
				t.Fatalf("Derive: %v", err)
			}
			if p.Backend.Value != "kafka" {
				t.Fatalf("backend %q, want kafka", p.Backend.Value)
			}
			topic := namespaces.DeriveKafkaTopic(ns, p)
			if topic.Partitions.Value != tt.wantPartitions || topic.ReplicationFactor.Value != tt.wantReplication {
				t.Fatalf("partitions %d (%s), replication %d (%s); want %d, %d", topic.Partitions.Value, topic.Partitions.Reason,
					topic.ReplicationFactor.Value, topic.ReplicationFactor.Reason, tt.wantPartitions, tt.wantReplication)
			}
			if topic.Partitions.Reason == "" || topic.ReplicationFactor.Reason == "" {
				t.Fatal("a derived setting has no reason")
			}
		})
	}
}
