package namespaces_test

import (
	"context"
	"crypto/rand"
	"errors"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/prism-data/prism/itest/natstest"
	"github.com/prism-data/prism/namespaces"
	"github.com/prism-data/prism/status"
	"github.com/prism-data/prism/subjects"
)

// adminEnv is a registry and an admin responder on an in-process server.
type adminEnv struct {
	nc     *nats.Conn
	js     jetstream.JetStream
	reg    *namespaces.Registry
	client *namespaces.AdminClient
}

func newAdminEnv(t testing.TB, c namespaces.Cluster) *adminEnv {
	t.Helper()
	nc, js := natstest.Start(t)
	reg, created, err := namespaces.OpenRegistry(context.Background(), js, 1)
	if err != nil {
		t.Fatal(err)
	}
	if !created {
		t.Fatal("OpenRegistry on a new server: created = false")
	}
	client := startAdmin(t, nc, reg, namespaces.AdminConfig{Cluster: c, Status: func(_ context.Context, ns string) []namespaces.TargetStatus {
		return []namespaces.TargetStatus{{Target: "sqlite", Role: "primary", State: "running", Checkpoint: 7, StreamLast: 9, Lag: 2}}
	}})
	return &adminEnv{nc: nc, js: js, reg: reg, client: client}
}

// startAdmin starts an admin responder over reg with cfg, drained at the
// end of the test, and returns a client of it.
func startAdmin(t testing.TB, nc *nats.Conn, reg *namespaces.Registry, cfg namespaces.AdminConfig) *namespaces.AdminClient {
	t.Helper()
	adm, err := namespaces.NewAdmin(nc, reg, cfg)
	if err != nil {
		t.Fatal(err)
	}
	if err := adm.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = adm.Drain() })
	return namespaces.NewAdminClient(nc, 5*time.Second)
}

func kvNamespace(name string) namespaces.Namespace {
	return namespaces.Namespace{Name: name, Abstraction: namespaces.AbstractionKeyValue, Backend: "sqlite", Consistency: namespaces.Eventual}
}

func TestRegistryOpenTwiceKeepsEntries(t *testing.T) {
	e := newAdminEnv(t, namespaces.Cluster{Nodes: 1})
	ctx := context.Background()
	if _, err := e.client.Apply(ctx, kvNamespace("orders"), 0, "ada@test"); err != nil {
		t.Fatal(err)
	}
	reg, created, err := namespaces.OpenRegistry(ctx, e.js, 1)
	if err != nil {
		t.Fatal(err)
	}
	if created {
		t.Error("second OpenRegistry: created = true")
	}
	got, err := reg.Get(ctx, "orders")
	if err != nil {
		t.Fatal(err)
	}
	if got.Namespace != kvNamespace("orders") || got.Backend != "sqlite" || got.AppliedBy != "ada@test" || got.Revision == 0 || got.AppliedAt.IsZero() {
		t.Errorf("Get = %+v", got)
	}
}

