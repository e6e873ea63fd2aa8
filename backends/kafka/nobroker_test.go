package kafka_test

import (
	"context"
	"strings"
	"testing"
	"time"

	"github.com/prism-data/prism/backends/kafka"
	"github.com/prism-data/prism/backends/kafka/kafkatest"
)

// With nothing listening, Open says so and where, not kafka-go's "Broker
// Not Available".
func TestOpenNoBrokerNamesTheAddress(t *testing.T) {
	addr := kafkatest.NoBroker(t)
	_, err := kafka.Open(context.Background(), []string{addr}, "orders")
	want := "open kafka store: no Kafka broker at " + addr + ": "
	if err == nil || !strings.HasPrefix(err.Error(), want) || strings.Contains(err.Error(), "Broker Not Available") {
		t.Fatalf("Open = %v, want an error starting %q", err, want)
	}
}

func TestReachable(t *testing.T) {
	down := kafkatest.NoBroker(t)
	_, up := kafkatest.Start(t)
	ctx := context.Background()
	if err := kafka.Reachable(ctx, append([]string{down}, up...), time.Second); err != nil {
		t.Errorf("Reachable(down, up) = %v, want nil", err)
	}
	err := kafka.Reachable(ctx, []string{down, down}, time.Second)
	if want := "no Kafka broker at " + down + ", " + down + ": "; err == nil || !strings.HasPrefix(err.Error(), want) {
		t.Errorf("Reachable(down, down) = %v, want an error starting %q", err, want)
	}
	if err := kafka.Reachable(ctx, nil, time.Second); err == nil {
		t.Error("Reachable(none) = nil, want an error")
	}
}
