package node

import (
	"io"
	"log/slog"
	"strings"
	"testing"
)

// --nats-listen with port 0 must pick a free port, not nats-server's
// default 4222 (which the machine's own NATS may hold).
func TestEmbeddedNATSPortZero(t *testing.T) {
	log := slog.New(slog.NewTextHandler(io.Discard, nil))
	ns, err := startEmbeddedNATS(Config{NATSListen: "127.0.0.1:0", DataDir: t.TempDir()}, log)
	if err != nil {
		t.Fatal(err)
	}
	defer ns.Shutdown()
	url := ns.ClientURL()
	if strings.HasSuffix(url, ":4222") || strings.HasSuffix(url, ":0") {
		t.Fatalf("embedded NATS on port 0 listens at %s, want a free port", url)
	}
}
