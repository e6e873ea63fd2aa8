package main

import (
	"encoding/json"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/prism-data/prism/namespaces"
)

const planYAML = `name: metrics
abstraction: timeseries
backend: auto
team: observability
owners: [ada]
needs:
  write_rps: 5000
  max_item_bytes: 2048
  retention: 720h
  durability: durable
`

// runPlanCmd runs prism plan with args on a file holding spec.
func runPlanCmd(t *testing.T, spec string, args ...string) (string, error) {
	t.Helper()
	path := filepath.Join(t.TempDir(), "ns.yaml")
	if err := os.WriteFile(path, []byte(spec), 0o600); err != nil {
		t.Fatal(err)
	}
	root := newRootCmd()
	var out strings.Builder
	root.SetOut(&out)
	root.SetErr(&out)
	root.SetArgs(append([]string{"plan", "--offline", "-f", path}, args...))
	err := root.Execute()
	return out.String(), err
}

func TestPlanJSON(t *testing.T) {
	out, err := runPlanCmd(t, planYAML, "--nodes", "3", "--postgres", "--json")
	if err != nil {
		t.Fatal(err)
	}
	var r namespaces.PlanReport
	if err := json.Unmarshal([]byte(out), &r); err != nil {
		t.Fatalf("%v in:\n%s", err, out)
	}
	if r.Namespace != "metrics" || r.Durability != "durable" {
		t.Fatalf("namespace %q durability %q", r.Namespace, r.Durability)
	}
	got := map[string]any{}
	for _, s := range r.Settings {
		if s.Reason == "" {
			t.Errorf("setting %s has no reason", s.Name)
		}
		got[s.Name] = s.Value
	}
	want := map[string]any{ // JSON numbers decode as float64
		"backend": "postgres", "replicas": 3.0, "storage": "file", "max_age": "720h0m0s",
		"duplicate_window": "2m0s", "partitions": 1.0, "batch_size": 256.0, "read_cache": false,
	}
	for k, v := range want {
		if got[k] != v {
			t.Errorf("%s = %v, want %v", k, got[k], v)
		}
	}
	if !strings.Contains(r.Guarantee, "2 of 3 nodes") {
		t.Errorf("guarantee %q", r.Guarantee)
	}
}

func TestPlanTable(t *testing.T) {
	out, err := runPlanCmd(t, planYAML, "--sync-always")
	if err != nil {
		t.Fatal(err)
	}
	for _, want := range []string{"SETTING", "replicas", "durability=durable is met by sync_always", "guarantee: an acknowledged write survives a process crash and a power loss", "warning: the data outgrows one SQLite file"} {
		if !strings.Contains(out, want) {
			t.Errorf("output lacks %q:\n%s", want, out)
		}
	}
}

func TestPlanErrors(t *testing.T) {
	tests := []struct {
		name    string
		spec    string
		args    []string
		wantErr string
	}{
		{name: "durable on one node", spec: planYAML, wantErr: "durable needs prism serve --sync-always (JetStream sync_always) on a single node"},
		{name: "invalid spec", spec: "name: x\nabstraction: keyvalue\nbackend: sqlite\nneeds:\n  durability: safe\n", wantErr: `needs.durability: "safe" is not one of`},
		{name: "no nodes", spec: planYAML, args: []string{"--nodes", "0"}, wantErr: "want at least 1"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := runPlanCmd(t, tt.spec, tt.args...)
			if err == nil || !strings.Contains(err.Error(), tt.wantErr) {
				t.Fatalf("err = %v, want it to contain %q", err, tt.wantErr)
			}
		})
	}
}

func TestPlanNeedsFile(t *testing.T) {
	root := newRootCmd()
	root.SetOut(&strings.Builder{})
	root.SetArgs([]string{"plan"})
	if err := root.Execute(); err == nil || !strings.Contains(err.Error(), "-f NAMESPACE.yaml is required") {
		t.Fatalf("err = %v", err)
	}
}
func TestPlanOfLogNamespace(t *testing.T) {
	spec := "name: clicks\nabstraction: log\nbackend: auto\nneeds:\n  write_rps: 12000\n  durability: replicated\n"
	out, err := runPlanCmd(t, spec, "--nodes", "3", "--json")
	if err != nil {
		t.Fatalf("plan: %v\n%s", err, out)
	}
	var r namespaces.PlanReport
	if err := json.Unmarshal([]byte(out), &r); err != nil {
		t.Fatalf("%v\n%s", err, out)
	}
	got := map[string]any{}
	for _, s := range r.Settings {
		got[s.Name] = s.Value
	}
	if got["backend"] != "kafka" || got["kafka_partitions"] != float64(3) || got["kafka_replication_factor"] != float64(3) {
		t.Fatalf("settings %v: want backend kafka, 3 partitions, replication 3", got)
	}
}
