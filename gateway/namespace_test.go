package gateway_test

import (
	"context"
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"testing"
	"time"

	"github.com/nats-io/nats.go/jetstream"

	"github.com/prism-data/prism/gateway"
	"github.com/prism-data/prism/itest/natstest"
	"github.com/prism-data/prism/subjects"
)

func TestLoadNamespaces(t *testing.T) {
	tests := []struct {
		name    string
		files   map[string]string
		want    []gateway.Namespace
		wantErr string
	}{
		{
			name: "two namespaces, default consistency",
			files: map[string]string{
				"a.yaml":    "name: orders\nabstraction: keyvalue\nbackend: sqlite\nconsistency: strong\n",
				"b.yml":     "name: users\nabstraction: keyvalue\nbackend: sqlite\n",
				"notes.txt": "ignored",
			},
			want: []gateway.Namespace{
				{Name: "orders", Abstraction: "keyvalue", Backend: "sqlite", Consistency: gateway.Strong},
				{Name: "users", Abstraction: "keyvalue", Backend: "sqlite", Consistency: gateway.Eventual},
			},
		},
		{
			name: "postgres with a dsn",
			files: map[string]string{
				"a.yaml": "name: orders\nabstraction: keyvalue\nbackend: postgres\npostgres:\n  dsn: postgres://prism@db:5432/prism\n",
			},
			want: []gateway.Namespace{
				{Name: "orders", Abstraction: "keyvalue", Backend: "postgres", Consistency: gateway.Eventual, Postgres: gateway.PostgresConfig{DSN: "postgres://prism@db:5432/prism"}},
			},
		},
		{
			name:    "postgres section on sqlite",
			files:   map[string]string{"a.yaml": "name: orders\nabstraction: keyvalue\nbackend: sqlite\npostgres:\n  dsn: postgres://db/x\n"},
			wantErr: "a postgres section needs backend: postgres",
		},
		{
			name:    "unknown backend",
			files:   map[string]string{"a.yaml": "name: orders\nabstraction: keyvalue\nbackend: mysql\n"},
			wantErr: `backend "mysql" is not supported; use one of sqlite, postgres`,
		},
		{
			name:    "unknown field",
			files:   map[string]string{"a.yaml": "name: orders\nabstraction: keyvalue\nbackend: sqlite\nreplicas: 3\n"},
			wantErr: "a.yaml: yaml: unmarshal errors:\n  line 4: field replicas not found",
		},
		{
			name: "duplicate names",
			files: map[string]string{
				"a.yaml": "name: orders\nabstraction: keyvalue\nbackend: sqlite\n",
				"b.yaml": "name: orders\nabstraction: keyvalue\nbackend: sqlite\n",
			},
			wantErr: "namespace orders is already declared in",
		},
		{
			name:    "bad consistency",
			files:   map[string]string{"a.yaml": "name: orders\nabstraction: keyvalue\nbackend: sqlite\nconsistency: linearizable\n"},
			wantErr: `consistency "linearizable"`,
		},
		{
			name:    "bad name",
			files:   map[string]string{"a.yaml": "name: Orders\nabstraction: keyvalue\nbackend: sqlite\n"},
			wantErr: "invalid namespace name",
		},
		{
			name:    "unsupported abstraction",
			files:   map[string]string{"a.yaml": "name: orders\nabstraction: graph\nbackend: sqlite\n"},
			wantErr: `abstraction "graph"`,
		},
		{
			name:    "two documents",
			files:   map[string]string{"a.yaml": "name: a\nabstraction: keyvalue\nbackend: sqlite\n---\nname: b\nabstraction: keyvalue\nbackend: sqlite\n"},
			wantErr: "one namespace per file",
		},
		{
			name:    "empty file",
			files:   map[string]string{"a.yaml": ""},
			wantErr: "empty file",
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			dir := t.TempDir()
			for name, body := range tt.files {
				if err := os.WriteFile(filepath.Join(dir, name), []byte(body), 0o600); err != nil {
					t.Fatal(err)
				}
			}
			got, err := gateway.LoadNamespaces(dir)
			if tt.wantErr != "" {
				if err == nil || !strings.Contains(err.Error(), tt.wantErr) {
					t.Fatalf("err %v, want one containing %q", err, tt.wantErr)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if len(got) != len(tt.want) {
				t.Fatalf("got %v, want %v", got, tt.want)
			}
			for i := range got {
				if got[i] != tt.want[i] {
					t.Errorf("namespace %d = %+v, want %+v", i, got[i], tt.want[i])
				}
			}
		})
	}
}

func TestEnsureStreams(t *testing.T) {
	_, js := natstest.Start(t)
	ctx := context.Background()
	ns := gateway.Namespace{Name: "orders", Abstraction: "keyvalue", Backend: "sqlite"}
	for range 2 { // idempotent
		if err := gateway.EnsureStreams(ctx, js, ns); err != nil {
			t.Fatal(err)
		}
	}
	s, err := js.Stream(ctx, "PRISM_ORDERS")
	if err != nil {
		t.Fatal(err)
	}
	cfg := s.CachedInfo().Config
	if !cfg.AllowAtomicPublish || !cfg.AllowDirect || cfg.Duplicates != 2*time.Minute || cfg.Storage != jetstream.FileStorage ||
		cfg.MaxMsgSize != gateway.MaxStreamMsgSize || len(cfg.Subjects) != 1 || cfg.Subjects[0] != "prism.orders.events.>" {
		t.Fatalf("stream config %+v", cfg)
	}
	if _, err := js.Stream(ctx, subjects.DeadLetterStream); err != nil {
		t.Fatalf("dead-letter stream: %v", err)
	}
	if err := gateway.EnsureStreams(ctx, js, gateway.Namespace{Name: "dlq", Abstraction: "keyvalue", Backend: "sqlite"}); err == nil {
		t.Fatal("EnsureStreams accepted the reserved namespace dlq")
	}
}

// TestNamespaceStreamsMatchEnsureStreams keeps the streams that the tests of
// other packages make with natstest the same as the ones the gateway makes.
func TestNamespaceStreamsMatchEnsureStreams(t *testing.T) {
	ctx := context.Background()
	_, gwJS := natstest.Start(t)
	if err := gateway.EnsureStreams(ctx, gwJS, gateway.Namespace{Name: "orders", Abstraction: "keyvalue", Backend: "sqlite"}); err != nil {
		t.Fatal(err)
	}
	_, testJS := natstest.Start(t)
	natstest.NamespaceStreams(t, testJS, "orders")
	for _, name := range []string{subjects.Stream("orders"), subjects.DeadLetterStream} {
		want, err := gwJS.Stream(ctx, name)
		if err != nil {
			t.Fatal(err)
		}
		got, err := testJS.Stream(ctx, name)
		if err != nil {
			t.Fatal(err)
		}
		if w, g := want.CachedInfo().Config, got.CachedInfo().Config; !reflect.DeepEqual(g, w) {
			t.Errorf("stream %s made by natstest:\n%+v\nby gateway.EnsureStreams:\n%+v", name, g, w)
		}
	}
}

func TestAddNamespace(t *testing.T) {
	nc := natstest.Connect(t, natstest.Server(t))
	gw, err := gateway.New(nc)
	if err != nil {
		t.Fatal(err)
	}
	ns := gateway.Namespace{Name: "orders", Abstraction: "keyvalue", Backend: "sqlite"}
	if err := gw.AddNamespace(ns, nil, stuckWaiter{}); err == nil {
		t.Error("AddNamespace accepted a nil reader")
	}
	if err := gw.AddNamespace(gateway.Namespace{Name: "x"}, nil, nil); err == nil {
		t.Error("AddNamespace accepted an invalid namespace")
	}
}

func TestOptionsValidate(t *testing.T) {
	nc := natstest.Connect(t, natstest.Server(t))
	tests := []struct {
		name string
		opt  gateway.Option
	}{
		{"nil logger", gateway.WithLogger(nil)},
		{"nil registerer", gateway.WithRegisterer(nil)},
		{"zero wait", gateway.WithConsistencyWait(0)},
		{"empty queue", gateway.WithQueueGroup("")},
		{"zero in flight", gateway.WithMaxInFlight(0)},
		{"nil clock", gateway.WithClock(nil)},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if _, err := gateway.New(nc, tt.opt); err == nil {
				t.Fatal("New accepted the option")
			}
		})
	}
	if _, err := gateway.New(nil); err == nil {
		t.Fatal("New accepted a nil connection")
	}
}
