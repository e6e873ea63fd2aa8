package namespaces_test

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"sync"
	"testing"

	"github.com/prism-data/prism/namespaces"
	"github.com/prism-data/prism/status"
)

func pgTarget(name string) namespaces.Target {
	return namespaces.Target{Name: name, Backend: "postgres"}
}

// The whole life of a migration through the admin API: every transition
// is checked against the state, recorded with who made it, and kept in the
// registry entry next to the namespace it moves.
func TestMigrationLifecycle(t *testing.T) {
	e := newAdminEnv(t, namespaces.Cluster{Nodes: 1})
	ctx := context.Background()
	if _, err := e.client.Apply(ctx, kvNamespace("orders"), 0, "ada@test"); err != nil {
		t.Fatal(err)
	}
	got, err := e.client.StartMigration(ctx, "orders", pgTarget(""), namespaces.MigrationOptions{MaxRate: 5000, Adaptive: true}, "ada@test")
	if err != nil {
		t.Fatal(err)
	}
	m := got.Migration
	if m == nil || m.State != namespaces.MigrationPlanned || m.To.Name != "postgres" || m.From.Name != "sqlite" || m.MaxRate != 5000 || !m.Adaptive {
		t.Fatalf("started migration = %+v", m)
	}

	// Nothing skips a state.
	for _, op := range []string{namespaces.AdminMigrateCutover, namespaces.AdminMigrateFinalize} {
		if _, err := e.client.Migrate(ctx, op, "orders", "ada@test"); !errors.Is(err, status.ErrFailedPrecondition) {
			t.Fatalf("%s while planned = %v, want FAILED_PRECONDITION", op, err)
		}
	}
	if _, err := namespaces.RecordVerify(ctx, e.reg, "orders", namespaces.VerifySummary{Passed: true}, "ada@test"); !errors.Is(err, status.ErrFailedPrecondition) {
		t.Fatalf("verify while planned = %v, want FAILED_PRECONDITION", err)
	}
	// A second migration cannot start, nor can the namespace be deleted.
	if _, err := e.client.StartMigration(ctx, "orders", pgTarget("pg2"), namespaces.MigrationOptions{}, "bob@test"); !errors.Is(err, status.ErrFailedPrecondition) {
		t.Fatalf("second start = %v, want FAILED_PRECONDITION", err)
	}
	if _, err := e.client.Delete(ctx, "orders", 0, true); !errors.Is(err, status.ErrFailedPrecondition) {
		t.Fatalf("delete while migrating = %v, want FAILED_PRECONDITION", err)
	}

	const serve = "prism serve test"
	if _, err := namespaces.AdvanceMigration(ctx, e.reg, "orders", namespaces.MigrationPlanned, namespaces.MigrationBackfilling, serve, ""); err != nil {
		t.Fatal(err)
	}
	if _, err := namespaces.AdvanceMigration(ctx, e.reg, "orders", namespaces.MigrationPlanned, namespaces.MigrationBackfilling, serve, ""); !errors.Is(err, status.ErrFailedPrecondition) {
		t.Fatalf("advancing from a state it left = %v, want FAILED_PRECONDITION", err)
	}
	if _, err := namespaces.AdvanceMigration(ctx, e.reg, "orders", namespaces.MigrationBackfilling, namespaces.MigrationShadowing, serve, "caught up"); err != nil {
		t.Fatal(err)
	}
	// A failed verify keeps it shadowing; cutover needs a passed one.
	r, err := namespaces.RecordVerify(ctx, e.reg, "orders", namespaces.VerifySummary{Checkpoint: 10, Compared: 5, Matched: 4, Differing: 1}, "ada@test")
	if err != nil || r.Migration.State != namespaces.MigrationShadowing || r.Migration.Verify.Differing != 1 {
		t.Fatalf("failed verify: %+v, %v", r.Migration, err)
	}
	if _, err := e.client.Migrate(ctx, namespaces.AdminMigrateCutover, "orders", "ada@test"); !errors.Is(err, status.ErrFailedPrecondition) {
		t.Fatalf("cutover after a failed verify = %v, want FAILED_PRECONDITION", err)
	}
	if _, err := namespaces.RecordVerify(ctx, e.reg, "orders", namespaces.VerifySummary{Checkpoint: 12, Compared: 5, Matched: 5, Passed: true}, "ada@test"); err != nil {
		t.Fatal(err)
	}
	if got, err = e.client.Migrate(ctx, namespaces.AdminMigrateCutover, "orders", "ada@test"); err != nil || got.Migration.State != namespaces.MigrationCutOver {
		t.Fatalf("cutover: %+v, %v", got.Migration, err)
	}
	// Rollback after a cutover returns to shadowing and needs a new verify.
	if got, err = e.client.Migrate(ctx, namespaces.AdminMigrateRollback, "orders", "bob@test"); err != nil || got.Migration.State != namespaces.MigrationShadowing {
		t.Fatalf("rollback of a cutover: %+v, %v", got.Migration, err)
	}
	if _, err := namespaces.RecordVerify(ctx, e.reg, "orders", namespaces.VerifySummary{Checkpoint: 20, Matched: 5, Compared: 5, Passed: true}, "ada@test"); err != nil {
		t.Fatal(err)
	}
	if _, err := e.client.Migrate(ctx, namespaces.AdminMigrateCutover, "orders", "ada@test"); err != nil {
		t.Fatal(err)
	}
	got, err = e.client.Migrate(ctx, namespaces.AdminMigrateFinalize, "orders", "ada@test")
	if err != nil {
		t.Fatal(err)
	}
	if got.Backend != "postgres" || got.Namespace.Backend != "postgres" || got.PrimaryTarget().Name != "postgres" || got.Migration.State != namespaces.MigrationFinalized {
		t.Fatalf("finalized entry: backend %s/%s primary %+v state %s", got.Backend, got.Namespace.Backend, got.PrimaryTarget(), got.Migration.State)
	}
	if _, err := e.client.Migrate(ctx, namespaces.AdminMigrateRollback, "orders", "ada@test"); !errors.Is(err, status.ErrFailedPrecondition) {
		t.Fatalf("rollback after finalize = %v, want FAILED_PRECONDITION", err)
	}

	want := []struct {
		from, to namespaces.MigrationState
		by       string
	}{
		{"", namespaces.MigrationPlanned, "ada@test"},
		{namespaces.MigrationPlanned, namespaces.MigrationBackfilling, serve},
		{namespaces.MigrationBackfilling, namespaces.MigrationShadowing, serve},
		{namespaces.MigrationShadowing, namespaces.MigrationShadowing, "ada@test"},
		{namespaces.MigrationShadowing, namespaces.MigrationVerified, "ada@test"},
		{namespaces.MigrationVerified, namespaces.MigrationCutOver, "ada@test"},
		{namespaces.MigrationCutOver, namespaces.MigrationShadowing, "bob@test"},
		{namespaces.MigrationShadowing, namespaces.MigrationVerified, "ada@test"},
		{namespaces.MigrationVerified, namespaces.MigrationCutOver, "ada@test"},
		{namespaces.MigrationCutOver, namespaces.MigrationFinalized, "ada@test"},
	}
	h := got.Migration.History
	if len(h) != len(want) {
		t.Fatalf("history has %d transitions, want %d: %+v", len(h), len(want), h)
	}
	for i, w := range want {
		if h[i].From != w.from || h[i].To != w.to || h[i].By != w.by || h[i].At.IsZero() {
			t.Errorf("history[%d] = %+v, want %s → %s by %s", i, h[i], w.from, w.to, w.by)
		}
	}

	// The declaration applied before is kept; applying the old backend now
	// needs a migration, the new one is unchanged.
	if got.AppliedBy != "ada@test" {
		t.Errorf("applied_by after the migration = %q", got.AppliedBy)
	}
	if _, err := e.client.Apply(ctx, kvNamespace("orders"), got.Revision, "ada@test"); !errors.Is(err, status.ErrFailedPrecondition) {
		t.Fatalf("applying backend sqlite after the move = %v, want FAILED_PRECONDITION", err)
	}
	moved := kvNamespace("orders")
	moved.Backend = "postgres"
	res, err := e.client.Apply(ctx, moved, got.Revision, "ada@test")
	if err != nil || res.Action != namespaces.ActionUnchanged {
		t.Fatalf("applying backend postgres after the move: %+v, %v", res, err)
	}
	// A new migration may start once the last one ended.
	if _, err := e.client.StartMigration(ctx, "orders", namespaces.Target{Name: "lite", Backend: "sqlite"}, namespaces.MigrationOptions{}, "ada@test"); err != nil {
		t.Fatalf("start after finalize: %v", err)
	}
}

