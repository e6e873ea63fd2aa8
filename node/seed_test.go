package node_test

import (
	"bytes"
	"encoding/json"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/prism-data/prism/node"
)

func TestNewLogger(t *testing.T) {
	var buf bytes.Buffer
	log, err := node.NewLogger(&buf, "warn", "json")
	if err != nil {
		t.Fatal(err)
	}
	log.Info("hidden")
	log.Warn("shown", "k", 1)
	var line map[string]any
	if err := json.Unmarshal(buf.Bytes(), &line); err != nil || line["msg"] != "shown" || strings.Contains(buf.String(), "hidden") {
		t.Fatalf("json log %q (%v)", buf.String(), err)
	}
	for _, c := range [][2]string{{"loud", "text"}, {"info", "xml"}} {
		if _, err := node.NewLogger(&buf, c[0], c[1]); err == nil {
			t.Errorf("NewLogger(%q, %q) = nil error", c[0], c[1])
		}
	}
}

func TestSeedFromDir(t *testing.T) {
	demo, err := node.SeedFromDir("")
	if err != nil || len(demo.Namespaces) != 1 || demo.Namespaces[0].Name != node.DemoNamespace.Name || !demo.OnlyIfNew {
		t.Fatalf("no --config: %+v, %v; want the demo namespace, only in a new data directory", demo, err)
	}
	empty := t.TempDir()
	if _, err := node.SeedFromDir(empty); err == nil || !strings.Contains(err.Error(), "no namespace files") {
		t.Fatalf("empty --config: %v", err)
	}
	dir := t.TempDir()
	if err := os.WriteFile(filepath.Join(dir, "orders.yaml"), []byte("name: orders\nabstraction: keyvalue\nbackend: sqlite\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	sd, err := node.SeedFromDir(dir)
	if err != nil || len(sd.Namespaces) != 1 || sd.Namespaces[0].Name != "orders" || sd.OnlyIfNew || !strings.Contains(sd.By, dir) {
		t.Fatalf("--config %s: %+v, %v", dir, sd, err)
	}
}
