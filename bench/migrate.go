package bench

import (
	"context"
	"fmt"
	"io"
	"strconv"
	"time"

	"github.com/prism-data/prism/backends/postgres"
	"github.com/prism-data/prism/client"
	"github.com/prism-data/prism/internal/progress"
	"github.com/prism-data/prism/namespaces"
	"github.com/prism-data/prism/node"
	"github.com/prism-data/prism/subjects"
)

// runMigrate fills the embedded stack's SQLite namespace with cfg.Events
// puts over cfg.Keys records, then moves it to a new PostgreSQL target
// through the admin API exactly as prism migrate does, timing each step:
// backfill (start → shadowing), verify, cutover (request → reads served by
// PostgreSQL), finalize, and the whole move. "events" is the backfill's
// rate over the stream.
func runMigrate(ctx context.Context, cfg Config, t *benchTarget, items []client.Item, progress io.Writer) (RunResult, error) {
	if err := fillStream(ctx, cfg, t, items, progress); err != nil {
		return RunResult{}, err
	}
	admin := namespaces.NewAdminClient(t.svc, 10*time.Minute)
	target := "pg" + strconv.FormatInt(time.Now().UnixNano()%1e9, 36)
	schema, err := postgres.TargetSchemaName(t.namespace, target)
	if err != nil {
		return RunResult{}, err
	}
	t.pgDrop = append(t.pgDrop, schema)
	// Each step happens once: its series holds that one duration (a
	// recorder's histogram would cap it at a minute).
	var steps []SeriesResult
	once := func(name string, d time.Duration) {
		us := float64(d) / float64(time.Microsecond)
		steps = append(steps, SeriesResult{Name: name, Ops: 1, OpsPerSecond: 1 / d.Seconds(), Errors: map[string]int64{}, LatencyUS: &LatencyUS{P50: us, P90: us, P99: us, P999: us, Max: us, Mean: us}})
	}
	var backfill time.Duration
	began := time.Now()
	step := func(name string, do func() error) error {
		start := time.Now()
		if err := do(); err != nil {
			return fmt.Errorf("migrate: %s: %w", name, err)
		}
		d := time.Since(start)
		once(name, d)
		if name == "backfill" {
			backfill = d
		}
		fmt.Fprintf(progress, "migrate: %s in %s\n", name, d.Round(time.Millisecond))
		return nil
	}
	var last uint64
	err = step("backfill", func() error {
		if _, err := admin.StartMigration(ctx, t.namespace, namespaces.Target{Name: target, Backend: "postgres"}, namespaces.MigrationOptions{}, "prism bench"); err != nil {
			return err
		}
		n, err := waitMigrationState(ctx, admin, t.namespace, namespaces.MigrationShadowing, progress)
		for _, ts := range n.Targets {
			if ts.Target == target {
				last = ts.Checkpoint
			}
		}
		return err
	})
	if err == nil {
		err = step("verify", func() error {
			var rep node.VerifyReply
			if err := admin.Request(ctx, subjects.Owner(t.namespace, node.OpVerify), "migrate.verify", node.VerifyRequest{By: "prism bench"}, &rep); err != nil {
				return err
			}
			if !rep.Report.Passed() {
				return fmt.Errorf("targets differ: %d missing, %d extra, %d differing", rep.Report.Missing, rep.Report.Extra, rep.Report.Differing)
			}
			return nil
		})
	}
	if err == nil {
		err = step("cutover", func() error {
			if _, err := admin.Migrate(ctx, namespaces.AdminMigrateCutover, t.namespace, "prism bench"); err != nil {
				return err
			}
			_, err := admin.WaitReading(ctx, t.namespace, target)
			return err
		})
	}
	if err == nil {
		err = step("finalize", func() error {
			if _, err := admin.Migrate(ctx, namespaces.AdminMigrateFinalize, t.namespace, "prism bench"); err != nil {
				return err
			}
			_, err := admin.WaitReading(ctx, t.namespace, target)
			return err
		})
	}
	if err != nil {
		return RunResult{}, err
	}
	total := time.Since(began)
	once("total", total)
	res := RunResult{Name: "prism", ElapsedSeconds: total.Seconds()}
	res.Series = append([]SeriesResult{eventsSeries("events", int64(last), backfill)}, steps...)
	res.Note = fmt.Sprintf("migrate: %d events over %d records moved from sqlite to postgres target %s (backfill, verify, cutover, finalize)", last, cfg.Keys, target)
	return res, nil
}

// waitMigrationState polls until namespace name's migration is in state
// want, printing the backfill's progress every few seconds.
func waitMigrationState(ctx context.Context, admin *namespaces.AdminClient, name string, want namespaces.MigrationState, out io.Writer) (namespaces.AdminNamespace, error) {
	meter := progress.NewMeter(0, 0, time.Now(), false)
	var printed time.Time
	return admin.Poll(ctx, name, 50*time.Millisecond, func(n namespaces.AdminNamespace) bool {
		if n.Migration != nil && n.Migration.State == want {
			return true
		}
		for _, ts := range n.Targets {
			if n.Migration != nil && ts.Target == n.Migration.To.Name {
				s := meter.Observe(time.Now(), ts.Checkpoint, ts.StreamLast, nil)
				if time.Since(printed) > 3*time.Second {
					fmt.Fprintln(out, s.Line(fmt.Sprintf("migrate: %s %s", n.Migration.State, ts.Target)))
					printed = time.Now()
				}
			}
		}
		return false
	})
}
