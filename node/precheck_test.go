package node_test

import (
	"context"
	"errors"
	"strings"
	"testing"

	"github.com/prism-data/prism/backends/kafka/kafkatest"
	"github.com/prism-data/prism/namespaces"
	"github.com/prism-data/prism/node"
	"github.com/prism-data/prism/node/nodetest"
	"github.com/prism-data/prism/status"
)

// An apply or a migration start that the node could not serve (no
// PostgreSQL connection string, a PostgreSQL or Kafka that does not
// answer) is refused with FAILED_PRECONDITION saying what is missing, and
// nothing is stored: no namespace that then shows failed, no migration
// that can neither go on nor start again.
func TestCheckBeforeStoring(t *testing.T) {
	ctx := context.Background()
	_, brokers := kafkatest.Start(t)
	_, admin, _ := nodetest.Start(t, node.Config{DataDir: t.TempDir(), KafkaBrokers: brokers})
	kv := func(name string) namespaces.Namespace {
		return namespaces.Namespace{Name: name, Abstraction: namespaces.AbstractionKeyValue, Backend: "sqlite"}
	}
	log := func(name string, brokers ...string) namespaces.Namespace {
		return namespaces.Namespace{Name: name, Abstraction: namespaces.AbstractionLog, Backend: "kafka", Kafka: namespaces.KafkaConfig{Brokers: namespaces.NewBrokers(brokers...)}}
	}
	pg := kv("ledger")
	pg.Backend = "postgres"
	// A PostgreSQL address nothing listens on.
	down := "postgres://prism@" + kafkatest.NoBroker(t) + "/prism?connect_timeout=1"
	pgDown := pg
	pgDown.Postgres.DSN = down
	kafkaDown := kafkatest.NoBroker(t)

	refused := func(t *testing.T, err error, want ...string) {
		t.Helper()
		if !errors.Is(err, status.ErrFailedPrecondition) {
			t.Fatalf("err = %v, want FAILED_PRECONDITION", err)
		}
		for _, w := range append(want, "nothing was stored") {
			if !strings.Contains(err.Error(), w) {
				t.Errorf("err = %v, want it to say %q", err, w)
			}
		}
	}
	notStored := func(t *testing.T, name string) {
		t.Helper()
		if n, err := admin.Get(ctx, name); !errors.Is(err, status.ErrNamespaceNotFound) {
			t.Errorf("namespace %s after a refused apply: %+v, %v; want NAMESPACE_NOT_FOUND", name, n.Registered, err)
		}
	}

	t.Run("apply", func(t *testing.T) {
		tests := []struct {
			name string
			ns   namespaces.Namespace
			want []string
		}{
			{"postgres without a dsn", pg, []string{"no PostgreSQL connection string", "--postgres-dsn", "postgres.dsn"}},
			{"postgres down", pgDown, []string{"PostgreSQL does not accept a connection"}},
			{"kafka down", log("clicks", kafkaDown), []string{"no Kafka broker at " + kafkaDown, "--kafka-brokers"}},
		}
		for _, tc := range tests {
			t.Run(tc.name, func(t *testing.T) {
				_, err := admin.Apply(ctx, tc.ns, 0, "test")
				refused(t, err, tc.want...)
				notStored(t, tc.ns.Name)
			})
		}
		// Brokers that listen (here --kafka-brokers) pass the check.
		res, err := admin.Apply(ctx, log("clicks"), 0, "test")
		if err != nil {
			t.Fatalf("apply of a log namespace with a reachable broker: %v", err)
		}
		nodetest.WaitServing(t, admin, "clicks", res.Revision)
	})

	t.Run("migrate start", func(t *testing.T) {
		res, err := admin.Apply(ctx, kv("orders"), 0, "test")
		if err != nil {
			t.Fatal(err)
		}
		for _, to := range []namespaces.Target{{Backend: "postgres"}, {Backend: "postgres", Postgres: namespaces.PostgresConfig{DSN: down}}} {
			_, err := admin.StartMigration(ctx, "orders", to, namespaces.MigrationOptions{}, "test")
			refused(t, err, "target postgres (backend postgres) cannot be served")
		}
		n, err := admin.Get(ctx, "orders")
		if err != nil {
			t.Fatal(err)
		}
		if n.Migration != nil || n.Revision != res.Revision {
			t.Errorf("orders after refused migration starts: revision %d, migration %+v; want revision %d and none", n.Revision, n.Migration, res.Revision)
		}
		// Refusals of the state machine's own come first, unchanged.
		if _, err := admin.StartMigration(ctx, "nope", namespaces.Target{Backend: "postgres"}, namespaces.MigrationOptions{}, "test"); !errors.Is(err, status.ErrNamespaceNotFound) {
			t.Errorf("migration of an unknown namespace: %v, want NAMESPACE_NOT_FOUND", err)
		}
	})
}
