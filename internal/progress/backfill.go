package progress

import (
	"context"
	"fmt"
	"io"
	"sync/atomic"
	"time"

	"github.com/prism-data/prism/namespaces"
	"github.com/prism-data/prism/replay"
)

// WatchBackfill shows the backfill of namespace name's migration through
// the admin API, read every BarTick: events its new target applied of the
// stream's total, rate, ETA, lag behind the head, throttle; a bar on a
// terminal, a line every interval otherwise. It returns once the
// migration leaves planned/backfilling (a failed read is retried) or ctx
// ends, with the namespace as last read.
func WatchBackfill(ctx context.Context, client *namespaces.AdminClient, name string, interval time.Duration, out io.Writer) (namespaces.AdminNamespace, error) {
	n, err := client.Get(ctx, name)
	if err != nil {
		return n, err
	}
	if n.Migration == nil {
		return n, fmt.Errorf("namespace %s has no migration", name)
	}
	to := n.Migration.To.Name
	var cur atomic.Pointer[namespaces.AdminNamespace]
	cur.Store(&n)
	target := func() namespaces.TargetStatus {
		for _, t := range cur.Load().Targets {
			if t.Target == to {
				return t
			}
		}
		return namespaces.TargetStatus{}
	}
	if !n.Migration.State.Backfilling() {
		return n, ctx.Err()
	}
	src := Source{
		Applied: func() uint64 { return target().Checkpoint },
		Head:    func() uint64 { return target().StreamLast },
		Throttle: func() *replay.ThrottleState {
			th := target().Throttle
			if th == nil {
				return nil
			}
			return &replay.ThrottleState{Rate: th.Rate, MaxRate: th.MaxRate, Throttled: th.Reason != "", Reason: th.Reason}
		},
	}
	rep := Start("backfill "+to, src, NewMeter(0, 0, time.Now(), false), out, interval)
	for cur.Load().Migration.State.Backfilling() && ctx.Err() == nil {
		select {
		case <-ctx.Done():
		case <-time.After(BarTick):
		}
		if n, err := client.Get(ctx, name); err == nil && n.Migration != nil {
			cur.Store(&n)
		}
	}
	rep.Stop()
	return *cur.Load(), ctx.Err()
}
