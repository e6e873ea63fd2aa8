package namespaces_test

import (
	"context"
	"crypto/rand"
	"fmt"
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"testing"
	"time"

	"github.com/nats-io/nats.go/jetstream"

	"github.com/prism-data/prism/itest/natstest"
	"github.com/prism-data/prism/namespaces"
	prismv1 "github.com/prism-data/prism/proto/prism/v1"
	"github.com/prism-data/prism/subjects"
)

func TestLoadNamespaces(t *testing.T) {
	tests := []struct {
		name    string
		files   map[string]string
		want    []namespaces.Namespace
		wantErr string
	}{
		{
			name: "two namespaces, default consistency",
			files: map[string]string{
				"a.yaml":    "name: orders\nabstraction: keyvalue\nbackend: sqlite\nconsistency: strong\n",
				"b.yml":     "name: users\nabstraction: keyvalue\nbackend: sqlite\n",
				"notes.txt": "ignored",
			},
			want: []namespaces.Namespace{
				{Name: "orders", Abstraction: "keyvalue", Backend: "sqlite", Consistency: namespaces.Strong},
				{Name: "users", Abstraction: "keyvalue", Backend: "sqlite", Consistency: namespaces.Eventual},
			},
		},
		{
			name: "postgres with a dsn",
			files: map[string]string{
				"a.yaml": "name: orders\nabstraction: keyvalue\nbackend: postgres\npostgres:\n  dsn: postgres://prism@db:5432/prism\n",
			},
			want: []namespaces.Namespace{
				{Name: "orders", Abstraction: "keyvalue", Backend: "postgres", Consistency: namespaces.Eventual, Postgres: namespaces.PostgresConfig{DSN: "postgres://prism@db:5432/prism"}},
			},
		},
		{
			name: "timeseries with retention",
			files: map[string]string{
				"a.yaml": "name: events\nabstraction: timeseries\nbackend: sqlite\nretention: 720h\n",
				"b.yaml": "name: forever\nabstraction: timeseries\nbackend: postgres\nretention: 0\n",
				"c.yaml": "name: short\nabstraction: timeseries\nbackend: sqlite\nretention: 1h30m\nconsistency: strong\n",
			},
			want: []namespaces.Namespace{
				{Name: "events", Abstraction: "timeseries", Backend: "sqlite", Consistency: namespaces.Eventual, Retention: namespaces.Duration(720 * time.Hour)},
				{Name: "forever", Abstraction: "timeseries", Backend: "postgres", Consistency: namespaces.Eventual},
				{Name: "short", Abstraction: "timeseries", Backend: "sqlite", Consistency: namespaces.Strong, Retention: namespaces.Duration(90 * time.Minute)},
			},
		},
		{
			name:    "retention on keyvalue",
			files:   map[string]string{"a.yaml": "name: orders\nabstraction: keyvalue\nbackend: sqlite\nretention: 24h\n"},
			wantErr: "retention applies to abstraction timeseries only, not keyvalue",
		},
		{
			name:    "retention in days",
			files:   map[string]string{"a.yaml": "name: events\nabstraction: timeseries\nbackend: sqlite\nretention: 30d\n"},
			wantErr: `"30d" is not a duration; write it like 720h`,
		},
		{
			name:    "retention without unit",
			files:   map[string]string{"a.yaml": "name: events\nabstraction: timeseries\nbackend: sqlite\nretention: 3600\n"},
			wantErr: `"3600" is not a duration`,
		},
		{
			name:    "retention not a scalar",
			files:   map[string]string{"a.yaml": "name: events\nabstraction: timeseries\nbackend: sqlite\nretention: [1h]\n"},
			wantErr: "want a duration such as 720h",
		},
		{
			name:    "negative retention",
			files:   map[string]string{"a.yaml": "name: events\nabstraction: timeseries\nbackend: sqlite\nretention: -1h\n"},
			wantErr: "retention -1h0m0s is negative",
		},
		{
			name:    "postgres section on sqlite",
			files:   map[string]string{"a.yaml": "name: orders\nabstraction: keyvalue\nbackend: sqlite\npostgres:\n  dsn: postgres://db/x\n"},
			wantErr: "a postgres section needs backend: postgres",
		},
		{
			name:    "unknown backend",
			files:   map[string]string{"a.yaml": "name: orders\nabstraction: keyvalue\nbackend: mysql\n"},
			wantErr: `backend "mysql" is not supported; use one of sqlite, postgres, natskv`,
		},
		{
			name:    "unknown field",
			files:   map[string]string{"a.yaml": "name: orders\nabstraction: keyvalue\nbackend: sqlite\nreplicas: 3\n"},
			wantErr: "a.yaml: line 4: unknown field replicas; the fields here are name, abstraction, team,",
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
			files:   map[string]string{"a.yaml": "name: orders\nabstraction: document\nbackend: sqlite\n"},
			wantErr: `abstraction "document"`,
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
			got, err := namespaces.LoadNamespaces(dir)
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
	ns := namespaces.Namespace{Name: "orders", Abstraction: "keyvalue", Backend: "sqlite"}
	for range 2 { // idempotent
		if err := namespaces.EnsureStreams(ctx, js, ns); err != nil {
			t.Fatal(err)
		}
	}
	s, err := js.Stream(ctx, "PRISM_ORDERS")
	if err != nil {
		t.Fatal(err)
	}
	cfg := s.CachedInfo().Config
	if !cfg.AllowAtomicPublish || !cfg.AllowDirect || !cfg.AllowRollup || cfg.Duplicates != 2*time.Minute || cfg.Storage != jetstream.FileStorage ||
		cfg.MaxMsgSize != namespaces.MaxStreamMsgSize || len(cfg.Subjects) != 1 || cfg.Subjects[0] != "prism.orders.events.>" {
		t.Fatalf("stream config %+v", cfg)
	}
	if _, err := js.Stream(ctx, subjects.DeadLetterStream); err != nil {
		t.Fatalf("dead-letter stream: %v", err)
	}
	if cfg.MaxAge != 0 {
		t.Fatalf("keyvalue stream MaxAge %v, want 0", cfg.MaxAge)
	}
	if err := namespaces.EnsureStreams(ctx, js, namespaces.Namespace{Name: "dlq", Abstraction: "keyvalue", Backend: "sqlite"}); err == nil {
		t.Fatal("EnsureStreams accepted the reserved namespace dlq")
	}
}

func TestEnsureStreamsRetention(t *testing.T) {
	_, js := natstest.Start(t)
	ctx := context.Background()
	ns := namespaces.Namespace{Name: "events", Abstraction: namespaces.AbstractionTimeSeries, Backend: "sqlite", Retention: namespaces.Duration(720 * time.Hour)}
	maxAge := func() time.Duration {
		t.Helper()
		s, err := js.Stream(ctx, subjects.Stream("events"))
		if err != nil {
			t.Fatal(err)
		}
		return s.CachedInfo().Config.MaxAge
	}
	for _, r := range []time.Duration{720 * time.Hour, time.Hour, 0, 2 * time.Hour} {
		ns.Retention = namespaces.Duration(r)
		if err := namespaces.EnsureStreams(ctx, js, ns); err != nil {
			t.Fatalf("retention %v: %v", r, err)
		}
		if got := maxAge(); got != r {
			t.Fatalf("retention %v: stream MaxAge %v", r, got)
		}
	}
	kv := namespaces.Namespace{Name: "orders", Abstraction: namespaces.AbstractionKeyValue, Backend: "sqlite", Retention: namespaces.Duration(time.Hour)}
	if err := namespaces.EnsureStreams(ctx, js, kv); err == nil || !strings.Contains(err.Error(), "retention") {
		t.Fatalf("EnsureStreams of a keyvalue namespace with retention: %v, want an error", err)
	}
}

// TestNamespaceStreamsMatchEnsureStreams keeps the streams that the tests of
// other packages make with natstest the same as the ones the gateway makes.
func TestNamespaceStreamsMatchEnsureStreams(t *testing.T) {
	ctx := context.Background()
	_, gwJS := natstest.Start(t)
	if err := namespaces.EnsureStreams(ctx, gwJS, namespaces.Namespace{Name: "orders", Abstraction: "keyvalue", Backend: "sqlite"}); err != nil {
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
			t.Errorf("stream %s made by natstest:\n%+v\nby namespaces.EnsureStreams:\n%+v", name, g, w)
		}
	}
}

// With publish_changes the stream republishes every stored event to core
// NATS, headers and data; turning it off removes the republish.
func TestEnsureStreamsPublishChanges(t *testing.T) {
	nc, js := natstest.Start(t)
	ctx := context.Background()
	ns := namespaces.Namespace{Name: "orders", Abstraction: "keyvalue", Backend: "sqlite", PublishChanges: true}
	if err := namespaces.EnsureStreams(ctx, js, ns); err != nil {
		t.Fatal(err)
	}
	changes, err := nc.SubscribeSync(subjects.Changes("orders"))
	if err != nil {
		t.Fatal(err)
	}
	if err := nc.Flush(); err != nil {
		t.Fatal(err)
	}
	ev, err := subjects.NewKeyValueEvent(subjects.EventMeta{Namespace: "orders"}, &prismv1.KeyValueEvent{
		Id:     []byte("a.b"),
		Change: &prismv1.KeyValueEvent_Delete{Delete: &prismv1.KeyValueDelete{}},
	})
	if err != nil {
		t.Fatal(err)
	}
	ack, err := js.PublishMsg(ctx, ev)
	if err != nil {
		t.Fatal(err)
	}
	got, err := changes.NextMsg(5 * time.Second)
	if err != nil {
		t.Fatalf("no republished change: %v", err)
	}
	if got.Subject != "prism.orders.changes.kv.a~2Eb" || got.Header.Get(subjects.HeaderType) != subjects.TypeKeyValueDelete ||
		got.Header.Get("Nats-Sequence") != fmt.Sprint(ack.Sequence) || string(got.Data) != string(ev.Data) {
		t.Fatalf("republished %s %v %q", got.Subject, got.Header, got.Data)
	}

	ns.PublishChanges = false
	if err := namespaces.EnsureStreams(ctx, js, ns); err != nil {
		t.Fatal(err)
	}
	s, err := js.Stream(ctx, subjects.Stream("orders"))
	if err != nil {
		t.Fatal(err)
	}
	if rp := s.CachedInfo().Config.RePublish; rp != nil {
		t.Fatalf("RePublish %+v left after publish_changes was turned off", rp)
	}
	if _, err := js.PublishMsg(ctx, ev); err != nil {
		t.Fatal(err)
	}
	if m, err := changes.NextMsg(300 * time.Millisecond); err == nil {
		t.Fatalf("change %s republished after publish_changes was turned off", m.Subject)
	}
}

func TestDSNPasswordRefused(t *testing.T) {
	pw := rand.Text()
	for _, tc := range []struct {
		dsn  string
		want bool
	}{
		{"postgres://prism@db:5432/prism", false},
		{"postgres://prism:" + pw + "@db:5432/prism", true},
		{"postgresql://prism@db/prism?password=" + pw, true},
		{"host=db user=prism dbname=prism", false},
		{"host=db user=prism password=" + pw + " dbname=prism", true},
	} {
		ns := namespaces.Namespace{Name: "x", Abstraction: namespaces.AbstractionKeyValue, Backend: "postgres", Postgres: namespaces.PostgresConfig{DSN: tc.dsn}}
		err := ns.Validate()
		if got := err != nil && strings.Contains(err.Error(), "holds a password"); got != tc.want {
			t.Errorf("Validate with a DSN of the form %s: %v, want refused %v", strings.ReplaceAll(tc.dsn, pw, "***"), err, tc.want)
		}
	}
}

// A misspelt or misplaced field is named by its line and path, with the
// field most likely meant, never with a Go type.
func TestLoadNamespaceUnknownField(t *testing.T) {
	const head = "name: orders\nabstraction: keyvalue\nbackend: sqlite\n"
	tests := []struct {
		name, yaml, wantErr string
	}{
		{"typo", head + "consistancy: strong\n", "ns.yaml: line 4: unknown field consistancy; did you mean consistency?"},
		{"typo in a section", head + "needs:\n  write_rps: 10\n  duribility: durable\n", "line 6: unknown field needs.duribility; did you mean needs.durability?"},
		{"field of a section at the top", head + "write_rps: 10\n", "line 4: unknown field write_rps; did you mean needs.write_rps?"},
		{"top-level field in a section", head + "needs:\n  backend: sqlite\n", "line 5: unknown field needs.backend; did you mean backend?"},
		{"nothing near", head + "needs:\n  colour: blue\n", "line 5: unknown field needs.colour; the fields here are needs.write_rps, needs.read_rps,"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			path := filepath.Join(t.TempDir(), "ns.yaml")
			if err := os.WriteFile(path, []byte(tt.yaml), 0o644); err != nil {
				t.Fatal(err)
			}
			_, err := namespaces.LoadNamespaceFile(path)
			if err == nil || !strings.Contains(err.Error(), tt.wantErr) || strings.Contains(err.Error(), "namespaces.") {
				t.Fatalf("err = %v, want it to contain %q and no Go type", err, tt.wantErr)
			}
		})
	}
}
