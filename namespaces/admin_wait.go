package namespaces

import (
	"context"
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
