package itest

import (
	"context"
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/prism-data/prism/internal/natsconn"
	"github.com/prism-data/prism/subjects"
)

// TestSecurityOnExternalServer is the production setup of
// docs/security.md: a nats-server of its own process runs the
// configuration prism auth server-config prints, prism serve connects to
// it as the service user and runs the auth callout; an admin (nkey)
// applies, an application (nkey) writes and reads its namespace and is
// refused others, an anonymous client is refused.
func TestSecurityOnExternalServer(t *testing.T) {
	data := t.TempDir()
	runCLI(t, nil, "auth", "init", "--data-dir", data)
	a := filepath.Join(data, "auth")
	port := freePort(t)
	conf := runCLI(t, nil, "auth", "server-config", "--auth-config", filepath.Join(a, "auth.yaml"),
		"--listen", fmt.Sprintf("127.0.0.1:%d", port), "--store-dir", t.TempDir())
	confFile := filepath.Join(t.TempDir(), "nats.conf")
	if err := os.WriteFile(confFile, []byte(conf), 0o600); err != nil {
		t.Fatal(err)
	}
	srv := exec.Command(natsServerBin(t), "-c", confFile)
	if out, err := os.CreateTemp(t.TempDir(), "nats-server-*.log"); err == nil {
		srv.Stdout, srv.Stderr = out, out
	}
	if err := srv.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = srv.Process.Kill(); _ = srv.Wait() })
	waitListening(t, port)

	url := fmt.Sprintf("tls://127.0.0.1:%d", port)
	ca := filepath.Join(a, "ca.pem")
	startPrism(t, data, 0, "--nats-url", url, "--nkey", filepath.Join(a, "service.nk"), "--tls-ca", ca,
		"--auth-config", filepath.Join(a, "auth.yaml"))

	as := func(user string) natsconn.Options {
		return natsconn.Options{URL: url, TLSCA: ca, NKey: filepath.Join(a, "users", user+".nk"), InboxPrefix: subjects.InboxPrefix(user)}
	}
	admin := as("admin")
	spec := writeSpec(t, "name: orders\nabstraction: keyvalue\nbackend: sqlite\nconsistency: strong\naccess:\n  write: [app]\n  read: [app]\n")
	runCLI(t, nil, "apply", "-f", spec, "--nats-url", url, "--tls-ca", ca, "--nkey", admin.NKey, "--inbox-prefix", admin.InboxPrefix)

	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	app, err := as("app").Connect(ctx)
	if err != nil {
		t.Fatalf("connect as app: %v", err)
	}
	defer app.Close()
	// apply returns once the registry has it; the gateway serves it a
	// moment later.
	var code string
	var seq uint64
	for deadline := time.Now().Add(20 * time.Second); ; time.Sleep(50 * time.Millisecond) {
		code, seq = call(t, app, subjects.Write("orders", "put"), putBody, nil)
		if code != "NAMESPACE_NOT_FOUND" || time.Now().After(deadline) {
			break
		}
	}
	if code != "" || seq == 0 {
		t.Fatalf("app put on orders: code %q seq %d", code, seq)
	}
	if code, _ := call(t, app, subjects.Read("orders", "get"), `{"id":"b3JkZXIx"}`, nil); code != "" {
		t.Fatalf("app get on orders: %s", code)
	}
	if code, _ := call(t, app, subjects.Write("demo", "put"), putBody, nil); code != errRefused {
		t.Fatalf("app put on demo: %q, want refused by the server", code)
	}
	if nc, err := (natsconn.Options{URL: url, TLSCA: ca}).Connect(ctx); err == nil {
		nc.Close()
		t.Fatal("an anonymous client connected")
	} else if !strings.Contains(err.Error(), "no credentials") {
		t.Errorf("anonymous connect refused with %v, want it to say no credentials were presented", err)
	}
}

// waitListening waits until 127.0.0.1:port accepts connections.
func waitListening(t testing.TB, port int) {
	t.Helper()
	deadline := time.Now().Add(30 * time.Second)
	for {
		c, err := net.Dial("tcp", fmt.Sprintf("127.0.0.1:%d", port))
		if err == nil {
			c.Close()
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("nats-server did not listen within 30s: %v", err)
		}
		time.Sleep(20 * time.Millisecond)
	}
}
