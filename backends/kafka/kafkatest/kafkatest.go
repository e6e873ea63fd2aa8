// Package kafkatest starts an in-process Kafka-protocol cluster for tests:
// franz-go's kfake, which speaks the Kafka wire protocol on loopback ports
// so the real kafka-go client is what talks to it. It is what CI runs; a
// real broker comes with docker-compose.yml in a later issue.
package kafkatest

import (
	"net"
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

// NoBroker returns a loopback host:port nothing listens on (a port just
// freed), for tests of what happens without a broker.
func NoBroker(t testing.TB) string {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := l.Addr().String()
	if err := l.Close(); err != nil {
		t.Fatal(err)
	}
	return addr
}
