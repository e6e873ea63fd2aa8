package namespaces

import (
	"context"
	"fmt"
	"io"
	"slices"
	"time"
)

// Poll gets namespace name every interval until done reports true for it,
// and returns the namespace done accepted. It returns the error of a
// failed Get, or ctx's error (with the last namespace read) when ctx ends
// first.
func (c *AdminClient) Poll(ctx context.Context, name string, interval time.Duration, done func(AdminNamespace) bool) (AdminNamespace, error) {
	for {
		n, err := c.Get(ctx, name)
		if err != nil || done(n) {
			return n, err
		}
		select {
		case <-ctx.Done():
			return n, ctx.Err()
		case <-time.After(interval):
		}
	}
}

// WaitReading waits until target is the primary of namespace name, the
// one its reads are served from, in the Prism that answers (a migration
// step moves the reads once the target has caught up). served is false
// when that Prism does not serve the namespace (another one does), so it
// cannot tell.
func (c *AdminClient) WaitReading(ctx context.Context, name, target string) (served bool, err error) {
	n, err := c.Poll(ctx, name, 20*time.Millisecond, func(n AdminNamespace) bool {
		return len(n.Targets) == 0 || slices.ContainsFunc(n.Targets, func(t TargetStatus) bool {
			return t.Target == target && t.Role == "primary"
		})
	})
	return err == nil && len(n.Targets) > 0, err
}

// ServedWait bounds WaitServed.
const ServedWait = 15 * time.Second

// WaitServed waits (at most ServedWait) until the Prism that answers serves
// namespace name at revision or later, and says so in a line for people:
// served, not yet served (with the failure a target reports, if one
// does), or why it could not tell. A namespace is served once its primary
// target runs or is on standby at that revision.
func (c *AdminClient) WaitServed(ctx context.Context, name string, revision uint64) string {
	ctx, cancel := context.WithTimeout(ctx, ServedWait)
	defer cancel()
	var failed string
	n, err := c.Poll(ctx, name, 50*time.Millisecond, func(n AdminNamespace) bool {
		for _, t := range n.Targets {
			if t.Role != "primary" || t.Revision < revision {
				continue
			}
			if t.State == "failed" {
				failed = t.Error
				return true
			}
			return t.State == "running" || t.State == "standby"
		}
		return false
	})
	switch {
	case failed != "":
		return fmt.Sprintf("not served: its primary target failed: %s (prism ns get %s; it is retried every few seconds)", failed, name)
	case err == nil:
		return fmt.Sprintf("served: namespace %s takes requests", name)
	case len(n.Targets) == 0:
		return fmt.Sprintf("not served yet by the Prism that answered, after %v (prism ns get %s shows when it is)", ServedWait, name)
	}
	return fmt.Sprintf("not served yet, after %v: %v (prism ns get %s)", ServedWait, err, name)
}

// MigrateStep makes transition op of namespace name's migration (as
// Migrate) and reports it to out: the transition, then, unless it rolled
// the migration back, whether the reads moved to the target it names (the
// serving process moves them once that target has caught up).
func (c *AdminClient) MigrateStep(ctx context.Context, out io.Writer, op, name, by string) error {
	n, err := c.Migrate(ctx, op, name, by)
	if err != nil {
		return err
	}
	m := n.Migration
	last := m.History[len(m.History)-1]
	fmt.Fprintf(out, "migration of %s: %s → %s (%s)\n", name, last.From, last.To, last.Note)
	if m.State == MigrationRolledBack {
		return nil
	}
	reading := m.From.Name
	if m.State == MigrationCutOver || m.State == MigrationFinalized {
		reading = m.To.Name
	}
	switch served, err := c.WaitReading(ctx, name, reading); {
	case err != nil:
		fmt.Fprintf(out, "reads not moved to %s yet (%v); follow with prism migrate status %s\n", reading, err, name)
	case served:
		fmt.Fprintf(out, "reads are served by %s\n", reading)
	}
	return nil
}
