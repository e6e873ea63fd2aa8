package node

import (
	"errors"
	"io"
	"log/slog"
	"net"
	"regexp"
	"strings"
	"testing"
)

// --nats-listen with port 0 must pick a free port, not nats-server's
// default 4222 (which the machine's own NATS may hold).
func TestEmbeddedNATSPortZero(t *testing.T) {
	log := slog.New(slog.NewTextHandler(io.Discard, nil))
	ns, err := startEmbeddedNATS(Config{NATSListen: "127.0.0.1:0", DataDir: t.TempDir()}, nil, log)
	if err != nil {
		t.Fatal(err)
	}
	defer ns.Shutdown()
	url := ns.ClientURL()
	if strings.HasSuffix(url, ":4222") || strings.HasSuffix(url, ":0") {
		t.Fatalf("embedded NATS on port 0 listens at %s, want a free port", url)
	}
}

// A --nats-listen port another process holds is refused with a hint that
// names another port, free when the hint was made (not the taken one),
// and the running server at the taken address as --nats-url. The port
// taken is 4333, the one earlier hints always suggested.
func TestEmbeddedNATSPortTakenHint(t *testing.T) {
	const port = "4333"
	if held, err := net.Listen("tcp", "127.0.0.1:"+port); err == nil {
		defer held.Close()
	} // else another process holds it: taken all the same.
	log := slog.New(slog.NewTextHandler(io.Discard, nil))
	ns, err := startEmbeddedNATS(Config{NATSListen: "127.0.0.1:" + port, DataDir: t.TempDir()}, nil, log)
	if err == nil {
		ns.Shutdown()
		t.Fatalf("listen on the taken port %s succeeded", port)
	}
	msg := err.Error()
	m := regexp.MustCompile(`--nats-listen (127\.0\.0\.1:(\d+)) `).FindStringSubmatch(msg)
	if m == nil || m[2] == port || m[2] == "0" {
		t.Fatalf("hint for the taken port %s suggests %v, want another port:\n%s", port, m, msg)
	}
	l, lerr := net.Listen("tcp", m[1])
	if lerr != nil {
		t.Fatalf("suggested %s is not free: %v\n%s", m[1], lerr, msg)
	}
	l.Close()
	if !strings.HasSuffix(msg, "--nats-url nats://127.0.0.1:"+port) || !strings.Contains(msg, "127.0.0.1:0 takes any free port") {
		t.Fatalf("hint does not offer --nats-url of the running server and port 0:\n%s", msg)
	}
	// An unspecified host listens everywhere: the running server is
	// reached on the loopback.
	if err := portTaken("0.0.0.0:"+port, "0.0.0.0", port, errors.New("address in use")); !strings.HasSuffix(err.Error(), "--nats-url nats://127.0.0.1:"+port) {
		t.Fatalf("hint for 0.0.0.0:%s: %v", port, err)
	}
}
