package node_test

import (
	"context"
	"encoding/base64"
	"encoding/json"
	"fmt"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/nats-io/nats.go"
	"google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/reflect/protodesc"
	"google.golang.org/protobuf/types/descriptorpb"

	"github.com/prism-data/prism/backends/postgres"
	"github.com/prism-data/prism/backends/postgres/pgtest"
	"github.com/prism-data/prism/examples/userprofile"
	"github.com/prism-data/prism/namespaces"
	"github.com/prism-data/prism/node"
	"github.com/prism-data/prism/node/nodetest"
	prismopts "github.com/prism-data/prism/proto/prism"
	"github.com/prism-data/prism/subjects"
)

// profileSchema is the entity section of the example's UserProfile,
// changed by change (a new field, a new index).
func profileSchema(t *testing.T, change func(*descriptorpb.DescriptorProto)) namespaces.EntityConfig {
	t.Helper()
	cfg, err := namespaces.EntityConfigOf((&userprofile.UserProfile{}).ProtoReflect().Descriptor())
	if err != nil {
		t.Fatal(err)
	}
	raw, _ := base64.StdEncoding.DecodeString(cfg.DescriptorSet)
	var set descriptorpb.FileDescriptorSet
	if err := proto.Unmarshal(raw, &set); err != nil {
		t.Fatal(err)
	}
	f := set.File[len(set.File)-1]
	if f.GetName() != userprofile.File_userprofile_userprofile_proto.Path() {
		t.Fatalf("last file of the set is %s", f.GetName())
	}
	change(f.MessageType[0])
	if _, err := protodesc.NewFiles(&set); err != nil {
		t.Fatal(err)
	}
	b, _ := proto.Marshal(&set)
	cfg.DescriptorSet = base64.StdEncoding.EncodeToString(b)
	return cfg
}

func noteField(index string) func(*descriptorpb.DescriptorProto) {
	return func(m *descriptorpb.DescriptorProto) {
		opts := &descriptorpb.FieldOptions{}
		if index != "" {
			proto.SetExtension(opts, prismopts.E_Index, index)
		}
		m.Field = append(m.Field, &descriptorpb.FieldDescriptorProto{Name: proto.String("note"), JsonName: proto.String("note"), Number: proto.Int32(9),
			Type: descriptorpb.FieldDescriptorProto_TYPE_STRING.Enum(), Label: descriptorpb.FieldDescriptorProto_LABEL_OPTIONAL.Enum(), Options: opts})
	}
}

// A new plain field of an entity namespace's message is a live apply:
// the gateway decodes it at once, and records written before still read.
func TestEntitySchemaEvolution(t *testing.T) {
	ctx := context.Background()
	n, admin, _ := nodetest.Start(t, node.Config{})
	ns := namespaces.Namespace{Name: "profiles", Abstraction: namespaces.AbstractionEntity, Backend: "sqlite", Consistency: namespaces.Strong,
		Entity: profileSchema(t, func(*descriptorpb.DescriptorProto) {})}
	res, err := admin.Apply(ctx, ns, 0, "test")
	if err != nil {
		t.Fatal(err)
	}
	nodetest.WaitServing(t, admin, ns.Name, res.Revision)
	req := entityRequester(t, n.URL(), ns.Name)
	if code, _ := req("write.put", `{"record":{"userId":"u1","createdAt":"1","note":"hi"}}`); code != "INVALID_ARGUMENT" {
		t.Fatalf("a field the message does not have yet: %q, want INVALID_ARGUMENT", code)
	}
	if code, body := req("write.put", `{"record":{"userId":"u1","createdAt":"1"}}`); code != "" {
		t.Fatalf("put: %s %s", code, body)
	}

	ns.Entity = profileSchema(t, noteField(""))
	res, err = admin.Apply(ctx, ns, res.Revision, "test")
	if err != nil {
		t.Fatalf("a new plain field: %v", err)
	}
	nodetest.WaitServing(t, admin, ns.Name, res.Revision)
	// Served at revision 2 means the gateway has its schema.
	if code, body := req("write.put", `{"record":{"userId":"u2","createdAt":"2","note":"hi"}}`); code != "" {
		t.Fatalf("put with the new field after the apply: %s %s", code, body)
	}
	if code, body := req("read.get", `{"key":"u2"}`); code != "" || !strings.Contains(body, `"note":"hi"`) {
		t.Errorf("get u2 = %s %s, want the note", code, body)
	}
	if code, body := req("read.get", `{"key":"u1"}`); code != "" || !strings.Contains(body, `"userId":"u1"`) {
		t.Errorf("a record written before the change: %s %s", code, body)
	}

}