func TestAdminApplyCreateUpdateUnchanged(t *testing.T) {
	e := newAdminEnv(t, namespaces.Cluster{Nodes: 1})
	ctx := context.Background()
	ns := kvNamespace("orders")

	plan, err := e.client.Plan(ctx, ns)
	if err != nil {
		t.Fatal(err)
	}
	if plan.Action != namespaces.ActionCreate || plan.Revision != 0 || plan.Backend != "sqlite" || len(plan.Plan.Settings) == 0 {
		t.Fatalf("plan of a new namespace = %+v", plan)
	}
	if _, err := e.reg.Get(ctx, "orders"); !errors.Is(err, status.ErrNamespaceNotFound) {
		t.Fatalf("plan stored something: Get err = %v", err)
	}

	created, err := e.client.Apply(ctx, ns, 0, "ada")
	if err != nil {
		t.Fatal(err)
	}
	if created.Action != namespaces.ActionCreate || created.Revision == 0 {
		t.Fatalf("create = %+v", created)
	}

	same, err := e.client.Apply(ctx, ns, created.Revision, "ada")
	if err != nil {
		t.Fatal(err)
	}
	if same.Action != namespaces.ActionUnchanged || same.Revision != created.Revision {
		t.Errorf("re-apply of the same namespace = %+v, want unchanged at revision %d", same, created.Revision)
	}

	ns.Consistency = namespaces.Strong
	ns.Needs.WriteRPS = 20_000
	plan, err = e.client.Plan(ctx, ns)
	if err != nil {
		t.Fatal(err)
	}
	want := map[string][2]string{
		"consistency":         {"eventual", "strong"},
		"needs.write_rps":     {"0", "20000"},
		"settings.batch_size": {"256", "1024"},
		// ADR 023: the admission limits follow write_rps, live.
		"settings.write_rate_limit": {"0", "40000"},
		"settings.in_flight_quota":  {"0", "4000"},
	}
	if plan.Action != namespaces.ActionUpdate || plan.Revision != created.Revision || plan.Blocked != "" {
		t.Fatalf("plan of an update = %+v", plan)
	}
	if len(plan.Changes) != len(want) {
		t.Errorf("changes = %+v, want %d", plan.Changes, len(want))
	}
	for _, ch := range plan.Changes {
		w, ok := want[ch.Field]
		if !ok || ch.From != w[0] || ch.To != w[1] || ch.Effect != namespaces.EffectLive {
			t.Errorf("change %+v, want %s %v live", ch, ch.Field, w)
		}
	}
	updated, err := e.client.Apply(ctx, ns, plan.Revision, "grace")
	if err != nil {
		t.Fatal(err)
	}
	if updated.Revision <= created.Revision {
		t.Errorf("update revision %d, want > %d", updated.Revision, created.Revision)
	}
	got, err := e.client.Get(ctx, "orders")
	if err != nil {
		t.Fatal(err)
	}
	if got.Namespace.Consistency != namespaces.Strong || got.AppliedBy != "grace" || got.Revision != updated.Revision {
		t.Errorf("Get after update = %+v", got.Registered)
	}
	if got.Plan == nil || len(got.Targets) != 1 || got.Targets[0].Lag != 2 {
		t.Errorf("Get plan %+v targets %+v", got.Plan, got.Targets)
	}
}

func TestAdminConcurrentAppliesOneWins(t *testing.T) {
	e := newAdminEnv(t, namespaces.Cluster{Nodes: 1})
	ctx := context.Background()
	base, err := e.client.Apply(ctx, kvNamespace("orders"), 0, "setup")
	if err != nil {
		t.Fatal(err)
	}
	for _, rev := range []uint64{0, base.Revision} { // racing creates, then racing updates
		name := "orders"
		if rev == 0 {
			name = "fresh"
		}
		const racers = 8
		var wg sync.WaitGroup
		errs := make([]error, racers)
		for i := range racers {
			wg.Add(1)
			go func() {
				defer wg.Done()
				ns := kvNamespace(name)
				ns.Team = "team-" + string(rune('a'+i))
				_, errs[i] = e.client.Apply(ctx, ns, rev, ns.Team)
			}()
		}
		wg.Wait()
		won := -1
		for i, err := range errs {
			switch {
			case err == nil && won >= 0:
				t.Fatalf("revision %d: racers %d and %d both won", rev, won, i)
			case err == nil:
				won = i
			case !errors.Is(err, status.ErrConflict):
				t.Errorf("revision %d: racer %d: %v, want CONFLICT", rev, i, err)
			case !strings.Contains(err.Error(), name):
				t.Errorf("conflict message %q does not name the namespace", err)
			}
		}
		if won < 0 {
			t.Fatalf("revision %d: nobody won", rev)
		}
		got, err := e.reg.Get(ctx, name)
		if err != nil {
			t.Fatal(err)
		}
		if wantTeam := "team-" + string(rune('a'+won)); got.Namespace.Team != wantTeam {
			t.Errorf("stored team %q, want the winner's %q", got.Namespace.Team, wantTeam)
		}
	}
}

