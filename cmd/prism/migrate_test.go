package main

import (
	"strings"
	"testing"

	"github.com/prism-data/prism/namespaces"
)

// A migration whose new target does not start says how to get out of it.
func TestPrintMigrationFailingTargetNamesRollback(t *testing.T) {
	n := namespaces.AdminNamespace{
		Registered: namespaces.Registered{Namespace: namespaces.Namespace{Name: "orders", Backend: "sqlite"}, Backend: "sqlite", Migration: &namespaces.Migration{
			From: namespaces.Target{Name: "sqlite", Backend: "sqlite"}, To: namespaces.Target{Name: "postgres", Backend: "postgres"}, State: namespaces.MigrationPlanned,
		}},
		Targets: []namespaces.TargetStatus{{Target: "sqlite", Backend: "sqlite", Role: "primary", State: "running", Error: "target postgres: no connection string"}},
	}
	for _, tc := range []struct {
		name  string
		state namespaces.MigrationState
		err   string
		want  bool
	}{
		{"planned, failing", namespaces.MigrationPlanned, "boom", true},
		{"backfilling, failing", namespaces.MigrationBackfilling, "boom", true},
		{"planned, starting", namespaces.MigrationPlanned, "", false},
		{"shadowing, failing", namespaces.MigrationShadowing, "boom", false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			m := *n.Migration
			m.State = tc.state
			c := n
			c.Migration = &m
			c.Targets = []namespaces.TargetStatus{n.Targets[0]}
			c.Targets[0].Error = tc.err
			var out strings.Builder
			if err := c.WriteMigration(&out); err != nil {
				t.Fatal(err)
			}
			hint := "the new target does not start (ERROR above): fix that and it is retried, or abandon the migration with prism migrate rollback orders"
			if got := strings.Contains(out.String(), hint); got != tc.want {
				t.Errorf("output says %q: %v, want %v\n%s", hint, got, tc.want, out.String())
			}
		})
	}
}