// An index added by a live apply is filled from the records stored
// before it, on SQLite and PostgreSQL; one removed is dropped; a unique
// index over duplicate values fails, holds nothing and answers
// FAILED_PRECONDITION, and builds once the duplicate is gone.
func TestEntityIndexAddedLive(t *testing.T) {
	for _, backend := range []string{"sqlite", "postgres"} {
		t.Run(backend, func(t *testing.T) {
			cfg, name := node.Config{}, "profiles"
			if backend == "postgres" {
				cfg.PostgresDSN, name = pgtest.DSN(t), pgtest.Namespace(t, "enix")
			}
			n, admin, _ := nodetest.Start(t, cfg)
			ns := namespaces.Namespace{Name: name, Abstraction: namespaces.AbstractionEntity, Backend: backend, Consistency: namespaces.Strong,
				Entity: profileSchema(t, noteField(""))}
			rev := applyServed(t, admin, ns, 0)
			req := entityRequester(t, n.URL(), name)
			put := func(id, note string) string {
				t.Helper()
				code, body := req("write.put", fmt.Sprintf(`{"record":{"userId":%q,"createdAt":"1","note":%q}}`, id, note))
				if code != "" && code != "CONFLICT" {
					t.Fatalf("put %s: %s %s", id, code, body)
				}
				return code
			}
			// query waits while the index builds and returns the ids found.
			query := func(index, equal string) (string, string) {
				t.Helper()
				deadline := time.Now().Add(20 * time.Second)
				for {
					code, body := req("read.query", fmt.Sprintf(`{"index":%q,"equal":%q}`, index, equal))
					if code == "FAILED_PRECONDITION" && strings.Contains(body, "is building") && time.Now().Before(deadline) {
						time.Sleep(10 * time.Millisecond)
						continue
					}
					if code != "" {
						return code, body
					}
					var page struct {
						Records []struct {
							Record struct {
								UserID string `json:"userId"`
							} `json:"record"`
						} `json:"records"`
					}
					if err := json.Unmarshal([]byte(body), &page); err != nil {
						t.Fatal(err)
					}
					var ids []string
					for _, r := range page.Records {
						ids = append(ids, r.Record.UserID)
					}
					return "", strings.Join(ids, " ")
				}
			}
			for i := 1; i <= 700; i++ { // more than one build step
				note := "other"
				if i%100 == 0 {
					note = "hi"
				}
				put(fmt.Sprintf("u%03d", i), note)
			}

			ns.Entity = profileSchema(t, noteField("secondary"))
			rev = applyServed(t, admin, ns, rev)
			if code, ids := query("note", "hi"); code != "" || ids != "u100 u200 u300 u400 u500 u600 u700" {
				t.Fatalf("query of the new index = %s %q, want the 7 records stored before the apply", code, ids)
			}
			put("u800", "hi")
			if code, ids := query("note", "hi"); code != "" || !strings.HasSuffix(ids, "u700 u800") {
				t.Errorf("after a put = %s %q", code, ids)
			}
			if st := indexStatus(t, admin, name); st != "note ready" {
				t.Errorf("index status = %q, want note ready", st)
			}

			// Removed: dropped, and a query of it is refused as unknown.
			ns.Entity = profileSchema(t, noteField(""))
			rev = applyServed(t, admin, ns, rev)
			if code, _ := query("note", "hi"); code != "INVALID_ARGUMENT" {
				t.Errorf("query of a removed index = %s, want INVALID_ARGUMENT", code)
			}

			// Unique over duplicates: the apply is live, the build fails.
			ns.Entity = profileSchema(t, noteField("unique:by_note"))
			rev = applyServed(t, admin, ns, rev)
			code, body := query("by_note", "hi")
			if code != "FAILED_PRECONDITION" || !strings.Contains(body, "failed to build") || !strings.Contains(body, "hold one value") {
				t.Fatalf("query of a unique index over duplicates = %s %s, want FAILED_PRECONDITION naming two records", code, body)
			}
			if st := indexStatus(t, admin, name); !strings.HasPrefix(st, "by_note FAILED") {
				t.Errorf("index status = %q, want by_note FAILED", st)
			}
			// Fixed, removed and added again: it builds, and a put of a value
			// a record stored before holds is a CONFLICT.
			for i := 1; i <= 8; i++ {
				put(fmt.Sprintf("u%d00", i), fmt.Sprintf("n%d", i))
			}
			for i := 1; i <= 700; i++ {
				if i%100 != 0 {
					put(fmt.Sprintf("u%03d", i), fmt.Sprintf("o%d", i))
				}
			}
			ns.Entity = profileSchema(t, noteField(""))
			rev = applyServed(t, admin, ns, rev)
			ns.Entity = profileSchema(t, noteField("unique:by_note"))
			applyServed(t, admin, ns, rev)
			if code, ids := query("by_note", "n3"); code != "" || ids != "u300" {
				t.Fatalf("unique index after the fix = %s %q", code, ids)
			}
			if code := put("x1", "n3"); code != "CONFLICT" {
				t.Errorf("put of a value a record stored before the index holds = %q, want CONFLICT", code)
			}
		})
	}
}

