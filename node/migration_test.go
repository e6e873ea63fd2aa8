package node_test

import (
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/prism-data/prism/backends/postgres"
	"github.com/prism-data/prism/backends/postgres/pgtest"
	"github.com/prism-data/prism/client"
	"github.com/prism-data/prism/namespaces"
	"github.com/prism-data/prism/node"
	"github.com/prism-data/prism/node/nodetest"
	prismv1 "github.com/prism-data/prism/proto/prism/v1"
	"github.com/prism-data/prism/status"
	"github.com/prism-data/prism/subjects"
)

// waitMigration waits until namespace name's migration is in state want.
// The bound is a liveness limit for a backfill of a few thousand events.
func waitMigration(t *testing.T, admin *namespaces.AdminClient, name string, want namespaces.MigrationState) namespaces.AdminNamespace {
	t.Helper()
	deadline := time.Now().Add(30 * time.Second)
	for {
		n, err := admin.Get(context.Background(), name)
		if err == nil && n.Migration != nil && n.Migration.State == want {
			return n
		}
		if time.Now().After(deadline) {
			t.Fatalf("migration of %s never reached %s: %+v, %v", name, want, n.Migration, err)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// verifyNow runs a verify of name's migration in the stack.
func verifyNow(t *testing.T, admin *namespaces.AdminClient, name string) node.VerifyReply {
	t.Helper()
	rep, err := node.RequestVerify(context.Background(), admin, name, "test", time.Minute)
	if err != nil {
		t.Fatal(err)
	}
	return rep
}

// roles maps target name → role in n's status.
func roles(n namespaces.AdminNamespace) map[string]string {
	out := map[string]string{}
	for _, t := range n.Targets {
		out[t.Target] = t.Role
	}
	return out
}

// waitRoles waits until the targets of name have exactly the roles want.
func waitRoles(t *testing.T, admin *namespaces.AdminClient, name string, want map[string]string) {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for {
		n, err := admin.Get(context.Background(), name)
		if err == nil && fmt.Sprint(roles(n)) == fmt.Sprint(want) {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("targets of %s = %v (%v), want %v", name, roles(n), err, want)
		}
		time.Sleep(10 * time.Millisecond)
	}
}

func putValues(t *testing.T, kv *client.KeyValue, from, to int, value string) {
	t.Helper()
	for i := from; i < to; i++ {
		id := fmt.Sprintf("rec-%05d", i)
		if _, err := kv.Put(context.Background(), []byte(id), []client.Item{{Key: []byte("v"), Value: []byte(value + id)}}); err != nil {
			t.Fatal(err)
		}
	}
}

func checkValues(t *testing.T, kv *client.KeyValue, from, to int, value string) {
	t.Helper()
	for i := from; i < to; i++ {
		id := fmt.Sprintf("rec-%05d", i)
		rec, err := kv.Get(context.Background(), []byte(id))
		if err != nil || len(rec.Items) != 1 || string(rec.Items[0].Value) != value+id {
			t.Fatalf("get %s = %+v, %v; want %s", id, rec, err, value+id)
		}
	}
}

// TestMigrationInProcess moves a keyvalue namespace from SQLite to
// PostgreSQL through every state in one process (so -race sees the
// follower, the routing and the projectors together), then restarts
// Prism on the same data directory: the namespace is served from
// PostgreSQL with every record.
func TestMigrationInProcess(t *testing.T) {
	ctx := context.Background()
	dsn := pgtest.DSN(t)
	name := pgtest.Namespace(t, "mig")
	dir := t.TempDir()
	st, admin, c := nodetest.Start(t, node.Config{DataDir: dir, PostgresDSN: dsn})
	kv := c.KeyValue(name)
	ns := namespaces.Namespace{Name: name, Abstraction: namespaces.AbstractionKeyValue, Backend: "sqlite", Consistency: namespaces.Strong}
	res, err := admin.Apply(ctx, ns, 0, "test")
	if err != nil {
		t.Fatal(err)
	}
	nodetest.WaitServing(t, admin, name, res.Revision)
	putValues(t, kv, 0, 300, "a-")

	if _, err := admin.StartMigration(ctx, name, namespaces.Target{Backend: "postgres"}, namespaces.MigrationOptions{ShadowSample: 1}, "test"); err != nil {
		t.Fatal(err)
	}
	n := waitMigration(t, admin, name, namespaces.MigrationShadowing)
	states := []namespaces.MigrationState{}
	for _, tr := range n.Migration.History {
		states = append(states, tr.To)
	}
	if !slices.Equal(states, []namespaces.MigrationState{namespaces.MigrationPlanned, namespaces.MigrationBackfilling, namespaces.MigrationShadowing}) {
		t.Fatalf("history = %v", states)
	}
	waitRoles(t, admin, name, map[string]string{"sqlite": "primary", "postgres": "shadow"})
	putValues(t, kv, 300, 400, "b-")
	checkValues(t, kv, 0, 300, "a-")
	// Every get was compared against the shadow (sample 1): the status
	// shows them, none mismatched.
	deadline := time.Now().Add(10 * time.Second)
	for {
		n, err := admin.Get(ctx, name)
		if err != nil {
			t.Fatal(err)
		}
		var c map[string]int64
		for _, ts := range n.Targets {
			if ts.Role == "shadow" {
				c = ts.ShadowReads
			}
		}
		if c["mismatch"] != 0 {
			t.Fatalf("shadow reads %v: a mismatch between two correct targets", c)
		}
		if c["match"] > 0 {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("no shadow read matched in the status: %v", c)
		}
		time.Sleep(20 * time.Millisecond)
	}

	// A row corrupted behind the new target's back: verify names exactly
	// that record, the migration stays shadowing and cannot cut over.
	conn, err := pgx.Connect(ctx, dsn)
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close(ctx)
	schema, _ := postgres.TargetSchemaName(name, "postgres")
	items := pgx.Identifier{schema, "items"}.Sanitize()
	if tag, err := conn.Exec(ctx, "UPDATE "+items+" SET value = 'corrupt' WHERE id = 'rec-00123'"); err != nil || tag.RowsAffected() != 1 {
		t.Fatalf("corrupt a row: %v, %v", tag, err)
	}
	rep := verifyNow(t, admin, name)
	if rep.Report.Passed() || rep.Report.Differing != 1 || rep.Report.Missing != 0 || rep.Report.Extra != 0 || !slices.Equal(rep.Report.DifferingIDs, []string{"rec-00123"}) || rep.State != namespaces.MigrationShadowing {
		t.Fatalf("verify of a corrupted row: %+v", rep)
	}
	if _, err := admin.Migrate(ctx, namespaces.AdminMigrateCutover, name, "test"); !errors.Is(err, status.ErrFailedPrecondition) {
		t.Fatalf("cutover after a failed verify = %v", err)
	}
	if _, err := conn.Exec(ctx, "UPDATE "+items+" SET value = 'a-rec-00123' WHERE id = 'rec-00123'"); err != nil {
		t.Fatal(err)
	}
	if rep := verifyNow(t, admin, name); !rep.Report.Passed() || rep.Report.Compared != 400 || rep.State != namespaces.MigrationVerified {
		t.Fatalf("verify: %+v", rep)
	}
	if _, err := admin.Migrate(ctx, namespaces.AdminMigrateCutover, name, "test"); err != nil {
		t.Fatal(err)
	}
	waitRoles(t, admin, name, map[string]string{"sqlite": "shadow", "postgres": "primary"})
	// Strong: a write acked after the cutover is read back (from PostgreSQL,
	// which serves the reads now; the gateway routing test proves the source).
	putValues(t, kv, 400, 450, "c-")
	checkValues(t, kv, 0, 300, "a-")
	checkValues(t, kv, 300, 400, "b-")
	checkValues(t, kv, 400, 450, "c-")

	if _, err := admin.Migrate(ctx, namespaces.AdminMigrateRollback, name, "test"); err != nil {
		t.Fatal(err)
	}
	waitRoles(t, admin, name, map[string]string{"sqlite": "primary", "postgres": "shadow"})
	putValues(t, kv, 450, 500, "d-")
	checkValues(t, kv, 400, 450, "c-")
	checkValues(t, kv, 450, 500, "d-")
	if rep := verifyNow(t, admin, name); !rep.Report.Passed() || rep.Report.Compared != 500 {
		t.Fatalf("verify after rollback: %+v", rep)
	}
	for _, op := range []string{namespaces.AdminMigrateCutover, namespaces.AdminMigrateFinalize} {
		if _, err := admin.Migrate(ctx, op, name, "test"); err != nil {
			t.Fatal(err)
		}
	}
	waitRoles(t, admin, name, map[string]string{"postgres": "primary"})
	n, err = admin.Get(ctx, name)
	if err != nil {
		t.Fatal(err)
	}
	if n.Backend != "postgres" || n.PrimaryTarget().Name != "postgres" {
		t.Fatalf("after finalize: backend %s, primary %+v", n.Backend, n.PrimaryTarget())
	}
	// The stopped target's consumer goes (right after the routing moved:
	// wait for it); its SQLite file is kept.
	for deadline := time.Now().Add(10 * time.Second); ; time.Sleep(10 * time.Millisecond) {
		_, err := st.JetStream().Consumer(ctx, subjects.Stream(name), subjects.Consumer("sqlite"))
		if errors.Is(err, jetstream.ErrConsumerNotFound) {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("consumer of the finalized-away target: %v, want it deleted", err)
		}
	}
	if _, err := os.Stat(filepath.Join(dir, "sqlite", name+".db")); err != nil {
		t.Fatalf("SQLite file of the old target: %v, want it kept", err)
	}
	st.Close(ctx)

	_, admin, c = nodetest.Start(t, node.Config{DataDir: dir, PostgresDSN: dsn})
	waitRoles(t, admin, name, map[string]string{"postgres": "primary"})
	kv = c.KeyValue(name)
	checkValues(t, kv, 0, 300, "a-")
	checkValues(t, kv, 300, 400, "b-")
	checkValues(t, kv, 450, 500, "d-")
}

// TestServeCompactsInBackground: a namespace whose records are overwritten
// many times is compacted by prism serve on its own; reads are unchanged
// and the stream holds at most two events per record. The events are published
// without idempotency tokens: a record whose last write has one is left
// alone for the duplicate window (2 minutes), which a test cannot wait.
func TestServeCompactsInBackground(t *testing.T) {
	ctx := context.Background()
	st, admin, c := nodetest.Start(t, node.Config{DataDir: t.TempDir(), CompactCheckInterval: 100 * time.Millisecond})
	ns := namespaces.Namespace{Name: "hot", Abstraction: namespaces.AbstractionKeyValue, Backend: "sqlite", Consistency: namespaces.Strong}
	res, err := admin.Apply(ctx, ns, 0, "test")
	if err != nil {
		t.Fatal(err)
	}
	nodetest.WaitServing(t, admin, "hot", res.Revision)
	kv := c.KeyValue("hot")
	const records, rounds = 50, 10
	for r := range rounds {
		for i := range records {
			id := fmt.Sprintf("rec-%05d", i)
			ev := &prismv1.KeyValueEvent{Id: []byte(id), Change: &prismv1.KeyValueEvent_Put{Put: &prismv1.KeyValuePut{
				Items: []*prismv1.Item{{Key: []byte("v"), Value: fmt.Appendf(nil, "r%d-%s", r, id)}}}}}
			msg, err := subjects.NewKeyValueEvent(subjects.EventMeta{Namespace: "hot"}, ev)
			if err != nil {
				t.Fatal(err)
			}
			if _, err := st.JetStream().PublishMsg(ctx, msg); err != nil {
				t.Fatal(err)
			}
		}
	}
	stream, err := st.JetStream().Stream(ctx, subjects.Stream("hot"))
	if err != nil {
		t.Fatal(err)
	}
	deadline := time.Now().Add(20 * time.Second)
	for {
		info, err := stream.Info(ctx)
		if err != nil {
			t.Fatal(err)
		}
		// A pass runs while the stream holds more than twice as many
		// events as records (a pass that started during the writes may
		// leave the stream just under that).
		if info.State.Msgs <= 2*records && info.State.NumSubjects == records {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("stream holds %d events for %d records after 20s: not compacted", info.State.Msgs, records)
		}
		time.Sleep(50 * time.Millisecond)
	}
	// Strong reads after the rollups were applied: a read with the
	// stream's last seq as min_seq sees the projection past them.
	info, err := stream.Info(ctx)
	if err != nil {
		t.Fatal(err)
	}
	for i := range records {
		id := fmt.Sprintf("rec-%05d", i)
		rec, err := kv.Get(ctx, []byte(id), client.MinSeq(info.State.LastSeq))
		if err != nil || len(rec.Items) != 1 || string(rec.Items[0].Value) != fmt.Sprintf("r%d-%s", rounds-1, id) {
			t.Fatalf("get %s after compaction = %+v, %v", id, rec, err)
		}
	}
}

// A migration target that cannot start (its PostgreSQL is unreachable)
// is reported and retried; the namespace keeps being served from its
// primary, also after a restart, and a rollback clears the error.
func TestBrokenMigrationTargetKeepsServing(t *testing.T) {
	ctx := context.Background()
	dir := t.TempDir()
	st, admin, c := nodetest.Start(t, node.Config{DataDir: dir})
	ns := namespaces.Namespace{Name: "orders", Abstraction: namespaces.AbstractionKeyValue, Backend: "sqlite", Consistency: namespaces.Strong}
	res, err := admin.Apply(ctx, ns, 0, "test")
	if err != nil {
		t.Fatal(err)
	}
	nodetest.WaitServing(t, admin, "orders", res.Revision)
	kv := c.KeyValue("orders")
	putValues(t, kv, 0, 20, "a-")
	bad := namespaces.Target{Backend: "postgres", Postgres: namespaces.PostgresConfig{DSN: "postgres://prism@127.0.0.1:1/prism?connect_timeout=1"}}
	// Recorded past the admin API's check, which refuses it: as a target
	// whose server went down after the start.
	if _, err := namespaces.StartMigration(ctx, st.Registry(), "orders", bad, namespaces.MigrationOptions{}, "test"); err != nil {
		t.Fatal(err)
	}
	waitTargetError := func(admin *namespaces.AdminClient) {
		t.Helper()
		deadline := time.Now().Add(20 * time.Second)
		for {
			n, err := admin.Get(ctx, "orders")
			if err == nil && len(n.Targets) == 1 && n.Targets[0].Target == "sqlite" && n.Targets[0].State == "running" && strings.Contains(n.Targets[0].Error, "postgres") {
				return
			}
			if time.Now().After(deadline) {
				t.Fatalf("status never reported the broken target: %+v, %v", n.Targets, err)
			}
			time.Sleep(20 * time.Millisecond)
		}
	}
	waitTargetError(admin)
	putValues(t, kv, 20, 40, "b-")
	checkValues(t, kv, 0, 20, "a-")
	checkValues(t, kv, 20, 40, "b-")

	st.Close(ctx)
	_, admin, c = nodetest.Start(t, node.Config{DataDir: dir})
	kv = c.KeyValue("orders")
	deadline := time.Now().Add(20 * time.Second)
	for {
		if _, err := kv.Get(ctx, []byte("rec-00001")); err == nil {
			break
		}
		if time.Now().After(deadline) {
			t.Fatal("the namespace is not served after a restart with a broken migration target")
		}
		time.Sleep(20 * time.Millisecond)
	}
	waitTargetError(admin)
	checkValues(t, kv, 20, 40, "b-")

	if _, err := admin.Migrate(ctx, namespaces.AdminMigrateRollback, "orders", "test"); err != nil {
		t.Fatal(err)
	}
	deadline = time.Now().Add(20 * time.Second)
	for {
		n, err := admin.Get(ctx, "orders")
		if err == nil && len(n.Targets) == 1 && n.Targets[0].Error == "" && n.Migration.State == namespaces.MigrationRolledBack {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("after the rollback: %+v, %v", n.Targets, err)
		}
		time.Sleep(20 * time.Millisecond)
	}
}
