package node

import (
	"strings"
	"testing"

	"github.com/prism-data/prism/namespaces"
)

func TestKafkaBrokersPrecedence(t *testing.T) {
	ns := namespaces.Namespace{Name: "clicks", Abstraction: namespaces.AbstractionLog, Backend: "kafka"}
	withYAML := ns
	withYAML.Kafka.Brokers = namespaces.NewBrokers("yaml:9092")
	tests := []struct {
		name    string
		ns      namespaces.Namespace
		flag    string
		env     string
		want    string
		wantErr string
	}{
		{"namespace file first", withYAML, "flag:9092", "env:9092", "yaml:9092", ""},
		{"then the flag", ns, "a:9092, b:9093", "env:9092", "a:9092,b:9093", ""},
		{"then the environment", ns, "", "env:9092", "env:9092", ""},
		{"none", ns, "", "", "", "backend kafka needs brokers"},
		{"bad flag", ns, "a", "", "", `--kafka-brokers: broker "a"`},
		{"bad environment", ns, "", "a:1,", "", `PRISM_KAFKA_BROKERS: broker ""`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Setenv("PRISM_KAFKA_BROKERS", tt.env)
			list, err := ResolveKafkaBrokers(tt.flag)
			var got []string
			if err == nil {
				got, err = kafkaBrokers(Config{KafkaBrokers: list}, tt.ns)
			}
			if tt.wantErr != "" {
				if err == nil || !strings.Contains(err.Error(), tt.wantErr) {
					t.Fatalf("err %v, want %q", err, tt.wantErr)
				}
				return
			}
			if err != nil || strings.Join(got, ",") != tt.want {
				t.Fatalf("brokers %v, %v; want %s", got, err, tt.want)
			}
		})
	}
}