func TestAdminApplyRefusesAndStoresNothing(t *testing.T) {
	e := newAdminEnv(t, namespaces.Cluster{Nodes: 1})
	ctx := context.Background()
	live, err := e.client.Apply(ctx, kvNamespace("orders"), 0, "")
	if err != nil {
		t.Fatal(err)
	}
	ts := namespaces.Namespace{Name: "metrics", Abstraction: namespaces.AbstractionTimeSeries, Backend: "sqlite"}
	tests := []struct {
		name     string
		ns       namespaces.Namespace
		revision uint64
		wantErr  *status.Error
		wantMsg  string
	}{
		{"unknown abstraction", namespaces.Namespace{Name: "x", Abstraction: "document", Backend: "sqlite"}, 0, status.ErrInvalidArgument, `abstraction "document" is not supported; use one of keyvalue, timeseries`},
		{"negative rate", with(kvNamespace("x"), func(n *namespaces.Namespace) { n.Needs.WriteRPS = -1 }), 0, status.ErrInvalidArgument, "needs.write_rps: -1 is negative"},
		{"retention below the dedupe window", with(ts, func(n *namespaces.Namespace) { n.Needs.Retention = namespaces.Duration(time.Minute) }), 0, status.ErrInvalidArgument, "needs.retention: 1m0s is shorter than the duplicate window 2m0s"},
		{"pii field not in the schema", with(kvNamespace("x"), func(n *namespaces.Namespace) {
			n.Fields = namespaces.NewNames("email", "name")
			n.PII = namespaces.GenericPII("email", "ssn")
		}), 0, status.ErrInvalidArgument, `pii[1]: "ssn" is not a declared field; fields are email, name`},
		{"pii without fields", with(kvNamespace("x"), func(n *namespaces.Namespace) { n.PII = namespaces.GenericPII("email") }), 0, status.ErrInvalidArgument, "declare the namespace's fields in fields"},
		{"password in dsn", with(kvNamespace("x"), func(n *namespaces.Namespace) {
			n.Backend = "postgres"
			// A password made up here, never a real one.
			n.Postgres.DSN = "postgres://prism:" + rand.Text() + "@db/prism"
		}), 0, status.ErrInvalidArgument, "postgres.dsn holds a password"},
		{"bad kafka broker", namespaces.Namespace{Name: "x", Abstraction: namespaces.AbstractionLog, Backend: "kafka", Kafka: namespaces.KafkaConfig{Brokers: namespaces.NewBrokers("k1")}}, 0, status.ErrInvalidArgument, `kafka.brokers[0]: broker "k1": want host:port`},
		{"durable on one node", with(kvNamespace("x"), func(n *namespaces.Namespace) { n.Needs.Durability = namespaces.Durable }), 0, status.ErrFailedPrecondition, "durable needs prism serve --sync-always"},
		{"backend change needs a migration", with(kvNamespace("orders"), func(n *namespaces.Namespace) { n.Backend = "natskv" }), live.Revision, status.ErrFailedPrecondition, "settings.backend sqlite → natskv"},
		{"abstraction change needs a migration", with(kvNamespace("orders"), func(n *namespaces.Namespace) { n.Abstraction = namespaces.AbstractionTimeSeries }), live.Revision, status.ErrFailedPrecondition, "abstraction keyvalue → timeseries"},
		{"stale revision", with(kvNamespace("orders"), func(n *namespaces.Namespace) { n.Team = "t" }), live.Revision + 100, status.ErrConflict, "changed since revision"},
		{"create over an existing one", with(kvNamespace("orders"), func(n *namespaces.Namespace) { n.Team = "t" }), 0, status.ErrConflict, "already exists"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			_, err := e.client.Apply(ctx, tc.ns, tc.revision, "")
			if !errors.Is(err, tc.wantErr) || !strings.Contains(err.Error(), tc.wantMsg) {
				t.Fatalf("Apply = %v, want %s containing %q", err, tc.wantErr.Code, tc.wantMsg)
			}
		})
	}
	regs, err := e.reg.List(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if len(regs) != 1 || regs[0].Namespace != kvNamespace("orders") || regs[0].Revision != live.Revision {
		t.Errorf("registry after refused applies = %+v, want only orders at revision %d", regs, live.Revision)
	}
}

func with(ns namespaces.Namespace, f func(*namespaces.Namespace)) namespaces.Namespace {
	f(&ns)
	return ns
}