// A live change applied during a migration keeps the migration.
func TestApplyKeepsMigration(t *testing.T) {
	e := newAdminEnv(t, namespaces.Cluster{Nodes: 1})
	ctx := context.Background()
	if _, err := e.client.Apply(ctx, kvNamespace("orders"), 0, "ada@test"); err != nil {
		t.Fatal(err)
	}
	r, err := e.client.StartMigration(ctx, "orders", pgTarget("pg"), namespaces.MigrationOptions{}, "ada@test")
	if err != nil {
		t.Fatal(err)
	}
	strong := kvNamespace("orders")
	strong.Consistency = namespaces.Strong
	if _, err = e.client.Apply(ctx, strong, r.Revision, "bob@test"); err != nil {
		t.Fatal(err)
	}
	got, err := e.reg.Get(ctx, "orders")
	if err != nil {
		t.Fatal(err)
	}
	if got.Namespace.Consistency != namespaces.Strong || got.Migration == nil || got.Migration.To.Name != "pg" || got.Migration.State != namespaces.MigrationPlanned {
		t.Fatalf("after a live apply: consistency %s, migration %+v", got.Namespace.Consistency, got.Migration)
	}
}

// Targets the namespace cannot use are refused, and nothing is stored.
func TestStartMigrationRefused(t *testing.T) {
	e := newAdminEnv(t, namespaces.Cluster{Nodes: 1})
	ctx := context.Background()
	if _, err := e.client.Apply(ctx, kvNamespace("orders"), 0, "ada@test"); err != nil {
		t.Fatal(err)
	}
	ts := namespaces.Namespace{Name: "metrics", Abstraction: namespaces.AbstractionTimeSeries, Backend: "sqlite"}
	if _, err := e.client.Apply(ctx, ts, 0, "ada@test"); err != nil {
		t.Fatal(err)
	}
	gr := namespaces.Namespace{Name: "social", Abstraction: namespaces.AbstractionGraph, Backend: "sqlite"}
	if _, err := e.client.Apply(ctx, gr, 0, "ada@test"); err != nil {
		t.Fatal(err)
	}
	for _, c := range []struct {
		name, ns string
		to       namespaces.Target
		rate     int
		wantErr  error
	}{
		{"same name as primary", "orders", namespaces.Target{Backend: "sqlite"}, 0, status.ErrInvalidArgument},
		{"unknown backend", "orders", namespaces.Target{Backend: "mysql"}, 0, status.ErrInvalidArgument},
		{"bad name", "orders", namespaces.Target{Name: "Bad Name", Backend: "postgres"}, 0, status.ErrInvalidArgument},
		{"natskv under another name", "orders", namespaces.Target{Name: "kv2", Backend: "natskv"}, 0, status.ErrInvalidArgument},
		{"timeseries to natskv", "metrics", namespaces.Target{Backend: "natskv"}, 0, status.ErrInvalidArgument},
		{"timeseries at all", "metrics", namespaces.Target{Backend: "postgres"}, 0, status.ErrInvalidArgument},
		{"graph to natskv", "social", namespaces.Target{Backend: "natskv"}, 0, status.ErrInvalidArgument},
		{"graph to kafka", "social", namespaces.Target{Backend: "kafka"}, 0, status.ErrInvalidArgument},
		{"password in dsn", "orders", namespaces.Target{Backend: "postgres", Postgres: namespaces.PostgresConfig{DSN: "postgres://u:secret@db/x"}}, 0, status.ErrInvalidArgument},
		{"negative rate", "orders", pgTarget("pg"), -1, status.ErrInvalidArgument},
		{"unknown namespace", "nope", pgTarget("pg"), 0, status.ErrNamespaceNotFound},
	} {
		t.Run(c.name, func(t *testing.T) {
			_, err := e.client.StartMigration(ctx, c.ns, c.to, namespaces.MigrationOptions{MaxRate: c.rate}, "ada@test")
			if !errors.Is(err, c.wantErr) {
				t.Fatalf("start = %v, want %v", err, c.wantErr)
			}
		})
	}
	for _, ns := range []string{"orders", "metrics", "social"} {
		if r, err := e.reg.Get(ctx, ns); err != nil || r.Migration != nil {
			t.Fatalf("%s after refused starts: migration %+v, %v", ns, r.Migration, err)
		}
	}
	// A graph namespace moves to any backend that serves graphs.
	if _, err := e.client.StartMigration(ctx, "social", namespaces.Target{Backend: "neptune"}, namespaces.MigrationOptions{}, "ada@test"); err != nil {
		t.Fatalf("graph to neptune: %v", err)
	}
	if r, err := e.reg.Get(ctx, "social"); err != nil || r.Migration == nil || r.Migration.To.Backend != "neptune" || r.Migration.State != namespaces.MigrationPlanned {
		t.Fatalf("social after a start to neptune: %+v, %v", r.Migration, err)
	}
}

