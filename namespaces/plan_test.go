package namespaces_test

import (
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"testing"
	"time"

	"github.com/prism-data/prism/namespaces"
)

func TestLoadNamespaceFileNeeds(t *testing.T) {
	tests := []struct {
		name    string
		yaml    string
		want    namespaces.Namespace
		wantErr string
	}{
		{
			name: "all needs",
			yaml: `name: metrics
abstraction: timeseries
backend: auto
team: observability
owners: [ada, grace]
needs:
  write_rps: 5000
  read_rps: 200
  p99_latency: 20ms
  max_item_bytes: 2048
  retention: 720h
  durability: durable
  ordering: per-key
`,
			want: namespaces.Namespace{
				Name: "metrics", Abstraction: "timeseries", Backend: "auto", Consistency: namespaces.Eventual,
				Team: "observability", Owners: namespaces.NewNames("ada", "grace"),
				Retention: namespaces.Duration(720 * time.Hour), // moved from needs
				Needs: namespaces.Needs{
					WriteRPS: 5000, ReadRPS: 200, P99Latency: namespaces.Duration(20 * time.Millisecond),
					MaxItemBytes: 2048,
					Durability:   namespaces.Durable, Ordering: namespaces.OrderingPerKey,
				},
			},
		},
		{
			name: "no needs keeps working",
			yaml: "name: orders\nabstraction: keyvalue\nbackend: sqlite\n",
			want: namespaces.Namespace{Name: "orders", Abstraction: "keyvalue", Backend: "sqlite", Consistency: namespaces.Eventual},
		},
		{
			name:    "unknown need",
			yaml:    "name: orders\nabstraction: keyvalue\nbackend: sqlite\nneeds:\n  writes: 5\n",
			wantErr: "line 5: unknown field needs.writes; the fields here are needs.write_rps,",
		},
		{
			name:    "bad durability",
			yaml:    "name: orders\nabstraction: keyvalue\nbackend: sqlite\nneeds:\n  durability: safe\n",
			wantErr: `needs.durability: "safe" is not one of best-effort, durable, replicated`,
		},
		{
			name:    "bad ordering",
			yaml:    "name: orders\nabstraction: keyvalue\nbackend: sqlite\nneeds:\n  ordering: global\n",
			wantErr: `needs.ordering: "global" is not one of per-key, none`,
		},
		{
			name:    "negative write_rps",
			yaml:    "name: orders\nabstraction: keyvalue\nbackend: sqlite\nneeds:\n  write_rps: -5\n",
			wantErr: "needs.write_rps: -5 is negative",
		},
		{
			name:    "negative read_rps",
			yaml:    "name: orders\nabstraction: keyvalue\nbackend: sqlite\nneeds:\n  read_rps: -1\n",
			wantErr: "needs.read_rps: -1 is negative",
		},
		{
			name:    "negative max_item_bytes",
			yaml:    "name: orders\nabstraction: keyvalue\nbackend: sqlite\nneeds:\n  max_item_bytes: -1\n",
			wantErr: "needs.max_item_bytes: -1 is negative",
		},
		{
			name:    "negative p99",
			yaml:    "name: orders\nabstraction: keyvalue\nbackend: sqlite\nneeds:\n  p99_latency: -1ms\n",
			wantErr: "needs.p99_latency: -1ms is negative",
		},
		{
			name:    "p99 without unit",
			yaml:    "name: orders\nabstraction: keyvalue\nbackend: sqlite\nneeds:\n  p99_latency: 20\n",
			wantErr: `"20" is not a duration`,
		},
		{
			name:    "retention on keyvalue",
			yaml:    "name: orders\nabstraction: keyvalue\nbackend: sqlite\nneeds:\n  retention: 24h\n",
			wantErr: "needs.retention: applies to abstraction timeseries only, not keyvalue",
		},
		{
			name:    "retention shorter than the duplicate window",
			yaml:    "name: events\nabstraction: timeseries\nbackend: sqlite\nneeds:\n  retention: 1m\n",
			wantErr: "needs.retention: 1m0s is shorter than the duplicate window 2m0s",
		},
		{
			name:    "two retentions",
			yaml:    "name: events\nabstraction: timeseries\nbackend: sqlite\nretention: 48h\nneeds:\n  retention: 24h\n",
			wantErr: "needs.retention: 24h0m0s differs from retention 48h0m0s",
		},
		{
			name:    "the same retention twice",
			yaml:    "name: events\nabstraction: timeseries\nbackend: sqlite\nretention: 24h\nneeds:\n  retention: 24h\n",
			wantErr: "needs.retention: 24h0m0s is stated at the top level too (retention); state it once, in either place",
		},
		{
			name:    "empty owner",
			yaml:    "name: orders\nabstraction: keyvalue\nbackend: sqlite\nowners: [ada, \"\"]\n",
			wantErr: "owners[1] is empty",
		},
		{
			name:    "owners not a list",
			yaml:    "name: orders\nabstraction: keyvalue\nbackend: sqlite\nowners: ada\n",
			wantErr: "line 4: want a list of names",
		},
		{
			name:    "unknown backend names auto",
			yaml:    "name: orders\nabstraction: keyvalue\nbackend: redis\n",
			wantErr: "use one of sqlite, postgres, natskv, kafka, neptune, auto",
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			path := filepath.Join(t.TempDir(), "ns.yaml")
			if err := os.WriteFile(path, []byte(tt.yaml), 0o600); err != nil {
				t.Fatal(err)
			}
			got, err := namespaces.LoadNamespaceFile(path)
			if tt.wantErr != "" {
				if err == nil || !strings.Contains(err.Error(), tt.wantErr) {
					t.Fatalf("err = %v, want it to contain %q", err, tt.wantErr)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if got != tt.want {
				t.Fatalf("got %+v\nwant %+v", got, tt.want)
			}
			if !reflect.DeepEqual(got.Owners.List(), tt.want.Owners.List()) {
				t.Fatalf("owners %q, want %q", got.Owners.List(), tt.want.Owners.List())
			}
		})
	}
}

func TestDerive(t *testing.T) {
	kv := func(n namespaces.Needs) namespaces.Namespace {
		return namespaces.Namespace{Name: "orders", Abstraction: "keyvalue", Backend: "sqlite", Needs: n}
	}
	ts := func(backend string, n namespaces.Needs) namespaces.Namespace {
		return namespaces.Namespace{Name: "metrics", Abstraction: "timeseries", Backend: backend, Needs: n}
	}
	one := namespaces.Cluster{Nodes: 1}
	oneSync := namespaces.Cluster{Nodes: 1, SyncAlways: true}
	three := namespaces.Cluster{Nodes: 3}
	h := func(n int) namespaces.Duration { return namespaces.Duration(time.Duration(n) * time.Hour) }

	// check inspects a plan; each returns "" or what is wrong.
	type check func(p namespaces.Plan) string
	eq := func(name string, got, want any) string {
		if !reflect.DeepEqual(got, want) {
			return name + ": got " + strings.TrimSpace(strings.ReplaceAll(fmtAny(got), "\n", " ")) + ", want " + fmtAny(want)
		}
		return ""
	}
	replicas := func(n int) check {
		return func(p namespaces.Plan) string { return eq("replicas", p.Replicas.Value, n) }
	}
	storage := func(s string) check {
		return func(p namespaces.Plan) string { return eq("storage", p.Storage.Value, s) }
	}
	maxAge := func(d time.Duration) check {
		return func(p namespaces.Plan) string { return eq("max age", p.MaxAge.Value, d) }
	}
	msgSize := func(n int) check {
		return func(p namespaces.Plan) string { return eq("max msg size", p.MaxMsgSize.Value, n) }
	}
	batch := func(n int) check { return func(p namespaces.Plan) string { return eq("batch", p.BatchSize.Value, n) } }
	cache := func(on bool, entries int) check {
		return func(p namespaces.Plan) string {
			return eq("cache", [2]any{p.ReadCache.Value, p.ReadCacheEntries.Value}, [2]any{on, entries})
		}
	}
	backend := func(b string) check {
		return func(p namespaces.Plan) string { return eq("backend", p.Backend.Value, b) }
	}
	guarantee := func(sub string) check {
		return func(p namespaces.Plan) string {
			if !strings.Contains(p.Guarantee, sub) {
				return "guarantee " + p.Guarantee + " lacks " + sub
			}
			return ""
		}
	}
	reason := func(field func(namespaces.Plan) string, sub string) check {
		return func(p namespaces.Plan) string {
			if r := field(p); !strings.Contains(r, sub) {
				return "reason " + r + " lacks " + sub
			}
			return ""
		}
	}
	warns := func(sub string) check {
		return func(p namespaces.Plan) string {
			for _, w := range p.Warnings {
				if strings.Contains(w, sub) {
					return ""
				}
			}
			return "no warning containing " + sub + " in " + fmtAny(p.Warnings)
		}
	}
	noWarnings := func(p namespaces.Plan) string { return eq("warnings", len(p.Warnings), 0) }

	tests := []struct {
		name    string
		ns      namespaces.Namespace
		c       namespaces.Cluster
		checks  []check
		wantErr string
		// cannot is true when the error must wrap ErrCannotProvide.
		cannot bool
	}{
		{
			name: "no needs: today's settings",
			ns:   kv(namespaces.Needs{}), c: one,
			checks: []check{replicas(1), storage("file"), maxAge(0), msgSize(namespaces.MaxStreamMsgSize), batch(256), cache(false, 0), backend("sqlite"),
				func(p namespaces.Plan) string {
					return eq("dup window", p.DuplicateWindow.Value, namespaces.DuplicateWindow)
				},
				func(p namespaces.Plan) string { return eq("partitions", p.Partitions.Value, 1) },
				func(p namespaces.Plan) string { return eq("durability", p.Durability, namespaces.BestEffort) },
				guarantee("survives a process crash; a power loss"), noWarnings},
		},
		{
			name: "durable on one node with sync_always",
			ns:   kv(namespaces.Needs{Durability: namespaces.Durable}), c: oneSync,
			checks: []check{replicas(1), storage("file"), reason(func(p namespaces.Plan) string { return p.Replicas.Reason }, "sync_always"),
				guarantee("an acknowledged write survives a process crash and a power loss")},
		},
		{
			name: "durable on one node without sync_always",
			ns:   kv(namespaces.Needs{Durability: namespaces.Durable}), c: one,
			wantErr: "durable needs prism serve --sync-always (JetStream sync_always) on a single node", cannot: true,
		},
		{
			name: "durable on two nodes without sync_always",
			ns:   kv(namespaces.Needs{Durability: namespaces.Durable}), c: namespaces.Cluster{Nodes: 2},
			wantErr: "or a cluster of 3 or more nodes; this one has 2", cannot: true,
		},
		{
			name: "durable on three nodes without sync_always replicates",
			ns:   kv(namespaces.Needs{Durability: namespaces.Durable}), c: three,
			checks: []check{replicas(3), guarantee("power loss of one node")},
		},
		{
			name: "replicated on three nodes",
			ns:   kv(namespaces.Needs{Durability: namespaces.Replicated}), c: three,
			checks: []check{replicas(3), storage("file"), reason(func(p namespaces.Plan) string { return p.Replicas.Reason }, "durability=replicated"),
				guarantee("stored on 2 of 3 nodes")},
		},
		{
			name: "replicated with sync_always survives a cluster power loss",
			ns:   kv(namespaces.Needs{Durability: namespaces.Replicated}), c: namespaces.Cluster{Nodes: 5, SyncAlways: true},
			checks: []check{replicas(3), guarantee("power loss of the whole cluster and the loss of one node")},
		},
		{
			name: "replicated on one node",
			ns:   kv(namespaces.Needs{Durability: namespaces.Replicated}), c: oneSync,
			wantErr: "durability replicated needs a JetStream cluster of 3 or more nodes; this one has 1", cannot: true,
		},
		{
			name: "best-effort short timeseries in memory",
			ns:   ts("sqlite", namespaces.Needs{Durability: namespaces.BestEffort, Retention: h(1)}), c: one,
			checks: []check{storage("memory"), maxAge(time.Hour), guarantee("held in memory")},
		},
		{
			name: "best-effort long timeseries on file",
			ns:   ts("sqlite", namespaces.Needs{Durability: namespaces.BestEffort, Retention: h(2)}), c: one,
			checks: []check{storage("file"), maxAge(2 * time.Hour)},
		},
		{
			name: "best-effort keyvalue on file",
			ns:   kv(namespaces.Needs{Durability: namespaces.BestEffort}), c: one,
			checks: []check{storage("file")},
		},
		{
			name: "unstated durability is never memory",
			ns:   ts("sqlite", namespaces.Needs{Retention: h(1)}), c: one,
			checks: []check{storage("file")},
		},
		{
			name: "durable short timeseries on file",
			ns:   ts("sqlite", namespaces.Needs{Durability: namespaces.Durable, Retention: h(1)}), c: oneSync,
			checks: []check{storage("file"), maxAge(time.Hour)},
		},
		{
			name: "namespace retention is the max age",
			ns:   namespaces.Namespace{Name: "metrics", Abstraction: "timeseries", Backend: "sqlite", Retention: h(24)}, c: one,
			checks: []check{maxAge(24 * time.Hour)},
		},
		{
			name: "timeseries forever",
			ns:   ts("sqlite", namespaces.Needs{}), c: one,
			checks: []check{maxAge(0), reason(func(p namespaces.Plan) string { return p.MaxAge.Reason }, "forever")},
		},
		{
			name: "max item fits",
			ns:   kv(namespaces.Needs{MaxItemBytes: 4096}), c: one,
			checks: []check{msgSize(namespaces.MaxStreamMsgSize), reason(func(p namespaces.Plan) string { return p.MaxMsgSize.Reason }, "max_item_bytes=4096 fits")},
		},
		{
			name: "max item above the largest uploaded value",
			ns:   kv(namespaces.Needs{MaxItemBytes: namespaces.MaxChunkedValueBytes + 1}), c: one,
			wantErr: "above the largest value uploaded in parts", cannot: true,
		},
		{
			name: "max item above a small server max payload",
			ns:   kv(namespaces.Needs{MaxItemBytes: 256 << 10}), c: namespaces.Cluster{Nodes: 1, MaxPayload: 256 << 10},
			wantErr: "above the server's max payload of 262144 bytes", cannot: true,
		},
		{
			name: "small server max payload caps the stream",
			ns:   kv(namespaces.Needs{MaxItemBytes: 1024}), c: namespaces.Cluster{Nodes: 1, MaxPayload: 512 << 10},
			checks: []check{msgSize(512 << 10), warns("max payload 524288 is below")},
		},
		{
			name: "low write rate: small batches",
			ns:   kv(namespaces.Needs{WriteRPS: 100}), c: one,
			checks: []check{batch(64)},
		},
		{
			name: "high write rate: large batches",
			ns:   kv(namespaces.Needs{WriteRPS: 20_000}), c: one,
			checks: []check{batch(1024), warns("above the 17700 acknowledged writes/s"),
				reason(func(p namespaces.Plan) string { return p.Partitions.Reason }, "fits one partition (53000 events/s")},
		},
		{
			name: "high write rate on three nodes: no capacity warning",
			ns:   kv(namespaces.Needs{WriteRPS: 20_000}), c: three,
			checks: []check{batch(1024), noWarnings},
		},
		{
			name: "write rate needs two partitions",
			ns:   kv(namespaces.Needs{WriteRPS: 60_000}), c: one,
			wantErr: "write_rps 60000 needs 2 partitions at 53000 events/s each", cannot: true,
		},
		{
			name: "timeseries partition rate is lower",
			ns:   ts("sqlite", namespaces.Needs{WriteRPS: 16_000}), c: one,
			wantErr: "needs 2 partitions at 15000 events/s", cannot: true,
		},
		{
			name: "ordering none is noted",
			ns:   kv(namespaces.Needs{Ordering: namespaces.OrderingNone}), c: one,
			checks: []check{reason(func(p namespaces.Plan) string { return p.ProjectorParallelism.Reason }, "ordering=none")},
		},
		{
			name: "reads dominate: cache on",
			ns:   kv(namespaces.Needs{ReadRPS: 50_000, WriteRPS: 1_000}), c: one,
			checks: []check{cache(true, 100_000)},
		},
		{
			name: "modest reads: small cache",
			ns:   kv(namespaces.Needs{ReadRPS: 2_000, WriteRPS: 10}), c: one,
			checks: []check{cache(true, 20_000)},
		},
		{
			name: "reads do not dominate: cache off",
			ns:   kv(namespaces.Needs{ReadRPS: 5_000, WriteRPS: 1_000}), c: one,
			checks: []check{cache(false, 0)},
		},
		{
			name: "auto keyvalue is sqlite, never natskv",
			ns:   namespaces.Namespace{Name: "orders", Abstraction: "keyvalue", Backend: "auto", Needs: namespaces.Needs{MaxItemBytes: 100}}, c: namespaces.Cluster{Nodes: 1, Postgres: true},
			checks: []check{backend("sqlite")},
		},
		{
			name: "auto small timeseries is sqlite",
			ns:   ts("auto", namespaces.Needs{WriteRPS: 100, Retention: h(24), MaxItemBytes: 512}), c: namespaces.Cluster{Nodes: 1, Postgres: true},
			checks: []check{backend("sqlite")},
		},
		{
			name: "auto large timeseries is postgres",
			ns:   ts("auto", namespaces.Needs{WriteRPS: 5000, Retention: h(720), MaxItemBytes: 2048}), c: namespaces.Cluster{Nodes: 1, Postgres: true},
			checks: []check{backend("postgres"), reason(func(p namespaces.Plan) string { return p.Partitions.Reason }, "14000 events/s, postgres timeseries")},
		},
		{
			name: "auto timeseries forever is postgres",
			ns:   ts("auto", namespaces.Needs{WriteRPS: 10}), c: namespaces.Cluster{Nodes: 1, Postgres: true},
			checks: []check{backend("postgres"), reason(func(p namespaces.Plan) string { return p.Backend.Reason }, "without bound")},
		},
		{
			name: "auto large timeseries without postgres stays sqlite with a warning",
			ns:   ts("auto", namespaces.Needs{WriteRPS: 5000, Retention: h(720)}), c: one,
			checks: []check{backend("sqlite"), warns("no PostgreSQL is available")},
		},
		{
			name: "named backend is kept",
			ns:   ts("postgres", namespaces.Needs{WriteRPS: 1}), c: one,
			checks: []check{backend("postgres"), reason(func(p namespaces.Plan) string { return p.Backend.Reason }, "named in the spec")},
		},
		{
			name: "natskv refuses large items",
			ns:   namespaces.Namespace{Name: "orders", Abstraction: "keyvalue", Backend: "natskv", Needs: namespaces.Needs{MaxItemBytes: 100 << 10}}, c: one,
			wantErr: "backend natskv is for small records", cannot: true,
		},
		{
			name: "p99 below the measured floor warns",
			ns:   kv(namespaces.Needs{P99Latency: namespaces.Duration(time.Millisecond)}), c: one,
			checks: []check{warns("below an unloaded put's measured p99 of 3.4ms")},
		},
		{
			name: "strong p99 floor is visibility",
			ns:   namespaces.Namespace{Name: "orders", Abstraction: "keyvalue", Backend: "sqlite", Consistency: namespaces.Strong, Needs: namespaces.Needs{P99Latency: namespaces.Duration(10 * time.Millisecond)}}, c: one,
			checks: []check{warns("strong write's (put to visible) measured p99 of 16ms")},
		},
		{
			name: "p99 above the floor does not warn",
			ns:   kv(namespaces.Needs{P99Latency: namespaces.Duration(50 * time.Millisecond)}), c: one,
			checks: []check{noWarnings},
		},
		{
			name: "invalid namespace",
			ns:   kv(namespaces.Needs{Durability: "safe"}), c: one,
			wantErr: `needs.durability: "safe" is not one of best-effort, durable, replicated`,
		},
		{
			name: "no nodes",
			ns:   kv(namespaces.Needs{}), c: namespaces.Cluster{},
			wantErr: "cluster nodes 0: want at least 1",
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			p, err := namespaces.Derive(tt.ns, tt.c)
			if tt.wantErr != "" {
				if err == nil || !strings.Contains(err.Error(), tt.wantErr) {
					t.Fatalf("err = %v, want it to contain %q", err, tt.wantErr)
				}
				if got := errors.Is(err, namespaces.ErrCannotProvide); got != tt.cannot {
					t.Fatalf("errors.Is(err, ErrCannotProvide) = %v, want %v (err %v)", got, tt.cannot, err)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if p.Namespace != tt.ns.Name || p.Guarantee == "" {
				t.Fatalf("plan names %q with guarantee %q", p.Namespace, p.Guarantee)
			}
			for _, s := range p.Settings() {
				if s.Reason == "" {
					t.Errorf("setting %s has no reason", s.Name)
				}
			}
			for _, c := range tt.checks {
				if msg := c(p); msg != "" {
					t.Error(msg)
				}
			}
		})
	}
}

func fmtAny(v any) string { return fmt.Sprintf("%v", v) }

// A plan read back from the admin API (JSON) prints as the one Derive
// made: whole numbers stay integers.
func TestPlanReportJSONPrintsIntegers(t *testing.T) {
	ns := namespaces.Namespace{Name: "clicks", Abstraction: namespaces.AbstractionLog, Backend: "kafka", Needs: namespaces.Needs{WriteRPS: 20000}}
	p, err := namespaces.Derive(ns, namespaces.Cluster{Nodes: 1})
	if err != nil {
		t.Fatal(err)
	}
	want := p.Report()
	b, err := json.Marshal(want)
	if err != nil {
		t.Fatal(err)
	}
	var got namespaces.PlanReport
	if err := json.Unmarshal(b, &got); err != nil {
		t.Fatal(err)
	}
	if len(got.Settings) != len(want.Settings) {
		t.Fatalf("read back %d settings, want %d", len(got.Settings), len(want.Settings))
	}
	for i, s := range got.Settings {
		if g, w := s.ValueString(), fmt.Sprint(want.Settings[i].Value); g != w {
			t.Errorf("setting %s read back prints %s, want %s", s.Name, g, w)
		}
	}
	for _, tt := range []struct {
		v    any
		want string
	}{{float64(1 << 20), "1048576"}, {0.5, "0.5"}, {1 << 20, "1048576"}, {"2m0s", "2m0s"}, {true, "true"}} {
		if got := (namespaces.Setting{Value: tt.v}).ValueString(); got != tt.want {
			t.Errorf("ValueString of %v (%T) = %q, want %q", tt.v, tt.v, got, tt.want)
		}
	}
}

// Every reason of a plan names the abstraction it is for and says
// durability the same way.
func TestPlanReasonsWording(t *testing.T) {
	for _, tt := range []struct {
		name string
		ns   namespaces.Namespace
	}{
		{"keyvalue", namespaces.Namespace{Name: "orders", Abstraction: namespaces.AbstractionKeyValue, Backend: "sqlite"}},
		{"log", namespaces.Namespace{Name: "clicks", Abstraction: namespaces.AbstractionLog, Backend: "kafka"}},
	} {
		t.Run(tt.name, func(t *testing.T) {
			p, err := namespaces.Derive(tt.ns, namespaces.Cluster{Nodes: 1})
			if err != nil {
				t.Fatal(err)
			}
			if want := tt.name + ": the stream is the records' history"; !strings.HasPrefix(p.MaxAge.Reason, want) {
				t.Errorf("max_age reason %q, want it to start with %q", p.MaxAge.Reason, want)
			}
			for _, s := range p.Settings() {
				if strings.Contains(s.Reason, "durability") && !strings.Contains(s.Reason, "durability not stated (best-effort)") {
					t.Errorf("setting %s: reason %q names durability otherwise than \"durability not stated (best-effort)\"", s.Name, s.Reason)
				}
			}
		})
	}
	stated := namespaces.Namespace{Name: "orders", Abstraction: namespaces.AbstractionKeyValue, Backend: "sqlite", Needs: namespaces.Needs{Durability: namespaces.BestEffort}}
	p, err := namespaces.Derive(stated, namespaces.Cluster{Nodes: 1})
	if err != nil {
		t.Fatal(err)
	}
	if want := "durability=best-effort: one copy is enough"; p.Replicas.Reason != want {
		t.Errorf("replicas reason %q, want %q", p.Replicas.Reason, want)
	}
}

// TestDeriveLargeItems: a keyvalue namespace may plan for items above one
// event (uploaded in parts, ADR 025); a timeseries one may not.
func TestDeriveLargeItems(t *testing.T) {
	kv := namespaces.Namespace{Name: "docs", Abstraction: namespaces.AbstractionKeyValue, Backend: "sqlite", Needs: namespaces.Needs{MaxItemBytes: 20 << 20}}
	p, err := namespaces.Derive(kv, namespaces.Cluster{Nodes: 1})
	if err != nil || !strings.Contains(p.MaxMsgSize.Reason, "uploaded in parts") || p.MaxMsgSize.Value != namespaces.MaxStreamMsgSize {
		t.Fatalf("keyvalue with 20 MiB items: %+v, %v", p.MaxMsgSize, err)
	}
	ts := namespaces.Namespace{Name: "ticks", Abstraction: namespaces.AbstractionTimeSeries, Backend: "sqlite", Needs: namespaces.Needs{MaxItemBytes: 20 << 20}}
	if _, err := namespaces.Derive(ts, namespaces.Cluster{Nodes: 1}); err == nil || !strings.Contains(err.Error(), "event limit") {
		t.Fatalf("timeseries with 20 MiB items: %v; want the event limit", err)
	}
}
