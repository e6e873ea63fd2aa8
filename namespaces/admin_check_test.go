package namespaces_test

import (
	"context"
	"errors"
	"strings"
	"sync"
	"testing"

	"github.com/prism-data/prism/itest/natstest"
	"github.com/prism-data/prism/namespaces"
	"github.com/prism-data/prism/status"
)

// CheckTarget is asked about the primary target of a namespace an apply
// creates and the new target of a migration start, never about an update;
// its error refuses the request with FAILED_PRECONDITION and nothing is
// stored.
func TestAdminCheckTarget(t *testing.T) {
	nc, js := natstest.Start(t)
	ctx := context.Background()
	reg, _, err := namespaces.OpenRegistry(ctx, js, 1)
	if err != nil {
		t.Fatal(err)
	}
	var mu sync.Mutex
	var asked []string
	client := startAdmin(t, nc, reg, namespaces.AdminConfig{Cluster: namespaces.Cluster{Nodes: 1}, CheckTarget: func(_ context.Context, ns namespaces.Namespace, tg namespaces.Target) error {
		mu.Lock()
		defer mu.Unlock()
		asked = append(asked, ns.Name+"/"+tg.Name+"/"+tg.Backend+"/"+tg.Postgres.DSN)
		switch {
		case tg.Backend == "postgres" && tg.Postgres.DSN == "":
			return errors.New("no connection string")
		case tg.Name == "coded":
			return status.Newf(status.ErrUnavailable.Code, "try later")
		}
		return nil
	}})
	wantAsked := func(want ...string) {
		t.Helper()
		mu.Lock()
		defer mu.Unlock()
		if strings.Join(asked, " ") != strings.Join(want, " ") {
			t.Errorf("CheckTarget asked about %q, want %q", asked, want)
		}
		asked = nil
	}

	pg := with(kvNamespace("ledger"), func(n *namespaces.Namespace) { n.Backend = "postgres" })
	_, err = client.Apply(ctx, pg, 0, "")
	if !errors.Is(err, status.ErrFailedPrecondition) || !strings.Contains(err.Error(), "namespace ledger: target postgres (backend postgres) cannot be served: no connection string; nothing was stored") {
		t.Errorf("apply refused by the check = %v", err)
	}
	wantAsked("ledger/postgres/postgres/")
	if _, err := reg.Get(ctx, "ledger"); !errors.Is(err, status.ErrNamespaceNotFound) {
		t.Errorf("ledger after a refused apply: %v, want NAMESPACE_NOT_FOUND", err)
	}

	live, err := client.Apply(ctx, kvNamespace("orders"), 0, "")
	if err != nil {
		t.Fatal(err)
	}
	wantAsked("orders/sqlite/sqlite/")
	if _, err := client.Apply(ctx, with(kvNamespace("orders"), func(n *namespaces.Namespace) { n.Team = "t" }), live.Revision, ""); err != nil {
		t.Fatal(err)
	}
	// A conflicting create is Apply's to refuse, unasked.
	if _, err := client.Apply(ctx, kvNamespace("orders"), 0, ""); !errors.Is(err, status.ErrConflict) {
		t.Errorf("create over an existing namespace = %v, want CONFLICT", err)
	}
	wantAsked()

	_, err = client.StartMigration(ctx, "orders", namespaces.Target{Backend: "postgres"}, namespaces.MigrationOptions{}, "")
	if !errors.Is(err, status.ErrFailedPrecondition) || !strings.Contains(err.Error(), "no connection string; nothing was stored") {
		t.Errorf("migration start refused by the check = %v", err)
	}
	_, err = client.StartMigration(ctx, "orders", namespaces.Target{Name: "coded", Backend: "sqlite"}, namespaces.MigrationOptions{}, "")
	if !errors.Is(err, status.ErrUnavailable) || !strings.Contains(err.Error(), "try later") {
		t.Errorf("migration start refused with a coded error = %v, want it as it is", err)
	}
	// An invalid target is StartMigration's to refuse, unasked.
	if _, err := client.StartMigration(ctx, "orders", namespaces.Target{Backend: "kafka"}, namespaces.MigrationOptions{}, ""); !errors.Is(err, status.ErrInvalidArgument) {
		t.Errorf("migration to kafka = %v, want INVALID_ARGUMENT", err)
	}
	wantAsked("orders/postgres/postgres/", "orders/coded/sqlite/")
	if r, err := reg.Get(ctx, "orders"); err != nil || r.Migration != nil {
		t.Errorf("orders after refused migration starts: %+v, %v; want no migration", r.Migration, err)
	}
	to := namespaces.Target{Backend: "postgres", Postgres: namespaces.PostgresConfig{DSN: "postgres://prism@db/prism"}}
	n, err := client.StartMigration(ctx, "orders", to, namespaces.MigrationOptions{}, "")
	if err != nil || n.Migration == nil || n.Migration.State != namespaces.MigrationPlanned {
		t.Fatalf("migration start the check passes: %+v, %v", n.Migration, err)
	}
	wantAsked("orders/postgres/postgres/postgres://prism@db/prism")

	// A start that went wrong anyway is undone in one command.
	_, err = client.StartMigration(ctx, "orders", namespaces.Target{Name: "pg2", Backend: "postgres", Postgres: to.Postgres}, namespaces.MigrationOptions{}, "")
	if want := "abandon it first with prism migrate rollback orders"; !errors.Is(err, status.ErrFailedPrecondition) || !strings.Contains(err.Error(), want) {
		t.Errorf("second migration start = %v, want FAILED_PRECONDITION saying %q", err, want)
	}
	if _, err := client.Migrate(ctx, namespaces.AdminMigrateRollback, "orders", ""); err != nil {
		t.Fatalf("rollback of a planned migration: %v", err)
	}
	if n, err := client.StartMigration(ctx, "orders", to, namespaces.MigrationOptions{}, ""); err != nil || n.Migration.State != namespaces.MigrationPlanned {
		t.Fatalf("migration start after the rollback: %+v, %v", n.Migration, err)
	}
}
