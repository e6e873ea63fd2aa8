package natstest

import (
	"context"
	"os"
	"testing"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
)

// StandaloneURLEnv names the environment variable with the URL of the
// standalone nats-server: a server running as its own process, which
// Prism did not start.
const StandaloneURLEnv = "PRISM_STANDALONE_NATS_URL"

// DefaultStandaloneURL is the standalone server when StandaloneURLEnv is
// not set: the dev/CI machine's nats-server.
const DefaultStandaloneURL = "nats://127.0.0.1:4222"

// Standalone connects to the standalone nats-server and returns its URL, a
// connection (closed at cleanup) and a JetStream context. The URL is
// $PRISM_STANDALONE_NATS_URL, else DefaultStandaloneURL. When the variable
// is set the server is required: the test fails if it does not answer or
// has no JetStream. When it is not set the test is skipped instead, saying
// how to run it (`make test-standalone` starts a current server for it).
func Standalone(t testing.TB) (string, *nats.Conn, jetstream.JetStream) {
	t.Helper()
	url, required := os.LookupEnv(StandaloneURLEnv)
	if url == "" {
		url, required = DefaultStandaloneURL, false
	}
	unavailable := func(format string, args ...any) {
		t.Helper()
		if required {
			t.Fatalf("natstest: "+format+" (%s is set: the server is required)", append(args, StandaloneURLEnv)...)
		}
		t.Skipf("natstest: "+format+": start one there, or run make test-standalone", args...)
	}
	nc, err := nats.Connect(url, nats.Timeout(time.Second), nats.MaxReconnects(0))
	if err != nil {
		unavailable("no standalone nats-server at %s: %v", url, err)
	}
	t.Cleanup(nc.Close)
	js := JetStream(t, nc)
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if _, err := js.AccountInfo(ctx); err != nil {
		unavailable("the nats-server at %s has no JetStream: %v", url, err)
	}
	return url, nc, js
}