func TestAdminDelete(t *testing.T) {
	e := newAdminEnv(t, namespaces.Cluster{Nodes: 1})
	ctx := context.Background()
	live, err := e.client.Apply(ctx, kvNamespace("orders"), 0, "")
	if err != nil {
		t.Fatal(err)
	}
	if _, err := e.client.Delete(ctx, "orders", live.Revision+1, false); !errors.Is(err, status.ErrConflict) {
		t.Fatalf("delete at a stale revision: %v, want CONFLICT", err)
	}
	if _, err := e.client.Delete(ctx, "nope", 0, false); !errors.Is(err, status.ErrNamespaceNotFound) {
		t.Fatalf("delete of an unknown namespace: %v, want NAMESPACE_NOT_FOUND", err)
	}
	if _, err := e.client.Delete(ctx, "Bad Name", 0, false); !errors.Is(err, status.ErrInvalidArgument) {
		t.Fatalf("delete of an invalid name: %v, want INVALID_ARGUMENT", err)
	}
	rep, err := e.client.Delete(ctx, "orders", live.Revision, false)
	if err != nil || rep.Name != "orders" {
		t.Fatalf("Delete = %+v, %v", rep, err)
	}
	if _, err := e.client.Get(ctx, "orders"); !errors.Is(err, status.ErrNamespaceNotFound) {
		t.Fatalf("Get after delete: %v, want NAMESPACE_NOT_FOUND", err)
	}
	list, err := e.client.List(ctx)
	if err != nil || len(list.Namespaces) != 0 {
		t.Fatalf("List after delete = %+v, %v", list, err)
	}
	// A deleted namespace may be created again.
	if _, err := e.client.Apply(ctx, kvNamespace("orders"), 0, ""); err != nil {
		t.Fatalf("re-create after delete: %v", err)
	}
}

func TestAdminBadRequests(t *testing.T) {
	e := newAdminEnv(t, namespaces.Cluster{Nodes: 1})
	for _, tc := range []struct {
		op, body string
		code     string
	}{
		{namespaces.AdminApply, `{"namespace":{"name":"x","abstraction":"keyvalue","backend":"sqlite","consistancy":"strong"}}`, "INVALID_ARGUMENT"},
		{namespaces.AdminGet, `not json`, "INVALID_ARGUMENT"},
		{"ns.upsert", `{}`, "UNIMPLEMENTED"},
		{namespaces.AdminGet, `{"name":"missing"}`, "NAMESPACE_NOT_FOUND"},
		{namespaces.AdminGet, `{"name":"Bad Name"}`, "INVALID_ARGUMENT"},
		{namespaces.AdminHistory, `{"name":""}`, "INVALID_ARGUMENT"},
	} {
		m, err := e.nc.Request(subjects.Admin(tc.op), []byte(tc.body), 5*time.Second)
		if err != nil {
			t.Fatal(err)
		}
		if got := m.Header.Get(subjects.HeaderErrorCode); got != tc.code {
			t.Errorf("%s %s: code %q (%s), want %s", tc.op, tc.body, got, m.Data, tc.code)
		}
	}
}

