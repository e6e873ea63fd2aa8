package main

import (
	"context"
	"log/slog"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/prism-data/prism/itest/natstest"
	"github.com/prism-data/prism/namespaces"
)

// apply says what its revision number is: a new namespace's first one is
// the registry's change number, rarely 1.
func TestApplySaysWhatARevisionIs(t *testing.T) {
	s := natstest.Server(t)
	nc := natstest.Connect(t, s)
	reg, _, err := namespaces.OpenRegistry(context.Background(), natstest.JetStream(t, nc), 1)
	if err != nil {
		t.Fatal(err)
	}
	adm, err := namespaces.NewAdmin(nc, reg, namespaces.AdminConfig{Cluster: namespaces.Cluster{Nodes: 1}, Logger: slog.New(slog.DiscardHandler)})
	if err != nil {
		t.Fatal(err)
	}
	if err := adm.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = adm.Drain() })
	dir := t.TempDir()
	for _, name := range []string{"demo", "orders"} {
		file := filepath.Join(dir, name+".yaml")
		if err := os.WriteFile(file, []byte("name: "+name+"\nabstraction: keyvalue\nbackend: sqlite\n"), 0o644); err != nil {
			t.Fatal(err)
		}
		out, err := runCLI(t, "apply", "-f", file, "--nats-url", s.ClientURL())
		if err != nil {
			t.Fatalf("apply %s: %v\n%s", name, err, out)
		}
		if !strings.Contains(out, "applied: namespace "+name+" is at revision ") || !strings.Contains(out, revisionNote(name)) {
			t.Errorf("apply %s output lacks what a revision is:\n%s", name, out)
		}
	}
}