// Of operators racing the same transition, exactly one makes it; the
// others are told the state moved on.
func TestMigrationRacingCutovers(t *testing.T) {
	e := verifiedMigration(t)
	ctx := context.Background()
	const n = 8
	var wg sync.WaitGroup
	errs := make([]error, n)
	for i := range n {
		wg.Go(func() { _, errs[i] = namespaces.Cutover(ctx, e.reg, "orders", fmt.Sprintf("op%d", i)) })
	}
	wg.Wait()
	won := 0
	for _, err := range errs {
		switch {
		case err == nil:
			won++
		case !errors.Is(err, status.ErrFailedPrecondition):
			t.Errorf("losing cutover = %v, want FAILED_PRECONDITION", err)
		}
	}
	r, err := e.reg.Get(ctx, "orders")
	if err != nil {
		t.Fatal(err)
	}
	cutovers := 0
	for _, tr := range r.Migration.History {
		if tr.To == namespaces.MigrationCutOver {
			cutovers++
		}
	}
	if won != 1 || cutovers != 1 {
		t.Fatalf("%d cutovers won, %d recorded; want 1 and 1", won, cutovers)
	}
}

// A verify after the cutover keeps the state; a failed one blocks
// finalize until a rollback and a passed verify.
func TestVerifyAfterCutover(t *testing.T) {
	e := verifiedMigration(t)
	ctx := context.Background()
	if _, err := namespaces.Cutover(ctx, e.reg, "orders", "ada@test"); err != nil {
		t.Fatal(err)
	}
	r, err := namespaces.RecordVerify(ctx, e.reg, "orders", namespaces.VerifySummary{Differing: 2}, "ada@test")
	if err != nil || r.Migration.State != namespaces.MigrationCutOver {
		t.Fatalf("failed verify after cutover: %+v, %v", r.Migration, err)
	}
	if _, err := namespaces.Finalize(ctx, e.reg, "orders", "ada@test"); !errors.Is(err, status.ErrFailedPrecondition) {
		t.Fatalf("finalize after a failed verify = %v, want FAILED_PRECONDITION", err)
	}
	if _, err := namespaces.RecordVerify(ctx, e.reg, "orders", namespaces.VerifySummary{Passed: true}, "ada@test"); err != nil {
		t.Fatal(err)
	}
	if r, err := namespaces.Finalize(ctx, e.reg, "orders", "ada@test"); err != nil || r.Migration.State != namespaces.MigrationFinalized {
		t.Fatalf("finalize after a passed verify: %+v, %v", r.Migration, err)
	}
}