func TestRegistryWatch(t *testing.T) {
	e := newAdminEnv(t, namespaces.Cluster{Nodes: 1})
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	first, err := e.client.Apply(ctx, kvNamespace("a"), 0, "")
	if err != nil {
		t.Fatal(err)
	}
	gone, err := e.client.Apply(ctx, kvNamespace("gone"), 0, "")
	if err != nil {
		t.Fatal(err)
	}
	if _, err := e.client.Delete(ctx, "gone", gone.Revision, false); err != nil {
		t.Fatal(err)
	}
	ch, err := e.reg.Watch(ctx)
	if err != nil {
		t.Fatal(err)
	}
	next := func() namespaces.RegistryChange {
		t.Helper()
		select {
		case c := <-ch:
			return c
		case <-time.After(5 * time.Second):
			t.Fatal("no registry change within 5s")
		}
		return namespaces.RegistryChange{}
	}
	if c := next(); c.Op != namespaces.RegistryPut || c.Name != "a" || c.Entry.Revision != first.Revision || c.Err != nil {
		t.Fatalf("first change = %+v, want put a", c)
	}
	if c := next(); c.Op != namespaces.RegistryDelete || c.Name != "gone" {
		t.Fatalf("second change = %+v, want the tombstone of gone", c)
	}
	if c := next(); c.Op != namespaces.RegistrySynced {
		t.Fatalf("third change = %+v, want synced", c)
	}
	upd := kvNamespace("a")
	upd.Consistency = namespaces.Strong
	if _, err := e.client.Apply(ctx, upd, first.Revision, ""); err != nil {
		t.Fatal(err)
	}
	if c := next(); c.Op != namespaces.RegistryPut || c.Entry.Namespace.Consistency != namespaces.Strong {
		t.Fatalf("change after update = %+v", c)
	}
	if _, err := e.client.Delete(ctx, "a", 0, true); err != nil {
		t.Fatal(err)
	}
	if c := next(); c.Op != namespaces.RegistryPurge || c.Name != "a" {
		t.Fatalf("change after purge = %+v", c)
	}
	// Garbage written by hand is reported, not fatal.
	kv, err := e.js.KeyValue(ctx, subjects.RegistryBucket)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := kv.Put(ctx, "junk", []byte("{")); err != nil {
		t.Fatal(err)
	}
	if c := next(); c.Op != namespaces.RegistryPut || c.Name != "junk" || c.Err == nil {
		t.Fatalf("change after junk = %+v, want an error", c)
	}
	cancel()
	for range ch { // closed once ctx ends
	}
}

// Retention is one setting, written at the top level or under needs:
// Prism keeps it at the top level, so moving it between the two is no
// change, and the registry holds it where the stream and the sweep read it.
func TestApplyRetentionInEitherPlace(t *testing.T) {
	e := newAdminEnv(t, namespaces.Cluster{Nodes: 1})
	ctx := context.Background()
	month := namespaces.Duration(720 * time.Hour)
	underNeeds := namespaces.Namespace{Name: "metrics", Abstraction: namespaces.AbstractionTimeSeries, Backend: "sqlite", Needs: namespaces.Needs{Retention: month}}
	created, err := e.client.Apply(ctx, underNeeds, 0, "ada")
	if err != nil {
		t.Fatal(err)
	}
	got, err := e.reg.Get(ctx, "metrics")
	if err != nil {
		t.Fatal(err)
	}
	if got.Namespace.Retention != month || got.Namespace.Needs.Retention != 0 {
		t.Fatalf("stored retention %v, needs.retention %v; want %v at the top level", got.Namespace.Retention, got.Namespace.Needs.Retention, month)
	}
	topLevel := underNeeds
	topLevel.Retention, topLevel.Needs.Retention = month, 0
	plan, err := e.client.Plan(ctx, topLevel)
	if err != nil {
		t.Fatal(err)
	}
	if plan.Action != namespaces.ActionUnchanged || len(plan.Changes) != 0 {
		t.Fatalf("plan of the retention moved to the top level = %s with changes %+v, want unchanged", plan.Action, plan.Changes)
	}
	shorter := underNeeds
	shorter.Needs.Retention = namespaces.Duration(24 * time.Hour)
	plan, err = e.client.Plan(ctx, shorter)
	if err != nil {
		t.Fatal(err)
	}
	want := map[string][2]string{"retention": {"720h0m0s", "24h0m0s"}, "settings.max_age": {"720h0m0s", "24h0m0s"}}
	if len(plan.Changes) != len(want) {
		t.Fatalf("changes %+v, want %v", plan.Changes, want)
	}
	for _, c := range plan.Changes {
		if w, ok := want[c.Field]; !ok || c.From != w[0] || c.To != w[1] {
			t.Errorf("change %+v, want one of %v", c, want)
		}
	}
	both := topLevel
	both.Needs.Retention = month
	if _, err := e.client.Apply(ctx, both, created.Revision, "ada"); !errors.Is(err, status.ErrInvalidArgument) || !strings.Contains(err.Error(), "state it once") {
		t.Fatalf("apply with retention in both places = %v, want INVALID_ARGUMENT saying to state it once", err)
	}
}
