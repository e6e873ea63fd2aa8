package replay_test

import (
	"errors"
	"regexp"
	"strings"
	"testing"

	"github.com/prism-data/prism/replay"
	"github.com/prism-data/prism/subjects"
)

// plainIdentifier is a PostgreSQL identifier that needs no quoting.
var plainIdentifier = regexp.MustCompile(`^[a-z_][a-z0-9_]{0,62}$`)

func TestPostgresTargetSchema(t *testing.T) {
	for _, c := range []struct{ ns, target, want string }{
		{"orders", "", "prism_orders"},
		{"orders", "postgres", "prism_orders"},
		{"orders", "pg2", "prism__orders__pg2"},
		{"orders", "pg_2", "prism__orders__pg_2"},
		{"order_lines", "rebuild", "prism__order_lines__rebuild"},
	} {
		got, err := replay.PostgresTargetSchema(c.ns, c.target)
		if err != nil || got != c.want {
			t.Errorf("PostgresTargetSchema(%q, %q) = %q, %v; want %q", c.ns, c.target, got, err, c.want)
		}
		if c.target != "" && c.target != "postgres" && !plainIdentifier.MatchString(got) {
			t.Errorf("PostgresTargetSchema(%q, %q) = %q: not a plain identifier", c.ns, c.target, got)
		}
	}
}

// What cannot be mapped to a plain, unshared schema name is refused, with
// what to use instead.
func TestPostgresTargetSchemaRefuses(t *testing.T) {
	for _, c := range []struct{ ns, target, want string }{
		{"orders", "pg-2", "--target pg_2"},
		{"orders", "pg__2", "--target pg_2"},
		{"orders", "_pg", "--target pg"},
		{"orders", "pg_", "--target pg"},
		{"orders-v2", "pg2", "target postgres"},
		{"orders", strings.Repeat("t", 60), "at most 48 bytes"},
	} {
		_, err := replay.PostgresTargetSchema(c.ns, c.target)
		if !errors.Is(err, replay.ErrSchemaName) || !strings.Contains(err.Error(), c.want) {
			t.Errorf("PostgresTargetSchema(%q, %q) error = %v, want ErrSchemaName saying %q", c.ns, c.target, err, c.want)
		}
	}
	if _, err := replay.PostgresTargetSchema("dlq", "pg2"); !errors.Is(err, subjects.ErrInvalidNamespace) {
		t.Errorf("PostgresTargetSchema(dlq, pg2) error = %v, want ErrInvalidNamespace", err)
	}
}

// No two (namespace, target) pairs share a schema, and no target's schema
// is another namespace's own: pairs built to collide under a looser rule.
func TestPostgresTargetSchemaIsUnshared(t *testing.T) {
	seen := map[string]string{}
	for _, c := range []struct{ ns, target string }{
		{"orders", "pg2"}, {"orders__pg2", ""}, {"orders_", "pg2"}, {"orders", "x_pg2"},
		{"orders__x", "pg2"}, {"orders_x", "pg2"}, {"orders", "x"}, {"orders_", "x"},
		{"prism__orders__pg2", ""}, {"a", "b_c"}, {"a_b", "c"}, {"a__b", "c"},
	} {
		schema, err := replay.PostgresTargetSchema(c.ns, c.target)
		if err != nil {
			t.Fatalf("PostgresTargetSchema(%q, %q): %v", c.ns, c.target, err)
		}
		key := c.ns + "/" + c.target
		if prev, ok := seen[schema]; ok {
			t.Errorf("%s and %s share schema %q", prev, key, schema)
		}
		seen[schema] = key
	}
}
