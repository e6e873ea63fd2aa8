package main

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
	ns, err := startEmbeddedNATS(serveFlags{natsListen: "127.0.0.1:0", dataDir: t.TempDir()}, log)
	if err != nil {
		t.Fatal(err)
	}
	defer ns.Shutdown()
	url := ns.ClientURL()
	if strings.HasSuffix(url, ":4222") || strings.HasSuffix(url, ":0") {
		t.Fatalf("embedded NATS on port 0 listens at %s, want a free port", url)
	}
}

// --help must not print a DSN from the environment: it may hold a password.
func TestHelpDoesNotPrintTheDSN(t *testing.T) {
	t.Setenv("PRISM_POSTGRES_DSN", "postgres://prism:s3cr3t-for-test@db/prism")
	for _, cmd := range []string{"serve", "bench"} {
		root := newRootCmd()
		var out strings.Builder
		root.SetOut(&out)
		root.SetErr(&out)
		root.SetArgs([]string{cmd, "--help"})
		if err := root.Execute(); err != nil {
			t.Fatal(err)
		}
		if !strings.Contains(out.String(), "--postgres-dsn") {
			t.Fatalf("%s --help lacks --postgres-dsn:\n%s", cmd, out.String())
		}
		if strings.Contains(out.String(), "s3cr3t-for-test") {
			t.Errorf("%s --help prints the DSN from PRISM_POSTGRES_DSN", cmd)
		}
	}
}
