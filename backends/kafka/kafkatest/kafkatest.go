// Package kafkatest starts an in-process Kafka-protocol cluster for tests:
// franz-go's kfake, which speaks the Kafka wire protocol on loopback ports
// so the real kafka-go client is what talks to it. It is what CI runs; a
// real broker comes with docker-compose.yml in a later issue.
package kafkatest

import (
	"testing"

	"github.com/twmb/franz-go/pkg/kfake"
)

// Start starts a one-broker kfake cluster on a random loopback port, closed
// at the end of the test, and returns it with its broker addresses
// (host:port). opts are kfake's, e.g. kfake.SeedTopics.
func Start(t testing.TB, opts ...kfake.Opt) (*kfake.Cluster, []string) {
	t.Helper()
	opts = append([]kfake.Opt{kfake.NumBrokers(1)}, opts...)
	c, err := kfake.NewCluster(opts...)
	if err != nil {
		t.Fatalf("kfake cluster: %v", err)
	}
	t.Cleanup(c.Close)
	return c, c.ListenAddrs()
}