// applyServed applies ns at revision and waits until it is served.
func applyServed(t *testing.T, admin *namespaces.AdminClient, ns namespaces.Namespace, revision uint64) uint64 {
	t.Helper()
	res, err := admin.Apply(context.Background(), ns, revision, "test")
	if err != nil {
		t.Fatal(err)
	}
	nodetest.WaitServing(t, admin, ns.Name, res.Revision)
	return res.Revision
}

// indexStatus is the index states of the namespace's target, as prism ns
// get shows them.
func indexStatus(t *testing.T, admin *namespaces.AdminClient, name string) string {
	t.Helper()
	n, err := admin.Get(context.Background(), name)
	if err != nil || len(n.Targets) != 1 {
		t.Fatalf("get %s: %+v, %v", name, n, err)
	}
	var parts []string
	for _, x := range n.Targets[0].Indexes {
		if x.Index != "created_at" {
			parts = append(parts, x.String())
		}
	}
	return strings.Join(parts, "; ")
}

// An entity namespace migrates from SQLite to PostgreSQL by replay, with
// an index added live before: the new target rebuilds its indexes, verify
// compares records and index entries and names a row tampered with in
// the target, and after the cutover queries are served from PostgreSQL.
func TestEntityMigrationVerify(t *testing.T) {
	ctx := context.Background()
	dsn, name := pgtest.DSN(t), pgtest.Namespace(t, "enmig")
	n, admin, _ := nodetest.Start(t, node.Config{DataDir: t.TempDir(), PostgresDSN: dsn})
	ns := namespaces.Namespace{Name: name, Abstraction: namespaces.AbstractionEntity, Backend: "sqlite", Consistency: namespaces.Strong,
		Entity: profileSchema(t, withBlindEmail(noteField("")))}
	rev := applyServed(t, admin, ns, 0)
	nc, err := nats.Connect(n.URL())
	if err != nil {
		t.Fatal(err)
	}
	defer nc.Close()
	put := func(id, note string) {
		t.Helper()
		reply, err := nc.Request(subjects.Write(name, "put"), fmt.Appendf(nil, `{"record":{"userId":%q,"createdAt":"5","note":%q,"email":"%s@example.com"}}`, id, note, id), 10*time.Second)
		if err != nil || reply.Header.Get(subjects.HeaderErrorCode) != "" {
			t.Fatalf("put %s: %v %s", id, err, reply.Data)
		}
	}
	for i := range 40 {
		put(fmt.Sprintf("u%02d", i), fmt.Sprint("n", i%4))
	}
	ns.Entity = profileSchema(t, withBlindEmail(noteField("secondary")))
	applyServed(t, admin, ns, rev)
	for i := 40; i < 50; i++ {
		put(fmt.Sprintf("u%02d", i), fmt.Sprint("n", i%4))
	}

	if _, err := admin.StartMigration(ctx, name, namespaces.Target{Backend: "postgres"}, namespaces.MigrationOptions{}, "test"); err != nil {
		t.Fatal(err)
	}
	waitMigration(t, admin, name, namespaces.MigrationShadowing)
	waitIndexesReady(t, admin, name, "postgres")
	if rep := verifyNow(t, admin, name); !rep.Report.Passed() || rep.Report.Compared != 50 {
		t.Fatalf("verify: %+v", rep)
	}

	conn, err := pgx.Connect(ctx, dsn)
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close(ctx)
	schema, _ := postgres.TargetSchemaName(name, "postgres")
	idx := pgx.Identifier{schema, "en_index"}.Sanitize()
	if tag, err := conn.Exec(ctx, "UPDATE "+idx+" SET key = 'n9'::bytea WHERE id = 'u07'::bytea AND idx = 'note'"); err != nil || tag.RowsAffected() != 1 {
		t.Fatalf("tamper with an index row: %v, %v", tag, err)
	}
	rep := verifyNow(t, admin, name)
	if rep.Report.Passed() || rep.Report.Differing != 1 || !slices.Equal(rep.Report.DifferingIDs, []string{"u07"}) || rep.State != namespaces.MigrationShadowing {
		t.Fatalf("verify of a tampered index row: %+v", rep)
	}
	if _, err := conn.Exec(ctx, "UPDATE "+idx+" SET key = 'n3'::bytea WHERE id = 'u07'::bytea AND idx = 'note'"); err != nil {
		t.Fatal(err)
	}
	if rep := verifyNow(t, admin, name); !rep.Report.Passed() || rep.State != namespaces.MigrationVerified {
		t.Fatalf("verify after the fix: %+v", rep)
	}
	if _, err := admin.Migrate(ctx, namespaces.AdminMigrateCutover, name, "test"); err != nil {
		t.Fatal(err)
	}
	waitRoles(t, admin, name, map[string]string{"sqlite": "shadow", "postgres": "primary"})
	reply, err := nc.Request(subjects.Read(name, "query"), []byte(`{"index":"note","equal":"n1","pageSize":100}`), 10*time.Second)
	if err != nil || reply.Header.Get(subjects.HeaderErrorCode) != "" || strings.Count(string(reply.Data), `"userId"`) != 13 {
		t.Fatalf("query after the cutover: %v %s, want the 13 records of note n1", err, reply.Data)
	}
	// The blind index came over with the entries the events carry.
	reply, err = nc.Request(subjects.Read(name, "query"), []byte(`{"index":"email","equal":"u07@example.com"}`), 10*time.Second)
	if err != nil || reply.Header.Get(subjects.HeaderErrorCode) != "" || !strings.Contains(string(reply.Data), `"userId":"u07"`) {
		t.Fatalf("query of the blind index after the cutover: %v %s, want u07", err, reply.Data)
	}
}

