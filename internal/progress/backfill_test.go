package progress_test

import (
	"context"
	"fmt"
	"regexp"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/prism-data/prism/client"
	"github.com/prism-data/prism/internal/progress"
	"github.com/prism-data/prism/namespaces"
	"github.com/prism-data/prism/node"
	"github.com/prism-data/prism/node/nodetest"
)

var lastLine = regexp.MustCompile(`^backfill copy: (\d+)/(\d+) events \(`)

// WatchBackfill follows a backfill to its end and returns the migration
// past it, its progress printed to the last line. A namespace with no
// migration is an error.
func TestWatchBackfill(t *testing.T) {
	ctx := context.Background()
	_, admin, c := nodetest.Start(t, node.Config{})
	ns := namespaces.Namespace{Name: "orders", Abstraction: namespaces.AbstractionKeyValue, Backend: "sqlite"}
	res, err := admin.Apply(ctx, ns, 0, "test")
	if err != nil {
		t.Fatal(err)
	}
	nodetest.WaitServing(t, admin, "orders", res.Revision)
	const events = 200
	for i := range events {
		if _, err := c.KeyValue("orders").Put(ctx, fmt.Appendf(nil, "rec-%03d", i), []client.Item{{Key: []byte("v"), Value: []byte("x")}}); err != nil {
			t.Fatal(err)
		}
	}
	if _, err := progress.WatchBackfill(ctx, admin, "orders", time.Second, &strings.Builder{}); err == nil || !strings.Contains(err.Error(), "has no migration") {
		t.Fatalf("watch without a migration: %v", err)
	}

	// StartMigration returns once the migration is recorded as planned,
	// before the new target is opened, so the watch starts in the
	// backfill (the rate cap only makes it last a little).
	if _, err := admin.StartMigration(ctx, "orders", namespaces.Target{Name: "copy", Backend: "sqlite"}, namespaces.MigrationOptions{MaxRate: 100}, "test"); err != nil {
		t.Fatal(err)
	}
	var out strings.Builder
	n, err := progress.WatchBackfill(ctx, admin, "orders", 50*time.Millisecond, &out)
	if err != nil {
		t.Fatal(err)
	}
	if n.Migration == nil || n.Migration.State.Backfilling() {
		t.Fatalf("watch returned during the backfill: %+v", n.Migration)
	}
	// The status of the new target may lag the registry's transition, so
	// the last line shows where the backfill was last seen, not
	// necessarily its end; it is the reporter's final line all the same.
	lines := strings.Split(strings.TrimSpace(out.String()), "\n")
	m := lastLine.FindStringSubmatch(lines[len(lines)-1])
	if m == nil {
		t.Fatalf("the output does not end with the backfill's progress:\n%s", out.String())
	}
	if done, _ := strconv.Atoi(m[1]); done > events {
		t.Fatalf("last line %q: more than the stream's %d events", m[0], events)
	}
}