// verifiedMigration is an admin environment whose namespace "orders" has a
// migration to target pg that reached verified.
func verifiedMigration(t *testing.T) *adminEnv {
	t.Helper()
	e := startedMigration(t)
	advanceToShadowing(t, e)
	if _, err := namespaces.RecordVerify(context.Background(), e.reg, "orders", namespaces.VerifySummary{Passed: true}, "ada@test"); err != nil {
		t.Fatal(err)
	}
	return e
}

// startedMigration is an admin environment whose namespace "orders" has a
// migration to target pg, planned.
func startedMigration(t *testing.T) *adminEnv {
	t.Helper()
	e := newAdminEnv(t, namespaces.Cluster{Nodes: 1})
	ctx := context.Background()
	if _, err := e.client.Apply(ctx, kvNamespace("orders"), 0, "ada@test"); err != nil {
		t.Fatal(err)
	}
	if _, err := namespaces.StartMigration(ctx, e.reg, "orders", pgTarget("pg"), namespaces.MigrationOptions{}, "ada@test"); err != nil {
		t.Fatal(err)
	}
	return e
}

// advanceToShadowing moves the planned migration of "orders" on to
// shadowing, as the serving process does.
func advanceToShadowing(t *testing.T, e *adminEnv) {
	t.Helper()
	for _, step := range [][2]namespaces.MigrationState{{namespaces.MigrationPlanned, namespaces.MigrationBackfilling}, {namespaces.MigrationBackfilling, namespaces.MigrationShadowing}} {
		if _, err := namespaces.AdvanceMigration(context.Background(), e.reg, "orders", step[0], step[1], "serve", ""); err != nil {
			t.Fatal(err)
		}
	}
}