// withBlindEmail is change with the message's email field (PII) indexed:
// a blind index.
func withBlindEmail(change func(*descriptorpb.DescriptorProto)) func(*descriptorpb.DescriptorProto) {
	return func(m *descriptorpb.DescriptorProto) {
		change(m)
		for _, f := range m.Field {
			if f.GetName() == "email" {
				proto.SetExtension(f.Options, prismopts.E_Index, "secondary")
			}
		}
	}
}

// waitIndexesReady waits until every index of target is ready.
func waitIndexesReady(t *testing.T, admin *namespaces.AdminClient, name, target string) {
	t.Helper()
	deadline := time.Now().Add(20 * time.Second)
	for {
		n, err := admin.Get(context.Background(), name)
		if err != nil {
			t.Fatal(err)
		}
		ready := false
		for _, ts := range n.Targets {
			if ts.Target == target && len(ts.Indexes) > 0 {
				ready = true
				for _, x := range ts.Indexes {
					ready = ready && x.State == "ready"
				}
			}
		}
		if ready {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("indexes of %s not ready: %+v", target, n.Targets)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// The read cache serves entity gets when the needs turn it on, and never
// serves a record older than the last acknowledged strong put of it.
func TestEntityReadCacheNeverStale(t *testing.T) {
	st, admin, _ := nodetest.Start(t, node.Config{DataDir: t.TempDir()})
	name := "hot_profiles"
	ns := namespaces.Namespace{Name: name, Abstraction: namespaces.AbstractionEntity, Backend: "sqlite", Consistency: namespaces.Strong,
		Needs: namespaces.Needs{ReadRPS: 10_000, WriteRPS: 1_000}, Entity: profileSchema(t, noteField(""))}
	res, err := admin.Apply(context.Background(), ns, 0, "test")
	if err != nil {
		t.Fatal(err)
	}
	if !planSetting(res.Plan, "read_cache") {
		t.Fatalf("plan: read_cache off: %+v", res.Plan.Settings)
	}
	nodetest.WaitServing(t, admin, name, res.Revision)
	req := entityRequester(t, st.URL(), name)
	const ids = 4
	stop := make(chan struct{})
	var wg sync.WaitGroup
	for r := range 2 {
		wg.Go(func() {
			for i := r; ; i++ {
				select {
				case <-stop:
					return
				default:
				}
				_, _ = req("read.get", fmt.Sprintf(`{"key":"u%d"}`, i%ids))
			}
		})
	}
	for i := 1; i <= 200; i++ {
		id, want := fmt.Sprintf("u%d", i%ids), fmt.Sprintf(`"note":"v%d"`, i)
		if code, body := req("write.put", fmt.Sprintf(`{"record":{"userId":%q,"createdAt":"1","note":"v%d"}}`, id, i)); code != "" {
			close(stop)
			t.Fatalf("put: %s %s", code, body)
		}
		for range 2 { // the second read may be a cache hit
			if code, body := req("read.get", fmt.Sprintf(`{"key":%q}`, id)); code != "" || !strings.Contains(body, want) {
				close(stop)
				t.Fatalf("get %s after the put of v%d = %s %s: stale", id, i, code, body)
			}
		}
	}
	close(stop)
	wg.Wait()
	if hits := counterValue(t, st.Metrics(), "prism_gateway_read_cache_total", map[string]string{"namespace": name, "result": "hit"}); hits == 0 {
		t.Error("the read cache served no entity get")
	}
}

// entityRequester connects to url and returns a func that sends a
// request op ("write.put", "read.get", …) of namespace ns and returns the
// reply's error code ("" for none) and body.
func entityRequester(t *testing.T, url, ns string) func(op, body string) (string, string) {
	t.Helper()
	nc, err := nats.Connect(url)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(nc.Close)
	return func(op, body string) (string, string) {
		t.Helper()
		kind, name, _ := strings.Cut(op, ".")
		subject := subjects.Write(ns, name)
		if kind == "read" {
			subject = subjects.Read(ns, name)
		}
		reply, err := nc.Request(subject, []byte(body), 10*time.Second)
		if err != nil {
			t.Fatal(err)
		}
		return reply.Header.Get(subjects.HeaderErrorCode), string(reply.Data)
	}
}
