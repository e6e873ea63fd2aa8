package kafka

import (
	"context"
	"errors"
	"fmt"
	"net"
	"strings"
	"time"

	"github.com/segmentio/kafka-go"
)

// Reachable reports whether one of brokers (host:port) accepts a TCP
// connection, trying them in order, each for at most timeout (and within
// ctx). It does not check that a Kafka broker answers there, only that
// something listens. When none does its error says so and names them all:
// "no Kafka broker at host:port: <why the last dial failed>".
func Reachable(ctx context.Context, brokers []string, timeout time.Duration) error {
	if len(brokers) == 0 {
		return errors.New("no Kafka broker named; name at least one host:port")
	}
	d := net.Dialer{Timeout: timeout}
	var last error
	for _, b := range brokers {
		conn, err := d.DialContext(ctx, "tcp", b)
		if err == nil {
			_ = conn.Close()
			return nil
		}
		last = err
	}
	return fmt.Errorf("no Kafka broker at %s: %w", strings.Join(brokers, ", "), last)
}

// noBroker turns kafka-go's "Broker Not Available", which is all it says
// when it could connect to none of brokers, into Reachable's error naming
// them; any other error, or one while a broker is reachable, is err.
func noBroker(ctx context.Context, brokers []string, timeout time.Duration, err error) error {
	if !errors.Is(err, kafka.BrokerNotAvailable) {
		return err
	}
	if rerr := Reachable(ctx, brokers, timeout); rerr != nil {
		return rerr
	}
	return err
}