// A transition refused because of the state names the command that moves
// the migration on, so an operator is never left guessing.
func TestRefusedTransitionNamesTheNextStep(t *testing.T) {
	e := startedMigration(t)
	ctx := context.Background()
	refused := func(op, want string) {
		t.Helper()
		_, err := e.client.Migrate(ctx, op, "orders", "ada@test")
		if !errors.Is(err, status.ErrFailedPrecondition) || !strings.Contains(err.Error(), want) {
			t.Fatalf("%s = %v, want FAILED_PRECONDITION saying %q", op, err, want)
		}
	}
	refused(namespaces.AdminMigrateCutover, "is planned, not verified; wait until the new target caught up and the migration is shadowing (prism migrate status orders)")
	advanceToShadowing(t, e)
	refused(namespaces.AdminMigrateCutover, "is shadowing, not verified; run prism migrate verify orders")
	refused(namespaces.AdminMigrateFinalize, "is shadowing, not cutover; run prism migrate verify orders")
	if _, err := namespaces.RecordVerify(ctx, e.reg, "orders", namespaces.VerifySummary{Passed: true}, "ada@test"); err != nil {
		t.Fatal(err)
	}
	refused(namespaces.AdminMigrateFinalize, "is verified, not cutover; run prism migrate cutover orders (or prism migrate rollback orders)")
	if _, err := e.client.Migrate(ctx, namespaces.AdminMigrateRollback, "orders", "ada@test"); err != nil {
		t.Fatal(err)
	}
	refused(namespaces.AdminMigrateCutover, "is rolled-back, not verified; the migration has ended; start a new one with prism migrate start orders")
}

func TestNextMigrationStep(t *testing.T) {
	for _, tt := range []struct {
		state namespaces.MigrationState
		want  string
	}{
		{namespaces.MigrationPlanned, "prism migrate status web"},
		{namespaces.MigrationBackfilling, "prism migrate status web"},
		{namespaces.MigrationPlanned, "abandon the migration with prism migrate rollback web"},
		{namespaces.MigrationBackfilling, "abandon the migration with prism migrate rollback web"},
		{namespaces.MigrationShadowing, "run prism migrate verify web"},
		{namespaces.MigrationVerified, "run prism migrate cutover web"},
		{namespaces.MigrationCutOver, "run prism migrate finalize web"},
		{namespaces.MigrationFinalized, "prism migrate start web"},
		{namespaces.MigrationRolledBack, "prism migrate start web"},
	} {
		if got := namespaces.NextMigrationStep("web", tt.state); !strings.Contains(got, tt.want) {
			t.Errorf("NextMigrationStep(%s) = %q, want it to say %q", tt.state, got, tt.want)
		}
	}
}
